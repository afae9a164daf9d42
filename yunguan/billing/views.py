"""Portal pages of billing: the invoices a principal may see with their cost over time, one
invoice with its lines (as CSV too), cost reports (as CSV too), the billing accounts with
their wallets and payments (top-ups, grants, coupons redeemed) and the vendors' statements;
for administrators, the price books, discounts, coupons, vendors and the usage quarantine.
Every read and change goes through ``billing.service`` (``billing.reports``) as the API's do,
so a tenant sees what the API shows it."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from operator import attrgetter
from typing import Annotated, Any, ClassVar, NamedTuple

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from yunguan.billing import periods, reports, schemas, service
from yunguan.billing.money import CURRENCIES, plain
from yunguan.core.clock import now
from yunguan.core.errors import Problem
from yunguan.identity import service as identity
from yunguan.identity.scope import Principal
from yunguan.web.portal import (
    ALL,
    Panel,
    money,
    page,
    page_principal,
    panel,
    submit,
    templates,
)

router = APIRouter(include_in_schema=False)
ACCOUNTS, ADMIN = "/billing/accounts", "/admin/billing"
BOOKS, DISCOUNTS, COUPONS = ADMIN + "/price-books", ADMIN + "/discounts", ADMIN + "/coupons"
VENDORS, QUARANTINE = ADMIN + "/vendors", ADMIN + "/quarantine"
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


def _tenants(session: Session, principal: Principal) -> list[Any]:
    """The tenants the principal sees, each below its parent."""
    rows, _ = identity.list_tenants(session, principal, ALL)
    return sorted(rows, key=attrgetter("path"))


def _tenant_names(session: Session, principal: Principal) -> dict[str, str]:
    return {t.id: t.name for t in _tenants(session, principal)}


def _page(path: str, title: str, panel_of: Panel, intro: str = "") -> None:
    """The page at ``path``: ``panel_of`` under a title and what the page is for."""

    def show(request: Request) -> Response:
        return page(request, title, panel_of, intro)

    router.add_api_route(path, show, response_class=HTMLResponse, name=f"page:{path}")


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
                "chart": _chart([("", monthly)], periods.months(max(current, latest), MONTHS)),
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
    months = periods.months_between(query["start_period"], query["end_period"])
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


# --- forms ------------------------------------------------------------------------------------

Typed = Annotated[str, Field(max_length=300)]


class Fields(BaseModel):
    """A form's fields as typed; what the schemas read is those filled in, times in UTC."""

    TIMES: ClassVar[tuple[str, ...]] = ()

    def given(self) -> dict[str, str]:
        filled = {name: value.strip() for name, value in self.model_dump().items()}
        return {name: _utc(v) if name in self.TIMES else v for name, v in filled.items() if v}


def _utc(typed: str) -> str:
    """A time of a ``datetime-local`` field, read as UTC (one with an offset keeps it)."""
    try:
        moment = datetime.fromisoformat(typed)
    except ValueError:
        return typed  # the schema says what is wrong with it
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


# --- billing accounts: wallets, payments, top-ups, grants and coupons -------------------------


def _accounts_panel(request: Request, principal: Principal) -> Response:
    with request.app.state.db.session(write=False) as session:
        rows, more = service.list_accounts(session, principal, ALL)
        accounts = [
            (schemas.AccountOut.model_validate(a), service.wallet_out(session, a)) for a in rows
        ]
        vendors, _ = service.list_vendors(session, principal, ALL)
        tenant_names = _tenant_names(session, principal)
    accounts.sort(key=lambda pair: tenant_names.get(pair[0].tenant_id, pair[0].tenant_id))
    return panel(
        request,
        "billing_accounts.html",
        principal,
        200,
        accounts=accounts,
        more=more,
        vendors=bool(vendors),
        tenant_names=tenant_names,
    )


