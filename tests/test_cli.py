"""The tenant-facing CLI against a real server."""

import json

import pytest

from tests.support.api import PASSWORD
from tests.support.waiting import wait_operation


def _json(output: str):
    return json.loads(output)


def test_tenant_user_group_role_audit_commands(run, root_id: str) -> None:
    me = _json(run("whoami", "-o", "json"))
    assert me["username"] == "admin" and me["roles"] == ["platform-admin"]
    acme = _json(run("tenant", "create", "Acme", "--parent", root_id, "-o", "json"))
    dept = _json(run("tenant", "create", "R&D", "--parent", acme["id"], "-o", "json"))
    assert dept["depth"] == 2
    listed = _json(run("tenant", "list", "--subtree", acme["id"], "-o", "json"))
    assert [t["name"] for t in listed] == ["Acme", "R&D"]
    table = run("tenant", "list", "--parent", acme["id"])
    assert "R&D" in table and dept["id"] in table
    renamed = _json(run("tenant", "rename", dept["id"], "Research", "-o", "json"))
    assert renamed["name"] == "Research"
    user = _json(
        run(
            "user",
            "create",
            "cli-user",
            "--tenant",
            acme["id"],
            "--password",
            PASSWORD,
            "--role",
            "member",
            "--role",
            "auditor",
            "-o",
            "json",
        )
    )
    assert user["roles"] == ["auditor", "member"]
    group = _json(
        run("group", "create", "ops", "--tenant", acme["id"], "--role", "approver", "-o", "json")
    )
    joined = _json(run("group", "add-member", group["id"], user["id"], "-o", "json"))
    assert joined["member_ids"] == [user["id"]]
    roles = _json(run("role", "list", "-o", "json"))
    assert {r["name"] for r in roles} >= {"platform-admin", "member"}
    events = _json(run("audit", "list", "--action", "tenant.create", "-o", "json"))
    assert {e["target_id"] for e in events} == {acme["id"], dept["id"]}
    error = run("tenant", "create", "Acme", "--parent", root_id, expect=1)
    assert "duplicate-name" in error


@pytest.mark.usefixtures("workflows")
def test_tenant_delete_waits_for_the_operation(run, root_id: str) -> None:
    doomed = _json(run("tenant", "create", "Doomed", "--parent", root_id, "-o", "json"))
    operation = _json(run("tenant", "delete", doomed["id"], "-o", "json"))
    assert operation["state"] == "succeeded"
    run("tenant", "show", doomed["id"], expect=1)


def test_logout_forgets_the_token(run) -> None:
    run("logout")
    run("whoami", expect=2)


