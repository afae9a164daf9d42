"""Portal pages of billing: the invoices a principal may see with their cost over time, one
invoice with its lines (as CSV too), cost reports (as CSV too) and, for administrators, the
price books. Every read and change goes through ``billing.service`` (``billing.reports``) as
the API's do, so a tenant sees what the API shows it."""

from collections import defaultdict
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from operator import attrgetter
from typing import Any, NamedTuple

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from yunguan.billing import periods, reports, schemas, service
from yunguan.billing.money import plain
from yunguan.core.clock import now
from yunguan.core.errors import Problem
from yunguan.identity import service as identity
from yunguan.identity.scope import Principal
from yunguan.web.portal import ALL, money, page, page_principal, panel, submit, templates

router = APIRouter(include_in_schema=False)
BOOKS = "/admin/billing/price-books"
MONTHS, TOP = 12, 10  # the chart's months; the top spenders shown
SLOT, BAR, TALL = 48, 36, 120  # the charts in px: a month's width, its bar's, the tallest bar
COLOURS = ("#c8102e", "#1f6f8b", "#e8a33d", "#4f8a3c", "#7a4f9a")  # a chart's series, in order


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


# --- charts, invoices and the cost over time ---------------------------------------------------


class Part(NamedTuple):
    """One series' share of a month's bar: its top and height in px."""

    label: str
    amount: Decimal
    y: int
    height: int
    colour: str


class Bar(NamedTuple):
    """One month of a chart, its series stacked; its place in px."""

    period: str
    total: Decimal
    x: int
    middle: int  # of its month's slot: where its label goes
    parts: list[Part]


Series = list[tuple[str, dict[str, Decimal]]]
"""A chart's series, bottom first (one per colour): a label and its amount per month."""


def _px(amount: Decimal, highest: Decimal) -> int:
    return int((amount / highest * TALL).to_integral_value(ROUND_HALF_UP))


def _chart(series: Series, months: list[str]) -> dict[str, Any]:
    """A bar per month stacking the series' positive amounts (a month with none shows no bar),
    the highest bar TALL px tall; with the chart's width and legend."""
    coloured = [(label, a, colour) for (label, a), colour in zip(series, COLOURS, strict=False)]
    stacks = {
        month: [(label, a[month], colour) for label, a, colour in coloured if a.get(month, 0) > 0]
        for month in months
    }
    highest = max((sum(a for _, a, _ in s) for s in stacks.values()), default=0) or Decimal(1)
    bars = []
    for n, (month, stack) in enumerate(stacks.items()):
        parts, stacked, top = [], Decimal(0), 0
        for label, amount, colour in stack:
            stacked += amount
            height = max(_px(stacked, highest), top + 1) - top  # a part shows, if only 1 px
            top += height
            parts.append(Part(label, amount, TALL - top, height, colour))
        left = n * SLOT
        bars.append(Bar(month, stacked, left + (SLOT - BAR) // 2, left + SLOT // 2, parts))
    legend = [(label, colour) for label, _, colour in coloured if label]
    return {"bars": bars, "width": SLOT * len(months), "bar": BAR, "tall": TALL, "legend": legend}


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
                "chart": _chart([("", monthly)], reports.months(max(current, latest), MONTHS)),
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


# --- cost reports ------------------------------------------------------------------------------

GROUP_CHOICES = {
    "subtree": "Tenant subtree",
    "tenant": "Tenant",
    "product": "Product",
    "resource": "Resource",
}


def _report_query(request: Request) -> dict[str, Any]:
    params = request.query_params
    return reports.report_query(
        params.get("group_by"), params.get("from"), params.get("to"), params.get("tenant_id")
    )


def _cost_charts(rows: list[dict[str, Any]], months: list[str]) -> list[dict[str, Any]]:
    """Per currency (amounts in two never add up), the cost over the months of the groups
    that cost the most, stacked."""
    amounts: dict[str, dict[str, dict[str, Decimal]]] = defaultdict(lambda: defaultdict(dict))
    labels = {}
    for row in rows:
        amounts[row["currency"]][row["group"]][row["period"]] = row["amount"]
        labels[row["group"]] = row["label"]
    charts = []
    for currency, groups in sorted(amounts.items()):
        total = {group: sum(by_month.values()) for group, by_month in groups.items()}
        top = sorted((g for g in total if total[g] > 0), key=lambda g: (-total[g], labels[g]))
        series = [(labels[g], groups[g]) for g in top[: len(COLOURS)]]
        charts.append({"currency": currency, "chart": _chart(series, months)})
    return charts


def _report(session: Session, principal: Principal, query: dict[str, Any]) -> dict[str, Any]:
    """The page's rows and charts, and the top spenders of the latest month with a cost."""
    rows = reports.cost_report(session, principal, **query)
    latest = max((row["period"] for row in rows), default=query["end_period"])
    spenders = reports.top_spenders(session, principal, period=latest, tenant_id=query["tenant_id"])
    months = reports.months_between(query["start_period"], query["end_period"])
    charts = _cost_charts(rows, months)
    return {"rows": rows, "charts": charts, "latest": latest, "spenders": spenders}


def _reports_panel(request: Request, principal: Principal) -> Response:
    query = _report_query(request)
    asked = {
        "group_by": query["group_by"],
        "from": query["start_period"],
        "to": query["end_period"],
        "tenant_id": query["tenant_id"],
    }
    try:
        with request.app.state.db.session(write=False) as session:
            report, error, status = _report(session, principal, query), None, 200
    except Problem as exc:
        report, error, status = {"rows": [], "charts": []}, exc.detail, exc.status
    return panel(
        request,
        "billing_reports.html",
        principal,
        status,
        query=query,
        params={name: value for name, value in asked.items() if value},
        groups=GROUP_CHOICES,
        error=error,
        **report,
    )


@router.get("/billing/reports", response_class=HTMLResponse)
def reports_page(request: Request) -> Response:
    intro = (
        "What the invoices add up to per month (this month's draft: the cost to date), by the "
        "tenants below yours, tenant, product or resource."
    )
    return page(request, "Cost reports", _reports_panel, intro)


@router.get("/billing/reports.csv")
def reports_csv(request: Request) -> Response:
    """The report the page shows, as CSV."""
    principal = page_principal(request)
    query = _report_query(request)
    with request.app.state.db.session(write=False) as session:
        return reports.csv_response(reports.cost_report(session, principal, **query), query)


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
