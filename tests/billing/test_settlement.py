"""ISV settlement: a vendor is owed what its lines listed at on the invoices collected in a
month, less the commission rounded once; the platform's promotions are the platform's."""

from tests.billing.conftest import account, bill, book, event, send
from tests.support.api import ADMIN_PASSWORD, Api

SEATS = {"meter": "saas.seats", "resource_type": "saas"}


def seats(tenant_id: str, product: str, count: str) -> list[dict]:
    """``count`` seats of ``product`` all of March (Asia/Shanghai)."""
    fields = {**SEATS, "price_key": product, "quantity": count}
    resource = f"sub-{product.replace('-', '')}"
    return [
        event(tenant_id, resource, "start", "2027-03-01T00:00:00+08:00", **fields),
        event(tenant_id, resource, "stop", "2027-04-01T00:00:00+08:00", **fields),
    ]


def test_a_vendor_is_paid_its_list_price_less_commission_once(biller: Api, root_id: str, clock):
    crm = biller.tenant(root_id, "CRM Corp")
    tiny = biller.tenant(root_id, "Tiny Apps")
    acme = biller.tenant(root_id, "Acme")
    price = {"meter": "saas.seats", "basis": "month"}
    book(
        biller,
        "list",
        [
            {**price, "price_key": "crm-pro", "unit_price": "100.00"},
            {**price, "price_key": "lite", "unit_price": "33.33"},
        ],
    )
    vendor = biller.ok(
        biller.post(
            "/vendors",
            {
                "name": "CRM Corp",
                "tenant_id": crm["id"],
                "products": [{"meter": "saas.seats", "price_key": "crm-pro"}],
            },
        ),
        201,
    )
    small = biller.ok(
        biller.post(
            "/vendors",
            {
                "name": "Tiny Apps",
                "tenant_id": tiny["id"],
                "products": [{"meter": "saas.seats", "price_key": "lite"}],
            },
        ),
        201,
    )
    promotion = {"kind": "percent", "percent": "10", "meter": "saas.seats", "price_key": "crm-pro"}
    march = {"valid_from": "2027-02-28T16:00:00Z", "valid_until": "2027-03-31T16:00:00Z"}
    biller.ok(biller.post("/discounts", {**promotion, **march}), 201)  # funded by the platform
    acct = account(biller, acme["id"])
    send(biller, seats(acme["id"], "crm-pro", "1") + seats(acme["id"], "lite", "1"))
    invoice = bill(biller, acct["id"], "2027-03", finalize=True)
    assert [line["amount"] for line in invoice["lines"]] == ["90.00", "33.33"]
    pay = {"action": "pay", "amount": invoice["amount_due"], "reference": "bank-1"}
    biller.ok(biller.post(f"/invoices/{invoice['id']}/actions", pay))  # collected in May

    early = biller.post("/vendor-statements", {"vendor_id": vendor["id"], "period": "2027-05"})
    assert early.status_code == 409 and early.json()["code"] == "period-open"
    clock.advance(days=30)
    biller = biller.login("admin", ADMIN_PASSWORD)
    assert (
        biller.ok(
            biller.post("/vendor-statements", {"vendor_id": vendor["id"], "period": "2027-04"}), 201
        )
        == []
    )
    [statement] = biller.ok(
        biller.post("/vendor-statements", {"vendor_id": vendor["id"], "period": "2027-05"}), 201
    )
    assert (statement["base"], statement["fee"], statement["payout"], statement["lines"]) == (
        "100.00",
        "15.00",
        "85.00",
        1,
    )
    [rounded] = biller.ok(
        biller.post("/vendor-statements", {"vendor_id": small["id"], "period": "2027-05"}), 201
    )
    assert (rounded["base"], rounded["fee"], rounded["payout"]) == (
        "33.33",
        "5.00",
        "28.33",
    )  # 4.9995
    again = biller.post("/vendor-statements", {"vendor_id": vendor["id"], "period": "2027-05"})
    assert again.status_code == 409 and again.json()["code"] == "already-settled"

    own = biller.as_user(crm["id"], "crm-admin", ["tenant-admin"])
    assert [s["id"] for s in own.ok(own.get("/vendor-statements"))["items"]] == [statement["id"]]
    customer = biller.as_user(acme["id"], "boss", ["tenant-admin"])
    assert customer.ok(customer.get("/vendor-statements"))["items"] == []
    mine = {"name": "Mine", "tenant_id": acme["id"], "products": [{"meter": "saas.seats"}]}
    assert customer.post("/vendors", mine).status_code == 403


def test_a_vendor_sells_something(biller: Api, root_id: str):
    crm = biller.tenant(root_id, "CRM Corp")
    answer = biller.post("/vendors", {"name": "CRM Corp", "tenant_id": crm["id"]})
    assert answer.status_code == 422  # with no products it would be owed every line


def test_a_promotion_the_vendor_funds_reduces_its_base(biller: Api, root_id: str, clock):
    crm, acme = biller.tenant(root_id, "CRM Corp"), biller.tenant(root_id, "Acme")
    book(biller, "list", [{"meter": "saas.seats", "basis": "month", "unit_price": "100.00"}])
    product = {"meter": "saas.seats", "price_key": "crm-pro"}
    vendor = biller.ok(
        biller.post("/vendors", {"name": "CRM", "tenant_id": crm["id"], "products": [product]}),
        201,
    )
    march = {"valid_from": "2027-02-28T16:00:00Z", "valid_until": "2027-03-31T16:00:00Z"}
    off = {"kind": "percent", **product, **march}
    made = biller.ok(
        biller.post("/discounts", {**off, "percent": "20", "funded_by": "vendor"}), 201
    )
    assert made["funded_by"] == "vendor"
    biller.ok(biller.post("/discounts", {**off, "percent": "10"}), 201)  # the platform's
    fixed = {"kind": "fixed", "amount": "1", "funded_by": "vendor", **march}
    assert biller.post("/discounts", fixed).status_code == 422
    acct = account(biller, acme["id"])
    send(biller, seats(acme["id"], "crm-pro", "1"))
    invoice = bill(biller, acct["id"], "2027-03", finalize=True)
    [line] = invoice["lines"]
    assert (line["amount"], line["detail"]["list"], line["detail"]["vendor_base"]) == (
        "72.00",  # 100.00, 20 % off, then 10 % off
        "100",
        "80",
    )
    pay = {"action": "pay", "amount": invoice["amount_due"], "reference": "bank-1"}
    biller.ok(biller.post(f"/invoices/{invoice['id']}/actions", pay))
    clock.advance(days=30)
    biller = biller.login("admin", ADMIN_PASSWORD)
    [statement] = biller.ok(
        biller.post("/vendor-statements", {"vendor_id": vendor["id"], "period": "2027-05"}), 201
    )
    assert (statement["base"], statement["fee"], statement["payout"]) == ("80.00", "12.00", "68.00")