def test_inventory_and_placement_commands(run, root_id: str, tmp_path) -> None:
    region = _json(run("region", "create", "east", "-o", "json"))
    zone = _json(run("zone", "create", "east-1", "--region", region["id"], "-o", "json"))
    pod = _json(run("pod", "create", "rack-1", "--zone", zone["id"], "-o", "json"))
    cluster = _json(
        run("cluster", "create", "kvm-a", "--pod", pod["id"], "--cpu-overcommit", "2", "-o", "json")
    )
    assert cluster["cpu_overcommit"] == "2.0000000000" or float(cluster["cpu_overcommit"]) == 2
    hosts = [
        _json(
            run(
                "host",
                "create",
                f"node-{n}",
                "--cluster",
                cluster["id"],
                "--cores",
                "8",
                "--memory-mb",
                "32768",
                "--disk-gb",
                "500",
                "--trait",
                "ssd",
                "-o",
                "json",
            )
        )
        for n in range(2)
    ]
    assert hosts[0]["vcpu_limit"] == 16 and hosts[0]["traits"] == ["ssd"]
    listed = _json(run("host", "list", "--filter", f"cluster_id={cluster['id']}", "-o", "json"))
    assert [h["name"] for h in listed] == ["node-0", "node-1"]

    policy = _json(
        run(
            "placement-policy",
            "create",
            "dense",
            "--strategy",
            "pack",
            "--zone",
            zone["id"],
            "-o",
            "json",
        )
    )
    request = ["--tenant", root_id, "--vcpus", "4", "--memory-mb", "8192", "--trait", "ssd"]
    answer = run("placement", "dry-run", *request)
    assert "pack: node-0" in answer and "capacity" in answer
    first = _json(run("placement", "claim", *request, "--consumer", "i-cli", "-o", "json"))
    second = _json(run("placement", "claim", *request, "-o", "json"))
    assert first["host_id"] == second["host_id"] == hosts[0]["id"]
    run("placement-policy", "set-strategy", policy["id"], "spread")
    third = _json(run("placement", "claim", *request, "-o", "json"))
    assert third["host_id"] == hosts[1]["id"]
    too_big = run(
        "placement", "claim", "--tenant", root_id, "--vcpus", "64", "--memory-mb", "1", expect=1
    )
    assert "no-valid-host" in too_big and "capacity removed 2" in too_big

    capacity = run("zone", "capacity", zone["id"])
    assert "12/32" in capacity and "rack-1" in capacity
    held = _json(run("placement", "claims", "--host", hosts[0]["id"], "-o", "json"))
    assert {c["id"] for c in held} == {first["id"], second["id"]}
    run("host", "maintenance", hosts[1]["id"])
    plan = run("host", "evacuation-plan", hosts[0]["id"])
    assert "incomplete" in plan and "state removed 1" in plan and "excluded removed 1" in plan
    run("host", "enable", hosts[1]["id"])
    assert "complete" in run("host", "evacuation-plan", hosts[0]["id"])
    report = _json(run("placement", "rebalance-report", "--threshold", "0.2", "-o", "json"))
    assert report["overloaded"][0]["host_id"] == hosts[0]["id"]

    pool = _json(
        run(
            "storage-pool",
            "create",
            "local",
            "--kind",
            "secondary",
            "--zone",
            zone["id"],
            "--source",
            tmp_path.as_uri(),
            "-o",
            "json",
        )
    )
    refreshed = _json(run("storage-pool", "refresh", pool["id"], "-o", "json"))
    assert refreshed["total_gb"] > 0
    run("placement", "release", first["id"])
    assert "deleted" in run("storage-pool", "delete", pool["id"])
    group = _json(
        run(
            "placement-group",
            "create",
            "web",
            "--tenant",
            root_id,
            "--policy",
            "anti-affinity",
            "-o",
            "json",
        )
    )
    assert group["host_ids"] == []


def test_quota_commands(run, root_id: str) -> None:
    acme = _json(run("tenant", "create", "Acme", "--parent", root_id, "-o", "json"))
    team = _json(run("tenant", "create", "Team", "--parent", acme["id"], "-o", "json"))
    run("quota", "set", acme["id"], "--guarantee", "16", "--borrow-limit", "0")
    node = _json(run("quota", "set", team["id"], "--guarantee", "8", "--cap", "12", "-o", "json"))
    assert (node["guarantee"], node["cap"]) == (8, 12)
    refused = run("quota", "set", team["id"], "--guarantee", "20", expect=1)
    assert "guarantee" in refused or "exceeds-parent" in refused
    verdict = _json(run("quota", "check", team["id"], "--amount", "vcpus=13", "-o", "json"))
    assert not verdict["admitted"] and "cap" in verdict["verdicts"][0]["reason"]
    assert "True" in run("quota", "check", team["id"], "--amount", "vcpus=12")
    unlimited = _json(run("quota", "set", team["id"], "--unlimited", "cap", "-o", "json"))
    assert unlimited["cap"] is None
    rows = _json(run("quota", "tree", "--parent", acme["id"], "-o", "json"))
    assert [r["tenant_id"] for r in rows] == [team["id"]]
    assert "vcpus" in run("quota", "show", acme["id"])


