"""Finalized months stay as they were billed: no price book version, discount or time zone
change may take effect inside them, and a book and its accounts share one currency."""

import pytest

from tests.billing.conftest import account, bill, book, event, send
from tests.billing.test_examples import hourly
from tests.support.api import Api

HOURLY = hourly("1.00")
MARCH_FROM = "2027-03-01T00:00:00+08:00"
APRIL_FROM = "2027-04-01T00:00:00+08:00"  # the end of March in Asia/Shanghai


def refused(answer, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code, answer.text


def ten_hours_in_march(biller: Api, tenant_id: str) -> None:
    send(
        biller,
        [
            event(tenant_id, "i-vm1", "start", "2027-03-10T00:00:00Z"),
            event(tenant_id, "i-vm1", "stop", "2027-03-10T10:00:00Z"),
        ],
    )


@pytest.fixture
def finalized_march(biller: Api, root_id: str) -> dict:
    """Acme's March, finalized: 10 h at 1.00."""
    tenant = biller.tenant(root_id, "Acme")
    book(biller, "list", [HOURLY])
    acct = account(biller, tenant["id"])
    ten_hours_in_march(biller, tenant["id"])
    march = bill(biller, acct["id"], "2027-03", finalize=True)
    assert (march["state"], march["subtotal"]) == ("finalized", "10.00")
    return acct


def test_a_new_price_book_version_takes_effect_after_finalized_months(
    biller: Api, finalized_march: dict
):
    draft = biller.ok(biller.post("/price-books", {"name": "list", "items": [hourly("2.00")]}), 201)
    publish = f"/price-books/{draft['id']}/actions"
    early = {"action": "publish", "effective_from": "2027-03-15T00:00:00Z"}
    refused(biller.post(publish, early), 422, "period-finalized")
    later = biller.ok(biller.post(publish, {"action": "publish", "effective_from": APRIL_FROM}))
    assert later["state"] == "published"


def test_discounts_of_finalized_months_only_end(biller: Api, root_id: str):
    tenant = biller.tenant(root_id, "Acme")
    book(biller, "list", [HOURLY])
    acct = account(biller, tenant["id"])
    old = {"kind": "percent", "percent": "10", "valid_from": MARCH_FROM}
    made = biller.ok(biller.post("/discounts", old), 201)
    ten_hours_in_march(biller, tenant["id"])
    assert bill(biller, acct["id"], "2027-03", finalize=True)["subtotal"] == "9.00"
    path = f"/discounts/{made['id']}"

    refused(biller.post("/discounts", old), 422, "period-finalized")
    refused(biller.delete(path), 409, "period-finalized")
    refused(biller.patch(path, {"valid_until": "2027-03-20T00:00:00Z"}), 422, "period-finalized")
    ended = biller.ok(biller.patch(path, {"valid_until": "2027-05-01T00:00:00+08:00"}))
    assert ended["valid_until"] == "2027-04-30T16:00:00Z"
    fresh = biller.ok(biller.post("/discounts", {**old, "valid_from": APRIL_FROM}), 201)
    biller.ok(biller.delete(f"/discounts/{fresh['id']}"), 204)


def test_an_invoiced_account_keeps_its_time_zone(biller: Api, finalized_march: dict):
    path = f"/billing-accounts/{finalized_march['id']}"
    refused(biller.patch(path, {"timezone": "UTC"}), 409, "account-invoiced")
    refused(biller.delete(path), 409, "account-in-use")
    same = biller.ok(biller.patch(path, {"timezone": "Asia/Shanghai", "grace_hours": 24}))
    assert (same["timezone"], same["grace_hours"]) == ("Asia/Shanghai", 24)


def test_a_price_book_and_its_accounts_share_one_currency(biller: Api, root_id: str):
    book(biller, "list", [HOURLY])
    book(biller, "dollars", [HOURLY], currency="USD")
    acme = biller.tenant(root_id, "Acme")
    body = {"tenant_id": acme["id"], "price_book": "list", "currency": "USD"}
    refused(biller.post("/billing-accounts", body), 422, "currency-mismatch")
    acct = account(biller, acme["id"])  # CNY, like the book
    path = f"/billing-accounts/{acct['id']}"
    refused(biller.patch(path, {"price_book": "dollars"}), 422, "currency-mismatch")
    usd = biller.ok(
        biller.post("/price-books", {"name": "list", "currency": "USD", "items": [HOURLY]}), 201
    )
    refused(
        biller.post(f"/price-books/{usd['id']}/actions", {"action": "publish"}),
        422,
        "currency-mismatch",
    )


def test_a_finalized_month_is_corrected_at_the_prices_it_was_billed_at(
    biller: Api, finalized_march: dict
):
    book(biller, "other", [hourly("5.00")])  # another book, which the account moves to
    path = f"/billing-accounts/{finalized_march['id']}"
    biller.ok(biller.patch(path, {"price_book": "other"}))
    tenant_id = finalized_march["tenant_id"]
    send(
        biller,
        [
            event(tenant_id, "i-vm2", "start", "2027-03-20T00:00:00Z"),
            event(tenant_id, "i-vm2", "stop", "2027-03-20T02:00:00Z"),
        ],
    )
    biller.ok(biller.post("/billing-runs", {}))
    may = biller.ok(
        biller.get("/invoices", params={"account_id": finalized_march["id"], "period": "2027-05"})
    )
    [late] = biller.ok(biller.get(f"/invoices/{may['items'][0]['id']}"))["lines"]
    assert (late["kind"], late["resource_id"], late["amount"]) == ("adjustment", "i-vm2", "2.00")


def test_a_discount_that_ended_before_a_finalized_month_stays_ended(biller: Api, root_id: str):
    tenant = biller.tenant(root_id, "Acme")
    book(biller, "list", [HOURLY])
    acct = account(biller, tenant["id"])
    early = {"kind": "percent", "percent": "50", "valid_from": MARCH_FROM}
    made = biller.ok(
        biller.post("/discounts", {**early, "valid_until": "2027-03-05T00:00:00Z"}), 201
    )
    ten_hours_in_march(biller, tenant["id"])
    assert bill(biller, acct["id"], "2027-03", finalize=True)["subtotal"] == "10.00"
    longer = {"valid_until": "2027-06-01T00:00:00Z"}
    refused(biller.patch(f"/discounts/{made['id']}", longer), 422, "period-finalized")
    # another book's history is not this one's: a new book may start in the past
    other = book(biller, "other", [hourly("5.00")])
    assert other["state"] == "published"
