"""Service instances and their subscriptions on the injectable clock: reminders at T-7,
T-3 and T-1 days, the stop at expiry, the release after the retention period, renewal,
auto-renewal, unsubscribing, day-2 power actions and a resize through a change order."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.orders.conftest import Clock, fulfilled, order
from tests.support.api import Api
from tests.support.waiting import wait_operation
from yunguan.core.clock import add_months
from yunguan.workflows.orders import service_lifecycle

pytestmark = pytest.mark.usefixtures("workflows")


def tick() -> None:
    """One run of the periodic job (the schedule runs it every minute)."""
    service_lifecycle(datetime.now(UTC), None)


def service_of(api: Api, placed: dict) -> dict:
    done = fulfilled(api, placed)
    return api.ok(api.get(f"/service-instances/{done['service_instance_id']}"))


def instance_states(api: Api, service: dict, *wanted: str, timeout: float = 30) -> list[str]:
    """The states of the service's instances once each is one of ``wanted``."""
    deadline = time.monotonic() + timeout
    while True:
        states = [api.ok(api.get(f"/instances/{r['id']}"))["state"] for r in service["resources"]]
        if all(s in wanted for s in states) or time.monotonic() > deadline:
            return states
        time.sleep(0.1)


def inbox(api: Api) -> list[str]:
    return [n["subject"] for n in api.ok(api.get("/notifications"))["items"]]


def test_reminders_then_stop_at_expiry_then_release_after_retention(
    member: Api, item: dict, frozen: Clock
) -> None:
    service = service_of(member, order(member, item, term_months=1))
    expires = datetime.fromisoformat(service["subscription"]["expires_at"])
    reminders = []
    for days in (7, 3, 1):
        frozen.now = expires - timedelta(days=days, minutes=-1)
        tick()
        tick()  # once per threshold
        member = member.login("dev")  # tokens live on the same clock
        reminders = [s for s in inbox(member) if "expires in" in s]
        assert reminders[0] == f"“web” expires in {days} day(s)"
    assert len(reminders) == 3

    frozen.now = expires + timedelta(minutes=1)
    tick()
    member = member.login("dev")
    expired = member.ok(member.get(f"/service-instances/{service['id']}"))
    assert expired["state"] == "expired" and expired["subscription"]["state"] == "expired"
    assert datetime.fromisoformat(expired["release_at"]) == expires + timedelta(days=7)
    assert instance_states(member, service, "stopped") == ["stopped"]
    assert "“web” expired and is stopped" in inbox(member)

    frozen.now = expires + timedelta(days=7, minutes=1)
    tick()
    member = member.login("dev")
    assert instance_states(member, service, "deleted") == ["deleted"]
    tick()
    released = member.ok(member.get(f"/service-instances/{service['id']}"))
    assert released["state"] == "released" and released["released_at"] is not None
    assert released["subscription"]["state"] == "ended"


def test_renewal_extends_and_brings_an_expired_service_back(
    member: Api, item: dict, frozen: Clock
) -> None:
    service = service_of(member, order(member, item, term_months=1))
    expires = datetime.fromisoformat(service["subscription"]["expires_at"])
    path = f"/service-instances/{service['id']}/actions"
    early = member.ok(member.post(path, {"action": "renew", "months": 2}))
    extended = datetime.fromisoformat(early["subscription"]["expires_at"])
    assert extended == add_months(expires, 2)

    frozen.now = extended + timedelta(minutes=1)
    tick()
    member = member.login("dev")
    assert instance_states(member, service, "stopped") == ["stopped"]
    back = member.ok(member.post(path, {"action": "renew", "months": 1}))
    assert back["state"] == "active" and back["release_at"] is None
    assert datetime.fromisoformat(back["subscription"]["expires_at"]) > frozen.now
    assert instance_states(member, service, "running") == ["running"]
    assert "“web” renewed" in inbox(member)


def test_auto_renewal_keeps_the_service_running(member: Api, item: dict, frozen: Clock) -> None:
    service = service_of(member, order(member, item, term_months=1, auto_renew=True))
    expires = datetime.fromisoformat(service["subscription"]["expires_at"])
    frozen.now = expires - timedelta(days=3)
    tick()
    member = member.login("dev")
    assert "“web” renews automatically in 3 day(s)" in inbox(member)
    frozen.now = expires + timedelta(minutes=1)
    tick()
    member = member.login("dev")
    renewed = member.ok(member.get(f"/service-instances/{service['id']}"))
    assert renewed["state"] == "active"
    assert datetime.fromisoformat(renewed["subscription"]["expires_at"]) > expires + timedelta(27)
    assert instance_states(member, service, "running") == ["running"]


def test_unsubscribing_releases_at_once_and_ends_the_subscription(member: Api, item: dict) -> None:
    service = service_of(member, order(member, item, term_months=0))  # pay-as-you-go
    assert service["subscription"]["expires_at"] is None
    path = f"/service-instances/{service['id']}/actions"
    renew = member.post(path, {"action": "renew", "months": 1})
    assert renew.status_code == 409 and renew.json()["code"] == "no-term"
    gone = member.ok(member.post(path, {"action": "unsubscribe"}))
    assert gone["state"] == "releasing" and gone["subscription"]["state"] == "ended"
    assert instance_states(member, service, "deleted") == ["deleted"]
    tick()
    assert member.ok(member.get(f"/service-instances/{service['id']}"))["state"] == "released"
    again = member.post(path, {"action": "unsubscribe"})
    assert again.status_code == 409 and again.json()["code"] == "invalid-state"


