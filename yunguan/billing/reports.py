"""Cost reports: invoice lines summed per month and per tenant subtree, tenant, product or
resource, for the API (JSON or CSV at ``GET /cost-reports``), the portal and the CLI.

A principal sees the lines of the invoices it may see (``billing:read`` on the paying
account's subtree) and those of its own subtree's tenants: a department whose parent pays
sees its own cost, and nothing of its siblings'.
"""

import csv
import io
from collections.abc import Callable
from itertools import groupby, islice
from operator import itemgetter
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from yunguan.billing import periods
from yunguan.billing.models import Invoice, InvoiceLine
from yunguan.billing.money import CURRENCIES, round_minor
from yunguan.billing.service import READ
from yunguan.core.api import Filter, problem_responses
from yunguan.core.clock import now
from yunguan.core.deps import DbSession
from yunguan.core.errors import Unprocessable
from yunguan.core.types import Amount, Output
from yunguan.identity.deps import CurrentPrincipal
from yunguan.identity.models import Tenant
from yunguan.identity.scope import Principal, get_visible, restrict, subtree_ids

GROUPS = ("subtree", "tenant", "project", "product", "resource")
KINDS = ("invoice", "credit_note")
REDUCTIONS = ("discount", "coupon")
OFF, OFF_LABEL = "discounts", "discounts and credits"
SPAN, MAX_SPAN = 6, 36  # months: the default range (up to this month), the longest
TOP = 5
CSV_COLUMNS = ("period", "currency", "group", "label", "amount")
FORMULA = ("=", "+", "-", "@", "\t", "\r")

Described = tuple[str, str, dict[str, str]]
"""A group as reported: its key, its label, and the columns it stands for."""
Grouped = tuple[Select[Any], Callable[..., Described]]
"""A report's statement with its group's columns, and how to read them."""


def report_query(
    group_by: str | None = None,
    start: str | None = None,
    end: str | None = None,
    tenant_id: str | None = None,
    currency: str | None = None,
) -> dict[str, Any]:
    """``cost_report``'s arguments from a request's: by subtree, over the last SPAN months
    (this one, in UTC, to date), unless given."""
    recent = periods.months(periods.period_of(now(), "UTC"), SPAN)
    return {
        "group_by": group_by or "subtree",
        "start_period": start or recent[0],
        "end_period": end or recent[-1],
        "tenant_id": tenant_id or None,
        "currency": currency or None,
    }


def _check(group_by: str, start: str, end: str, currency: str | None) -> None:
    if group_by not in GROUPS:
        raise Unprocessable(f"group_by is one of {', '.join(GROUPS)}", code="bad-group-by")
    for period in (start, end):
        if not periods.PERIOD.fullmatch(period):
            raise Unprocessable(f"{period!r} is not a month (YYYY-MM)", code="bad-period")
    if not 0 < periods.span(start, end) <= MAX_SPAN:
        raise Unprocessable(
            f"from {start} to {end}: 1 to {MAX_SPAN} months, oldest first", code="bad-period-range"
        )
    if currency is not None and currency not in CURRENCIES:
        raise Unprocessable(f"no currency {currency!r}", code="unknown-currency")


# --- groupings: the columns a report groups by, and how a group reads ---


def _tenant(tenant_id: str, name: str | None) -> Described:
    return tenant_id, name or tenant_id, {"tenant_id": tenant_id}


def _by_tenant(stmt: Select[Any], top: Tenant) -> Grouped:
    stmt = stmt.outerjoin(Tenant, Tenant.id == InvoiceLine.tenant_id)
    return stmt.add_columns(InvoiceLine.tenant_id, Tenant.name), _tenant


def _by_subtree(stmt: Select[Any], top: Tenant) -> Grouped:
    """Each line under the child of ``top`` above its tenant; ``top``'s own, and those of
    tenants since removed or moved out, under ``top``."""
    child = aliased(Tenant)
    above = and_(child.parent_id == top.id, Tenant.path.startswith(child.path))
    stmt = stmt.outerjoin(Tenant, Tenant.id == InvoiceLine.tenant_id).outerjoin(child, above)

    def describe(child_id: str | None, name: str | None) -> Described:
        return _tenant(child_id or top.id, name or top.name)

    return stmt.add_columns(child.id, child.name), describe


def _by(first: Any, second: Any) -> Callable[[Select[Any], Tenant], Grouped]:
    """Group by two columns of the line; discounts, coupons and credits of no usage are one
    group."""

    def describe(a: str, b: str) -> Described:
        keys = {first.key: a, second.key: b}
        if not a:
            return OFF, OFF_LABEL, keys
        return "/".join(filter(None, (a, b))), " ".join(filter(None, (a, b))), keys

    def grouping(stmt: Select[Any], top: Tenant) -> Grouped:
        off = or_(InvoiceLine.kind.in_(REDUCTIONS), InvoiceLine.meter == "")
        return stmt.add_columns(*(case((off, ""), else_=c) for c in (first, second))), describe

    return grouping


GROUPINGS: dict[str, Callable[[Select[Any], Tenant], Grouped]] = {
    "subtree": _by_subtree,
    "tenant": _by_tenant,
    "project": _by_tenant,  # a project is a leaf tenant
    "product": _by(InvoiceLine.meter, InvoiceLine.price_key),
    "resource": _by(InvoiceLine.resource_type, InvoiceLine.resource_id),
}


# --- reports ---