def test_network_commands(run, admin, root_id: str) -> None:
    region = _json(run("region", "create", "east", "-o", "json"))
    zone = _json(run("zone", "create", "east-1", "--region", region["id"], "-o", "json"))
    pod = _json(run("pod", "create", "p1", "--zone", zone["id"], "-o", "json"))
    cluster = _json(run("cluster", "create", "c1", "--pod", pod["id"], "-o", "json"))
    host = _json(
        run(
            "host",
            "create",
            "h1",
            "--cluster",
            cluster["id"],
            "--cores",
            "8",
            "--memory-mb",
            "8192",
            "-o",
            "json",
        )
    )
    run(
        "vlan-pool",
        "create",
        "vni",
        "--zone",
        zone["id"],
        "--type",
        "vxlan",
        "--first",
        "100",
        "--last",
        "200",
    )
    public = _json(
        run(
            "vlan-pool",
            "create",
            "pub",
            "--zone",
            zone["id"],
            "--first",
            "7",
            "--last",
            "7",
            "--cidr",
            "198.51.100.0/29",
            "-o",
            "json",
        )
    )
    pool = _json(
        run(
            "ip-pool",
            "create",
            "eips",
            "--vlan-pool",
            public["id"],
            "--purpose",
            "public",
            "--reserved",
            "198.51.100.1-198.51.100.2",
            "-o",
            "json",
        )
    )
    assert (pool["total"], pool["reserved"], pool["free"]) == (6, 2, 4)
    held = _json(
        run(
            "ip-pool",
            "allocate",
            pool["id"],
            "--owner",
            "i-x",
            "--address",
            "198.51.100.5",
            "-o",
            "json",
        )
    )
    assert held["owner_id"] == "i-x"
    run("ip-pool", "release", pool["id"], "198.51.100.5")
    vpc = _json(
        run("vpc", "create", "web", "--zone", zone["id"], "--cidr", "10.3.0.0/16", "-o", "json")
    )
    assert vpc["routing_mode"] == "full"  # the zone has no gateway hosts
    sub = _json(
        run("vxnet", "create", "front", "--vpc", vpc["id"], "--cidr", "10.3.1.0/24", "-o", "json")
    )
    group = _json(
        run(
            "security-group",
            "create",
            "web",
            "--rule",
            "ingress tcp 80-81 0.0.0.0/0",
            "--rule",
            "egress any",
            "-o",
            "json",
        )
    )
    assert group["rules"][0]["port_max"] == 81 and group["rules"][1]["protocol"] == "any"
    nic = _json(
        run(
            "port",
            "create",
            "--vxnet",
            sub["id"],
            "--host",
            host["id"],
            "--security-group",
            group["id"],
            "-o",
            "json",
        )
    )
    assert nic["ip"] == "10.3.1.2"
    eip = _json(run("eip", "create", "--pool", pool["id"], "-o", "json"))
    assert (
        _json(run("eip", "bind", eip["id"], "--port", nic["id"], "-o", "json"))["port_id"]
        == nic["id"]
    )
    tree = run("vpc", "topology", vpc["id"])
    assert "10.3.1.0/24" in tree and f"eip {eip['address']}" in tree
    document = _json(run("sdn", "document", host["id"]))
    assert document["vpcs"][0]["local_ports"][0]["eip"]["address"] == eip["address"]
    assert "no change" in run("sdn", "document", host["id"], "--since", str(document["version"]))
    assert "never reported" in run("sdn", "host", host["id"])
    report = {"applied_version": document["version"], "routers": 1, "entries": 4}
    report["errors"] = {vpc["id"]: "RuntimeError: nft failed"}
    admin.ok(admin.post(f"/sdn/hosts/{host['id']}/status", report), 204)
    agent = _json(run("sdn", "host", host["id"], "-o", "json"))["agent"]
    assert agent["up_to_date"] and agent["errors"] == report["errors"]
    assert f"{vpc['id']}: RuntimeError: nft failed" in run("sdn", "host", host["id"])
    bad = run("vxnet", "create", "x", "--vpc", vpc["id"], "--cidr", "10.4.0.0/24", expect=1)
    assert "not inside" in bad
    run("eip", "unbind", eip["id"])
    for noun, item in (("eip", eip), ("port", nic), ("vxnet", sub), ("vpc", vpc)):
        run(noun, "delete", item["id"])
    assert _json(run("vpc", "list", "-o", "json")) == []


