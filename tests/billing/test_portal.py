"""The billing pages of the portal: invoices with their cost over time, an invoice with its
lines and CSV, and the price books; each tenant sees the invoices the API shows it."""

from decimal import Decimal

import pytest

from tests.billing.conftest import account, bill, book, event, send
from tests.billing.test_examples import hourly
from tests.network.test_portal import Portal
from tests.orders.test_portal import row_of
from tests.support.api import ADMIN_PASSWORD, Api

TIERS = [
    {"upper": "10", "unit_price": "0.80"},
    {"upper": "50", "unit_price": "0.50"},
    {"upper": None, "unit_price": "0.40"},
]


@pytest.fixture
def acme(biller: Api, root_id: str) -> dict:
    return biller.tenant(root_id, "Acme")


@pytest.fixture
def march(biller: Api, acme: dict) -> dict:
    """Acme's draft invoice of March 2027: a resize mid-month, 558.00 + 6% VAT."""
    egress = {"meter": "network.egress_gb", "basis": "unit", "model": "graduated", "tiers": TIERS}
    book(biller, "list", [hourly("0.50", "fl-2c4g"), hourly("1.00", "fl-4c8g"), egress])
    acct = account(biller, acme["id"])
    vm = acme["id"], "i-vm1"
    send(
        biller,
        [
            event(*vm, "start", "2027-03-01T00:00:00+08:00", price_key="fl-2c4g"),
            event(*vm, "stop", "2027-03-16T12:00:00+08:00", price_key="fl-2c4g"),
            event(*vm, "start", "2027-03-16T12:00:00+08:00", price_key="fl-4c8g"),
        ],
    )
    return bill(biller, acct["id"], "2027-03")


@pytest.fixture
def admin_portal(app, biller: Api) -> Portal:
    return Portal(app, "admin", ADMIN_PASSWORD)  # logged in on the moved clock


def test_the_billing_page_lists_invoices_and_their_cost_over_time(
    admin_portal: Portal, march: dict
) -> None:
    page = admin_portal.get("/billing")
    assert 'href="/billing"' in page and 'href="/admin/billing/price-books"' in page
    row = row_of(page, f'data-invoice="{march["id"]}"')
    for shown in (">draft<", "2027-03", "Acme", "558.00", "33.48", ">591.48<", "CNY"):
        assert shown in row, shown
    march_bar = page.split('<g data-period="2027-03">')[1].split("</g>")[0]
    assert 'height="120"' in march_bar and 'data-total="591.48"' in march_bar
    april = page.split('<g data-period="2027-04">')[1].split("</g>")[0]
    assert "<rect" not in april  # nothing billed: no bar
    assert 'data-period="2026-06"' in page and 'data-period="2026-05"' not in page  # 12 months
    assert '<li data-spender="Acme">Acme: 591.48</li>' in page


def test_an_invoice_shows_its_lines_and_downloads_as_csv(admin_portal: Portal, march: dict) -> None:
    path = f"/billing/invoices/{march['id']}"
    page = admin_portal.get(path)
    assert "2027-03-01 00:00 to 2027-04-01 00:00 <small>Asia/Shanghai</small>" in page
    assert "Finalized after" in page and ">Finalize<" in page
    first, second = row_of(page, 'data-line="1"'), row_of(page, 'data-line="2"')
    assert "i-vm1" in first and "fl-2c4g" in first and ">372<" in first and ">0.50<" in first
    assert ">1339200<" in first and ">186.00<" in first
    assert "fl-4c8g" in second and ">372.00<" in second
    assert 'data-subtotal="558.00"' in page and 'data-tax="33.48"' in page
    assert 'data-total="591.48"' in page and "Tax (6%)" in page

    assert f'href="{path}.csv"' in page
    download = admin_portal.client.get(f"{path}.csv")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"] == f'attachment; filename="{march["id"]}.csv"'
    lines = download.text.strip().splitlines()
    assert lines[0].startswith("line_no,kind,") and len(lines) == 1 + 2 + 3
    total = lines[-1].split(",")
    assert total[0] == "total" and Decimal(total[-1]) == Decimal("591.48")


def test_an_administrator_finalizes_a_draft(
    app, admin_portal: Portal, biller: Api, acme: dict, march: dict
) -> None:
    path = f"/billing/invoices/{march['id']}"
    biller.user(acme["id"], "acme-boss", ["tenant-admin"])
    boss = Portal(app, "acme-boss")
    assert ">Finalize<" not in boss.get(path) and "591.48" in boss.get(path)
    boss.post(f"{path}/finalize", 403)

    done = admin_portal.post(f"{path}/finalize")
    assert "Finalized as INV-202703-000001." in done and ">Finalize<" not in done
    assert 'data-state="finalized"' in done
    assert biller.ok(biller.get(f"/invoices/{march['id']}"))["state"] == "finalized"
    assert ">INV-202703-000001<" in admin_portal.get("/billing")
    admin_portal.post(f"{path}/finalize", 409)
    csv = admin_portal.client.get(f"{path}.csv").headers["content-disposition"]
    assert csv == 'attachment; filename="INV-202703-000001.csv"'


def test_another_tenants_invoices_are_not_found(
    app, biller: Api, root_id: str, acme: dict, march: dict
) -> None:
    globex = biller.tenant(root_id, "Globex")
    biller.user(globex["id"], "boss", ["tenant-admin"])
    biller.user(acme["id"], "acme-boss", ["tenant-admin"])
    theirs, mine = Portal(app, "boss"), Portal(app, "acme-boss")

    listed = theirs.get("/billing")
    assert 'href="/billing"' in listed and "Price books" not in listed
    assert march["id"] not in listed and "No invoices to show." in listed
    assert "<svg" not in listed
    path = f"/billing/invoices/{march['id']}"
    for hidden in (path, f"{path}.csv"):
        assert theirs.client.get(hidden).status_code == 404, hidden

    own = mine.get("/billing")
    assert march["id"] in own and 'data-total="591.48"' in own
    assert "Top spenders" not in own  # platform administrators only


def test_a_member_sees_no_bills(app, biller: Api, acme: dict, march: dict) -> None:
    biller.user(acme["id"], "dev", ["member"])
    member = Portal(app, "dev")
    assert 'href="/billing"' not in member.get("/")
    page = member.get("/billing")
    assert march["id"] not in page and "591.48" not in page and "No invoices to show." in page
    path = f"/billing/invoices/{march['id']}"
    for hidden in (path, f"{path}.csv"):
        assert member.client.get(hidden).status_code == 404, hidden


def test_the_price_books_page_shows_prices_and_tiers(admin_portal: Portal, march: dict) -> None:
    [listed] = admin_portal.get("/admin/billing/price-books").split('data-book="')[1:]
    book_id = listed.split('"')[0]
    assert ">list</a>" in listed and ">v1<" in listed and ">CNY<" in listed
    assert 'data-state="published"' in listed and "2020-01-01 00:00" in listed

    page = admin_portal.get(f"/admin/billing/price-books/{book_id}")
    assert "<td data-tiers>≤10: 0.80, ≤50: 0.50, &gt;50: 0.40</td>" in page
    assert "graduated" in page and "network.egress_gb" in page
    hourly_rows = [row_of(page, f"<td>{key}</td>") for key in ("fl-2c4g", "fl-4c8g")]
    assert ">0.50<" in hourly_rows[0] and ">1.00<" in hourly_rows[1]
