"""The money pages of the portal: billing accounts with their wallets, top-ups, grants and
coupons; discounts and coupons, vendors and their statements, and the usage quarantine for
administrators. Each goes through the service the API uses, so it refuses what the API
refuses and its errors show on the page."""

import pytest

from tests.billing.conftest import account, bill, book, event, send
from tests.billing.test_discounts import MAY, running
from tests.billing.test_settlement import seats
from tests.network.test_portal import Portal
from tests.orders.test_portal import row_of
from tests.support.api import ADMIN_PASSWORD, Api

HOURLY = {"meter": "instance.running", "basis": "hour", "unit_price": "1.00"}


@pytest.fixture
def acme(biller: Api, root_id: str) -> dict:
    return biller.tenant(root_id, "Acme")


@pytest.fixture
def acct(biller: Api, acme: dict) -> dict:
    book(biller, "list", [HOURLY])
    return account(biller, acme["id"], mode="prepaid")


@pytest.fixture
def admin_portal(app, biller: Api) -> Portal:
    return Portal(app, "admin", ADMIN_PASSWORD)  # logged in on the moved clock


def test_an_administrator_tops_up_and_grants_once_per_reference(
    admin_portal: Portal, biller: Api, acct: dict
) -> None:
    listed = admin_portal.get("/billing/accounts")
    assert 'href="/billing/accounts"' in listed and 'href="/admin/billing/quarantine"' in listed
    row = row_of(listed, f'data-account="{acct["id"]}"')
    for shown in ("Acme</a>", ">prepaid<", ">CNY<", ">list<", 'data-state="active"'):
        assert shown in row, shown
    assert 'data-cash="0.00"' in row and 'data-credit="0.00"' in row

    path = f"/billing/accounts/{acct['id']}"
    top_up = {"action": "top-up", "amount": "10.00", "reference": "bank-1", "method": "transfer"}
    done = admin_portal.post(f"{path}/actions", **top_up)
    assert "Topped up 10.00 CNY (reference bank-1)." in done
    assert 'data-cash="10.00"' in done and 'data-balance="10.00"' in done
    again = admin_portal.post(f"{path}/actions", **top_up)  # a retry counts once
    assert 'data-cash="10.00"' in again and again.count('data-payment="bank-1"') == 1
    payment = row_of(again, 'data-payment="bank-1"')
    assert ">top-up<" in payment and 'data-amount="10.00"' in payment and ">transfer<" in payment

    conflict = admin_portal.post(f"{path}/actions", 409, **{**top_up, "amount": "12.00"})
    assert (
        '<p class="error" role="alert">payment &#39;bank-1&#39; was recorded as a top-up of 10'
        in (conflict)
    )
    assert 'data-cash="10.00"' in conflict and 'data-amount="12.00"' not in conflict
    missing = admin_portal.post(f"{path}/actions", 422, action="grant", amount="5.00")
    assert "grant needs an amount and a reference" in missing

    granted = admin_portal.post(
        f"{path}/actions", action="grant", amount="5.00", reference="welcome"
    )
    assert "Granted a credit of 5.00 CNY (reference welcome)." in granted
    assert 'data-credit="5.00"' in granted and 'data-balance="15.00"' in granted
    row = row_of(admin_portal.get("/billing/accounts"), f'data-account="{acct["id"]}"')
    assert 'data-cash="10.00"' in row and 'data-credit="5.00"' in row
    assert 'data-balance="15.00"' in row
    [held] = biller.ok(biller.get("/wallets", params={"account_id": acct["id"]}))["items"]
    assert (held["cash"], held["credit"], held["balance"]) == ("10.00", "5.00", "15.00")
    payments = biller.ok(biller.get("/payments", params={"account_id": acct["id"]}))["items"]
    assert sorted((p["reference"], p["kind"], p["amount"]) for p in payments) == [
        ("bank-1", "top-up", "10.00"),
        ("welcome", "grant", "5.00"),
    ]