@pytest.mark.usefixtures("workflows")
def test_provider_and_instance_commands(run, root_id: str) -> None:
    region = _json(run("region", "create", "west", "-o", "json"))
    zone = _json(run("zone", "create", "west-1", "--region", region["id"], "-o", "json"))
    pod = _json(run("pod", "create", "p1", "--zone", zone["id"], "-o", "json"))
    cluster = _json(run("cluster", "create", "c1", "--pod", pod["id"], "-o", "json"))
    config = json.dumps({"hosts": 3})
    registered = _json(
        run(
            "provider",
            "register",
            "sim",
            "--kind",
            "simulator",
            "--cluster",
            cluster["id"],
            "--config",
            config,
            "-o",
            "json",
        )
    )
    assert registered["synced_at"] and registered["has_credentials"] is False
    hosts = _json(run("host", "list", "--filter", f"cluster_id={cluster['id']}", "-o", "json"))
    assert len(hosts) == 3
    flavor = _json(
        run("flavor", "create", "m1", "--vcpus", "2", "--memory-mb", "1024", "-o", "json")
    )
    image = _json(
        run("image", "create", "deb", "--zone", f"{zone['id']}=", "--public", "-o", "json")
    )
    made = _json(
        run(
            "instance",
            "create",
            "cli-vm",
            "--flavor",
            flavor["id"],
            "--image",
            image["id"],
            "-o",
            "json",
        )
    )
    assert made["state"] == "running" and made["zone_id"] == zone["id"]
    moved = _json(run("instance", "migrate", made["id"], "--live", "-o", "json"))
    assert moved["state"] == "succeeded"
    stopped = _json(run("instance", "stop", made["id"], "-o", "json"))
    assert stopped["state"] == "succeeded"
    assert _json(run("instance", "show", made["id"], "-o", "json"))["state"] == "stopped"
    bigger = _json(
        run("flavor", "create", "m2", "--vcpus", "3", "--memory-mb", "2048", "-o", "json")
    )
    run("instance", "resize", made["id"], "--flavor", bigger["id"])
    assert _json(run("instance", "show", made["id"], "-o", "json"))["vcpus"] == 3
    assert "cli-vm" in run("instance", "console", made["id"])
    assert "instance.stopped" in run("instance", "events", made["id"])
    volume = _json(
        run("volume", "create", "data", "--size-gb", "5", "--instance", made["id"], "-o", "json")
    )
    assert volume["state"] == "in-use" and volume["instance_id"] == made["id"]
    run("volume", "extend", volume["id"], "--size-gb", "8")
    snap = _json(run("snapshot", "create", "s1", "--volume", volume["id"], "-o", "json"))
    assert snap["state"] == "available" and snap["size_gb"] == 8
    run("snapshot", "delete", snap["id"])
    run("volume", "detach", volume["id"])
    run("volume", "delete", volume["id"])
    assert _json(run("volume", "list", "-o", "json")) == []
    run("instance", "delete", made["id"])
    assert _json(run("instance", "list", "-o", "json")) == []
    synced = _json(run("provider", "sync", registered["id"], "-o", "json"))
    assert synced["state"] == "succeeded"
    run(
        "provider",
        "register",
        "bad",
        "--kind",
        "simulator",
        "--cluster",
        cluster["id"],
        "--config",
        '{"hosts": 0}',
        expect=1,
    )


def test_catalog_commands(run, admin, live_url: str, root_id: str, tmp_path) -> None:
    definition = tmp_path / "vm.yaml"
    definition.write_text(
        "parameters:\n"
        "  - {name: size, type: choice, choices: [s1, m1], default: s1}\n"
        "spec: {flavor_id: {param: size}, image_id: img-1}\n"
    )
    create = ("service-template", "create", "vm", "--kind", "instance")
    made = _json(run(*create, "--definition", str(definition), "-o", "json"))
    assert made["kind"] == "instance"
    submitted = _json(run("service-template", "submit", made["id"], "1", "-o", "json"))
    assert submitted["state"] == "in-review"
    error = run("service-template", "approve", made["id"], "1", expect=1)
    assert "four-eyes" in error
    admin.user(root_id, "reviewer", ["platform-admin"])
    run("login", live_url, "--username", "reviewer", "--password", PASSWORD)
    version = _json(run("service-template", "approve", made["id"], "1", "-o", "json"))
    assert version["state"] == "published"
    second = _json(run("service-template", "version", "create", made["id"], "-o", "json"))
    assert second["version"] == 2 and second["spec"] == version["spec"]
    listed = _json(run("service-template", "version", "list", made["id"], "-o", "json"))
    assert [v["state"] for v in listed] == ["published", "draft"]
    run("service-template", "delete", made["id"], "2")
    category = _json(run("category", "create", "Compute", "--sort-order", "2", "-o", "json"))
    team = admin.tenant(root_id, "team")
    item = _json(
        run(
            "catalog-item",
            "create",
            "Small VM",
            "--category",
            category["id"],
            "--version-id",
            version["id"],
            "--tenant",
            team["id"],
            "-o",
            "json",
        )
    )
    assert item["tenant_ids"] == [team["id"]] and item["parameters"][0]["name"] == "size"
    assert "Small VM" in run("catalog-item", "list", "--filter", f"category_id={category['id']}")
    exported = tmp_path / "catalog.yaml"
    run("catalog", "export", str(exported))
    summary = _json(run("catalog", "import", str(exported), "-o", "json"))
    assert summary == {"categories": 1, "templates": 1, "versions": 2, "items": 1}
    assert run("catalog", "export") == exported.read_text()
    exported.write_text("categories: [")
    assert "malformed-yaml" in run("catalog", "import", str(exported), expect=1)


