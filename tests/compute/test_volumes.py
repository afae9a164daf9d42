"""Volumes and snapshots end to end through the API, on the simulator provider."""

import pytest
from sqlalchemy import select

from tests.support.api import Api
from tests.support.compute import created
from tests.support.quotas import set_limit
from tests.support.waiting import wait_operation
from yunguan.core.db import Database
from yunguan.providers.models import SimulatedDisk

pytestmark = pytest.mark.usefixtures("workflows")


def settled(api: Api, path: str, answer: dict, state: str = "succeeded") -> dict:
    operation = wait_operation(api, answer["operation"]["id"])
    assert operation["state"] == state, operation
    return api.ok(api.get(f"{path}/{answer['resource']['id']}"))


def used(admin: Api, tenant_id: str, resource: str) -> int:
    rows = admin.ok(admin.get(f"/quotas/{tenant_id}"))
    return next((r["used"] for r in rows if r["resource"] == resource), 0)


def test_volume_lifecycle_with_an_instance(
    admin: Api, db: Database, member: Api, team: dict, place: dict, vxnet: dict
) -> None:
    instance = created(member, place)
    body = {"name": "data", "size_gb": 10, "instance_id": instance["id"]}
    volume = settled(member, "/volumes", member.ok(member.post("/volumes", body), 202))
    assert (volume["state"], volume["instance_id"], volume["device"]) == (
        "in-use",
        instance["id"],
        "vdb",
    )
    assert used(admin, team["id"], "volume_gb") == 10 and used(admin, team["id"], "volumes") == 1

    extend = {"action": "extend", "size_gb": 20}
    grown = settled(
        member, "/volumes", member.ok(member.post(f"/volumes/{volume['id']}/actions", extend), 202)
    )
    assert grown["size_gb"] == 20 and grown["state"] == "in-use"
    assert used(admin, team["id"], "volume_gb") == 20
    shrink = member.post(f"/volumes/{volume['id']}/actions", {"action": "extend", "size_gb": 5})
    assert shrink.status_code == 400

    snapshot = settled(
        member,
        "/snapshots",
        member.ok(member.post("/snapshots", {"name": "s1", "volume_id": volume["id"]}), 202),
    )
    assert snapshot["state"] == "available" and snapshot["size_gb"] == 20
    assert used(admin, team["id"], "snapshots") == 1
    with db.session(write=False) as session:
        kinds = sorted(session.scalars(select(SimulatedDisk.kind)))
    assert kinds == ["snapshot", "volume"]

    busy = member.delete(f"/volumes/{volume['id']}")
    assert busy.status_code == 409 and busy.json()["code"] == "invalid-state"
    # deleting the instance detaches the volume, which stays
    gone = member.ok(member.delete(f"/instances/{instance['id']}"), 202)
    assert wait_operation(member, gone["operation"]["id"])["state"] == "succeeded"
    freed = member.ok(member.get(f"/volumes/{volume['id']}"))
    assert (freed["state"], freed["instance_id"]) == ("available", None)

    settled(member, "/snapshots", member.ok(member.delete(f"/snapshots/{snapshot['id']}"), 202))
    deleted = settled(member, "/volumes", member.ok(member.delete(f"/volumes/{volume['id']}"), 202))
    assert deleted["state"] == "deleted"
    assert [used(admin, team["id"], r) for r in ("volumes", "volume_gb", "snapshots")] == [0, 0, 0]
    with db.session(write=False) as session:
        assert session.scalars(select(SimulatedDisk)).all() == []
    assert member.ok(member.get("/volumes"))["items"] == []


def test_attach_and_detach_a_volume_made_alone(
    db: Database, member: Api, place: dict, vxnet: dict
) -> None:
    instance = created(member, place)
    body = {"name": "spare", "size_gb": 1, "zone_id": place["zone"]["id"]}
    volume = settled(member, "/volumes", member.ok(member.post("/volumes", body), 202))
    assert volume["state"] == "available" and volume["provider_id"] == place["provider"]["id"]
    attach = {"action": "attach", "instance_id": instance["id"]}
    path = f"/volumes/{volume['id']}/actions"
    attached = settled(member, "/volumes", member.ok(member.post(path, attach), 202))
    assert attached["state"] == "in-use" and attached["device"] == "vdb"
    assert member.post(path, attach).status_code == 409  # attached already
    detached = settled(member, "/volumes", member.ok(member.post(path, {"action": "detach"}), 202))
    assert detached["state"] == "available" and detached["device"] is None
    with db.session(write=False) as session:  # and at the provider too
        assert session.scalars(select(SimulatedDisk.attached_to)).all() == [None]


def test_volume_quota_and_bad_input(
    admin: Api, root_id: str, member: Api, team: dict, place: dict
) -> None:
    set_limit(admin, team["id"], "volume_gb", guarantee=10, cap=10)
    big = member.post("/volumes", {"name": "big", "size_gb": 11, "zone_id": place["zone"]["id"]})
    assert big.status_code == 409 and big.json()["code"] == "quota-exceeded"
    assert member.ok(member.get("/volumes"))["items"] == []
    for body, status in (
        ({"name": "x", "size_gb": 0}, 422),
        ({"name": "x", "size_gb": 1, "zone_id": "zone-missing"}, 404),
        ({"name": "x", "size_gb": 1, "instance_id": "i-missing"}, 404),
    ):
        assert member.post("/volumes", body).status_code == status, body
    volume = settled(
        member,
        "/volumes",
        member.ok(
            member.post("/volumes", {"name": "v", "size_gb": 2, "zone_id": place["zone"]["id"]}),
            202,
        ),
    )
    other = admin.as_user(admin.tenant(root_id, "Other")["id"], "eve", ["member"])
    assert other.get(f"/volumes/{volume['id']}").status_code == 404
    assert other.post("/snapshots", {"name": "s", "volume_id": volume["id"]}).status_code == 404
    attach = {"action": "attach"}
    assert member.post(f"/volumes/{volume['id']}/actions", attach).status_code == 400
