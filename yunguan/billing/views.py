"""Portal pages of billing: the invoices a principal may see with their cost over time, one
invoice with its lines (as CSV too) and, for administrators, the price books. Every read
and change goes through ``billing.service`` as the API's do, so a tenant sees what the API
shows it."""

from collections import defaultdict
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from operator import attrgetter
from typing import NamedTuple

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from yunguan.billing import periods, schemas, service
from yunguan.billing.money import plain
from yunguan.core.clock import now
from yunguan.identity import service as identity
from yunguan.identity.scope import Principal
from yunguan.web.portal import ALL, money, page, page_principal, panel, submit, templates

router = APIRouter(include_in_schema=False)
BOOKS = "/admin/billing/price-books"
MONTHS, TOP = 12, 10  # the chart's months; the top spenders shown
SLOT, BAR, TALL = 48, 36, 120  # the chart in px: a month's width, its bar's, the tallest bar


def tiers(rows: Iterable[schemas.TierOut]) -> str:
    """A tiered price as people read it: "≤10: 0.80, ≤50: 0.50, >50: 0.40"."""
    shown, lower = [], "0"
    for tier in rows:
        upper = None if tier.upper is None else plain(Decimal(tier.upper))
        bound = f">{lower}" if upper is None else f"≤{upper}"
        shown.append(f"{bound}: {money(Decimal(tier.unit_price), grouped=False)}")
        lower = upper or lower
    return ", ".join(shown)


templates.env.filters["plain"] = plain
templates.env.filters["tiers"] = tiers


def _tenant_names(session: Session, principal: Principal) -> dict[str, str]:
    rows, _ = identity.list_tenants(session, principal, ALL)
    return {t.id: t.name for t in rows}


# --- invoices and the cost over time ----------------------------------------------------------


class Bar(NamedTuple):
    """One month of the chart; its place and size in px."""

    period: str
    total: Decimal
    x: int
    y: int
    height: int
    middle: int  # of its month's slot: where its label goes


def _months(last: str) -> list[str]:
    """The MONTHS months up to ``last`` (YYYY-MM), oldest first."""
    end = int(last[:4]) * 12 + int(last[5:]) - 1
    return [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in range(end - MONTHS + 1, end + 1)]


def _bars(totals: dict[str, Decimal], last: str) -> list[Bar]:
    """A bar per month up to ``last``, the highest total TALL px tall (none shows no bar)."""
    months = _months(last)
    top = max(totals.get(m, Decimal(0)) for m in months) or Decimal(1)
    bars = []
    for n, month in enumerate(months):
        total = totals.get(month, Decimal(0))
        height = int((total / top * TALL).to_integral_value(ROUND_HALF_UP))
        height = max(height, 1) if total > 0 else 0
        left = n * SLOT
        bars.append(
            Bar(month, total, left + (SLOT - BAR) // 2, TALL - height, height, left + SLOT // 2)
        )
    return bars


def _spending(rows: list[schemas.InvoiceOut], tenant_names: dict[str, str]) -> list[dict]:
    """Per currency (amounts in two never add up): the invoices' totals per month over the
    last MONTHS months, and the tenants by total of the latest month. Credit notes are left
    out."""
    current = periods.period_of(now(), "UTC")
    spending = []
    for currency in sorted({r.currency for r in rows if r.kind == "invoice"}):
        billed = [r for r in rows if r.kind == "invoice" and r.currency == currency]
        monthly: dict[str, Decimal] = defaultdict(Decimal)
        for row in billed:
            monthly[row.period] += row.total
        latest = max(monthly)
        by_tenant: dict[str, Decimal] = defaultdict(Decimal)
        for row in billed:
            if row.period == latest:
                by_tenant[tenant_names.get(row.tenant_id, row.tenant_id)] += row.total
        spending.append(
            {
                "currency": currency,
                "bars": _bars(monthly, max(current, latest)),
                "latest": latest,
                "spenders": sorted(by_tenant.items(), key=lambda t: (-t[1], t[0]))[:TOP],
            }
        )
    return spending


def _invoices_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        rows, more = service.list_invoices(session, principal, ALL)
        tenant_names = _tenant_names(session, principal)
    shown = sorted(
        (schemas.InvoiceOut.model_validate(r) for r in rows),
        key=attrgetter("period"),
        reverse=True,
    )
    return panel(
        request,
        "billing_invoices.html",
        principal,
        status,
        invoices=shown,
        more=more,
        spending=_spending(shown, tenant_names),
        chart={"width": SLOT * MONTHS, "bar": BAR, "tall": TALL},
        tenant_names=tenant_names,
        error=error,
        notice=notice,
    )


@router.get("/billing", response_class=HTMLResponse)
def invoices_page(request: Request) -> Response:
    intro = "Invoices per month of each billing account's time zone, newest first."
    return page(request, "Billing", _invoices_panel, intro)


def _invoice_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        invoice = service.get_invoice(session, principal, request.path_params["invoice_id"])
        account = service.get_account(session, principal, invoice.account_id)
        detail = service.invoice_out(session, invoice)
        tenant_names = _tenant_names(session, principal)
    local = periods.zone(account.timezone)
    return panel(
        request,
        "billing_invoice.html",
        principal,
        status,
        i=detail,
        timezone=account.timezone,
        local_start=detail.period_start.astimezone(local),
        local_end=detail.period_end.astimezone(local),
        tenant_names=tenant_names,
        error=error,
        notice=notice,
    )


@router.get("/billing/invoices/{invoice_id}.csv")
def invoice_csv(request: Request, invoice_id: str) -> Response:
    """The invoice's lines and totals as the API's CSV, to download."""
    principal = page_principal(request)
    with request.app.state.db.session(write=False) as session:
        return service.invoice_csv(session, service.get_invoice(session, principal, invoice_id))


@router.get("/billing/invoices/{invoice_id}", response_class=HTMLResponse)
def invoice_page(request: Request, invoice_id: str) -> Response:
    return page(request, "Invoice", _invoice_panel)


@router.post("/billing/invoices/{invoice_id}/finalize", name="invoice.finalize")
def invoice_finalize(request: Request, invoice_id: str) -> Response:
    """Finalize the draft now: rated a last time, numbered and frozen."""

    def change(session: Session, principal: Principal) -> str:
        action = schemas.InvoiceAction(action="finalize")
        invoice = service.act_on_invoice(session, principal, invoice_id, action)
        return f"Finalized as {invoice.number}."

    return submit(request, _invoice_panel, change)


# --- price books ------------------------------------------------------------------------------


def _books_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        rows, more = service.list_books(session, principal, ALL)
    books = sorted(rows, key=lambda b: (b.name, -b.version))
    return panel(request, "billing_books.html", principal, status, books=books, more=more)


@router.get(BOOKS, response_class=HTMLResponse)
def books_page(request: Request) -> Response:
    intro = (
        "Versioned price lists: an account is billed with the published version of its book "
        "in effect at the time of use. Change them through the API or the CLI."
    )
    return page(request, "Price books", _books_panel, intro)


def _book_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        book = service.get_book(session, principal, request.path_params["book_id"])
        detail = service.book_out(session, book)
    return panel(request, "billing_book.html", principal, status, b=detail)


@router.get(BOOKS + "/{book_id}", response_class=HTMLResponse)
def book_page(request: Request, book_id: str) -> Response:
    return page(request, "Price book", _book_panel)
