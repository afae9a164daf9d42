"""An invoice's life: a draft rated again as usage arrives, finalized once its grace period
is over, never changed after; late usage becomes an adjustment or a credit note."""

from decimal import Decimal

from tests.billing.conftest import account, amounts, bill, book, event, send
from tests.support.api import Api

HOURLY = {"meter": "instance.running", "basis": "hour", "unit_price": "1.00"}


def setup(biller: Api, root_id: str, **account_fields) -> tuple[dict, dict]:
    tenant = biller.tenant(root_id, "Acme")
    book(biller, "list", [HOURLY, {**HOURLY, "price_key": "fl-short", "min_charge_seconds": 600}])
    return tenant, account(biller, tenant["id"], **account_fields)


def run(biller: Api) -> dict:
    """What the hourly run does."""
    return biller.ok(biller.post("/billing-runs", {}))


def test_a_draft_is_rated_again_then_finalized_and_frozen(biller: Api, root_id: str, clock):
    tenant, acct = setup(biller, root_id, grace_hours=24 * 30)  # March is still in grace
    vm = tenant["id"], "i-vm1"
    send(
        biller,
        [event(*vm, "start", "2027-03-10T00:00:00Z"), event(*vm, "stop", "2027-03-10T02:00:00Z")],
    )
    draft = bill(biller, acct["id"], "2027-03")
    assert (draft["state"], draft["number"], amounts(draft)) == ("draft", None, ["2.00"])
    send(
        biller,
        [event(*vm, "start", "2027-03-11T00:00:00Z"), event(*vm, "stop", "2027-03-11T01:00:00Z")],
    )
    assert amounts(bill(biller, acct["id"], "2027-03")) == ["3.00"]  # late usage, same draft
    final = biller.ok(biller.post(f"/invoices/{draft['id']}/actions", {"action": "finalize"}))
    assert final["state"] == "finalized" and final["number"] == "INV-202703-000001"
    assert (final["subtotal"], final["tax"], final["total"]) == ("3.00", "0.18", "3.18")
    again = biller.post(f"/invoices/{draft['id']}/actions", {"action": "finalize"})
    assert again.status_code == 409 and again.json()["code"] == "invoice-finalized"
    assert bill(biller, acct["id"], "2027-03") == final  # rating again changes nothing


def test_late_usage_of_a_finalized_month_is_adjusted_on_the_next_draft(biller: Api, root_id: str):
    tenant, acct = setup(biller, root_id)
    vm = tenant["id"], "i-vm1"
    send(
        biller,
        [event(*vm, "start", "2027-03-10T00:00:00Z"), event(*vm, "stop", "2027-03-10T02:00:00Z")],
    )
    march = bill(biller, acct["id"], "2027-03", finalize=True)
    assert march["state"] == "finalized"
    send(
        biller,
        [event(*vm, "start", "2027-03-20T00:00:00Z"), event(*vm, "stop", "2027-03-20T03:00:00Z")],
    )
    assert run(biller)["corrected"] == 1
    assert run(biller)["corrected"] == 0  # nothing new: nothing corrected twice
    may = biller.ok(biller.get("/invoices", params={"account_id": acct["id"], "period": "2027-05"}))
    [adjustment] = biller.ok(biller.get(f"/invoices/{may['items'][0]['id']}"))["lines"]
    assert (adjustment["kind"], adjustment["amount"], adjustment["corrects_invoice_id"]) == (
        "adjustment",
        "3.00",
        march["id"],
    )
    assert (
        adjustment["detail"]["period"] == "2027-03"
        and adjustment["detail"]["billed"] == "2.0000000000"
    )
    assert biller.ok(biller.get(f"/invoices/{march['id']}")) == march  # the original is untouched


def test_usage_withdrawn_after_finalizing_is_a_credit_note(biller: Api, root_id: str):
    tenant, acct = setup(biller, root_id)
    vm = tenant["id"], "i-vm1"
    send(biller, [event(*vm, "start", "2027-03-10T00:00:00Z")])  # the stop comes late
    march = bill(biller, acct["id"], "2027-03", finalize=True)
    assert amounts(march) == ["520.00"]  # 03-10 00:00Z to the local month end: 520 h
    send(biller, [event(*vm, "stop", "2027-03-10T05:00:00Z")])
    run(biller)
    notes = biller.ok(
        biller.get("/invoices", params={"account_id": acct["id"], "kind": "credit_note"})
    )
    [note] = notes["items"]
    assert (note["corrects_invoice_id"], note["state"], note["subtotal"], note["tax"]) == (
        march["id"],
        "finalized",
        "-515.00",
        "-30.90",
    )
    assert note["number"].startswith("CN-202703-")


def test_an_administrator_credits_at_most_what_was_billed(biller: Api, root_id: str):
    tenant, acct = setup(biller, root_id)
    vm = tenant["id"], "i-vm1"
    send(
        biller,
        [event(*vm, "start", "2027-03-10T00:00:00Z"), event(*vm, "stop", "2027-03-10T10:00:00Z")],
    )
    march = bill(biller, acct["id"], "2027-03", finalize=True)
    credit = {"action": "credit", "amount": "4.00", "reason": "outage on 03-10"}
    note = biller.ok(biller.post(f"/invoices/{march['id']}/actions", credit))
    assert (note["kind"], note["subtotal"], note["total"]) == ("credit_note", "-4.00", "-4.24")
    too_much = biller.post(f"/invoices/{march['id']}/actions", {**credit, "amount": "6.01"})
    assert too_much.status_code == 409 and "6.00" in too_much.json()["detail"]
    assert biller.post(f"/invoices/{march['id']}/actions", {"action": "credit"}).status_code == 422
    # the note pays what was still due on the invoice first: nothing goes back to the wallet
    march = biller.ok(biller.get(f"/invoices/{march['id']}"))
    assert (march["total"], march["amount_due"], march["paid_at"]) == ("10.60", "6.36", None)
    biller.ok(biller.post(f"/invoices/{march['id']}/actions", {**credit, "amount": "6.00"}))
    march = biller.ok(biller.get(f"/invoices/{march['id']}"))
    assert march["amount_due"] == "0.00" and march["paid_at"] is not None
    [held] = biller.ok(biller.get("/wallets", params={"tenant_id": tenant["id"]}))["items"]
    assert Decimal(held["cash"]) == 0