def test_notification_and_webhook_commands(run, app, admin, live_url: str, root_id: str) -> None:
    from yunguan.notifications.service import notify

    team = admin.tenant(root_id, "team")
    reader = admin.user(team["id"], "reader", ["tenant-admin"])
    with app.state.db.session() as session:
        for subject in ("first", "second"):
            notify(
                session,
                event="order.approved",
                tenant_id=team["id"],
                user_ids=[reader["id"]],
                subject=subject,
                body="",
            )
    run("login", live_url, "--username", "reader", "--password", PASSWORD)
    listed = _json(run("notification", "list", "--unread", "-o", "json"))
    assert [n["subject"] for n in listed] == ["second", "first"]
    assert "marked" in run("notification", "read", listed[0]["id"])
    assert [n["subject"] for n in _json(run("notification", "list", "--unread", "-o", "json"))] == [
        "first"
    ]
    assert "marked 1 notification(s) read" in run("notification", "read", "--all")
    run("notification", "read", expect=2)

    create = ("webhook", "create", "--url", "https://hooks.team.test/y", "--event", "order.*")
    made = _json(run(*create, "--description", "fulfilment", "-o", "json"))
    assert made["events"] == ["order.*"] and len(made["secret"]) >= 32
    shown = _json(run("webhook", "show", made["id"], "-o", "json"))
    assert "secret" not in shown and shown["tenant_id"] == team["id"]
    assert made["id"] in run("webhook", "list")
    assert _json(run("webhook", "deliveries", made["id"], "-o", "json")) == []
    assert "url" in run("webhook", "create", "--url", "ftp://x", expect=1)
    run("webhook", "delete", made["id"])
    run("webhook", "show", made["id"], expect=1)


@pytest.mark.usefixtures("workflows")
def test_order_approval_and_service_commands(run, admin, live_url: str, root_id: str, tmp_path):
    from tests.orders.conftest import offer
    from tests.support.compute import simulated_zone

    item = offer(admin, root_id, simulated_zone(admin))
    team = admin.tenant(root_id, "team")
    lead = admin.user(team["id"], "lead", ["approver"])
    admin.user(team["id"], "dev", ["member"])
    stages = tmp_path / "stages.yaml"
    stages.write_text(f"- {{name: lead, approvers: [{lead['id']}]}}\n")
    create = ("approval-policy", "create", "--tenant", team["id"], "--name", "team")
    policy = _json(run(*create, "--stages", str(stages), "-o", "json"))
    assert policy["stages"][0]["approvers"] == [lead["id"]]

    run("login", live_url, "--username", "dev", "--password", PASSWORD)
    order = ("order", "create", "--item", item["id"], "--name", "web", "--value", "count=1")
    placed = _json(run(*order, "--months", "1", "-o", "json"))
    assert placed["state"] == "pending-approval" and placed["values"] == {
        "count": 1,
        "size": item["parameters"][0]["default"],
    }
    assert "invalid-parameters" in run(*order, "--value", "count=9", expect=1)

    run("login", live_url, "--username", "lead", "--password", PASSWORD)
    assert placed["id"] in run("approval", "list")
    approved = _json(run("order", "approve", placed["id"], "--comment", "ok", "-o", "json"))
    assert approved["state"] == "fulfilling"
    done = wait_operation(admin, approved["operation_id"], timeout=60)
    assert done["state"] == "succeeded", done
    events = _json(run("order", "events", placed["id"], "-o", "json"))
    assert [e["kind"] for e in events] == ["placed", "approved", "fulfilling", "completed"]

    run("login", live_url, "--username", "dev", "--password", PASSWORD)
    service_id = admin.ok(admin.get(f"/orders/{placed['id']}"))["service_instance_id"]
    assert "active" in run("service", "list")
    renewed = _json(run("service", "renew", service_id, "--months", "2", "-o", "json"))
    assert renewed["subscription"]["expires_at"] > done["updated_at"]
    auto = _json(run("service", "auto-renew", service_id, "true", "-o", "json"))
    assert auto["subscription"]["auto_renew"] is True
    gone = _json(run("service", "unsubscribe", service_id, "-o", "json"))
    assert gone["state"] == "releasing"
