"""Instances end to end through the API, on the simulator provider: real workflows, real
placement, quota and IPAM (the simulator's machines live in its table)."""

import pytest
from sqlalchemy import select, update

from tests.support import network
from tests.support.api import Api
from tests.support.clock import Clock
from tests.support.compute import act, create, created, simulated_zone
from tests.support.compute_checks import NOTHING, held, instance_reservations
from tests.support.quotas import set_limit
from tests.support.waiting import wait_operation
from yunguan.core.db import Database
from yunguan.providers.models import SimulatedMachine

pytestmark = pytest.mark.usefixtures("workflows")


def test_create_with_name_flavor_and_image_picks_zone_network_and_host(
    admin: Api, member: Api, team: dict, place: dict, vxnet: dict
) -> None:
    accepted = create(member, place)
    assert accepted["resource"]["state"] == "creating"
    operation = wait_operation(member, accepted["operation"]["id"])
    assert operation["state"] == "succeeded", operation
    assert operation["progress"] == 100

    instance = member.ok(member.get(f"/instances/{accepted['resource']['id']}"))
    assert instance["state"] == "running" and instance["power_state"] == "on"
    assert instance["zone_id"] == place["zone"]["id"]
    assert instance["vxnet_id"] == vxnet["id"]
    assert instance["ip"].startswith("10.1.1.")
    host = admin.ok(admin.get(f"/hosts/{instance['host_id']}"))
    assert host["provider_id"] == place["provider"]["id"]
    assert host["used_vcpus"] == 2 and host["used_memory_mb"] == 2048
    port = member.ok(member.get(f"/ports/{instance['port_id']}"))
    assert port["host_id"] == instance["host_id"] and port["device_id"] == instance["id"]
    assert port["ip"] == instance["ip"] and port["mac"] == instance["mac"]
    usage = member.ok(member.get("/usage-events", params={"resource_id": instance["id"]}))
    assert [(u["meter"], u["action"]) for u in usage["items"]] == [("instance.running", "start")]
    listed = admin.ok(admin.get("/quotas/reservations", params={"tenant_id": team["id"]}))
    reservations = instance_reservations(listed["items"])
    assert [r["state"] for r in reservations] == ["committed"]
    assert reservations[0]["amounts"] == {"instances": 1, "vcpus": 2, "memory_mb": 2048}
    events = member.ok(member.get(f"/instances/{instance['id']}/events"))
    assert [e["kind"] for e in events] == ["instance.create", "instance.running"]
    console = member.ok(member.get(f"/instances/{instance['id']}/console"))
    assert instance["name"] in console["output"]


def test_stop_start_reboot_and_delete_give_everything_back(
    admin: Api, db: Database, member: Api, team: dict, place: dict, vxnet: dict
) -> None:
    instance = created(member, place)
    assert act(member, instance["id"], "stop")["state"] == "succeeded"
    stopped = member.ok(member.get(f"/instances/{instance['id']}"))
    assert (stopped["state"], stopped["power_state"]) == ("stopped", "off")
    refused = member.post(f"/instances/{instance['id']}/actions", {"action": "reboot"})
    assert refused.status_code == 409 and refused.json()["code"] == "invalid-state"
    assert act(member, instance["id"], "start")["state"] == "succeeded"
    assert act(member, instance["id"], "reboot")["state"] == "succeeded"
    assert member.ok(member.get(f"/instances/{instance['id']}"))["state"] == "running"
    usage = member.ok(member.get("/usage-events", params={"resource_id": instance["id"]}))
    assert [u["action"] for u in usage["items"]] == ["start", "stop", "start"]

    accepted = member.ok(member.delete(f"/instances/{instance['id']}"), 202)
    assert accepted["resource"]["state"] == "deleting"
    assert wait_operation(member, accepted["operation"]["id"])["state"] == "succeeded"
    gone = member.ok(member.get(f"/instances/{instance['id']}"))
    assert gone["state"] == "deleted"
    assert instance["id"] not in [i["id"] for i in member.ok(member.get("/instances"))["items"]]
    deleted = member.ok(member.get("/instances", params={"state": "deleted"}))
    assert [i["id"] for i in deleted["items"]] == [instance["id"]]
    assert held(admin, db, team["id"]) == NOTHING
    host = admin.ok(admin.get(f"/hosts/{instance['host_id']}"))
    assert host["used_vcpus"] == 0
    usage = member.ok(member.get("/usage-events", params={"resource_id": instance["id"]}))
    assert [u["action"] for u in usage["items"]] == ["start", "stop", "start", "end"]