def test_day_two_power_and_a_resize_through_a_change_order(
    admin: Api, member: Api, item: dict, team: dict, lead: Api
) -> None:
    service = service_of(member, order(member, item))
    path = f"/service-instances/{service['id']}/actions"
    member.ok(member.post(path, {"action": "stop"}))
    assert instance_states(member, service, "stopped") == ["stopped"]
    member.ok(member.post(path, {"action": "start"}))
    assert instance_states(member, service, "running") == ["running"]

    bigger = admin.ok(
        admin.post("/flavors", {"name": "s4.large", "vcpus": 4, "memory_mb": 4096, "disk_gb": 20}),
        201,
    )
    policy = {
        "tenant_id": team["id"],
        "name": "lead",
        "stages": [{"name": "lead", "approvers": [lead.me["id"]]}],
    }
    admin.ok(admin.post("/approval-policies", policy), 201)
    change = member.ok(
        member.post(
            f"/service-instances/{service['id']}/change-orders", {"flavor_id": bigger["id"]}
        ),
        201,
    )
    assert change["kind"] == "change" and change["state"] == "pending-approval"
    approved = lead.ok(lead.post(f"/orders/{change['id']}/actions", {"action": "approve"}))
    done = fulfilled(member, approved)
    assert done["state"] == "completed", done
    instance = member.ok(member.get(f"/instances/{service['resources'][0]['id']}"))
    assert (instance["state"], instance["flavor_id"], instance["vcpus"]) == (
        "running",
        bigger["id"],
        4,
    )


def test_change_orders_are_checked_and_do_nothing_to_a_service_gone_meanwhile(
    admin: Api, member: Api, item: dict, place: dict, team: dict, lead: Api, frozen: Clock
) -> None:
    service = service_of(member, order(member, item, term_months=1))
    changes = f"/service-instances/{service['id']}/change-orders"
    same = member.post(changes, {"flavor_id": place["flavor"]["id"]})
    assert same.status_code == 409 and same.json()["code"] == "invalid-flavor"
    bigger = admin.ok(
        admin.post("/flavors", {"name": "s4.large", "vcpus": 4, "memory_mb": 4096, "disk_gb": 20}),
        201,
    )
    stages = [{"name": "lead", "approvers": [lead.me["id"]]}]
    admin.ok(
        admin.post("/approval-policies", {"tenant_id": team["id"], "name": "t", "stages": stages}),
        201,
    )
    change = member.ok(member.post(changes, {"flavor_id": bigger["id"]}), 201)
    again = member.post(changes, {"flavor_id": bigger["id"]})
    assert again.status_code == 409 and again.json()["code"] == "change-pending"

    frozen.now = datetime.fromisoformat(service["subscription"]["expires_at"]) + timedelta(
        minutes=1
    )
    tick()  # expired and stopped before the change is approved
    member, lead = member.login("dev"), lead.login("lead")
    assert instance_states(member, service, "stopped") == ["stopped"]
    approved = lead.ok(lead.post(f"/orders/{change['id']}/actions", {"action": "approve"}))
    operation = wait_operation(member, approved["operation_id"])
    assert operation["state"] == "failed" and "the service is expired" in operation["error"]
    assert member.ok(member.get(f"/orders/{change['id']}"))["state"] == "failed"
    instance = member.ok(member.get(f"/instances/{service['resources'][0]['id']}"))
    assert (instance["state"], instance["flavor_id"]) == ("stopped", place["flavor"]["id"])


def test_a_release_asked_while_an_instance_is_busy_finishes_at_a_later_tick(
    member: Api, item: dict
) -> None:
    service = service_of(member, order(member, item, term_months=0))
    path = f"/service-instances/{service['id']}/actions"
    member.ok(member.post(path, {"action": "stop"}))
    member.ok(member.post(path, {"action": "unsubscribe"}))  # the instance may still be stopping
    deadline = time.monotonic() + 30
    while member.ok(member.get(f"/service-instances/{service['id']}"))["state"] != "released":
        assert time.monotonic() < deadline, "the service was never released"
        tick()
        time.sleep(0.2)
    assert instance_states(member, service, "deleted") == ["deleted"]


def test_finishing_an_order_twice_changes_nothing(member: Api, item: dict, db) -> None:
    from yunguan.workflows.orders import _order_finish

    done = fulfilled(member, order(member, item))
    assert _order_finish(done["operation_id"], done["id"], "") == []
    again = member.ok(member.get(f"/orders/{done['id']}"))
    assert [e["kind"] for e in again["events"]] == [e["kind"] for e in done["events"]]
    subscriptions = member.ok(member.get("/subscriptions"))["items"]
    assert len(subscriptions) == 1
