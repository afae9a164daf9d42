"""Money: prepaid accounts charged as their draft grows (granted credit before cash),
suspended below zero and restored by a top-up; postpaid invoices settled from wallets, then
paid; every payment recorded once; every movement a balanced ledger transaction."""

from decimal import Decimal

from sqlalchemy import func, select

from tests.billing.conftest import account, bill, book, event, send
from tests.support.api import Api
from yunguan.billing import ledger
from yunguan.billing.models import LedgerEntry

HOURLY = {"meter": "instance.running", "basis": "hour", "unit_price": "1.00"}


def act(admin: Api, acct: dict, action: str, **fields) -> dict:
    return admin.ok(
        admin.post(f"/billing-accounts/{acct['id']}/actions", {"action": action, **fields})
    )


def wallet(admin: Api, tenant_id: str) -> dict:
    [found] = admin.ok(admin.get("/wallets", params={"tenant_id": tenant_id}))["items"]
    return found


def run(admin: Api) -> None:
    admin.ok(admin.post("/billing-runs", {}))


def ledger_is_sound(db) -> None:
    with db.session() as session:
        assert ledger.audit(session) == []
        everything = func.round(func.coalesce(func.sum(LedgerEntry.amount), 0), 10)
        assert Decimal(str(session.scalar(select(everything)))) == 0


def test_a_postpaid_invoice_is_settled_from_the_wallet_then_paid_once(
    biller: Api, root_id: str, db
):
    tenant = biller.tenant(root_id, "Acme")
    book(biller, "list", [HOURLY])
    acct = account(biller, tenant["id"])
    act(biller, acct, "top-up", amount="10.00", reference="bank-1", method="transfer")
    act(biller, acct, "top-up", amount="10.00", reference="bank-1", method="transfer")  # a retry
    send(
        biller,
        [
            event(tenant["id"], "i-vm1", "start", "2027-03-10T00:00:00Z"),
            event(tenant["id"], "i-vm1", "stop", "2027-03-11T00:00:00Z"),
        ],
    )
    march = bill(biller, acct["id"], "2027-03", finalize=True)
    assert (march["total"], march["amount_due"], march["paid_at"]) == ("25.44", "15.44", None)
    assert (
        wallet(biller, tenant["id"])["cash"] == "0E-10"
        or Decimal(wallet(biller, tenant["id"])["cash"]) == 0
    )
    pay = {"action": "pay", "amount": "5.44", "reference": "bank-2"}
    biller.ok(biller.post(f"/invoices/{march['id']}/actions", pay))
    assert biller.ok(biller.post(f"/invoices/{march['id']}/actions", pay))["amount_due"] == "10.00"
    conflict = biller.post(f"/invoices/{march['id']}/actions", {**pay, "amount": "6.00"})
    assert conflict.status_code == 409 and conflict.json()["code"] == "payment-conflict"
    too_much = biller.post(
        f"/invoices/{march['id']}/actions", {**pay, "amount": "10.01", "reference": "bank-3"}
    )
    assert too_much.status_code == 409 and too_much.json()["code"] == "overpayment"
    paid = biller.ok(
        biller.post(
            f"/invoices/{march['id']}/actions", {**pay, "amount": "10.00", "reference": "bank-3"}
        )
    )
    assert paid["amount_due"] == "0.00" and paid["paid_at"] is not None
    payments = biller.ok(biller.get("/payments", params={"account_id": acct["id"]}))["items"]
    assert sorted((p["kind"], p["amount"]) for p in payments) == [
        ("payment", "10.00"),
        ("payment", "5.44"),
        ("top-up", "10.00"),
    ]
    kinds = [
        t["kind"]
        for t in biller.ok(biller.get("/ledger-transactions", params={"account_id": acct["id"]}))[
            "items"
        ]
    ]
    assert sorted(kinds) == ["invoice", "payment", "payment", "settle", "top-up"]
    ledger_is_sound(db)


def test_a_prepaid_account_pays_as_it_goes_and_is_stopped_below_zero(
    biller: Api, root_id: str, clock, db
):
    tenant = biller.tenant(root_id, "Acme")
    boss = biller.as_user(tenant["id"], "boss", ["tenant-admin"])
    book(biller, "list", [HOURLY])
    acct = account(biller, tenant["id"], mode="prepaid")
    act(biller, acct, "top-up", amount="10.00", reference="alipay-1", method="alipay")
    act(biller, acct, "grant", amount="5.00", reference="welcome")
    send(biller, [event(tenant["id"], "i-vm1", "start", "2027-05-10T00:00:00Z")])  # 8 h ago
    run(biller)
    run(biller)  # the same rating again charges nothing more
    held = wallet(biller, tenant["id"])
    assert (held["credit"], held["cash"], held["state"]) == ("0.00", "6.52", "active")  # 8.48
    clock.advance(hours=10)
    biller = biller.login("admin", "Platform-Passw0rd!")
    run(biller)  # 18 h: 19.08 charged in all
    held = wallet(biller, tenant["id"])
    assert (held["balance"], held["state"]) == ("-4.08", "suspended")
    refused = biller.post("/volumes", {"name": "more", "size_gb": 1, "tenant_id": tenant["id"]})
    assert refused.status_code == 402 and refused.json()["code"] == "insufficient-balance"
    run(biller)
    boss = boss.login("boss")
    inbox = boss.ok(boss.get("/notifications"))["items"]
    assert sorted(n["event"] for n in inbox) == ["account.suspended", "wallet.low-balance"]
    act(biller, acct, "top-up", amount="20.00", reference="alipay-2", method="alipay")
    assert wallet(biller, tenant["id"])["state"] == "active"
    again = biller.post("/volumes", {"name": "more", "size_gb": 1, "tenant_id": tenant["id"]})
    assert again.status_code != 402
    ledger_is_sound(db)


