"""Ordering from the catalog end to end: parameters checked, quota dry run, fulfilment
through the compute service on the simulator, the order's timeline."""

from decimal import Decimal

import pytest

from tests.orders.conftest import PRICE, fulfilled, order
from tests.support.api import Api
from tests.support.quotas import set_limit

pytestmark = pytest.mark.usefixtures("workflows")


def test_an_order_without_approval_is_fulfilled_into_a_running_service(
    member: Api, item: dict, place: dict, team: dict
) -> None:
    placed = order(member, item, values={"count": 2}, term_months=3)
    assert placed["state"] == "fulfilling" and placed["plan"] == []
    assert Decimal(placed["cost"]) == 3 * Decimal(PRICE)
    done = fulfilled(member, placed)
    assert done["state"] == "completed" and done["error"] == ""
    assert [e["kind"] for e in done["events"]] == ["placed", "fulfilling", "completed"]

    service = member.ok(member.get(f"/service-instances/{done['service_instance_id']}"))
    assert service["state"] == "active" and service["tenant_id"] == team["id"]
    assert len(service["resources"]) == 2
    for resource in service["resources"]:
        instance = member.ok(member.get(f"/instances/{resource['id']}"))
        assert instance["state"] == "running"
        assert instance["flavor_id"] == place["flavor"]["id"]
    subscription = service["subscription"]
    assert subscription["term_months"] == 3 and subscription["state"] == "active"
    assert Decimal(subscription["price_monthly"]) == Decimal(PRICE)
    assert subscription["expires_at"] > subscription["starts_at"]


def test_bad_values_are_refused_with_every_fault_listed(member: Api, item: dict) -> None:
    refused = member.post(
        "/orders",
        {"item_id": item["id"], "name": "web", "values": {"count": 9, "colour": "red"}},
    )
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["code"] == "invalid-parameters"
    assert {tuple(e["loc"]) for e in problem["errors"]} == {
        ("values", "count"),
        ("values", "colour"),
    }
    assert member.ok(member.get("/orders"))["items"] == []


def test_quota_is_checked_as_a_dry_run_when_ordering(
    admin: Api, member: Api, item: dict, team: dict
) -> None:
    set_limit(admin, team["id"], "vcpus", cap=4)
    refused = member.post("/orders", {"item_id": item["id"], "name": "big", "values": {"count": 3}})
    assert refused.status_code == 409 and refused.json()["code"] == "quota-exceeded"
    assert member.ok(member.get("/orders"))["items"] == []
    assert order(member, item, values={"count": 2})["state"] == "fulfilling"


def test_a_tenant_sees_only_its_own_orders_and_services(
    admin: Api, member: Api, item: dict, root_id: str
) -> None:
    placed = fulfilled(member, order(member, item))
    other = admin.as_user(admin.tenant(root_id, "Globex")["id"], "globex", ["tenant-admin"])
    assert other.ok(other.get("/orders"))["items"] == []
    assert other.get(f"/orders/{placed['id']}").status_code == 404
    service_id = placed["service_instance_id"]
    assert other.get(f"/service-instances/{service_id}").status_code == 404
    stop = other.post(f"/service-instances/{service_id}/actions", {"action": "unsubscribe"})
    assert stop.status_code == 404
    comment = other.post(f"/orders/{placed['id']}/actions", {"action": "comment", "comment": "hi"})
    assert comment.status_code == 404


def test_an_offline_or_hidden_item_cannot_be_ordered(
    admin: Api, member: Api, item: dict, root_id: str
) -> None:
    other = admin.tenant(root_id, "Elsewhere")
    admin.ok(admin.patch(f"/catalog-items/{item['id']}", {"tenant_ids": [other["id"]]}))
    hidden = member.post("/orders", {"item_id": item["id"], "name": "web"})
    assert hidden.status_code == 404
    assert admin.post("/orders", {"item_id": "ci-nothing", "name": "x"}).status_code == 404
