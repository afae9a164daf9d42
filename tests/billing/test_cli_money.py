"""The billing CLI's money commands against a real server, the clock in May 2027: discounts
and coupons taken off a month, top-ups and grants recorded once per reference, an invoice
settled from the wallet and paid, and a vendor's month settled."""

import json

from tests.billing.conftest import account, book, event, send
from tests.support.api import ADMIN_PASSWORD, Api

HOURLY = {"meter": "instance.running", "basis": "hour", "unit_price": "1.00"}
MAY = ("--valid-from", "2027-04-30T16:00:00Z", "--valid-until", "2027-05-31T16:00:00Z")


def _json(output: str):
    return json.loads(output)


def _invoice(run, period: str) -> dict:
    [listed] = _json(run("invoice", "list", "--period", period, "-o", "json"))
    return _json(run("invoice", "show", listed["id"], "-o", "json"))


def test_discounts_and_coupons_come_off_a_month(biller: Api, root_id: str, run):
    acme = biller.tenant(root_id, "Acme")
    other = biller.tenant(root_id, "Other")
    book(biller, "list", [HOURLY])
    acct = account(biller, acme["id"])
    send(  # 100 hours in May at 1.00
        biller,
        [
            event(acme["id"], "i-vm1", "start", "2027-05-01T00:00:00Z"),
            event(acme["id"], "i-vm1", "stop", "2027-05-05T04:00:00Z"),
        ],
    )
    meter = ("--meter", "instance.running")
    percent = _json(
        run(
            "discount",
            "create",
            "--kind",
            "percent",
            "--percent",
            "10",
            "--tenant-id",
            acme["id"],
            *meter,
            *MAY,
            "-o",
            "json",
        )
    )
    assert (percent["kind"], percent["percent"], percent["tenant_id"], percent["meter"]) == (
        "percent",
        "10",
        acme["id"],
        "instance.running",
    )
    assert (percent["valid_from"], percent["valid_until"]) == (
        "2027-04-30T16:00:00Z",
        "2027-05-31T16:00:00Z",
    )
    override = _json(
        run(
            "discount",
            "create",
            "--kind",
            "override",
            "--tier",
            "50:0.90",
            "--tier",
            ":0.70",
            "--tenant-id",
            other["id"],  # not Acme's: its invoice below is untouched by it
            *meter,
            *MAY,
            "-o",
            "json",
        )
    )
    assert override["tiers"] == [
        {"upper": "50", "unit_price": "0.90"},
        {"upper": None, "unit_price": "0.70"},
    ]
    assert override["unit_price"] is None
    incomplete = run("discount", "create", "--kind", "fixed", *MAY, expect=1)
    assert "a fixed one its amount" in incomplete
    bad_tier = run("discount", "create", "--kind", "override", "--tier", "50", *MAY, expect=2)
    assert "UPPER:PRICE" in bad_tier
    [listed] = _json(run("discount", "list", "--filter", "kind=override", "-o", "json"))
    assert listed["id"] == override["id"]
    changed = _json(
        run("discount", "set", percent["id"], "--description", "spring sale", "-o", "json")
    )
    assert (changed["description"], changed["percent"]) == ("spring sale", "10")
    table = run("discount", "show", percent["id"])
    assert "spring sale" in table and "instance.running" in table

    welcome = _json(
        run(
            "coupon",
            "create",
            "--code",
            "WELCOME5",
            "--kind",
            "amount",
            "--amount",
            "5.00",
            "--max-redemptions",
            "1",
            *MAY,
            "-o",
            "json",
        )
    )
    assert (welcome["code"], welcome["kind"], welcome["amount"], welcome["max_redemptions"]) == (
        "WELCOME5",
        "amount",
        "5",
        1,
    )
    [found] = _json(run("coupon", "list", "--filter", "code=WELCOME5", "-o", "json"))
    assert found["id"] == welcome["id"]
    raised = _json(
        run(
            "coupon",
            "set",
            welcome["id"],
            "--max-redemptions",
            "2",
            "--description",
            "hello",
            "-o",
            "json",
        )
    )
    assert (raised["max_redemptions"], raised["description"]) == (2, "hello")
    held = _json(run("billing-account", "redeem", acct["id"], "--code", "WELCOME5", "-o", "json"))
    assert (held["id"], held["tenant_id"]) == (acct["id"], acme["id"])
    again = run("billing-account", "redeem", acct["id"], "--code", "WELCOME5", expect=1)
    assert "coupon-redeemed" in again
    unknown = run("billing-account", "redeem", acct["id"], "--code", "NOPE", expect=1)
    assert "invalid-coupon" in unknown

    counts = _json(run("billing", "run", "--period", "2027-05", "--no-finalize", "-o", "json"))
    assert (counts["rated"], counts["finalized"]) == (1, 0)
    may = _invoice(run, "2027-05")
    assert [(line["kind"], line["amount"]) for line in may["lines"]] == [
        ("usage", "90.00"),  # 100 h at 1.00, 10% off
        ("coupon", "-5.00"),
    ]
    assert (may["state"], may["subtotal"], may["tax"], may["total"]) == (
        "draft",
        "85.00",
        "5.10",
        "90.10",
    )

    assert run("discount", "delete", override["id"]) == f"deleted {override['id']}\n"
    assert [d["id"] for d in _json(run("discount", "list", "-o", "json"))] == [percent["id"]]
    run("discount", "show", override["id"], expect=1)
    assert run("coupon", "delete", welcome["id"]) == f"deleted {welcome['id']}\n"
    assert _json(run("coupon", "list", "-o", "json")) == []


