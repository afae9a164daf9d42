"""Rating: usage of a month into priced lines, per billing account.

SQL does what grows with the events: deriving intervals, slicing them at the period's
bounds (whole seconds) and summing per resource, meter and price. Python prices the sums,
in Decimal, once per line: rows number the resources, not the events.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    String,
    Table,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session, aliased

from yunguan.billing import metering, periods, pricing
from yunguan.billing.models import BillingAccount, PriceBook, PriceItem, UsageEvent
from yunguan.billing.money import exact, plain, round_minor
from yunguan.identity.models import Tenant

_run = Table(
    "billing_run",
    MetaData(),
    Column("tenant_id", String(40), primary_key=True),
    Column("account_id", String(40)),
    Column("book_id", String(40)),
    Column("s0", BigInteger),
    Column("s1", BigInteger),
    prefixes=["TEMPORARY"],
)
"""Who is rated in this run: each tenant with its account, book and period (``[s0, s1)`` in
epoch seconds, the end cut at the time of rating: the future is never billed)."""

_CREATE_RUN = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS billing_run (tenant_id VARCHAR(40) PRIMARY KEY,"
    " account_id VARCHAR(40), book_id VARCHAR(40), s0 BIGINT, s1 BIGINT)"
)


@dataclass
class Line:
    """An invoice line before it is written."""

    tenant_id: str
    resource_type: str
    resource_id: str
    meter: str
    price_key: str
    price_item_id: str | None
    basis: str
    quantity: Decimal
    seconds: int
    starts: int
    unit_price: Decimal
    exact: Decimal
    amount: Decimal
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What makes two ratings of a period the same line (for corrections)."""
        return (self.resource_id, self.meter, self.price_key, self.price_item_id or "")


@dataclass
class Rated:
    """An account's month: its lines and the book version that priced them."""

    account: BillingAccount
    period: str
    start: datetime
    end: datetime
    book: PriceBook | None
    lines: list[Line] = field(default_factory=list)


def account_of_tenants(session: Session) -> dict[str, BillingAccount]:
    """Each tenant's billing account: its own, or its nearest ancestor's."""
    accounts = {a.tenant_id: a for a in session.scalars(select(BillingAccount))}
    owner: dict[str, BillingAccount] = {}
    for tenant_id, path in session.execute(select(Tenant.id, Tenant.path)):
        for ancestor in reversed(path.strip("/").split("/")):
            if ancestor in accounts:
                owner[tenant_id] = accounts[ancestor]
                break
    return owner


def rate(
    session: Session, accounts: list[BillingAccount], period: str, as_of: datetime
) -> list[Rated]:
    """The lines of ``period`` for ``accounts``, from the usage recorded before ``as_of``."""
    owner = account_of_tenants(session)
    wanted = {a.id for a in accounts}
    books: dict[tuple[str, datetime], PriceBook | None] = {}
    runs: dict[str, Rated] = {}
    for account in accounts:
        start, end = periods.bounds(period, account.timezone)
        key = (account.price_book, start)
        if key not in books:
            books[key] = pricing.in_effect(session, account.price_book, start)
        runs[account.id] = Rated(account, period, start, end, books[key])
    rows = []
    for tenant_id, account in owner.items():
        if account.id in wanted:
            run = runs[account.id]
            cut = min(run.end, as_of)
            book_id = run.book.id if run.book else ""
            s0, s1 = int(run.start.timestamp()), int(cut.timestamp())
            rows.append(
                {
                    "tenant_id": tenant_id,
                    "account_id": account.id,
                    "book_id": book_id,
                    "s0": s0,
                    "s1": s1,
                }
            )
    if not rows:
        return list(runs.values())
    session.execute(text(_CREATE_RUN))
    session.execute(_run.delete())
    session.execute(_run.insert(), rows)
    until = max(row["s1"] for row in rows)
    items = _items(session, {r.book.id for r in runs.values() if r.book})
    usage: dict[str, list[tuple[Any, Decimal]]] = defaultdict(list)
    for row in session.execute(_interval_usage(until)):
        usage[row.account_id].append((row, Decimal(row.qty_seconds) + Decimal(row.topup)))
    for row in session.execute(_delta_usage()):
        usage[row.account_id].append((row, Decimal(row.quantity)))
    session.execute(_run.delete())
    for account_id, measured in usage.items():
        runs[account_id].lines = _price(runs[account_id], measured, items)
    return list(runs.values())


def _items(session: Session, book_ids: set[str]) -> dict[str, PriceItem]:
    stmt = select(PriceItem).where(PriceItem.price_book_id.in_(book_ids))
    return {item.id: item for item in session.scalars(stmt)}


def _least(a: Any, b: Any) -> Any:
    return case((a < b, a), else_=b)


def _greatest(a: Any, b: Any) -> Any:
    return case((a > b, a), else_=b)


def _priced(meter: Any, price_key: Any) -> tuple[Any, Any, Any]:
    """The run joined with its book's price for ``meter``: the exact price key's item, else
    the meter's default ('')."""
    exact_item, default_item = aliased(PriceItem), aliased(PriceItem)
    joins = (
        (
            exact_item,
            and_(
                exact_item.price_book_id == _run.c.book_id,
                exact_item.meter == meter,
                exact_item.price_key == price_key,
            ),
        ),
        (
            default_item,
            and_(
                default_item.price_book_id == _run.c.book_id,
                default_item.meter == meter,
                default_item.price_key == "",
            ),
        ),
    )
    return joins, exact_item, default_item