def test_a_prepaid_month_is_paid_by_its_charges_to_the_cent(biller: Api, root_id: str, db):
    tenant = biller.tenant(root_id, "Acme")
    book(biller, "list", [HOURLY])
    acct = account(biller, tenant["id"], mode="prepaid")
    act(biller, acct, "top-up", amount="1000.00", reference="r1")
    vm = tenant["id"], "i-vm1"
    send(
        biller,
        [event(*vm, "start", "2027-03-10T00:00:00Z"), event(*vm, "stop", "2027-03-10T05:00:00Z")],
    )
    bill(biller, acct["id"], "2027-03")  # a draft, charged 5.30
    send(
        biller,
        [event(*vm, "start", "2027-03-20T00:00:00Z"), event(*vm, "stop", "2027-03-20T02:00:00Z")],
    )
    march = bill(biller, acct["id"], "2027-03", finalize=True)  # charged 2.12 more, then settled
    assert (march["total"], march["amount_due"]) == ("7.42", "0.00")
    assert wallet(biller, tenant["id"])["cash"] == "992.58"
    note = biller.ok(
        biller.post(
            f"/invoices/{march['id']}/actions",
            {"action": "credit", "amount": "1.00", "reason": "sorry"},
        )
    )
    assert note["total"] == "-1.06"
    assert wallet(biller, tenant["id"])["cash"] == "993.64"  # a credit note goes back to cash
    ledger_is_sound(db)


def test_a_postpaid_account_orders_up_to_its_credit_limit(biller: Api, root_id: str):
    tenant = biller.tenant(root_id, "Acme")
    book(biller, "list", [HOURLY])
    acct = account(biller, tenant["id"], credit_limit="5.00")
    send(biller, [event(tenant["id"], "i-vm1", "start", "2027-05-10T00:00:00Z")])
    run(biller)  # the May draft: 8.48
    refused = biller.post("/eips", {"tenant_id": tenant["id"]})
    assert refused.status_code == 402 and refused.json()["code"] == "credit-limit-exceeded"
    biller.ok(biller.patch(f"/billing-accounts/{acct['id']}", {"credit_limit": "100.00"}))
    assert biller.post("/eips", {"tenant_id": tenant["id"]}).status_code != 402


def test_money_actions_are_the_platforms_and_need_an_amount_and_a_reference(
    biller: Api, root_id: str
):
    tenant = biller.tenant(root_id, "Acme")
    acct = account(biller, tenant["id"])
    boss = biller.as_user(tenant["id"], "boss", ["tenant-admin"])
    top_up = {"action": "top-up", "amount": "10.00", "reference": "r1"}
    assert boss.post(f"/billing-accounts/{acct['id']}/actions", top_up).status_code == 403
    for bad in (
        {"action": "top-up"},
        {**top_up, "amount": 10.5},
        {**top_up, "amount": "-1"},
        {**top_up, "amount": "0.001"},
    ):
        assert biller.post(f"/billing-accounts/{acct['id']}/actions", bad).status_code == 422
    assert boss.ok(boss.get("/wallets"))["items"][0]["balance"] == "0.00"
    assert boss.get("/ledger-transactions").status_code == 403  # the platform's books


def test_a_credit_note_gives_granted_credit_back_to_the_grant(biller: Api, root_id: str, db):
    tenant = biller.tenant(root_id, "Acme")
    book(biller, "list", [HOURLY])
    acct = account(biller, tenant["id"])
    act(biller, acct, "grant", amount="8.00", reference="welcome")
    act(biller, acct, "top-up", amount="5.00", reference="bank-1")
    send(
        biller,
        [
            event(tenant["id"], "i-vm1", "start", "2027-03-10T00:00:00Z"),
            event(tenant["id"], "i-vm1", "stop", "2027-03-10T10:00:00Z"),
        ],
    )
    march = bill(biller, acct["id"], "2027-03", finalize=True)
    # 10.60: 8.00 of granted credit, then 2.60 of cash
    assert (march["total"], march["amount_due"]) == ("10.60", "0.00")
    credit = {"action": "credit", "amount": "9.00", "reason": "outage"}
    biller.ok(biller.post(f"/invoices/{march['id']}/actions", credit))  # 9.54 back
    held = wallet(biller, tenant["id"])
    assert (held["credit"], held["cash"]) == ("8.00", "3.94")  # the grant first, then cash
    ledger_is_sound(db)
