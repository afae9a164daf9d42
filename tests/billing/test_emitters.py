"""Lifecycle code meters what it changes: volumes and snapshots by their size, EIPs by
whether they are bound, seen through the usage API as a tenant sees it."""

from decimal import Decimal

import pytest

from tests.support import network
from tests.support.api import Api
from tests.support.compute import created, simulated_zone
from tests.support.waiting import wait_operation

pytestmark = pytest.mark.usefixtures("workflows")


@pytest.fixture
def place(admin: Api) -> dict:
    return simulated_zone(admin)


@pytest.fixture
def member(admin: Api, root_id: str, place: dict) -> Api:
    """A tenant's member with a vxnet for its instances."""
    team = admin.tenant(root_id, "Team")
    member = admin.as_user(team["id"], "dev", ["member"])
    vpc = network.vpc(member, place["zone"]["id"], "10.1.0.0/16")
    network.vxnet(member, vpc["id"], "10.1.1.0/24")
    return member


def settled(api: Api, path: str, answer: dict) -> dict:
    operation = wait_operation(api, answer["operation"]["id"])
    assert operation["state"] == "succeeded", operation
    return api.ok(api.get(f"{path}/{answer['resource']['id']}"))


CLOSING_FIRST = {"stop": 0, "start": 1, "end": 2}


def events(api: Api, resource_id: str) -> list[tuple]:
    """The resource's events by time: action, meter, quantity, price key. The API lists an
    instant's events in no set order (the intervals show the order they were recorded in)."""
    found = api.ok(api.get("/usage-events", params={"resource_id": resource_id}))["items"]
    found.sort(key=lambda e: (e["occurred_at"], CLOSING_FIRST[e["action"]]))
    return [(e["action"], e["meter"], Decimal(e["quantity"]), e["price_key"]) for e in found]


def intervals(api: Api, resource_id: str) -> list[tuple]:
    """The resource's intervals: meter, quantity, price key, and whether it is closed."""
    found = api.ok(api.get("/usage-intervals", params={"resource_id": resource_id}))
    return [
        (i["meter"], Decimal(i["quantity"]), i["price_key"], i["ended_at"] is not None)
        for i in found
    ]


def test_a_volume_is_metered_by_its_size_and_a_snapshot_by_its_own(member: Api) -> None:
    body = {"name": "data", "size_gb": 10}
    volume = settled(member, "/volumes", member.ok(member.post("/volumes", body), 202))
    assert events(member, volume["id"]) == [("start", "volume.gb", 10, "")]
    assert intervals(member, volume["id"]) == [("volume.gb", 10, "", False)]

    path = f"/volumes/{volume['id']}/actions"
    extend = member.ok(member.post(path, {"action": "extend", "size_gb": 20}), 202)
    settled(member, "/volumes", extend)
    assert events(member, volume["id"])[1:] == [
        ("stop", "volume.gb", 10, ""),
        ("start", "volume.gb", 20, ""),
    ]
    grown = member.ok(member.get("/usage-intervals", params={"resource_id": volume["id"]}))
    assert grown[0]["ended_at"] == grown[1]["started_at"]  # no gap, no overlap
    assert intervals(member, volume["id"]) == [
        ("volume.gb", 10, "", True),
        ("volume.gb", 20, "", False),
    ]

    body = {"name": "s1", "volume_id": volume["id"]}
    snapshot = settled(member, "/snapshots", member.ok(member.post("/snapshots", body), 202))
    assert intervals(member, snapshot["id"]) == [("snapshot.gb", 20, "", False)]
    settled(member, "/snapshots", member.ok(member.delete(f"/snapshots/{snapshot['id']}"), 202))
    assert [e[0] for e in events(member, snapshot["id"])] == ["start", "end"]
    assert intervals(member, snapshot["id"]) == [("snapshot.gb", 20, "", True)]

    settled(member, "/volumes", member.ok(member.delete(f"/volumes/{volume['id']}"), 202))
    assert [e[0] for e in events(member, volume["id"])] == ["start", "stop", "start", "end"]
    assert intervals(member, volume["id"]) == [
        ("volume.gb", 10, "", True),
        ("volume.gb", 20, "", True),
    ]


def test_an_eip_is_metered_idle_while_unbound_and_bound_while_bound(
    admin: Api, member: Api, place: dict
) -> None:
    network.public_pool(admin, place["zone"]["id"])
    instance = created(member, place)
    eip = member.ok(member.post("/eips", {"bandwidth_mbps": 20}), 201)
    assert intervals(member, eip["id"]) == [("eip.allocated", 1, "idle", False)]

    actions = f"/eips/{eip['id']}/actions"
    member.ok(member.post(actions, {"action": "bind", "port_id": instance["port_id"]}))
    assert intervals(member, eip["id"]) == [
        ("eip.allocated", 1, "idle", True),
        ("eip.allocated", 1, "bound", False),
    ]
    member.ok(member.post(actions, {"action": "unbind"}))
    member.ok(member.post(actions, {"action": "unbind"}))  # unbound already: nothing changes
    assert member.delete(f"/eips/{eip['id']}").status_code == 204

    assert events(member, eip["id"]) == [
        ("start", "eip.allocated", 1, "idle"),
        ("stop", "eip.allocated", 1, "idle"),
        ("start", "eip.allocated", 1, "bound"),
        ("stop", "eip.allocated", 1, "bound"),
        ("start", "eip.allocated", 1, "idle"),
        ("end", "eip.allocated", 1, "idle"),
    ]
    found = member.ok(member.get("/usage-events", params={"resource_id": eip["id"]}))["items"]
    assert {e["source"] for e in found} == {"network"}
    assert all(e["attributes"] == {"bandwidth_mbps": 20} for e in found)
    assert intervals(member, eip["id"]) == [
        ("eip.allocated", 1, "idle", True),
        ("eip.allocated", 1, "bound", True),
        ("eip.allocated", 1, "idle", True),
    ]


def test_an_eip_whose_instance_is_deleted_is_priced_idle(
    admin: Api, member: Api, place: dict
) -> None:
    network.public_pool(admin, place["zone"]["id"])
    instance = created(member, place)
    eip = member.ok(member.post("/eips", {}), 201)
    bind = {"action": "bind", "port_id": instance["port_id"]}
    member.ok(member.post(f"/eips/{eip['id']}/actions", bind))
    deleted = member.ok(member.delete(f"/instances/{instance['id']}"), 202)
    assert wait_operation(member, deleted["operation"]["id"])["state"] == "succeeded"
    assert member.ok(member.get(f"/eips/{eip['id']}"))["port_id"] is None
    assert intervals(member, eip["id"]) == [
        ("eip.allocated", 1, "idle", True),
        ("eip.allocated", 1, "bound", True),
        ("eip.allocated", 1, "idle", False),  # the address is still the tenant's
    ]
    assert [e[0] for e in events(member, instance["id"])] == ["start", "end"]
