"""Portal form posts without a browser: same-origin rule and the session cookie."""

from tests.support.api import ADMIN_PASSWORD, Api

ORIGIN = {"origin": "http://testserver"}


def _portal_login(client) -> None:
    answer = client.post(
        "/login",
        data={"username": "admin", "password": ADMIN_PASSWORD},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert answer.status_code == 303


def test_form_posts_must_come_from_this_site(client, admin: Api, root_id: str) -> None:
    _portal_login(client)
    form = {"name": "via-form", "parent_id": root_id}
    assert client.post("/tenants/new", data=form).status_code == 403
    foreign = client.post("/tenants/new", data=form, headers={"origin": "http://evil.example"})
    assert foreign.status_code == 403
    same = client.post("/tenants/new", data=form, headers=ORIGIN)
    assert same.status_code == 200 and "via-form" in same.text
    assert len(admin.ok(admin.get("/tenants", params={"name": "via-form"}))["items"]) == 1


def test_pages_need_a_session(client) -> None:
    answer = client.get("/tenants", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    htmx = client.get("/users", headers={"hx-request": "true"}, follow_redirects=False)
    assert htmx.status_code == 401 and htmx.headers["hx-redirect"] == "/login"


def test_move_a_tenant_from_the_tree(client, admin: Api, root_id: str) -> None:
    a, b = admin.tenant(root_id, "A"), admin.tenant(root_id, "B")
    child = admin.tenant(a["id"], "child")
    _portal_login(client)
    moved = client.post(f"/tenants/{child['id']}/move", data={"parent_id": b["id"]}, headers=ORIGIN)
    assert moved.status_code == 200 and "Moved “child”." in moved.text
    assert admin.ok(admin.get(f"/tenants/{child['id']}"))["parent_id"] == b["id"]
    cycle = client.post(f"/tenants/{a['id']}/move", data={"parent_id": a["id"]}, headers=ORIGIN)
    assert cycle.status_code == 409 and "below itself" in cycle.text


def test_groups_page_creates_groups_and_manages_members(client, admin: Api, root_id: str) -> None:
    acme = admin.tenant(root_id, "Acme")
    user = admin.user(acme["id"], "grouped")
    _portal_login(client)
    page = client.get("/groups")
    assert page.status_code == 200 and "New group" in page.text
    created = client.post(
        "/groups/new",
        data={"name": "ops", "tenant_id": acme["id"], "roles": ["approver"]},
        headers=ORIGIN,
    )
    assert "Created group “ops”." in created.text
    group = admin.ok(admin.get("/groups", params={"name": "ops"}))["items"][0]
    added = client.post(
        f"/groups/{group['id']}/members",
        data={"user_id": user["id"], "action": "add-member"},
        headers=ORIGIN,
    )
    assert "Added to “ops”." in added.text
    assert admin.ok(admin.get(f"/groups/{group['id']}"))["member_ids"] == [user["id"]]
    refused = client.post(
        "/groups/new",
        data={"name": "root", "tenant_id": acme["id"], "roles": ["platform-admin"]},
        headers=ORIGIN,
    )
    assert refused.status_code == 422
    deleted = client.post(f"/groups/{group['id']}/delete", headers=ORIGIN)
    assert "Group deleted." in deleted.text


def test_behind_a_proxy_the_public_url_is_the_origin(client, app, root_id: str) -> None:
    _portal_login(client)
    app.state.settings = app.state.settings.model_copy(
        update={"public_url": "https://cloud.example.com"}
    )
    form = {"name": "proxied", "parent_id": root_id}
    assert client.post("/tenants/new", data=form, headers=ORIGIN).status_code == 403
    public = {"origin": "https://cloud.example.com"}
    assert client.post("/tenants/new", data=form, headers=public).status_code == 200


def test_infrastructure_pages_build_a_data_centre_and_place(
    client, admin: Api, root_id: str
) -> None:
    _portal_login(client)
    assert "No regions yet" in client.get("/infrastructure").text

    def post(path: str, **form) -> str:
        answer = client.post(path, data=form, headers=ORIGIN)
        assert answer.status_code == 200, answer.text
        return answer.text

    assert "Created region “east”." in post("/infrastructure/regions", name="east")
    region = admin.ok(admin.get("/regions"))["items"][0]
    post("/infrastructure/zones", name="east-1", region_id=region["id"])
    zone = admin.ok(admin.get("/zones"))["items"][0]
    assert zone["visibility"] == "public"
    post("/infrastructure/pods", name="rack-1", zone_id=zone["id"])
    pod = admin.ok(admin.get("/pods"))["items"][0]
    text = post(
        "/infrastructure/clusters",
        name="kvm-1",
        pod_id=pod["id"],
        hypervisor="kvm",
        cpu_overcommit="2",
        memory_overcommit="1",
    )
    assert "kvm-1" in text and "overcommit cpu 2, memory 1" in text
    bad = client.post(
        "/infrastructure/clusters",
        data={"name": "x", "pod_id": pod["id"], "hypervisor": "kvm", "cpu_overcommit": "lots"},
        headers=ORIGIN,
    )
    assert bad.status_code == 422 and "cpu_overcommit" in bad.text
    cluster = admin.ok(admin.get("/clusters"))["items"][0]
    hosts_url = f"/infrastructure/clusters/{cluster['id']}"
    added = post(
        f"{hosts_url}/hosts", name="node-1", cpu_cores="8", memory_mb="16384", traits="ssd"
    )
    assert "Created host “node-1”." in added and "0 / 16" in added
    host = admin.ok(admin.get("/hosts"))["items"][0]
    assert host["traits"] == ["ssd"]

    answer = post("/placement/dry-run", tenant_id=root_id, vcpus="4", memory_mb="4096")
    assert "spread: <strong>node-1</strong>" in answer
    post("/placement/policies", name="dense", strategy="pack", scope=f"zone:{zone['id']}")
    answer = post("/placement/dry-run", tenant_id=root_id, vcpus="4", memory_mb="4096")
    assert "pack: <strong>node-1</strong>" in answer
    state = post(f"{hosts_url}/hosts/{host['id']}", state="maintenance")
    assert "is now maintenance" in state
    refused = post("/placement/dry-run", tenant_id=root_id, vcpus="4", memory_mb="4096")
    assert "no valid host: state removed 1" in refused
    topology = client.get("/infrastructure").text
    assert "0/1 hosts" in topology and 'data-node="' + cluster["id"] + '"' in topology
    # planning from the portal: where the host's placements would go, and rebalancing
    claim = admin.ok(
        admin.post("/placement/claims", {"tenant_id": root_id, "vcpus": 2, "memory_mb": 1024}), 409
    )
    assert claim["code"] == "no-valid-host"  # its only host is in maintenance
    post(f"{hosts_url}/hosts/{host['id']}", state="enabled")
    admin.ok(
        admin.post("/placement/claims", {"tenant_id": root_id, "vcpus": 14, "memory_mb": 1024}), 201
    )
    plan = client.get(f"{hosts_url}/hosts/{host['id']}/evacuation-plan").text
    assert "some placements have nowhere to go" in plan and "excluded removed 1" in plan
    report = client.get("/placement/rebalance-report", params={"threshold": "0.5"}).text
    assert "1 host(s) above 50 %; 0 move(s)" in report
    assert client.get("/placement/rebalance-report", params={"threshold": "7"}).status_code == 422
    post(
        "/infrastructure/storage-pools",
        name="images",
        kind="secondary",
        zone_id=zone["id"],
        total_gb="500",
    )
    assert admin.ok(admin.get("/storage-pools"))["items"][0]["total_gb"] == 500


def test_quota_page_sets_limits_and_checks(client, admin: Api, root_id: str) -> None:
    acme = admin.tenant(root_id, "Acme")
    _portal_login(client)
    assert "not configured" in client.get("/quotas").text

    def post(path: str, **form) -> tuple[int, str]:
        answer = client.post(path, data=form, headers=ORIGIN)
        return answer.status_code, answer.text

    status, text = post("/quotas/vcpus", tenant_id=acme["id"], guarantee="8", cap="10")
    assert status == 200 and "guarantee 8" in text
    status, text = post("/quotas/vcpus", tenant_id=acme["id"], cap="lots")
    assert status == 400 and "whole numbers" in text
    status, text = post("/quotas/vcpus/check", tenant_id=acme["id"], amount="11")
    assert "Refused" in text and "cap 10" in text and "Nothing can be reclaimed" in text
    status, text = post("/quotas/vcpus/check", tenant_id=acme["id"], amount="10")
    assert "Admitted: 10 vcpus." in text
    tree = client.get("/quotas/tree", params={"resource": "memory_mb"}).text
    assert "selected>memory_mb" in tree
