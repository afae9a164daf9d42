"""Price books: drafts change, published versions never do; tiers must make sense."""

import pytest

from tests.billing.conftest import account, amounts, bill, book, event, send
from tests.support.api import Api

TIERS = [{"upper": "10", "unit_price": "0.80"}, {"upper": None, "unit_price": "0.40"}]


def test_a_published_book_is_frozen_and_changes_in_a_new_version(biller: Api):
    published = book(biller, "list", [{"meter": "instance.running", "unit_price": "1.00"}])
    assert (published["state"], published["version"]) == ("published", 1)
    for change in (
        biller.patch(f"/price-books/{published['id']}", {"description": "cheaper"}),
        biller.delete(f"/price-books/{published['id']}"),
        biller.post(f"/price-books/{published['id']}/actions", {"action": "publish"}),
    ):
        assert change.status_code == 409 and change.json()["code"] == "price-book-published"
    copy = biller.ok(
        biller.post(f"/price-books/{published['id']}/actions", {"action": "new-version"})
    )
    assert (copy["state"], copy["version"], copy["items"][0]["unit_price"]) == (
        "draft",
        2,
        "1",
    )
    item = {"meter": "instance.running", "unit_price": "0.90"}
    changed = biller.ok(biller.patch(f"/price-books/{copy['id']}", {"items": [item]}))
    assert changed["items"][0]["unit_price"] == "0.9"
    assert biller.ok(biller.get(f"/price-books/{published['id']}"))["items"][0]["unit_price"] == "1"


def test_each_month_is_priced_by_the_version_in_effect_at_its_start(biller: Api, root_id: str):
    tenant = biller.tenant(root_id, "Acme")
    first = book(biller, "list", [{"meter": "instance.running", "unit_price": "1.00"}])
    second = biller.ok(
        biller.post(f"/price-books/{first['id']}/actions", {"action": "new-version"})
    )
    biller.ok(
        biller.patch(
            f"/price-books/{second['id']}",
            {"items": [{"meter": "instance.running", "unit_price": "2.00"}]},
        )
    )
    publish = {"action": "publish", "effective_from": "2027-03-31T16:00:00Z"}  # April, local
    biller.ok(biller.post(f"/price-books/{second['id']}/actions", publish))
    acct = account(biller, tenant["id"])
    vm = tenant["id"], "i-vm1"
    for day in ("2027-03-10", "2027-04-10"):
        send(
            biller,
            [event(*vm, "start", f"{day}T00:00:00Z"), event(*vm, "stop", f"{day}T01:00:00Z")],
        )
    assert amounts(bill(biller, acct["id"], "2027-03")) == ["1.00"]
    assert amounts(bill(biller, acct["id"], "2027-04")) == ["2.00"]


@pytest.mark.parametrize(
    "item",
    [
        {"meter": "network.egress_gb", "model": "graduated"},  # no tiers
        {"meter": "network.egress_gb", "model": "graduated", "tiers": TIERS[::-1]},
        {
            "meter": "network.egress_gb",
            "model": "volume",
            "tiers": [{"upper": "10", "unit_price": "1"}],
        },
        {"meter": "network.egress_gb", "model": "volume", "tiers": [TIERS[0], TIERS[0], TIERS[1]]},
        {"meter": "instance.running", "unit_price": 1.5},  # a float is not exact
        {"meter": "instance.running", "unit_price": "-1"},
        {"meter": "instance.running", "tiers": TIERS},  # per-unit prices have no tiers
        {"meter": "instance.running", "basis": "fortnight"},
        {"meter": "network.egress_gb", "basis": "unit", "min_charge_seconds": 60},
    ],
)
def test_a_price_that_makes_no_sense_is_a_422(biller: Api, item: dict):
    answer = biller.post("/price-books", {"name": "bad", "items": [item]})
    assert answer.status_code == 422, answer.text
    assert biller.ok(biller.get("/price-books", params={"name": "bad"}))["items"] == []


def test_only_the_platform_sets_prices_and_accounts(biller: Api, root_id: str):
    tenant = biller.tenant(root_id, "Acme")
    boss = biller.as_user(tenant["id"], "boss", ["tenant-admin"])
    published = book(biller, "list", [{"meter": "instance.running", "unit_price": "1.00"}])
    assert (
        boss.ok(boss.get(f"/price-books/{published['id']}"))["name"] == "list"
    )  # prices are public
    assert boss.post("/price-books", {"name": "mine"}).status_code == 403
    assert boss.post("/billing-accounts", {"tenant_id": tenant["id"]}).status_code == 403
    acct = account(biller, tenant["id"])
    assert boss.ok(boss.get(f"/billing-accounts/{acct['id']}"))["timezone"] == "Asia/Shanghai"
    assert boss.patch(f"/billing-accounts/{acct['id']}", {"tax_rate": "0"}).status_code == 403
    bad_zone = biller.patch(f"/billing-accounts/{acct['id']}", {"timezone": "Mars/Olympus"})
    assert bad_zone.status_code == 422
    twice = biller.post("/billing-accounts", {"tenant_id": tenant["id"]})
    assert twice.status_code == 409