def test_a_minimum_is_charged_per_start(biller: Api, root_id: str):
    tenant, acct = setup(biller, root_id)
    vm = tenant["id"], "i-vm1"
    short = [
        ("2027-03-10T00:00:00Z", "2027-03-10T00:01:00Z"),
        ("2027-03-11T00:00:00Z", "2027-03-11T00:20:00Z"),
    ]
    send(
        biller,
        [
            e
            for a, b in short
            for e in (
                event(*vm, "start", a, price_key="fl-short"),
                event(*vm, "stop", b, price_key="fl-short"),
            )
        ],
    )
    [line] = bill(biller, acct["id"], "2027-03")["lines"]
    # 60 s is charged as 600 s; 1200 s is over the minimum: 1800 s at 1.00/h
    assert (line["seconds"], line["amount"], line["detail"]["minimum_seconds"]) == (
        1260,
        "0.50",
        "540",
    )


def test_a_monthly_price_uses_the_real_length_of_the_month(biller: Api, root_id: str):
    tenant = biller.tenant(root_id, "Acme")
    gb_month = {"meter": "volume.gb", "basis": "month", "unit_price": "0.30"}
    book(biller, "list", [gb_month])
    acct = account(biller, tenant["id"])
    disk = {"meter": "volume.gb", "resource_type": "volume", "quantity": "100"}
    send(
        biller,
        [
            event(tenant["id"], "vol-a", "start", "2027-03-22T00:00:00+08:00", **disk),
            event(tenant["id"], "vol-b", "start", "2027-02-01T00:00:00+08:00", **disk),
            event(tenant["id"], "vol-b", "stop", "2027-03-01T00:00:00+08:00", **disk),
        ],
    )
    assert amounts(bill(biller, acct["id"], "2027-03")) == ["9.68"]  # 10 of 31 days, not 10.00
    assert amounts(bill(biller, acct["id"], "2027-02")) == ["30.00"]  # all of February's 28 days


def test_tenants_see_only_their_own_bills(biller: Api, root_id: str):
    tenant, acct = setup(biller, root_id)
    send(biller, [event(tenant["id"], "i-vm1", "start", "2027-03-10T00:00:00Z")])
    invoice = bill(biller, acct["id"], "2027-03")
    team = biller.tenant(tenant["id"], "Team")
    boss = biller.as_user(tenant["id"], "boss", ["tenant-admin"])
    member = biller.as_user(team["id"], "dev", ["member"])
    stranger = biller.as_user(biller.tenant(root_id, "Other")["id"], "other", ["tenant-admin"])
    assert [i["id"] for i in boss.ok(boss.get("/invoices"))["items"]] == [invoice["id"]]
    assert boss.ok(boss.get(f"/invoices/{invoice['id']}"))["total"] == invoice["total"]
    assert stranger.ok(stranger.get("/invoices"))["items"] == []
    assert stranger.get(f"/invoices/{invoice['id']}").status_code == 404
    assert member.ok(member.get("/invoices"))["items"] == []  # a member has no billing:read
    assert (
        boss.post(f"/invoices/{invoice['id']}/actions", {"action": "finalize"}).status_code == 403
    )
    csv = boss.get(f"/invoices/{invoice['id']}", headers={"Accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[-1] == "total" + "," * 11 + invoice["total"]


def test_a_month_is_finalized_only_once_it_is_over(biller: Api, root_id: str):
    tenant, acct = setup(biller, root_id)
    send(biller, [event(tenant["id"], "i-vm1", "start", "2027-05-01T00:00:00Z")])
    may = bill(biller, acct["id"], "2027-05")  # the clock stands on 2027-05-10
    early = biller.post(f"/invoices/{may['id']}/actions", {"action": "finalize"})
    assert early.status_code == 409 and early.json()["code"] == "period-open"


def test_a_flat_price_is_charged_once_a_month_whatever_cuts_the_month(biller: Api, root_id: str):
    tenant = biller.tenant(root_id, "Acme")
    monthly = {"meter": "eip.allocated", "model": "flat", "unit_price": "20.00"}
    book(biller, "list", [monthly])
    acct = account(biller, tenant["id"])
    other = biller.tenant(root_id, "Other")["id"]  # its discount cuts every account's month
    cut = {"kind": "percent", "percent": "50", "tenant_id": other}
    biller.ok(biller.post("/discounts", {**cut, "valid_from": "2027-03-15T00:00:00Z"}), 201)
    eip = {"meter": "eip.allocated", "resource_type": "eip"}
    send(biller, [event(tenant["id"], "eip-a", "start", "2027-03-02T00:00:00Z", **eip)])
    assert amounts(bill(biller, acct["id"], "2027-03")) == ["20.00"]