def test_count_creates_that_many(member: Api, place: dict, vxnet: dict) -> None:
    answer = create(member, place, "batch", count=3)
    names = sorted(item["resource"]["name"] for item in answer["items"])
    assert names == ["batch-1", "batch-2", "batch-3"]
    for item in answer["items"]:
        assert wait_operation(member, item["operation"]["id"])["state"] == "succeeded"
    running = member.ok(member.get("/instances", params={"state": "running"}))
    assert len({i["ip"] for i in running["items"]}) == 3


def test_a_provider_failure_compensates_every_step(admin: Api, db: Database, root_id: str) -> None:
    place = simulated_zone(admin, failures={"create": 1.0})
    team = admin.tenant(root_id, "Team")
    member = admin.as_user(team["id"], "dev", ["member"])
    vpc = network.vpc(member, place["zone"]["id"], "10.1.0.0/16")
    network.vxnet(member, vpc["id"], "10.1.1.0/24")

    accepted = create(member, place)
    operation = wait_operation(member, accepted["operation"]["id"])
    assert operation["state"] == "failed"
    instance = member.ok(member.get(f"/instances/{accepted['resource']['id']}"))
    assert instance["state"] == "error"
    assert "simulated failure of create" in instance["error_reason"]
    assert instance["port_id"] is None
    assert held(admin, db, team["id"]) == NOTHING
    hosts = admin.ok(admin.get("/hosts", params={"cluster_id": place["cluster"]["id"]}))
    assert sum(h["used_vcpus"] for h in hosts["items"]) == 0
    # an instance in error can be deleted
    deleted = member.ok(member.delete(f"/instances/{instance['id']}"), 202)
    assert wait_operation(member, deleted["operation"]["id"])["state"] == "succeeded"


def test_quota_refuses_at_the_request_and_no_host_fails_the_workflow(
    admin: Api, db: Database, member: Api, team: dict, place: dict
) -> None:
    set_limit(admin, team["id"], "vcpus", guarantee=4, cap=4)
    refused = member.post(
        "/instances",
        {
            "name": "big",
            "flavor_id": place["flavor"]["id"],
            "image_id": place["image"]["id"],
            "count": 3,
        },
    )
    assert refused.status_code == 409 and refused.json()["code"] == "quota-exceeded"
    assert member.ok(member.get("/instances"))["items"] == []

    huge = admin.ok(
        admin.post("/flavors", {"name": "x.huge", "vcpus": 4, "memory_mb": 512 * 1024}), 201
    )
    accepted = member.ok(
        member.post(
            "/instances",
            {"name": "huge", "flavor_id": huge["id"], "image_id": place["image"]["id"]},
        ),
        202,
    )
    assert wait_operation(member, accepted["operation"]["id"])["state"] == "failed"
    instance = member.ok(member.get(f"/instances/{accepted['resource']['id']}"))
    assert instance["state"] == "error" and instance["error_reason"].startswith("placement:")
    assert held(admin, db, team["id"]) == NOTHING


def test_bad_requests_are_4xx(member: Api, place: dict) -> None:
    base = {"name": "x", "flavor_id": place["flavor"]["id"], "image_id": place["image"]["id"]}
    for body, status in (
        ({**base, "flavor_id": "flv-missing"}, 404),
        ({**base, "image_id": "img-missing"}, 404),
        ({**base, "zone_id": "zone-missing"}, 404),
        ({**base, "count": 0}, 422),
        ({**base, "vxnet_id": "vxnet-missing"}, 404),
        ({k: v for k, v in base.items() if k != "image_id"}, 422),
    ):
        assert member.post("/instances", body).status_code == status, body
    missing = member.post("/instances/i-missing/actions", {"action": "start"})
    assert missing.status_code == 404
    assert member.post("/instances/i-missing/actions", {"action": "fly"}).status_code == 422