_page(
    ACCOUNTS,
    "Billing accounts",
    _accounts_panel,
    (
        "Who is billed how: prepaid accounts pay as they go from their wallets (granted "
        "credit first, then cash), postpaid ones are invoiced each month."
    ),
)


def _account_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    account_id = request.path_params["account_id"]
    with request.app.state.db.session(write=False) as session:
        account = service.get_account(session, principal, account_id)
        wallet = service.wallet_out(session, account)
        paid, more = service.list_payments(session, principal, ALL, account_id=account_id)
        billed, _ = service.list_invoices(session, principal, ALL, account_id=account_id)
        taken, _ = service.list_plan_subscriptions(
            session, principal, ALL, tenant_id=account.tenant_id
        )
        tenant_names = _tenant_names(session, principal)
    payments = [schemas.PaymentOut.model_validate(p) for p in paid]
    subscriptions = [schemas.PlanSubscriptionOut.model_validate(t) for t in taken]
    invoices = [schemas.InvoiceOut.model_validate(i) for i in billed]
    return panel(
        request,
        "billing_account.html",
        principal,
        status,
        a=schemas.AccountOut.model_validate(account),
        w=wallet,
        payments=sorted(payments, key=attrgetter("created_at"), reverse=True),
        more=more,
        invoices=sorted(invoices, key=attrgetter("period"), reverse=True),
        subscriptions=sorted(subscriptions, key=attrgetter("started_at"), reverse=True),
        tenant_names=tenant_names,
        error=error,
        notice=notice,
    )


_page(ACCOUNTS + "/{account_id}", "Billing account", _account_panel)


class AccountForm(Fields):
    action: Typed = ""
    amount: Typed = ""
    reference: Typed = ""
    method: Typed = ""
    code: Typed = ""


@router.post(ACCOUNTS + "/{account_id}/actions", name="billing-account.act")
def account_action(
    request: Request, account_id: str, form: Annotated[AccountForm, Form()]
) -> Response:
    """Top up the cash wallet or grant credit (the platform: once per reference), or redeem
    a coupon (the account's administrators)."""

    def change(session: Session, principal: Principal) -> str:
        data = schemas.AccountAction.model_validate(form.given())
        account = service.act_on_account(session, principal, account_id, data)
        if data.action == "redeem-coupon":
            return f"Redeemed coupon “{data.code}”: it comes off the invoices while it is valid."
        done = "Topped up" if data.action == "top-up" else "Granted a credit of"
        amount = money(data.amount)  # type: ignore[arg-type]
        return f"{done} {amount} {account.currency} (reference {data.reference})."

    return submit(request, _account_panel, change)


class PlanForm(Fields):
    plan: Typed = ""
    quantity: Typed = "1"


@router.post(ACCOUNTS + "/{account_id}/plans", name="billing-account.subscribe")
def account_subscribe(
    request: Request, account_id: str, form: Annotated[PlanForm, Form()]
) -> Response:
    """Subscribe the account's tenant to a plan (its administrators)."""

    def change(session: Session, principal: Principal) -> str:
        account = service.get_account(session, principal, account_id)
        data = schemas.PlanSubscriptionCreate.model_validate(
            {**form.given(), "tenant_id": account.tenant_id}
        )
        made = service.create_plan_subscription(session, principal, data)
        return f"Subscribed to plan “{made.plan}” (quantity {made.quantity}) from now on."

    return submit(request, _account_panel, change)


@router.post(ACCOUNTS + "/{account_id}/plans/{subscription_id}/end", name="plan.end")
def account_plan_end(request: Request, account_id: str, subscription_id: str) -> Response:
    def change(session: Session, principal: Principal) -> str:
        service.end_plan_subscription(session, principal, subscription_id)
        return f"Ended {subscription_id}: the day it ends is not billed."

    return submit(request, _account_panel, change)


# --- discounts and coupons --------------------------------------------------------------------


