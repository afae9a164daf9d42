"""Usage events in: each (source, event_id) counts once, a differing copy is quarantined,
and a resource's intervals follow only the events that change something."""

from tests.billing.conftest import event, send
from tests.support.api import Api


def intervals(admin: Api, resource_id: str) -> list[tuple[str, str | None]]:
    found = admin.ok(admin.get("/usage-intervals", params={"resource_id": resource_id}))
    return [(i["started_at"][:19], i["ended_at"] and i["ended_at"][:19]) for i in found]


def test_the_same_event_twice_counts_once_and_a_differing_copy_is_quarantined(
    biller: Api, root_id: str
):
    tenant = biller.tenant(root_id, "Acme")
    start = event(tenant["id"], "i-vm1", "start", "2027-03-01T00:00:00Z", price_key="fl-a")
    assert send(biller, [start, dict(start)]) == {
        "received": 2,
        "inserted": 1,
        "duplicates": 1,
        "quarantined": 0,
    }
    assert send(biller, [start])["duplicates"] == 1
    later = {**start, "occurred_at": "2027-03-01T00:05:00Z"}
    other_flavor = {**start, "price_key": "fl-b"}
    counts = send(biller, [later, other_flavor, other_flavor])
    assert counts == {"received": 3, "inserted": 0, "duplicates": 1, "quarantined": 2}
    held = biller.ok(biller.get("/usage-quarantine"))["items"]
    assert sorted(h["payload"]["price_key"] for h in held) == ["fl-a", "fl-b"]
    assert (
        len(biller.ok(biller.get("/usage-events", params={"resource_id": "i-vm1"}))["items"]) == 1
    )
    assert intervals(biller, "i-vm1") == [("2027-03-01T00:00:00", None)]  # the first copy won


def test_only_events_that_change_the_state_shape_the_intervals(biller: Api, root_id: str):
    tenant = biller.tenant(root_id, "Acme")
    at = "2027-03-01T0{}:00:00Z".format
    vm = tenant["id"], "i-vm1"
    send(
        biller,
        [
            event(*vm, "stop", at(0)),  # nothing was open
            event(*vm, "start", at(1)),
            event(*vm, "start", at(2)),  # already open: nothing changes
            event(*vm, "stop", at(3)),
            event(*vm, "stop", at(4)),
            event(*vm, "start", at(5)),
            event(*vm, "end", at(6)),
            event(*vm, "start", at(7)),  # after the end nothing counts
        ],
    )
    assert intervals(biller, "i-vm1") == [
        ("2027-03-01T01:00:00", "2027-03-01T03:00:00"),
        ("2027-03-01T05:00:00", "2027-03-01T06:00:00"),
    ]


def test_events_arriving_out_of_order_give_the_same_intervals(biller: Api, root_id: str):
    tenant = biller.tenant(root_id, "Acme")
    vm = tenant["id"], "i-vm1"
    events = [
        event(*vm, "start", "2027-03-02T00:00:00Z"),
        event(*vm, "stop", "2027-03-02T02:00:00Z"),
        event(*vm, "start", "2027-03-03T00:00:00Z"),
    ]
    send(biller, [events[2]])
    send(biller, [events[1], events[0]])
    assert intervals(biller, "i-vm1") == [
        ("2027-03-02T00:00:00", "2027-03-02T02:00:00"),
        ("2027-03-03T00:00:00", None),
    ]


def test_bad_usage_is_a_422_and_records_nothing(biller: Api, root_id: str):
    tenant = biller.tenant(root_id, "Acme")
    good = event(tenant["id"], "i-vm1", "start", "2027-03-01T00:00:00Z")
    for bad in (
        {**good, "quantity": 1.5},  # a float is not exact
        {**good, "action": "pause"},
        {**good, "occurred_at": "2027-03-01T00:00:00"},  # no time zone
        {**good, "quantity": "-1"},
    ):
        answer = biller.post("/usage-events", {"events": [good, bad]})
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert biller.ok(biller.get("/usage-events", params={"resource_id": "i-vm1"}))["items"] == []


def test_only_usage_writers_send_usage_and_tenants_see_their_own(biller: Api, root_id: str, clock):
    acme, other = biller.tenant(root_id, "Acme"), biller.tenant(root_id, "Other")
    send(biller, [event(acme["id"], "i-vm1", "start", "2027-03-01T00:00:00Z")])
    boss = biller.as_user(acme["id"], "boss", ["tenant-admin"])
    stranger = biller.as_user(other["id"], "stranger", ["tenant-admin"])
    refused = boss.post(
        "/usage-events", {"events": [event(acme["id"], "i-vm2", "start", "2027-03-01T00:00:00Z")]}
    )
    assert refused.status_code == 403
    assert len(boss.ok(boss.get("/usage-events"))["items"]) == 1
    assert stranger.ok(stranger.get("/usage-events"))["items"] == []
    assert stranger.get("/usage-intervals", params={"resource_id": "i-vm1"}).status_code == 404
    assert boss.get("/usage-quarantine").status_code == 403