def test_another_tenant_sees_nothing(admin: Api, root_id: str, member: Api, place: dict) -> None:
    instance = created(member, place)
    other = admin.as_user(admin.tenant(root_id, "Other")["id"], "eve", ["member"])
    assert other.get(f"/instances/{instance['id']}").status_code == 404
    assert other.post(f"/instances/{instance['id']}/actions", {"action": "stop"}).status_code == 404
    assert other.delete(f"/instances/{instance['id']}").status_code == 404
    assert other.get(f"/instances/{instance['id']}/console").status_code == 404
    assert other.ok(other.get("/instances"))["items"] == []
    assert other.ok(other.get("/usage-events"))["items"] == []


def test_sync_marks_out_of_band_changes_and_lists_foreign_machines(
    admin: Api, db: Database, member: Api, team: dict, place: dict
) -> None:
    first, second = created(member, place, "a"), created(member, place, "b")
    with db.session() as session:
        session.execute(
            update(SimulatedMachine)
            .where(SimulatedMachine.instance_id == first["id"])
            .values(power="off")
        )
        machine = session.scalars(
            select(SimulatedMachine).where(SimulatedMachine.instance_id == second["id"])
        ).one()
        session.delete(machine)
        session.add(
            SimulatedMachine(
                external_id="legacy-vm-1",
                realm=machine.realm,
                instance_id=None,
                name="legacy",
                host=machine.host,
                vcpus=1,
                memory_mb=1024,
            )
        )
    provider_id = place["provider"]["id"]
    synced = admin.ok(admin.post(f"/providers/{provider_id}/actions", {"action": "sync"}), 202)
    assert wait_operation(admin, synced["operation"]["id"])["state"] == "succeeded"

    assert member.ok(member.get(f"/instances/{first['id']}"))["state"] == "stopped"
    lost = member.ok(member.get(f"/instances/{second['id']}"))
    assert lost["state"] == "error" and "deleted outside Yunguan" in lost["error_reason"]
    provider = admin.ok(admin.get(f"/providers/{provider_id}"))
    assert provider["synced_at"] is not None and provider["sync_error"] == ""
    assert [m["external_id"] for m in provider["importable"]] == ["legacy-vm-1"]

    body = {
        "external_id": "legacy-vm-1",
        "tenant_id": team["id"],
        "flavor_id": place["flavor"]["id"],
        "image_id": place["image"]["id"],
    }
    imported = admin.ok(
        admin.post(f"/providers/{provider_id}/actions", {"action": "import", "machine": body}),
        201,
    )
    assert imported["imported"] and imported["state"] == "running"
    assert imported["name"] == "legacy" and imported["host_id"] is not None
    assert admin.ok(admin.get(f"/providers/{provider_id}"))["importable"] == []
    again = admin.post(f"/providers/{provider_id}/actions", {"action": "import", "machine": body})
    assert again.status_code == 404


@pytest.mark.parametrize("point", ["provision.after-claim", "provision.after-network"])
def test_a_failure_after_any_step_gives_back_what_was_taken(
    admin: Api, db: Database, member: Api, team: dict, place: dict, vxnet: dict, monkeypatch, point
) -> None:
    from yunguan.core.config import get_settings

    monkeypatch.setenv("YUNGUAN_FAULT_POINTS", f"{point}=error")
    get_settings.cache_clear()
    try:
        accepted = create(member, place)
        operation = wait_operation(member, accepted["operation"]["id"])
    finally:
        monkeypatch.delenv("YUNGUAN_FAULT_POINTS")
        get_settings.cache_clear()
    assert operation["state"] == "failed" and "InjectedFault" in operation["error"]
    instance = member.ok(member.get(f"/instances/{accepted['resource']['id']}"))
    assert instance["state"] == "error" and point in instance["error_reason"]
    assert held(admin, db, team["id"]) == NOTHING


