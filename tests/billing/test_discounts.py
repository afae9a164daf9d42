"""Discounts and coupons, in their order: overrides, percentages, fixed amounts, coupons,
then tax; each only while valid, and never taking a line below zero."""

from tests.billing.conftest import account, bill, book, event, send
from tests.support.api import Api

HOURLY = {"meter": "instance.running", "basis": "hour", "unit_price": "1.00"}
MARCH = {"valid_from": "2027-02-28T16:00:00Z", "valid_until": "2027-03-31T16:00:00Z"}
MAY = {"valid_from": "2027-04-30T16:00:00Z", "valid_until": "2027-05-31T16:00:00Z"}


def running(tenant_id: str, vm: str, start: str, stop: str | None = None) -> list[dict]:
    events = [event(tenant_id, vm, "start", start)]
    return events + ([event(tenant_id, vm, "stop", stop)] if stop else [])


def discount(admin: Api, **fields) -> dict:
    return admin.ok(admin.post("/discounts", {**MAY, **fields}), 201)


def test_overrides_then_percentages_then_amounts_then_tax(biller: Api, root_id: str):
    acme = biller.tenant(root_id, "Acme")
    team = biller.tenant(acme["id"], "Team")
    book(biller, "list", [HOURLY])
    acct = account(biller, acme["id"])
    send(biller, running(team["id"], "i-vm1", "2027-05-01T00:00:00Z", "2027-05-05T04:00:00Z"))
    discount(
        biller, kind="override", tenant_id=acme["id"], meter="instance.running", unit_price="0.80"
    )
    discount(biller, kind="percent", percent="10", meter="instance.running")
    discount(biller, kind="fixed", amount="2.00")
    discount(biller, kind="percent", percent="50", tenant_id=biller.tenant(root_id, "Other")["id"])
    coupon = {"code": "WELCOME5", "kind": "amount", "amount": "5.00", **MAY}
    biller.ok(biller.post("/coupons", coupon), 201)
    boss = biller.as_user(acme["id"], "boss", ["tenant-admin"])
    boss.ok(
        boss.post(
            f"/billing-accounts/{acct['id']}/actions",
            {"action": "redeem-coupon", "code": "WELCOME5"},
        )
    )
    invoice = bill(biller, acct["id"], "2027-05")
    assert [(x["kind"], x["amount"]) for x in invoice["lines"]] == [
        ("usage", "72.00"),  # 100 h listed at 1.00, overridden to 0.80, then 10% off
        ("discount", "-2.00"),
        ("coupon", "-5.00"),
    ]
    assert invoice["lines"][0]["detail"]["list"] == "100"
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("65.00", "3.90", "68.90")


def test_a_discount_counts_only_while_valid(biller: Api, root_id: str):
    acme = biller.tenant(root_id, "Acme")
    book(biller, "list", [HOURLY])
    acct = account(biller, acme["id"])
    send(biller, running(acme["id"], "i-vm1", "2027-02-28T16:00:00Z"))  # all March
    half_off = {"valid_from": "2027-03-15T16:00:00Z", "valid_until": "2027-04-15T16:00:00Z"}
    biller.ok(biller.post("/discounts", {"kind": "percent", "percent": "50", **half_off}), 201)
    [line] = bill(biller, acct["id"], "2027-03")["lines"]
    # 15 days at 1.00/h, then 16 days at 0.50/h: one line, rounded once
    assert (line["seconds"], line["amount"], line["detail"]["list"]) == (
        744 * 3600,
        "552.00",
        "744",
    )


def test_an_amount_coupon_is_used_up_across_invoices(biller: Api, root_id: str):
    acme = biller.tenant(root_id, "Acme")
    book(biller, "list", [HOURLY])
    acct = account(biller, acme["id"])
    spring = {"valid_from": "2027-01-01T00:00:00Z", "valid_until": "2027-06-01T00:00:00Z"}
    biller.ok(
        biller.post("/coupons", {"code": "SPRING50", "kind": "amount", "amount": "50", **spring}),
        201,
    )
    action = {"action": "redeem-coupon", "code": "SPRING50"}
    # redeemed before the usage below (the clock stands in May; redeemed_at is now)
    send(biller, running(acme["id"], "i-vm1", "2027-05-01T00:00:00Z", "2027-05-01T06:00:00Z"))
    biller.ok(biller.post(f"/billing-accounts/{acct['id']}/actions", action))
    may = bill(biller, acct["id"], "2027-05")
    assert [x["amount"] for x in may["lines"]] == ["6.00", "-6.00"]  # never below zero
    assert may["total"] == "0.00"


def test_coupons_are_redeemed_once_while_valid_and_not_beyond_their_limit(
    biller: Api, root_id: str
):
    first, second = biller.tenant(root_id, "First"), biller.tenant(root_id, "Second")
    accounts = [account(biller, t["id"]) for t in (first, second)]
    once = {"code": "ONCE", "kind": "percent", "percent": "20", "max_redemptions": 1}
    biller.ok(biller.post("/coupons", {**once, "valid_from": "2027-01-01T00:00:00Z"}), 201)
    redeem = {"action": "redeem-coupon", "code": "ONCE"}
    biller.ok(biller.post(f"/billing-accounts/{accounts[0]['id']}/actions", redeem))
    again = biller.post(f"/billing-accounts/{accounts[0]['id']}/actions", redeem)
    assert again.status_code == 409 and again.json()["code"] == "coupon-redeemed"
    used_up = biller.post(f"/billing-accounts/{accounts[1]['id']}/actions", redeem)
    assert used_up.status_code == 409 and used_up.json()["code"] == "coupon-used-up"
    unknown = biller.post(
        f"/billing-accounts/{accounts[1]['id']}/actions", {**redeem, "code": "NOPE"}
    )
    assert unknown.status_code == 422 and unknown.json()["code"] == "invalid-coupon"
    member = biller.as_user(second["id"], "dev", ["member"])
    assert member.post(f"/billing-accounts/{accounts[1]['id']}/actions", redeem).status_code == 403
    stranger = biller.as_user(first["id"], "boss", ["tenant-admin"])
    assert (
        stranger.post(f"/billing-accounts/{accounts[1]['id']}/actions", redeem).status_code == 404
    )


def test_a_discount_that_makes_no_sense_is_a_422(biller: Api):
    for bad in (
        {"kind": "percent"},
        {"kind": "percent", "percent": "120"},
        {"kind": "fixed", "amount": 1.5},
        {"kind": "override"},
        {"kind": "percent", "percent": "10", "valid_until": "2027-02-01T00:00:00Z"},
        {"kind": "percent", "percent": "10", "tenant_id": "t-nobody"},
    ):
        answer = biller.post("/discounts", {**MARCH, **bad})
        assert answer.status_code == 422, (bad, answer.text)
    assert biller.ok(biller.get("/discounts"))["items"] == []
