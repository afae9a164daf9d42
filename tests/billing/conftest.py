"""Billing through the API: price books, accounts, usage sent as a metering source would,
and the month rated as the hourly run does. The clock stands in May 2027, so March and
April 2027 are over (their grace periods too, unless a test says otherwise)."""

from datetime import UTC, datetime
from itertools import count
from typing import Any

import pytest

from tests.support.api import ADMIN_PASSWORD, Api
from tests.support.clock import Clock

NOW = datetime(2027, 5, 10, 8, 0, tzinfo=UTC)
_ids = count(1)


@pytest.fixture
def clock(app) -> Clock:
    moved = Clock()
    moved.now = NOW
    return moved


@pytest.fixture
def biller(clock: Clock, admin: Api) -> Api:
    return admin.login("admin", ADMIN_PASSWORD)  # tokens live on the moved clock


def book(admin: Api, name: str, items: list[dict[str, Any]], currency: str = "CNY") -> dict:
    """A price book ``name``, published and in effect since 2020."""
    made = admin.ok(
        admin.post("/price-books", {"name": name, "currency": currency, "items": items}), 201
    )
    action = {"action": "publish", "effective_from": "2020-01-01T00:00:00Z"}
    return admin.ok(admin.post(f"/price-books/{made['id']}/actions", action))


def account(admin: Api, tenant_id: str, **fields: Any) -> dict:
    body = {"tenant_id": tenant_id, "price_book": "list", **fields}
    return admin.ok(admin.post("/billing-accounts", body), 201)


def event(tenant_id: str, resource_id: str, action: str, at: str, **fields: Any) -> dict:
    return {
        "source": "test",
        "event_id": f"ev-{next(_ids)}",
        "tenant_id": tenant_id,
        "resource_type": fields.pop("resource_type", "instance"),
        "resource_id": resource_id,
        "meter": fields.pop("meter", "instance.running"),
        "action": action,
        "occurred_at": at,
        **fields,
    }


def send(admin: Api, events: list[dict]) -> dict:
    return admin.ok(admin.post("/usage-events", {"events": events}))


def bill(admin: Api, account_id: str, period: str, finalize: bool = False) -> dict:
    """Rate ``period`` for every account; the account's invoice of it, with its lines."""
    admin.ok(admin.post("/billing-runs", {"period": period, "finalize_due": finalize}))
    found = admin.ok(
        admin.get(
            "/invoices", params={"account_id": account_id, "period": period, "kind": "invoice"}
        )
    )
    assert len(found["items"]) == 1, found
    return admin.ok(admin.get(f"/invoices/{found['items'][0]['id']}"))


def amounts(invoice: dict) -> list[str]:
    return [line["amount"] for line in invoice["lines"]]