def test_only_the_platform_says_where_an_image_lives(
    admin: Api, member: Api, team: dict, place: dict
) -> None:
    zone_id = place["zone"]["id"]
    for body in (
        {"name": "mine", "locations": {zone_id: "/etc/shadow"}, "format": "raw"},
        {"name": "mine", "properties": {"kernel": "/root/vmlinuz"}},
        {"name": "mine", "visibility": "public"},
    ):
        assert member.post("/images", body).status_code == 403, body
    own = member.ok(member.post("/images", {"name": "mine"}), 201)
    refused = member.patch(f"/images/{own['id']}", {"locations": {zone_id: "/x"}})
    assert refused.status_code == 403
    shared = admin.ok(
        admin.post("/images", {"name": "team", "tenant_id": team["id"], "visibility": "public"}),
        201,
    )
    assert member.patch(f"/images/{shared['id']}", {"visibility": "private"}).status_code == 403
    # a tenant that owns an image is not empty
    deleting = admin.delete(f"/tenants/{team['id']}")
    assert deleting.status_code == 409 and "image" in deleting.json()["detail"]


def test_an_instance_keeps_its_port(member: Api, place: dict, vxnet: dict) -> None:
    instance = created(member, place)
    refused = member.delete(f"/ports/{instance['port_id']}")
    assert refused.status_code == 409 and refused.json()["code"] == "in-use"


def test_every_instance_a_sync_corrects_is_metered(
    admin: Api, db: Database, member: Api, place: dict
) -> None:
    """Two machines found off in one sync, at one instant: each instance's running interval
    is closed (each correction is its own usage event)."""
    first, second = created(member, place, "a"), created(member, place, "b")
    with db.session() as session:
        session.execute(update(SimulatedMachine).values(power="off"))
    Clock().advance(seconds=1)  # both corrections carry the same time
    provider_id = place["provider"]["id"]
    synced = admin.ok(admin.post(f"/providers/{provider_id}/actions", {"action": "sync"}), 202)
    assert wait_operation(admin, synced["operation"]["id"])["state"] == "succeeded"
    for instance in (first, second):
        usage = member.ok(member.get("/usage-events", params={"resource_id": instance["id"]}))
        assert [e["action"] for e in usage["items"]][-1] == "stop", usage


def test_sync_leaves_instances_changed_since_the_collect_began(
    admin: Api, db: Database, member: Api, place: dict
) -> None:
    from datetime import timedelta

    from yunguan.core.clock import now
    from yunguan.providers import service as providers
    from yunguan.providers.base import Collected

    instance = created(member, place)
    with db.session() as session:  # a collect that began before the instance was made
        providers.apply_collected(
            session, place["provider"]["id"], Collected([], []), now() - timedelta(minutes=5)
        )
    assert member.ok(member.get(f"/instances/{instance['id']}"))["state"] == "running"
    with db.session() as session:  # one that began after: the machine is really gone
        providers.apply_collected(session, place["provider"]["id"], Collected([], []), now())
    gone = member.ok(member.get(f"/instances/{instance['id']}"))
    assert gone["state"] == "error" and gone["power_state"] == "unknown"
    usage = member.ok(member.get("/usage-events", params={"resource_id": instance["id"]}))
    assert [u["action"] for u in usage["items"]] == ["start", "stop"]  # billing stops
    hosts = admin.ok(admin.get("/hosts", params={"cluster_id": place["cluster"]["id"]}))
    assert {(h["state"], h["power_state"]) for h in hosts["items"]} == {("disabled", "unknown")}
    synced = admin.post(f"/providers/{place['provider']['id']}/actions", {"action": "sync"})
    wait_operation(admin, admin.ok(synced, 202)["operation"]["id"])
    hosts = admin.ok(admin.get("/hosts", params={"cluster_id": place["cluster"]["id"]}))
    assert {(h["state"], h["power_state"]) for h in hosts["items"]} == {("enabled", "on")}


def test_a_simulator_keeps_its_realm(admin: Api, place: dict) -> None:
    provider = place["provider"]
    changed = admin.ok(
        admin.patch(f"/providers/{provider['id']}", {"config": {"hosts": 4, "realm": "other"}})
    )
    assert changed["config"]["realm"] == provider["config"]["realm"]