def test_a_tenant_administrator_redeems_a_coupon_and_sees_the_discount(
    app, biller: Api, acme: dict, acct: dict
) -> None:
    biller.ok(
        biller.post("/coupons", {"code": "WELCOME5", "kind": "amount", "amount": "5"} | MAY), 201
    )
    biller.user(acme["id"], "acme-boss", ["tenant-admin"])
    boss = Portal(app, "acme-boss")
    path = f"/billing/accounts/{acct['id']}"

    page = boss.get(path)
    assert 'id="redeem-coupon"' in page and 'id="top-up"' not in page and 'id="grant"' not in page
    done = boss.post(f"{path}/actions", action="redeem-coupon", code="WELCOME5")
    assert "Redeemed coupon “WELCOME5”" in done
    twice = boss.post(f"{path}/actions", 409, action="redeem-coupon", code="WELCOME5")
    assert "the account holds coupon &#39;WELCOME5&#39;" in twice
    unknown = boss.post(f"{path}/actions", 422, action="redeem-coupon", code="NOPE")
    assert "no coupon &#39;NOPE&#39; is valid now" in unknown
    refused = boss.post(f"{path}/actions", 403, action="top-up", amount="9", reference="x-1")
    assert "permission &#39;billing:write&#39; required" in refused

    send(biller, running(acme["id"], "i-vm1", "2027-05-01T00:00:00Z", "2027-05-05T04:00:00Z"))
    invoice = bill(biller, acct["id"], "2027-05")
    shown = row_of(boss.get(path), f'data-invoice="{invoice["id"]}"')
    assert "2027-05" in shown and 'data-total="100.70"' in shown  # 100.00 - 5.00, + 6%
    lines = boss.get(f"/billing/invoices/{invoice['id']}")
    coupon = row_of(lines, "<td>coupon</td>")
    assert 'data-amount="-5.00"' in coupon
    assert 'data-subtotal="95.00"' in lines


def test_another_tenants_account_is_not_found(app, biller: Api, root_id: str, acct: dict) -> None:
    globex = biller.tenant(root_id, "Globex")
    biller.user(globex["id"], "boss", ["tenant-admin"])
    theirs = Portal(app, "boss")
    listed = theirs.get("/billing/accounts")
    assert acct["id"] not in listed and "No billing accounts to show." in listed
    assert 'href="/admin/billing/discounts"' not in listed
    path = f"/billing/accounts/{acct['id']}"
    assert theirs.client.get(path).status_code == 404
    api = biller.login("boss")
    assert api.get(f"/billing-accounts/{acct['id']}").status_code == 404  # as the API answers
    theirs.post(f"{path}/actions", 404, action="redeem-coupon", code="WELCOME5")


def test_discounts_and_coupons_are_created_and_deleted_through_the_forms(
    app, admin_portal: Portal, biller: Api, acme: dict
) -> None:
    path = "/admin/billing/discounts"
    assert "No discounts yet." in admin_portal.get(path)
    made = admin_portal.post(
        f"{path}/new",
        kind="percent",
        percent="10",
        tenant_id=acme["id"],
        meter="instance.running",
        currency="CNY",
        valid_from="2027-05-01T00:00",
        valid_until="",
        description="spring",
    )
    [created] = biller.ok(biller.get("/discounts"))["items"]
    assert f"Created discount {created['id']}." in made
    assert (created["tenant_id"], created["percent"]) == (acme["id"], "10")
    assert (created["valid_from"], created["valid_until"]) == ("2027-05-01T00:00:00Z", None)
    row = row_of(made, f'data-discount="{created["id"]}"')
    for shown in (
        "spring",
        ">Acme<",
        ">instance.running<",
        ">10%<",
        'data-valid-from="2027-05-01 00:00"',
    ):
        assert shown in row, shown
    assert "open-ended" in row
    incomplete = admin_portal.post(
        f"{path}/new", 422, kind="percent", valid_from="2027-05-01T00:00"
    )
    assert "a percent discount needs its percent" in incomplete
    garbled = admin_portal.post(f"{path}/new", 422, kind="fixed", amount="x", valid_from="soon")
    assert "valid_from: Input should be a valid datetime" in garbled and "amount: " in garbled
    assert len(biller.ok(biller.get("/discounts"))["items"]) == 1

    gone = admin_portal.post(f"{path}/{created['id']}/delete")
    assert f"Discount {created['id']} deleted." in gone and "No discounts yet." in gone
    assert biller.ok(biller.get("/discounts"))["items"] == []

    path = "/admin/billing/coupons"
    coupon = {"code": "SPRING50", "kind": "amount", "amount": "50", "currency": "CNY"}
    made = admin_portal.post(
        f"{path}/new", **coupon, max_redemptions="3", valid_from="2027-05-01T00:00"
    )
    [created] = biller.ok(biller.get("/coupons"))["items"]
    assert "Created coupon SPRING50." in made
    assert (created["code"], created["amount"], created["max_redemptions"]) == ("SPRING50", "50", 3)
    row = row_of(made, 'data-coupon="SPRING50"')
    assert ">50.00<" in row and ">at most 3<" in row and ">amount<" in row
    duplicate = admin_portal.post(f"{path}/new", 409, **coupon, valid_from="2027-05-01T00:00")
    assert "a coupon with code &#39;SPRING50&#39; exists" in duplicate
    gone = admin_portal.post(f"{path}/{created['id']}/delete")
    assert f"Coupon {created['id']} deleted." in gone and "No coupons yet." in gone
    assert biller.ok(biller.get("/coupons"))["items"] == []

    biller.user(acme["id"], "acme-boss", ["tenant-admin"])
    boss = Portal(app, "acme-boss")
    for admin_only in ("/admin/billing/discounts", "/admin/billing/coupons"):
        assert boss.client.get(admin_only).status_code == 403, admin_only
    boss.post(f"{path}/new", 403, **coupon, valid_from="2027-05-01T00:00")


