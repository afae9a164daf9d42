"""Rating: usage of a month into priced lines, per billing account.

SQL does what grows with the events: deriving intervals, slicing them at the period's
bounds (whole seconds) and summing per resource, meter and price. Python prices the sums,
in Decimal, once per line: rows number the resources, not the events.
"""

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext
from functools import cached_property
from itertools import pairwise
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
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

from yunguan.billing import discounts, metering, periods, pricing
from yunguan.billing.models import BillingAccount, Discount, PriceBook, PriceItem, UsageEvent
from yunguan.billing.money import EXACT, exact, plain, round_minor
from yunguan.identity.models import Tenant

_run = Table(
    "billing_run",
    MetaData(),
    Column("tenant_id", String(40), primary_key=True),
    Column("seg", Integer, primary_key=True),
    Column("account_id", String(40)),
    Column("book_id", String(40)),
    Column("s0", BigInteger),
    Column("s1", BigInteger),
    prefixes=["TEMPORARY"],
)
"""Who is rated in this run: each tenant with its account, and per segment of the period
the book in effect and its bounds (``[s0, s1)`` in epoch seconds, the last cut at the time
of rating: the future is never billed)."""

_CREATE_RUN = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS billing_run (tenant_id VARCHAR(40), seg INTEGER,"
    " account_id VARCHAR(40), book_id VARCHAR(40), s0 BIGINT, s1 BIGINT,"
    " PRIMARY KEY (tenant_id, seg))"
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

    @classmethod
    def off(cls, tenant_id: str, amount: Decimal, **what: Any) -> "Line":
        """An amount off the invoice (a discount, a coupon, a credit): no usage, no price.
        ``what``: its ``resource_type``, ``resource_id``, ``meter`` and ``detail``."""
        blank = {"resource_type": "", "resource_id": "", "meter": "", "price_key": ""}
        return cls(
            tenant_id=tenant_id,
            **{**blank, **what},
            price_item_id=None,
            basis="",
            quantity=Decimal(0),
            seconds=0,
            starts=0,
            unit_price=Decimal(0),
            exact=-amount,
            amount=-amount,
        )

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What makes two ratings of a period the same line (for corrections)."""
        return (self.tenant_id, self.resource_id, self.meter, self.price_key)


@dataclass(frozen=True)
class Segment:
    """A stretch of the period with one book version and one set of valid discounts."""

    start: datetime
    end: datetime
    book: PriceBook | None


@dataclass
class Rated:
    """An account's month: its segments and lines."""

    account: BillingAccount
    period: str
    start: datetime
    end: datetime
    segments: list[Segment]
    paths: dict[str, str]
    """Tenant paths (of every tenant), for matching discounts."""
    lines: list[Line] = field(default_factory=list)

    @cached_property
    def midnights(self) -> list[int]:
        """The ends of the month's local days (epoch seconds), for ``day`` prices."""
        return periods.midnights(self.period, self.account.timezone)

    def usage(self, amount: Decimal) -> pricing.Usage:
        return pricing.Usage(amount, periods.seconds(self.start, self.end), len(self.midnights))

    @property
    def book(self) -> PriceBook | None:
        """The book version of the period's last segment."""
        return self.segments[-1].book if self.segments else None


def account_of(session: Session, tenant_id: str) -> BillingAccount | None:
    """The tenant's billing account (its own, or its nearest ancestor's), in two lookups."""
    path = session.scalar(select(Tenant.path).where(Tenant.id == tenant_id))
    chain = (path or "").strip("/").split("/")
    found = {
        a.tenant_id: a
        for a in session.scalars(select(BillingAccount).where(BillingAccount.tenant_id.in_(chain)))
    }
    return next((found[t] for t in reversed(chain) if t in found), None)


@dataclass(frozen=True)
class Tenancy:
    """Every tenant's billing account (its own, or its nearest ancestor's) and path: read
    once per billing run, for all the months and corrections it rates."""

    owner: dict[str, BillingAccount]
    paths: dict[str, str]


def tenancy(session: Session) -> Tenancy:
    accounts = {a.tenant_id: a for a in session.scalars(select(BillingAccount))}
    owner: dict[str, BillingAccount] = {}
    paths: dict[str, str] = {}
    for tenant_id, path in session.execute(select(Tenant.id, Tenant.path)):
        paths[tenant_id] = path
        for ancestor in reversed(path.strip("/").split("/")):
            if ancestor in accounts:
                owner[tenant_id] = accounts[ancestor]
                break
    return Tenancy(owner, paths)


def _segments(
    session: Session,
    book: str,
    start: datetime,
    end: datetime,
    as_of: datetime,
    cuts: list[datetime],
) -> list[Segment]:
    """``[start, min(end, as_of))`` cut where a discount's validity or the book changes."""
    changes = pricing.changes_within(session, book, start, end)
    moments = sorted({start, *cuts, *changes, end})
    return [
        Segment(a, min(b, as_of), pricing.in_effect(session, book, a))
        for a, b in pairwise(moments)
        if a < as_of
    ]


def rate(
    session: Session,
    accounts: list[BillingAccount],
    period: str,
    as_of: datetime,
    known: Tenancy | None = None,
    book: str | None = None,
) -> list[Rated]:
    """The lines of ``period`` for ``accounts``, from the usage recorded before ``as_of``,
    priced by their books (or ``book``: the one a finalized month was billed by)."""
    known = known or tenancy(session)
    owner, paths = known.owner, known.paths
    spans = {account.id: periods.bounds(period, account.timezone) for account in accounts}
    if not spans:
        return []
    earliest, latest = min(a for a, _ in spans.values()), max(b for _, b in spans.values())
    offers = list(session.scalars(discounts.valid_during(Discount, earliest, latest)))
    runs: dict[str, Rated] = {}
    alike: dict[tuple[str, datetime], list[Segment]] = {}  # accounts alike share segments
    for account in accounts:
        start, end = spans[account.id]
        name = book or account.price_book
        if (name, start) not in alike:
            cuts = discounts.bounds_within(offers, start, end)
            alike[(name, start)] = _segments(session, name, start, end, as_of, cuts)
        segments = alike[(name, start)]
        runs[account.id] = Rated(account, period, start, end, segments, paths)
    rows = [
        {
            "tenant_id": tenant_id,
            "seg": n,
            "account_id": account.id,
            "book_id": segment.book.id if segment.book else "",
            "s0": int(segment.start.timestamp()),
            "s1": int(segment.end.timestamp()),
        }
        for tenant_id, account in owner.items()
        if account.id in runs
        for n, segment in enumerate(runs[account.id].segments)
    ]
    if not rows:
        return list(runs.values())
    session.execute(text(_CREATE_RUN))
    session.execute(_run.delete())
    session.execute(_run.insert(), rows)
    until = max(row["s1"] for row in rows)
    books = {s.book.id for r in runs.values() for s in r.segments if s.book}
    items = _items(session, books)
    usage: dict[str, list[tuple[Any, Decimal]]] = defaultdict(list)
    for row in session.execute(_interval_usage(until)):
        usage[row.account_id].append((row, Decimal(row.qty_seconds) + Decimal(row.topup)))
    by_day = {item.meter for item in items.values() if item.basis == "day"}
    if by_day:
        stretches = session.execute(_interval_usage(until, by_day))
        for row, days in _days(stretches, runs):
            usage[row.account_id].append((row, days))
    for row in session.execute(_delta_usage()):
        usage[row.account_id].append((row, Decimal(row.quantity)))
    session.execute(_run.delete())
    for account_id, measured in usage.items():
        run = runs[account_id]
        run.lines = _price(run, measured, items, offers, paths)
        run.lines += _included(run, items)
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


def _interval_usage(until: int, by_day: set[str] | None = None) -> Any:
    """The run's intervals priced by time, their used seconds summed per line and segment;
    or, given the meters with prices ``by_day``, those meters' intervals themselves (their
    days are counted in Python)."""
    tenants = UsageEvent.tenant_id.in_(select(_run.c.tenant_id))
    meters = [UsageEvent.meter.in_(by_day)] if by_day else []
    iv = metering.intervals(until, tenants, *meters)
    joins, exact_item, default_item = _priced(iv.c.meter, iv.c.price_key)

    def chosen(column: str) -> Any:
        return case(
            (exact_item.id.is_not(None), getattr(exact_item, column)),
            else_=getattr(default_item, column),
        )

    end = func.coalesce(iv.c.end_s, _run.c.s1)
    used = _least(end, _run.c.s1) - _greatest(iv.c.start_s, _run.c.s0)
    minimum = func.coalesce(chosen("min_charge_seconds"), 0)
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
        _run.c.seg,
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
    overlapping = and_(iv.c.start_s < _run.c.s1, or_(iv.c.end_s.is_(None), iv.c.end_s > _run.c.s0))
    daily = func.coalesce(chosen("basis"), "") == "day"
    if by_day:
        return (
            select(*keys, iv.c.quantity, iv.c.start_s, end.label("end_s"), _run.c.s0, _run.c.s1)
            .select_from(source)
            .where(overlapping, daily)
        )
    return (
        select(
            *keys,
            func.sum(iv.c.quantity * used).label("qty_seconds"),
            func.sum(used).label("seconds"),
            func.sum(case((iv.c.start_s >= _run.c.s0, 1), else_=0)).label("starts"),
            func.sum(topup).label("topup"),
        )
        .select_from(source)
        .where(overlapping, ~daily)
        .group_by(*keys)
    )


@dataclass
class _DayRow:
    """The days an interval was used, summed like a row of the by-time query."""

    account_id: str
    seg: int
    tenant_id: str
    resource_type: str
    resource_id: str
    meter: str
    price_key: str
    item_id: str
    seconds: int = 0
    starts: int = 0


def _days(stretches: Any, runs: dict[str, Rated]) -> list[tuple[_DayRow, Decimal]]:
    """Quantity times the days used, per line and segment (see ``periods.midnights``)."""
    summed: dict[tuple[Any, ...], tuple[_DayRow, Decimal]] = {}
    for s in stretches:
        key = (s.account_id, s.seg, s.tenant_id, s.resource_type, s.resource_id, s.meter)
        key += (s.price_key, s.item_id)
        row, amount = summed.get(key) or (_DayRow(*key), Decimal(0))
        a, b = max(s.start_s, s.s0), min(s.end_s, s.s1)
        midnights = runs[s.account_id].midnights
        days = bisect_right(midnights, b) - bisect_right(midnights, a)
        row.seconds += b - a
        row.starts += int(s.start_s >= s.s0)
        summed[key] = row, amount + Decimal(s.quantity) * days
    return list(summed.values())


def _delta_usage() -> Any:
    e = UsageEvent
    joins, exact_item, default_item = _priced(e.meter, e.price_key)
    keys = (
        _run.c.account_id,
        _run.c.seg,
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


TIERED = ("graduated", "volume")


def _price(
    run: Rated,
    measured: list[tuple[Any, Decimal]],
    items: dict[str, PriceItem],
    offers: list[Discount],
    paths: dict[str, str],
) -> list[Line]:
    """One line per resource, meter and price key, its segments priced and summed before the
    one rounding. A tiered price applies to the account's total of the meter, so its
    resources make one line (they stay in its detail)."""
    groups: dict[tuple[str, ...], list[tuple[Any, Decimal, PriceItem | None]]] = defaultdict(list)
    for row, amount in measured:
        item = items.get(row.item_id) if row.item_id else None
        if item is not None and item.model in TIERED:
            key: tuple[str, ...] = ("", "", "", row.meter, item.price_key)
        else:
            key = (row.tenant_id, row.resource_type, row.resource_id, row.meter, row.price_key)
        groups[key].append((row, amount, item))
    lines = [_line(run, rows, offers, paths) for rows in groups.values()]
    return sorted(
        lines, key=lambda line: (line.tenant_id, line.resource_id, line.meter, line.price_key)
    )


def _applied(run: Rated, row: Any, offers: list[Discount], paths: dict[str, str]) -> list[Discount]:
    """The overrides and percentages that apply to a row (one segment of a line)."""
    segment = run.segments[row.seg]
    currency = run.account.currency
    scope = discounts.Scope(paths.get(row.tenant_id, ""), row.meter, row.price_key, currency)
    return discounts.line_discounts(offers, scope, segment.start, segment.end)


def _under(item: PriceItem, measured: pricing.Usage, applied: list[Discount]) -> Decimal:
    """The exact cost of ``measured`` with ``applied``: overrides, then percentages."""
    return discounts.net(pricing.cost(discounts.overridden(item, applied), measured), applied)


def _line(
    run: Rated,
    rows: list[tuple[Any, Decimal, PriceItem | None]],
    offers: list[Discount],
    paths: dict[str, str],
) -> Line:
    """Price a line's rows (one per segment, and per resource for a tiered price)."""
    currency = run.account.currency
    first, _, _ = rows[0]
    priced = [(row, amount, item) for row, amount, item in rows if item is not None]
    item = priced[-1][2] if priced else None
    tiered = item is not None and item.model in TIERED
    # a tiered or flat price is of the line's whole quantity, shared out over its rows
    whole = item is not None and item.model in (*TIERED, "flat")
    total = sum((amount for _, amount, _ in rows), Decimal(0))
    listed = charged = vendor_base = Decimal(0)
    applied_ids: list[str] = []
    with localcontext(EXACT):
        for row, amount, row_item in priced:
            share = amount / total if whole and total else Decimal(1)
            measured = run.usage(total if whole else amount)
            applied = _applied(run, row, offers, paths) if offers else []
            cost = _under(row_item, measured, []) * share
            listed += cost
            if not applied:  # the common case: priced once
                charged, vendor_base = charged + cost, vendor_base + cost
                continue
            vendors = [d for d in applied if d.funded_by == "vendor"]
            charged += _under(row_item, measured, applied) * share
            vendor_base += _under(row_item, measured, vendors) * share
            applied_ids += [d.id for d in applied if d.id not in applied_ids]
    tenants = {row.tenant_id for row, _, _ in rows}
    line = Line(
        tenant_id=first.tenant_id if len(tenants) == 1 else run.account.tenant_id,
        resource_type="" if tiered else first.resource_type,
        resource_id="" if tiered else first.resource_id,
        meter=first.meter,
        price_key=item.price_key if tiered else first.price_key,
        price_item_id=item.id if item else None,
        basis=item.basis if item else "",
        quantity=exact(pricing.units(item, run.usage(total)) if item else total),
        seconds=sum(int(row.seconds) for row, _, _ in rows),
        starts=sum(int(row.starts) for row, _, _ in rows),
        unit_price=item.unit_price if item else Decimal(0),
        exact=exact(charged),
        amount=round_minor(charged, currency),
    )
    if item is None or len(priced) < len(rows):
        line.detail["unpriced"] = True
    if item is not None:
        line.detail["model"] = item.model
        if item.tiers:
            line.detail["tiers"] = item.tiers
    topup = sum((Decimal(getattr(row, "topup", 0)) for row, _, _ in rows), Decimal(0))
    if topup:
        line.detail["minimum_seconds"] = plain(topup)
    if tiered:
        by_resource: dict[str, Decimal] = defaultdict(Decimal)
        for row, amount, _ in rows:
            by_resource[row.resource_id] += amount
        line.detail["resources"] = {r: plain(a) for r, a in sorted(by_resource.items())}
    if applied_ids:
        line.detail["list"] = plain(listed)
        line.detail["discounts"] = applied_ids
    if vendor_base != listed:
        line.detail["vendor_base"] = plain(vendor_base)
    return line


def _included(run: Rated, items: dict[str, PriceItem]) -> list[Line]:
    """What the account's packages include, off its usage: per meter and price (the key of
    the item that priced the usage) a package covers, the included quantity (per month of a
    plan, times the months of it the lines bill) comes off the usage, valued at the rate the
    usage was charged, so only the usage beyond it (priced from the first tier) is paid.
    One line per tenant whose usage it covers, its share of the waiver."""
    included: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    plans: dict[tuple[str, str], set[str]] = defaultdict(set)
    for line in run.lines:
        item = items.get(line.price_item_id or "")
        for part in item.included if item else []:
            key = (part["meter"], part["price_key"])
            included[key] += Decimal(part["quantity"]) * line.quantity
            plans[key].add(line.resource_id)
    off = []
    for key, allowance in sorted(included.items()):
        covered = [x for x in run.lines if _priced_as(x, items) == key]
        used = sum((x.quantity for x in covered), Decimal(0))
        if not covered or used <= 0 or allowance <= 0:
            continue
        item = items[covered[-1].price_item_id]  # type: ignore[index]
        detail = {"included": plain(allowance), "used": plain(used), "plans": sorted(plans[key])}
        lines = []
        for tenant_id, waived in _waivers(item, covered, used, allowance).items():
            line = Line.off(
                tenant_id,
                round_minor(waived, run.account.currency),
                resource_type="package",
                resource_id="included",
                meter=key[0],
                price_key=key[1],
                detail=detail,
            )
            line.exact, line.basis = exact(-waived), item.basis
            lines.append(line)
        if lines:
            lines[-1].quantity = -min(used, allowance)  # once, on the last tenant's line
        off += lines
    return off


def _priced_as(line: Line, items: dict[str, PriceItem]) -> tuple[str, str] | None:
    item = items.get(line.price_item_id or "")
    return (item.meter, item.price_key) if item else None


def _waivers(
    item: PriceItem, covered: list[Line], used: Decimal, allowance: Decimal
) -> dict[str, Decimal]:
    """Each tenant's share of what an allowance takes off its covered lines. All of it
    covered: exactly what those lines were charged (rounded), so nothing unbilled is
    credited. Part of it: the charge scaled by what the usage beyond the allowance lists at
    (capped: a volume price may fall as the quantity grows)."""
    with localcontext(EXACT):
        if used <= allowance:
            shares = [(x.tenant_id, x.amount) for x in covered]
        else:
            listed = pricing.price_of(item, used)
            beyond = min(pricing.price_of(item, used - allowance), listed)
            off = (listed - beyond) / listed if listed else Decimal(0)
            shares = [(x.tenant_id, x.exact * off) for x in covered]
    waived: dict[str, Decimal] = defaultdict(Decimal)
    for tenant_id, amount in shares:
        waived[tenant_id] += amount
    return {t: w for t, w in sorted(waived.items()) if w}