def change(api: Api, instance_id: str, action: str, **fields) -> dict:
    body = {"action": action, **fields}
    accepted = api.ok(api.post(f"/instances/{instance_id}/actions", body), 202)
    assert accepted["resource"]["state"] in ("resizing", "migrating")
    return wait_operation(api, accepted["operation"]["id"])


def test_resize_a_stopped_instance(
    admin: Api, db: Database, member: Api, team: dict, place: dict
) -> None:
    instance = created(member, place)
    bigger = admin.ok(
        admin.post("/flavors", {"name": "s4", "vcpus": 4, "memory_mb": 8192, "disk_gb": 40}), 201
    )
    running = member.post(
        f"/instances/{instance['id']}/actions", {"action": "resize", "flavor_id": bigger["id"]}
    )
    assert running.status_code == 409 and running.json()["code"] == "invalid-state"
    act(member, instance["id"], "stop")
    assert change(member, instance["id"], "resize", flavor_id=bigger["id"])["state"] == "succeeded"
    resized = member.ok(member.get(f"/instances/{instance['id']}"))
    assert (resized["state"], resized["flavor_id"], resized["vcpus"]) == (
        "stopped",
        bigger["id"],
        4,
    )
    assert resized["disk_gb"] == 40
    host = admin.ok(admin.get(f"/hosts/{resized['host_id']}"))
    assert (host["used_vcpus"], host["used_memory_mb"]) == (4, 8192)
    listed = admin.ok(admin.get("/quotas/reservations", params={"tenant_id": team["id"]}))
    (held_now,) = instance_reservations(listed["items"])
    assert held_now["amounts"] == {"instances": 1, "vcpus": 4, "memory_mb": 8192}
    with db.session(write=False) as session:
        machine = session.scalars(
            select(SimulatedMachine).where(SimulatedMachine.instance_id == instance["id"])
        ).one()
    assert (machine.vcpus, machine.memory_mb) == (4, 8192)
    set_limit(admin, team["id"], "vcpus", guarantee=4, cap=4)
    huge = admin.ok(admin.post("/flavors", {"name": "s8", "vcpus": 8, "memory_mb": 8192}), 201)
    refused = member.post(
        f"/instances/{instance['id']}/actions", {"action": "resize", "flavor_id": huge["id"]}
    )
    assert refused.status_code == 409 and refused.json()["code"] == "quota-exceeded"
    assert member.ok(member.get(f"/instances/{instance['id']}"))["state"] == "stopped"


def test_migrate_and_live_migrate_move_the_instance_and_its_port(
    admin: Api, member: Api, place: dict, vxnet: dict
) -> None:
    instance = created(member, place)
    first_host = instance["host_id"]
    assert change(member, instance["id"], "live-migrate")["state"] == "succeeded"
    moved = member.ok(member.get(f"/instances/{instance['id']}"))
    assert moved["state"] == "running" and moved["host_id"] != first_host
    assert moved["ip"] == instance["ip"] and moved["mac"] == instance["mac"]
    port = member.ok(member.get(f"/ports/{moved['port_id']}"))
    assert port["host_id"] == moved["host_id"]
    hosts = {h["id"]: h for h in admin.ok(admin.get("/hosts", params={"limit": 100}))["items"]}
    assert hosts[first_host]["used_vcpus"] == 0 and hosts[moved["host_id"]]["used_vcpus"] == 2
    cold = member.post(f"/instances/{instance['id']}/actions", {"action": "migrate"})
    assert cold.status_code == 409  # a cold migration needs it stopped
    act(member, instance["id"], "stop")
    assert change(member, instance["id"], "migrate")["state"] == "succeeded"
    again = member.ok(member.get(f"/instances/{instance['id']}"))
    assert again["state"] == "stopped" and again["host_id"] != moved["host_id"]
    claims = admin.ok(admin.get("/placement/claims", params={"tenant_id": again["tenant_id"]}))
    assert [c["host_id"] for c in claims["items"]] == [again["host_id"]]