def _visible(principal: Principal) -> ColumnElement[bool]:
    """The lines of invoices the principal sees, and of its subtree's tenants (subqueries of
    their own: not correlated with the report's joined invoices and tenants)."""
    invoices = restrict(select(Invoice.id).correlate(None), Invoice, principal, READ)
    tenants = restrict(select(Tenant.id).correlate(None), Tenant, principal, READ)
    return or_(InvoiceLine.invoice_id.in_(invoices), InvoiceLine.tenant_id.in_(tenants))


def cost_report(
    session: Session,
    principal: Principal,
    *,
    group_by: str,
    start_period: str,
    end_period: str,
    tenant_id: str | None = None,
    currency: str | None = None,
) -> list[dict[str, Any]]:
    """Cost per month (``start_period`` to ``end_period``, ``YYYY-MM``), currency and group,
    largest first: the lines of invoices and credit notes, draft or finalized, so the current
    month's draft gives the cost to date (a correction counts in the month of the invoice or
    credit note that carries it).

    ``group_by``: ``subtree`` (the children of ``tenant_id``, by default the principal's
    tenant: the root for a platform administrator), ``tenant`` (``project`` is the same: a
    project is a leaf tenant), ``product`` (meter and price key) or ``resource``.
    ``tenant_id`` (visible, else 404) narrows the report to its subtree."""
    _check(group_by, start_period, end_period, currency)
    if tenant_id is None:
        top = session.get_one(Tenant, principal.tenant_id)
    else:
        top = get_visible(session, Tenant, tenant_id, principal, READ)
    stmt = (
        select(Invoice.period, Invoice.currency)
        .select_from(InvoiceLine)
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(
            _visible(principal),
            Invoice.kind.in_(KINDS),
            Invoice.period.between(start_period, end_period),
        )
    )
    if tenant_id is not None:  # what the subtree pays for, and what its tenants used
        paid = Invoice.tenant_path.startswith(top.path, autoescape=True)
        stmt = stmt.where(or_(paid, InvoiceLine.tenant_id.in_(subtree_ids(top.path))))
    if currency is not None:
        stmt = stmt.where(Invoice.currency == currency)
    stmt, describe = GROUPINGS[group_by](stmt, top)
    keys = list(stmt.selected_columns)
    amount = func.sum(InvoiceLine.amount)
    stmt = stmt.add_columns(amount).group_by(*keys).order_by(*keys[:2], amount.desc(), *keys[2:])
    rows = []
    for period, in_currency, *columns, total in session.execute(stmt):
        group, label, described = describe(*columns)
        rows.append(
            {
                "period": period,
                "currency": in_currency,
                "group": group,
                "label": label,
                **described,
                "amount": round_minor(total, in_currency),
            }
        )
    return rows


def top_spenders(
    session: Session,
    principal: Principal,
    *,
    period: str,
    group_by: str = "subtree",
    count: int = TOP,
    tenant_id: str | None = None,
    currency: str | None = None,
) -> list[dict[str, Any]]:
    """The ``count`` subtrees (or tenants: ``group_by="tenant"``) that cost the most in
    ``period``, per currency, most first: rows of ``cost_report``."""
    if group_by not in ("subtree", "tenant"):
        raise Unprocessable("top spenders are subtrees or tenants", code="bad-group-by")
    rows = cost_report(
        session,
        principal,
        group_by=group_by,
        start_period=period,
        end_period=period,
        tenant_id=tenant_id,
        currency=currency,
    )
    by_currency = groupby(sorted(rows, key=itemgetter("currency")), itemgetter("currency"))
    return [row for _, ranked in by_currency for row in islice(ranked, count)]


def _cell(value: Any) -> Any:
    """Text a spreadsheet would take for a formula (a tenant named "=…") kept as text."""
    return f"'{value}" if isinstance(value, str) and value[:1] in FORMULA else value


def csv_response(rows: list[dict[str, Any]], query: dict[str, Any]) -> Response:
    """The rows of the report ``query`` (``cost_report``'s arguments) as a CSV attachment."""
    name = "cost-by-{group_by}-{start_period}-{end_period}.csv".format(**query)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerows([_cell(row[column]) for column in CSV_COLUMNS] for row in rows)
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- REST ---


class CostRow(Output):
    period: str
    currency: str
    group: str
    label: str
    amount: Amount
    tenant_id: str | None = None
    meter: str | None = None
    price_key: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None


class CostReport(Output):
    items: list[CostRow]


router = APIRouter(responses=problem_responses(400, 401, 403, 404, 422))


@router.get(
    "/cost-reports",
    response_model=CostReport,
    response_model_exclude_none=True,
    tags=["cost-reports"],
    name="cost-report.get",
    responses={200: {"content": {"text/csv": {}}}},
)
def get_cost_report(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    group_by: Annotated[str | None, Query(max_length=16, description=", ".join(GROUPS))] = None,
    start: Annotated[str | None, Query(alias="from", max_length=7, description="YYYY-MM")] = None,
    end: Annotated[str | None, Query(alias="to", max_length=7, description="YYYY-MM")] = None,
    tenant_id: Filter = None,
    currency: Annotated[str | None, Query(max_length=3)] = None,
) -> Any:
    """Cost per month and group (by default the last six months, this one to date, by
    subtree); as CSV when asked for ``text/csv``."""
    query = report_query(group_by, start, end, tenant_id, currency)
    rows = cost_report(session, principal, **query)
    if "text/csv" in request.headers.get("accept", ""):
        return csv_response(rows, query)
    return {"items": rows}