def _price_changes_panel(
    template: str, list_rows: Any, out: type[BaseModel], order: str, newest: bool = False
) -> Panel:
    """The panel of a list of discounts or coupons: ``list_rows`` from ``service``, shown as
    ``out`` by ``order``, with the form that creates one."""

    def panel_of(
        request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
    ) -> Response:
        with request.app.state.db.session(write=False) as session:
            rows, more = list_rows(session, principal, ALL)
            tenants = _tenants(session, principal)
        shown = sorted((out.model_validate(r) for r in rows), key=attrgetter(order))
        return panel(
            request,
            template,
            principal,
            status,
            rows=shown[::-1] if newest else shown,
            more=more,
            tenants=tenants,
            tenant_names={t.id: t.name for t in tenants},
            currencies=CURRENCIES,
            error=error,
            notice=notice,
        )

    return panel_of


_discounts_panel = _price_changes_panel(
    "billing_discounts.html", service.list_discounts, schemas.DiscountOut, "valid_from", True
)
_coupons_panel = _price_changes_panel(
    "billing_coupons.html", service.list_coupons, schemas.CouponOut, "code"
)


_page(
    DISCOUNTS,
    "Discounts",
    _discounts_panel,
    (
        "Price changes while valid, for a tenant subtree (or every tenant) and a meter (or "
        "all): an override of the unit price, a percentage off each line, or a fixed amount "
        "off each invoice. Tiered overrides are set through the API or the CLI."
    ),
)


_page(
    COUPONS,
    "Coupons",
    _coupons_panel,
    (
        "Codes a tenant's administrators redeem on its billing account: a percentage off its "
        "invoices of the months the coupon is valid in, or an amount used up across invoices."
    ),
)


class PriceChange(Fields):
    """What the forms of a discount and of a coupon have alike."""

    TIMES = ("valid_from", "valid_until")

    kind: Typed = ""
    percent: Typed = ""
    amount: Typed = ""
    currency: Typed = ""
    meter: Typed = ""
    valid_from: Typed = ""
    valid_until: Typed = ""
    description: Typed = ""


class DiscountForm(PriceChange):
    tenant_id: Typed = ""
    price_key: Typed = ""
    unit_price: Typed = ""
    funded_by: Typed = ""


class CouponForm(PriceChange):
    code: Typed = ""
    max_redemptions: Typed = ""


def _create_and_delete(
    path: str, form_type: type[Fields], schema: type[BaseModel], what: str, panel_of: Panel
) -> None:
    """The create form of a list and its rows' delete buttons, through ``service``'s
    ``create_`` and ``delete_`` functions of ``what``."""
    noun = what.lower()
    create, remove = getattr(service, f"create_{noun}"), getattr(service, f"delete_{noun}")

    @router.post(path + "/new", name=f"{noun}.create")
    def create_one(request: Request, form: Annotated[form_type, Form()]) -> Response:  # type: ignore[valid-type]
        def change(session: Session, principal: Principal) -> str:
            made = create(session, principal, schema.model_validate(form.given()))
            return f"Created {noun} {getattr(made, 'code', made.id)}."

        return submit(request, panel_of, change)

    @router.post(path + "/{item_id}/delete", name=f"{noun}.delete")
    def delete_one(request: Request, item_id: str) -> Response:
        def change(session: Session, principal: Principal) -> str:
            remove(session, principal, item_id)
            return f"{what} {item_id} deleted."

        return submit(request, panel_of, change)


_create_and_delete(DISCOUNTS, DiscountForm, schemas.DiscountCreate, "Discount", _discounts_panel)
_create_and_delete(COUPONS, CouponForm, schemas.CouponCreate, "Coupon", _coupons_panel)


# --- vendors and their statements -------------------------------------------------------------