def _interval_usage(until: int) -> Any:
    iv = metering.intervals(until, UsageEvent.tenant_id.in_(select(_run.c.tenant_id)))
    joins, exact_item, default_item = _priced(iv.c.meter, iv.c.price_key)
    end = func.coalesce(iv.c.end_s, _run.c.s1)
    used = _least(end, _run.c.s1) - _greatest(iv.c.start_s, _run.c.s0)
    minimum = case(
        (exact_item.id.is_not(None), exact_item.min_charge_seconds),
        else_=func.coalesce(default_item.min_charge_seconds, 0),
    )
    length = iv.c.end_s - iv.c.start_s
    # a start costs at least the minimum: the shortfall of a closed interval is charged once,
    # in the period it closes in
    topup = case(
        (
            and_(
                iv.c.end_s.is_not(None),
                iv.c.end_s > _run.c.s0,
                iv.c.end_s <= _run.c.s1,
                length > 0,
                length < minimum,
            ),
            (minimum - length) * iv.c.quantity,
        ),
        else_=literal(0),
    )
    keys = (
        _run.c.account_id,
        iv.c.tenant_id,
        iv.c.resource_type,
        iv.c.resource_id,
        iv.c.meter,
        iv.c.price_key,
        func.coalesce(exact_item.id, default_item.id).label("item_id"),
    )
    source = iv.join(_run, _run.c.tenant_id == iv.c.tenant_id)
    for item, on in joins:
        source = source.outerjoin(item, on)
    return (
        select(
            *keys,
            func.sum(iv.c.quantity * used).label("qty_seconds"),
            func.sum(used).label("seconds"),
            func.sum(case((iv.c.start_s >= _run.c.s0, 1), else_=0)).label("starts"),
            func.sum(topup).label("topup"),
        )
        .select_from(source)
        .where(iv.c.start_s < _run.c.s1, or_(iv.c.end_s.is_(None), iv.c.end_s > _run.c.s0))
        .group_by(*keys)
    )


def _delta_usage() -> Any:
    e = UsageEvent
    joins, exact_item, default_item = _priced(e.meter, e.price_key)
    keys = (
        _run.c.account_id,
        e.tenant_id,
        e.resource_type,
        e.resource_id,
        e.meter,
        e.price_key,
        func.coalesce(exact_item.id, default_item.id).label("item_id"),
    )
    source = select(*keys).select_from(e).join(_run, _run.c.tenant_id == e.tenant_id)
    for item, on in joins:
        source = source.outerjoin(item, on)
    return (
        source.add_columns(
            func.sum(e.quantity).label("quantity"),
            literal(0).label("seconds"),
            literal(0).label("starts"),
        )
        .where(e.action == "delta", e.at_s >= _run.c.s0, e.at_s < _run.c.s1)
        .group_by(*keys)
    )


def _price(
    run: Rated, measured: list[tuple[Any, Decimal]], items: dict[str, PriceItem]
) -> list[Line]:
    """Price each measured row. Tiered prices apply to the account's total of the meter, so
    their rows are summed into one line first (the resources stay in its detail)."""
    currency = run.account.currency
    month_seconds = periods.seconds(run.start, run.end)
    lines: list[Line] = []
    tiered: dict[str, list[tuple[Any, Decimal]]] = defaultdict(list)
    for row, amount in measured:
        item = items.get(row.item_id) if row.item_id else None
        if item is not None and item.model in ("graduated", "volume"):
            tiered[item.id].append((row, amount))
            continue
        lines.append(_line(row, amount, item, month_seconds, currency))
    for item_id, rows in sorted(tiered.items()):
        first = rows[0][0]
        total = sum((amount for _, amount in rows), Decimal(0))
        line = _line(first, total, items[item_id], month_seconds, currency)
        line.resource_type = line.resource_id = ""  # the account's usage, not one resource's
        line.price_key = items[item_id].price_key
        line.seconds = sum(int(row.seconds) for row, _ in rows)
        line.starts = sum(int(row.starts) for row, _ in rows)
        line.detail["resources"] = {row.resource_id: plain(amount) for row, amount in rows}
        if len({row.tenant_id for row, _ in rows}) > 1:
            line.tenant_id = run.account.tenant_id
        lines.append(line)
    return sorted(
        lines, key=lambda line: (line.tenant_id, line.resource_type, line.resource_id, line.meter)
    )


def _line(
    row: Any, amount: Decimal, item: PriceItem | None, month_seconds: int, currency: str
) -> Line:
    line = Line(
        tenant_id=row.tenant_id,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        meter=row.meter,
        price_key=row.price_key,
        price_item_id=item.id if item else None,
        basis=item.basis if item else "",
        quantity=Decimal(0),
        seconds=int(row.seconds),
        starts=int(row.starts),
        unit_price=item.unit_price if item else Decimal(0),
        exact=Decimal(0),
        amount=Decimal(0),
    )
    if item is None:
        line.detail["unpriced"] = True
        line.quantity = exact(amount)
        return line
    usage = pricing.Usage(amount, month_seconds)
    line.quantity = exact(pricing.units(item, usage))
    line.exact = exact(pricing.cost(item, usage))
    line.amount = round_minor(line.exact, currency)
    line.detail["model"] = item.model
    if item.tiers:
        line.detail["tiers"] = item.tiers
    if Decimal(getattr(row, "topup", 0)):
        line.detail["minimum_seconds"] = plain(Decimal(row.topup))
    return line