def test_top_ups_and_grants_count_once_and_an_invoice_is_paid(biller: Api, root_id: str, run):
    acme = biller.tenant(root_id, "Acme")
    book(biller, "list", [HOURLY])
    acct = account(biller, acme["id"])
    top_up = ("billing-account", "top-up", acct["id"], "--amount", "10.00", "--reference")
    first = _json(run(*top_up, "bank-1", "--method", "transfer", "-o", "json"))
    assert (first["account_id"], first["cash"], first["credit"], first["balance"]) == (
        acct["id"],
        "10.00",
        "0.00",
        "10.00",
    )
    retried = _json(run(*top_up, "bank-1", "--method", "transfer", "-o", "json"))
    assert retried == first  # the same reference again: nothing more
    conflict = " ".join(run(*top_up[:4], "12.00", "--reference", "bank-1", expect=1).split())
    assert conflict.startswith(
        "error payment-conflict: payment 'bank-1' was recorded as a top-up of 10.00"
    )
    granted = run("billing-account", "grant", acct["id"], "--amount", "5.00", "--reference", "hi")
    assert "15.00" in granted  # the wallet: 10.00 cash and 5.00 credit
    [held] = _json(run("wallet", "list", "--tenant-id", acme["id"], "-o", "json"))
    assert (held["mode"], held["state"], held["cash"], held["credit"], held["balance"]) == (
        "postpaid",
        "active",
        "10.00",
        "5.00",
        "15.00",
    )

    send(  # a day of March at 1.00/h: 24.00 + 6% tax = 25.44
        biller,
        [
            event(acme["id"], "i-vm1", "start", "2027-03-10T00:00:00Z"),
            event(acme["id"], "i-vm1", "stop", "2027-03-11T00:00:00Z"),
        ],
    )
    assert _json(run("billing", "run", "--period", "2027-03", "-o", "json"))["finalized"] == 1
    march = _invoice(run, "2027-03")
    # settled on finalizing: the 5.00 credit, then the 10.00 cash
    assert (march["state"], march["total"], march["amount_due"]) == ("finalized", "25.44", "10.44")
    [emptied] = _json(run("wallet", "list", "-o", "json"))
    assert (emptied["cash"], emptied["credit"], emptied["balance"]) == ("0.00", "0.00", "0.00")
    pay = ("invoice", "pay", march["id"], "--amount", "10.44", "--reference", "bank-2")
    paid = _json(run(*pay, "-o", "json"))
    assert (paid["amount_due"], paid["paid_at"] is not None) == ("0.00", True)
    assert _json(run(*pay, "-o", "json"))["amount_due"] == "0.00"  # a retry
    over = run(*pay[:4], "0.01", "--reference", "bank-3", expect=1)
    assert "overpayment" in over

    payments = _json(run("payment", "list", "--account-id", acct["id"], "-o", "json"))
    assert sorted((p["kind"], p["amount"], p["reference"]) for p in payments) == [
        ("grant", "5.00", "hi"),
        ("payment", "10.44", "bank-2"),
        ("top-up", "10.00", "bank-1"),
    ]
    [payment] = _json(run("payment", "list", "--invoice-id", march["id"], "-o", "json"))
    assert (payment["kind"], payment["method"]) == ("payment", "")
    assert "transfer" in run("payment", "list", "--account-id", acct["id"])
    ledger = _json(run("ledger", "list", "--account-id", acct["id"], "-o", "json"))
    assert sorted(t["kind"] for t in ledger) == ["grant", "invoice", "payment", "settle", "top-up"]
    on_invoice = _json(run("ledger", "list", "--invoice-id", march["id"], "-o", "json"))
    assert sorted(t["kind"] for t in on_invoice) == ["invoice", "payment", "settle"]