def test_a_vendor_is_created_and_its_month_settled_and_listed(
    app, admin_portal: Portal, biller: Api, root_id: str, acme: dict, clock
) -> None:
    crm = biller.tenant(root_id, "CRM Corp")
    price = {"meter": "saas.seats", "basis": "month", "price_key": "crm-pro", "unit_price": "100"}
    book(biller, "list", [price])
    path = "/admin/billing/vendors"
    made = admin_portal.post(
        f"{path}/new",
        name="CRM Corp",
        tenant_id=crm["id"],
        commission_rate="0.15",
        products="saas.seats:crm-pro",
    )
    assert "Created vendor “CRM Corp”." in made
    [vendor] = biller.ok(biller.get("/vendors"))["items"]
    assert vendor["products"] == [{"meter": "saas.seats", "price_key": "crm-pro"}]
    row = row_of(made, f'data-vendor="{vendor["id"]}"')
    assert ">CRM Corp<" in row and "saas.seats: crm-pro" in row and ">15%<" in row
    empty = admin_portal.post(f"{path}/new", 422, name="Nobody", tenant_id=crm["id"])
    assert "products" in empty and 'role="alert"' in empty

    acct = account(biller, acme["id"])
    send(biller, seats(acme["id"], "crm-pro", "1"))
    invoice = bill(biller, acct["id"], "2027-03", finalize=True)
    pay = {"action": "pay", "amount": invoice["amount_due"], "reference": "bank-1"}
    biller.ok(biller.post(f"/invoices/{invoice['id']}/actions", pay))  # collected in May
    early = admin_portal.post(f"{path}/statements", 409, vendor_id=vendor["id"], period="2027-05")
    assert "2027-05 is not over yet" in early

    clock.advance(days=30)
    biller = biller.login("admin", ADMIN_PASSWORD)
    admin = Portal(app, "admin", ADMIN_PASSWORD)
    settled = admin.post(f"{path}/statements", vendor_id=vendor["id"], period="2027-05")
    assert "Settled CRM Corp for 2027-05: 1 statement(s)." in settled
    [statement] = biller.ok(biller.get("/vendor-statements"))["items"]
    row = row_of(settled, f'data-statement="{statement["id"]}"')
    for shown in (">CRM Corp<", ">2027-05<", ">CNY<", 'data-base="100.00"', 'data-fee="15.00"'):
        assert shown in row, shown
    assert 'data-payout="85.00"' in row
    twice = admin.post(f"{path}/statements", 409, vendor_id=vendor["id"], period="2027-05")
    assert "CRM Corp is settled for 2027-05" in twice

    biller.user(crm["id"], "crm-boss", ["tenant-admin"])
    biller.user(acme["id"], "acme-boss", ["tenant-admin"])
    own = Portal(app, "crm-boss").get(path)
    assert 'data-payout="85.00"' in own and 'id="settle"' not in own
    assert 'id="create-vendor"' not in own
    assert "Vendor statements" in Portal(app, "crm-boss").get("/billing/accounts")
    other = Portal(app, "acme-boss").get(path)
    assert statement["id"] not in other and "No statements yet." in other


def test_the_quarantine_page_shows_a_differing_copy(
    app, admin_portal: Portal, biller: Api, acme: dict
) -> None:
    assert "No quarantined usage." in admin_portal.get("/admin/billing/quarantine")
    first = event(acme["id"], "i-vm1", "start", "2027-05-01T00:00:00Z", quantity="1")
    send(biller, [first])
    counts = send(biller, [{**first, "quantity": "2"}])
    assert counts["quarantined"] == 1

    page = admin_portal.get("/admin/billing/quarantine")
    [held] = biller.ok(biller.get("/usage-quarantine"))["items"]
    row = row_of(page, f'data-held="{held["id"]}"')
    assert ">test<" in row and f"<code>{first['event_id']}</code>" in row and ">Acme<" in row
    assert "2027-05-01 00:00" in row and 'data-quantity="2"' in row and "i-vm1" in row

    biller.user(acme["id"], "acme-boss", ["tenant-admin"])
    boss = Portal(app, "acme-boss")
    assert boss.client.get("/admin/billing/quarantine").status_code == 403