def _vendors_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        rows, more = service.list_vendors(session, principal, ALL)
        settled, more_statements = service.list_statements(session, principal, ALL)
        tenants = _tenants(session, principal)
    vendors = sorted((schemas.VendorOut.model_validate(v) for v in rows), key=attrgetter("name"))
    statements = [schemas.StatementOut.model_validate(s) for s in settled]
    return panel(
        request,
        "billing_vendors.html",
        principal,
        status,
        vendors=vendors,
        more=more,
        vendor_names={v.id: v.name for v in vendors},
        statements=sorted(statements, key=attrgetter("period", "vendor_id"), reverse=True),
        more_statements=more_statements,
        tenants=tenants,
        tenant_names={t.id: t.name for t in tenants},
        last_month=periods.months(periods.period_of(now(), "UTC"), 2)[0],
        error=error,
        notice=notice,
    )


_page(
    VENDORS,
    "Vendors",
    _vendors_panel,
    (
        "Third parties whose offerings the platform sells: once a customer's invoice is "
        "collected, a vendor is owed what its lines listed at, less the commission, on the "
        "statement of the month it was collected in."
    ),
)


class VendorForm(Fields):
    name: Typed = ""
    tenant_id: Typed = ""
    commission_rate: Typed = ""
    products: Annotated[str, Field(max_length=8000)] = ""


def _products(typed: str) -> list[dict[str, str]]:
    """Products as typed: ``meter`` or ``meter:price_key``, by line or comma."""
    entries = typed.replace(",", " ").split()
    return [dict(zip(("meter", "price_key"), e.split(":", 1), strict=False)) for e in entries]


@router.post(VENDORS + "/new", name="vendor.create")
def vendor_create(request: Request, form: Annotated[VendorForm, Form()]) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = schemas.VendorCreate.model_validate(
            form.given() | {"products": _products(form.products)}
        )
        vendor = service.create_vendor(session, principal, data)
        return f"Created vendor “{vendor.name}”."

    return submit(request, _vendors_panel, change)


class SettleForm(Fields):
    vendor_id: Typed = ""
    period: Typed = ""


@router.post(VENDORS + "/statements", name="vendor-statement.create")
def vendor_settle(request: Request, form: Annotated[SettleForm, Form()]) -> Response:
    """Settle a vendor's month once it is over: a statement per currency."""

    def change(session: Session, principal: Principal) -> str:
        data = schemas.StatementCreate.model_validate(form.given())
        statements = service.settle_vendor(session, principal, data)
        name = service.get_vendor(session, principal, data.vendor_id).name
        if not statements:
            return f"{name} had nothing collected in {data.period}: no statement."
        return f"Settled {name} for {data.period}: {len(statements)} statement(s)."

    return submit(request, _vendors_panel, change)


# --- the usage quarantine ---------------------------------------------------------------------


def _quarantine_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        rows, more = service.list_quarantine(session, principal, ALL)
        tenant_names = _tenant_names(session, principal)
    held = [schemas.QuarantineOut.model_validate(q) for q in rows]
    return panel(
        request,
        "billing_quarantine.html",
        principal,
        status,
        held=sorted(held, key=attrgetter("received_at"), reverse=True),
        more=more,
        tenant_names=tenant_names,
        error=error,
        notice=notice,
    )


@router.post(QUARANTINE + "/{held_id}/{action}", name="usage-quarantine.act")
def quarantine_action(request: Request, held_id: str, action: str) -> Response:
    """Accept a quarantined copy in place of the recorded event, or discard it."""

    def change(session: Session, principal: Principal) -> str:
        data = schemas.QuarantineAction.model_validate({"action": action})
        held = service.resolve_quarantine(session, principal, held_id, data)
        return f"{held.state.capitalize()} the copy of {held.event_id}."

    return submit(request, _quarantine_panel, change)


_page(
    QUARANTINE,
    "Usage quarantine",
    _quarantine_panel,
    (
        "Copies of usage events that differ from the one recorded under the same source and "
        "event id: the first copy counts until one of these is accepted in its place."
    ),
)