def test_a_vendor_is_settled_for_a_month_once(biller: Api, root_id: str, clock, live_url: str, run):
    crm = biller.tenant(root_id, "CRM Corp")
    acme = biller.tenant(root_id, "Acme")
    book(biller, "list", [{"meter": "saas.seats", "basis": "month", "unit_price": "100.00"}])
    made = _json(
        run(
            "vendor",
            "create",
            "--name",
            "CRM Corp",
            "--tenant-id",
            crm["id"],
            "--product",
            "saas.seats:crm-pro",
            "--product",
            "saas.storage",
            "-o",
            "json",
        )
    )
    assert (made["name"], made["tenant_id"], made["commission_rate"]) == (
        "CRM Corp",
        crm["id"],
        "0.15",
    )
    assert made["products"] == [
        {"meter": "saas.seats", "price_key": "crm-pro"},
        {"meter": "saas.storage", "price_key": ""},
    ]
    vendor = _json(
        run(
            "vendor",
            "set",
            made["id"],
            "--commission-rate",
            "0.20",
            "--product",
            "saas.seats:crm-pro",
            "-o",
            "json",
        )
    )
    assert (vendor["commission_rate"], vendor["products"]) == (
        "0.2",
        [{"meter": "saas.seats", "price_key": "crm-pro"}],
    )
    [listed] = _json(run("vendor", "list", "--filter", f"tenant_id={crm['id']}", "-o", "json"))
    assert listed["id"] == vendor["id"]
    assert "crm-pro" in run("vendor", "show", vendor["id"])

    acct = account(biller, acme["id"])
    seats = {"meter": "saas.seats", "resource_type": "saas", "price_key": "crm-pro"}
    send(  # a seat all of March (Asia/Shanghai): 100.00 + 6% tax
        biller,
        [
            event(acme["id"], "sub-1", "start", "2027-03-01T00:00:00+08:00", **seats),
            event(acme["id"], "sub-1", "stop", "2027-04-01T00:00:00+08:00", **seats),
        ],
    )
    run("billing", "run", "--period", "2027-03")
    march = _invoice(run, "2027-03")
    assert (march["account_id"], march["amount_due"]) == (acct["id"], "106.00")
    run("invoice", "pay", march["id"], "--amount", "106.00", "--reference", "bank-1")  # in May

    settle = ("vendor", "settle", "--vendor-id", vendor["id"], "--period")
    assert "period-open" in run(*settle, "2027-05", expect=1)
    clock.advance(days=30)
    run("login", live_url, "--username", "admin", "--password", ADMIN_PASSWORD)
    assert _json(run(*settle, "2027-04", "-o", "json")) == []  # nothing collected in April
    [statement] = _json(run(*settle, "2027-05", "-o", "json"))
    assert (statement["vendor_id"], statement["period"], statement["currency"]) == (
        vendor["id"],
        "2027-05",
        "CNY",
    )  # at list price, less the 20% commission
    assert (statement["base"], statement["fee"], statement["payout"], statement["lines"]) == (
        "100.00",
        "20.00",
        "80.00",
        1,
    )
    assert "already-settled" in run(*settle, "2027-05", expect=1)
    statements = _json(run("vendor", "statements", "--vendor-id", vendor["id"], "-o", "json"))
    assert [s["id"] for s in statements] == [statement["id"]]
    assert _json(run("vendor", "statements", "--period", "2027-04", "-o", "json")) == []
    assert "80.00" in run("vendor", "statements", "--period", "2027-05")
