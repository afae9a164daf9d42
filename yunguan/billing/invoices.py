"""Invoices: drafts rated again while usage may still arrive, then finalized for good.

A finalized invoice never changes. Usage of its period that arrives later is a correction:
what the period now rates to, line by line, against what was billed (with the corrections
already made): more is an adjustment line on the account's current draft, less is a credit
note of its own.
"""

import csv
import io
from collections import defaultdict
from dataclasses import fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, func, select, text
from sqlalchemy.orm import Session

from yunguan.billing import discounts, ledger, metering, periods, rating, wallets
from yunguan.billing.models import (
    BillingAccount,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    PriceBook,
    UsageEvent,
)
from yunguan.billing.money import round_minor
from yunguan.core.clock import now
from yunguan.core.db import bulk_insert, chunked, insert_into
from yunguan.core.errors import Conflict
from yunguan.core.ids import new_id

CORRECTION_WINDOW = timedelta(days=92)
"""How long after its period a finalized invoice is still corrected by late usage."""


BILLING_LOCK = 7_146_100
"""One billing run at a time (PostgreSQL; SQLite serialises every writer): two runs rating
the same draft at once would each write its lines."""


def serialise(session: Session) -> None:
    """Wait for any other billing run to commit (held until this transaction ends)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": BILLING_LOCK})


def lock(session: Session, invoice_id: str) -> Invoice:
    """The invoice, locked and read afresh (a payment or a finalize waits for the other)."""
    stmt = select(Invoice).where(Invoice.id == invoice_id).with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one()


def rate_period(
    session: Session,
    period: str,
    accounts: list[BillingAccount],
    as_of: datetime | None = None,
    known: rating.Tenancy | None = None,
) -> list[Invoice]:
    """Rate ``period`` for ``accounts`` into their drafts (made when there is something to
    bill); an account whose invoice of the period is finalized is left alone."""
    as_of = as_of or now()
    serialise(session)
    seq = metering.watermark(session)
    existing = {
        inv.account_id: inv
        for inv in session.scalars(
            select(Invoice).where(
                Invoice.kind == "invoice",
                Invoice.period == period,
                Invoice.account_id.in_([a.id for a in accounts]),
            )
        )
    }
    open_accounts = [
        a for a in accounts if existing.get(a.id) is None or existing[a.id].state == "draft"
    ]
    drafts: list[tuple[Invoice, rating.Rated]] = []
    for rated in rating.rate(session, open_accounts, period, as_of, known):
        invoice = existing.get(rated.account.id)
        if invoice is None:
            if not rated.lines:
                continue
            invoice = _new_invoice(rated.account, period, rated.start, rated.end)
            session.add(invoice)
        drafts.append((invoice, rated))
    session.flush()
    _write(session, drafts, seq)
    return [invoice for invoice, _ in drafts]


def _new_invoice(
    account: BillingAccount, period: str, start: datetime, end: datetime, kind: str = "invoice"
) -> Invoice:
    return Invoice(
        id=new_id("inv"),
        account_id=account.id,
        tenant_id=account.tenant_id,
        tenant_path=account.tenant_path,
        kind=kind,
        period=period,
        period_start=start,
        period_end=end,
        currency=account.currency,
        tax_rate=account.tax_rate,
        finalize_after=end + timedelta(hours=account.grace_hours),
    )


LINE_FIELDS = tuple(f.name for f in fields(rating.Line))


def _line_rows(
    invoice: Invoice, lines: list[rating.Line], kind: str, first_no: int = 1, **extra: Any
) -> list[dict[str, Any]]:
    return [
        {
            **{name: getattr(line, name) for name in LINE_FIELDS},
            "id": new_id("il"),
            "invoice_id": invoice.id,
            "line_no": first_no + n,
            "kind": kind,
            "corrects_invoice_id": None,
            "corrects_line_id": None,
            **extra,
        }
        for n, line in enumerate(lines)
    ]


def _write(session: Session, drafts: list[tuple[Invoice, rating.Rated]], seq: int) -> None:
    """Replace the drafts' usage lines (their adjustment lines stay) and their totals."""
    if any(invoice.state != "draft" for invoice, _ in drafts):
        raise Conflict("a finalized invoice is not rated again", code="invoice-finalized")
    ids = [invoice.id for invoice, _ in drafts]
    kept: dict[str, Decimal] = {}
    for chunk in chunked(ids):
        rated_kinds = and_(InvoiceLine.invoice_id.in_(chunk), InvoiceLine.kind.in_(RATED_KINDS))
        session.execute(delete(InvoiceLine).where(rated_kinds))
        others = (
            select(InvoiceLine.invoice_id, func.sum(InvoiceLine.amount))
            .where(InvoiceLine.invoice_id.in_(chunk))
            .group_by(InvoiceLine.invoice_id)
        )
        kept.update({invoice_id: Decimal(total) for invoice_id, total in session.execute(others)})
    start = min((invoice.period_start for invoice, _ in drafts), default=now())
    end = max((invoice.period_end for invoice, _ in drafts), default=now())
    offers = discounts.offers_for(session, [i.account_id for i, _ in drafts], start, end)
    rows = []
    at = now()
    for invoice, rated in drafts:
        amounts = [(rated.paths.get(x.tenant_id, ""), x.meter, x.amount) for x in rated.lines]
        reductions = discounts.invoice_reductions(session, rated.account, offers, amounts)
        rows += _line_rows(invoice, rated.lines, "usage")
        for n, reduction in enumerate(reductions, 1):
            rows += _line_rows(
                invoice, [_reduction_line(rated.account, reduction)], reduction.kind, n
            )
        invoice.price_book_id = rated.book.id if rated.book else None
        invoice.rated_at, invoice.rated_seq = at, seq
        used = sum((line.amount for line in rated.lines), Decimal(0))
        used -= sum((reduction.amount for reduction in reductions), Decimal(0))
        _set_totals(invoice, used + kept.get(invoice.id, Decimal(0)))
    bulk_insert(session, InvoiceLine, rows)
    for invoice, rated in drafts:  # prepaid accounts pay as they go
        if rated.account.mode == "prepaid":
            wallets.charge(session, rated.account, invoice)
            wallets.watch(session, rated.account, invoice, at)


RATED_KINDS = ("usage", "discount", "coupon")
"""The lines a rating writes (and writes again); adjustments are added once, and stay."""


def _reduction_line(account: BillingAccount, reduction: discounts.Reduction) -> rating.Line:
    return rating.Line.off(
        account.tenant_id,
        reduction.amount,
        resource_type=reduction.kind,
        resource_id=reduction.source_id,
        meter=reduction.meter,
        detail={"description": reduction.description} if reduction.description else {},
    )


def _total(session: Session, invoice: Invoice) -> None:
    lines = select(func.coalesce(func.sum(InvoiceLine.amount), 0))
    _set_totals(invoice, Decimal(session.scalar(lines.where(InvoiceLine.invoice_id == invoice.id))))


def _set_totals(invoice: Invoice, subtotal: Decimal) -> None:
    """The subtotal of the rounded lines, then tax once for the whole invoice."""
    invoice.subtotal = round_minor(subtotal, invoice.currency)
    invoice.tax = round_minor(invoice.subtotal * invoice.tax_rate, invoice.currency)
    invoice.total = invoice.subtotal + invoice.tax


def finalized_through(session: Session, book: str | None = None) -> datetime | None:
    """The end of the last month an invoice was finalized for (billed by a version of
    ``book``, if given): prices before it are history."""
    stmt = select(func.max(Invoice.period_end)).where(
        Invoice.kind == "invoice", Invoice.state == "finalized"
    )
    if book is not None:
        versions = select(PriceBook.id).where(PriceBook.name == book)
        stmt = stmt.where(Invoice.price_book_id.in_(versions))
    return session.scalar(stmt)


def lines_of(session: Session, invoice_id: str) -> list[InvoiceLine]:
    order = (InvoiceLine.kind != "usage", InvoiceLine.line_no)
    return list(
        session.scalars(
            select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id).order_by(*order)
        )
    )


def _numbers(session: Session, prefix: str, count: int) -> list[str]:
    """``count`` consecutive numbers ``PREFIX-000001`` …, taken in one statement."""
    statement = insert_into(session, InvoiceCounter).values(prefix=prefix, value=count)
    statement = statement.on_conflict_do_update(
        index_elements=["prefix"], set_={"value": InvoiceCounter.value + count}
    )
    last = session.scalar(statement.returning(InvoiceCounter.value))
    return [f"{prefix}-{n:06d}" for n in range(last - count + 1, last + 1)]


def finalize(session: Session, invoice: Invoice) -> Invoice:
    """Rate the draft a last time, number it and freeze it."""
    [done] = _finalize(session, [invoice.id], strict=True)
    return done


def finalize_due(session: Session, at: datetime, chunk: int = 1000) -> int:
    """Finalize the drafts whose grace period is over, a chunk of accounts at a time."""
    due = select(Invoice.id).where(Invoice.state == "draft", Invoice.finalize_after <= at)
    ids = list(session.scalars(due.order_by(Invoice.id)))
    return sum(
        len(_finalize(session, ids[start : start + chunk])) for start in range(0, len(ids), chunk)
    )


def _finalize(session: Session, invoice_ids: list[str], strict: bool = False) -> list[Invoice]:
    """Lock the invoices, rate the drafts among them a last time (one rating per month),
    then number and freeze them. ``strict``: an invoice already final is a conflict."""
    serialise(session)
    locked = session.scalars(
        select(Invoice)
        .where(Invoice.id.in_(invoice_ids))
        .order_by(Invoice.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    drafts = [invoice for invoice in locked if invoice.state == "draft"]
    if strict and len(drafts) < len(invoice_ids):
        raise Conflict("the invoice is already finalized", code="invoice-finalized")
    account_ids = {invoice.account_id for invoice in drafts}
    accounts = {
        a.id: a
        for a in session.scalars(select(BillingAccount).where(BillingAccount.id.in_(account_ids)))
    }
    by_period: dict[str, list[Invoice]] = defaultdict(list)
    for invoice in drafts:
        by_period[invoice.period].append(invoice)
    at = now()
    for period, group in sorted(by_period.items()):
        rate_period(session, period, [accounts[invoice.account_id] for invoice in group])
        numbers = _numbers(session, f"INV-{period.replace('-', '')}", len(group))
        # one invoice per account and month: no posting of the month reads another's
        with ledger.deferred(session):
            for invoice, number in zip(group, numbers, strict=True):
                invoice.state, invoice.finalized_at, invoice.number = "finalized", at, number
                wallets.settle(session, accounts[invoice.account_id], invoice)
    return drafts


# --- corrections ---


def correct(
    session: Session, invoice: Invoice, known: rating.Tenancy | None = None
) -> list[InvoiceLine]:
    """Correct a finalized invoice for usage of its period recorded since it was rated: the
    correction lines made (none if nothing changed, so running it again changes nothing).
    ``known``: the tenancy, when the caller has read it already."""
    serialise(session)
    account = session.get(BillingAccount, invoice.account_id)
    known = known or rating.tenancy(session)
    tenants = [t for t, a in known.owner.items() if a.id == account.id]
    late = select(func.max(UsageEvent.seq)).where(
        UsageEvent.tenant_id.in_(tenants),
        UsageEvent.at_s < int(invoice.period_end.timestamp()),
        UsageEvent.seq > invoice.rated_seq,
    )
    if session.scalar(late) is None:
        return []
    seen = metering.watermark(session)  # not the latest late event's: one may be in flight
    billed_by = session.get(PriceBook, invoice.price_book_id) if invoice.price_book_id else None
    [rated] = rating.rate(
        session, [account], invoice.period, invoice.period_end, known, billed_by and billed_by.name
    )
    billed: dict[tuple, Decimal] = defaultdict(Decimal)
    described: dict[tuple, rating.Line] = {}
    earlier = select(InvoiceLine).where(
        (InvoiceLine.invoice_id == invoice.id) | (InvoiceLine.corrects_invoice_id == invoice.id),
        InvoiceLine.kind.in_(("usage", "adjustment", "credit")),
        InvoiceLine.meter != "",  # a credit by hand is not usage
    )
    for line in session.scalars(earlier):
        draft = _as_draft(line)
        billed[draft.key] += line.amount
        described.setdefault(draft.key, draft)
    fresh = {line.key: line for line in rated.lines}
    more, less = [], []
    for key in sorted(fresh.keys() | billed.keys()):
        difference = (fresh[key].amount if key in fresh else Decimal(0)) - billed[key]
        if difference:
            line = fresh.get(key) or described[key]
            kept = {k: v for k, v in line.detail.items() if k not in ("list", "discounts")}
            line.detail = {**kept, "period": invoice.period, "billed": str(billed[key])}
            line.amount = line.exact = difference
            (more if difference > 0 else less).append(line)
    invoice.rated_seq = seen
    made = []
    if more:
        made += _adjust_current(session, account, invoice, more)
    if less:
        note = _credit_note(session, account, invoice, less, "usage corrected after finalizing")
        made += lines_of(session, note.id)
    return made


def _as_draft(line: InvoiceLine) -> rating.Line:
    fields = {name: getattr(line, name) for name in rating.Line.__dataclass_fields__}
    return rating.Line(**{**fields, "detail": dict(line.detail)})


def _adjust_current(
    session: Session, account: BillingAccount, original: Invoice, lines: list[rating.Line]
) -> list[InvoiceLine]:
    """Add adjustment lines to the account's draft of the current month (made if missing)."""
    period = periods.period_of(now(), account.timezone)
    draft = session.scalars(
        select(Invoice).where(
            Invoice.account_id == account.id, Invoice.kind == "invoice", Invoice.period == period
        )
    ).one_or_none()
    if draft is None or draft.state != "draft":
        if draft is not None:  # the current month is closed already: the next one takes it
            period = periods.next_period(period)
        start, end = periods.bounds(period, account.timezone)
        draft = _new_invoice(account, period, start, end)
        session.add(draft)
        session.flush()
    taken = session.scalar(
        select(func.count()).where(
            InvoiceLine.invoice_id == draft.id, InvoiceLine.kind == "adjustment"
        )
    )
    rows = _line_rows(draft, lines, "adjustment", taken + 1, corrects_invoice_id=original.id)
    bulk_insert(session, InvoiceLine, rows)
    _total(session, draft)
    return lines_of(session, draft.id)[-len(rows) :]


def _credit_note(
    session: Session,
    account: BillingAccount,
    original: Invoice,
    lines: list[rating.Line],
    reason: str,
) -> Invoice:
    """A finalized credit note of ``lines`` (negative amounts) against ``original``."""
    note = _new_invoice(
        account, original.period, original.period_start, original.period_end, kind="credit_note"
    )
    note.corrects_invoice_id, note.reason = original.id, reason
    note.tax_rate = original.tax_rate
    note.state, note.finalized_at, note.finalize_after = "finalized", now(), now()
    [note.number] = _numbers(session, f"CN-{original.period.replace('-', '')}", 1)
    session.add(note)
    session.flush()
    rows = _line_rows(note, lines, "credit", corrects_invoice_id=original.id)
    bulk_insert(session, InvoiceLine, rows)
    _total(session, note)
    wallets.settle(session, account, note)
    return note


def credit(session: Session, invoice: Invoice, amount: Decimal, reason: str) -> Invoice:
    """An administrator's credit note of ``amount`` (before tax) against a finalized invoice."""
    if invoice.state != "finalized" or invoice.kind != "invoice":
        raise Conflict("only a finalized invoice can be credited", code="invoice-not-finalized")
    credited = -session.scalar(
        select(func.coalesce(func.sum(Invoice.subtotal), 0)).where(
            Invoice.corrects_invoice_id == invoice.id
        )
    )
    if amount > invoice.subtotal - credited:
        raise Conflict(
            f"at most {invoice.subtotal - credited} of this invoice is left to credit",
            code="credit-exceeds-invoice",
        )
    account = session.get(BillingAccount, invoice.account_id)
    line = rating.Line.off(invoice.tenant_id, amount, detail={"reason": reason})
    return _credit_note(session, account, invoice, [line], reason)


# --- the hourly job ---


def tick(session: Session, at: datetime | None = None) -> dict[str, int]:
    """Rate every account's current month (and the previous one during its grace period),
    finalize what is due, and correct recently finalized invoices for late usage."""
    at = at or now()
    accounts = list(session.scalars(select(BillingAccount).order_by(BillingAccount.id)))
    by_period: dict[str, list[BillingAccount]] = defaultdict(list)
    for account in accounts:  # this month, and the last one while in its grace period
        current = periods.period_of(at, account.timezone)
        by_period[current].append(account)
        last = periods.previous_period(current)
        if at < periods.bounds(last, account.timezone)[1] + timedelta(hours=account.grace_hours):
            by_period[last].append(account)
    known = rating.tenancy(session)
    rated = sum(
        len(rate_period(session, period, group, at, known))
        for period, group in sorted(by_period.items())
    )
    finalized = finalize_due(session, at)
    corrected = sum(
        1 for invoice in _maybe_late(session, at, known.owner) if correct(session, invoice, known)
    )
    return {"rated": rated, "finalized": finalized, "corrected": corrected}


def _maybe_late(session: Session, at: datetime, owner: dict[str, BillingAccount]) -> list[Invoice]:
    """The recently finalized invoices that may have late usage: one of their account's
    tenants sent events, since the earliest of their ratings, dated before a period's end.
    One grouped query over the recent events narrows what ``correct`` checks exactly."""
    recent = list(
        session.scalars(
            select(Invoice).where(
                Invoice.kind == "invoice",
                Invoice.state == "finalized",
                Invoice.period_end > at - CORRECTION_WINDOW,
            )
        )
    )
    if not recent:
        return []
    latest_end = int(max(invoice.period_end for invoice in recent).timestamp())
    touched: dict[str, tuple[int, int]] = {}
    for tenant_id, last_seq, first_at in session.execute(
        select(UsageEvent.tenant_id, func.max(UsageEvent.seq), func.min(UsageEvent.at_s))
        .where(
            UsageEvent.seq > min(invoice.rated_seq for invoice in recent),
            UsageEvent.at_s < latest_end,
        )
        .group_by(UsageEvent.tenant_id)
    ):
        if tenant_id in owner:
            account_id = owner[tenant_id].id
            seen = touched.get(account_id, (0, latest_end))
            touched[account_id] = (max(seen[0], last_seq), min(seen[1], first_at))
    return [
        invoice
        for invoice in recent
        if invoice.account_id in touched
        and touched[invoice.account_id][0] > invoice.rated_seq
        and touched[invoice.account_id][1] < int(invoice.period_end.timestamp())
    ]


CSV_COLUMNS = (
    "line_no",
    "kind",
    "tenant_id",
    "resource_type",
    "resource_id",
    "meter",
    "price_key",
    "basis",
    "quantity",
    "seconds",
    "unit_price",
    "amount",
)


def as_csv(session: Session, invoice: Invoice) -> str:
    """The invoice's lines as CSV, then its totals (what a spreadsheet user reconciles)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for line in lines_of(session, invoice.id):
        row = [getattr(line, column) for column in CSV_COLUMNS]
        writer.writerow([*row[:-1], round_minor(line.amount, invoice.currency)])
    for label in ("subtotal", "tax", "total"):
        amount = round_minor(getattr(invoice, label), invoice.currency)
        writer.writerow([label, *[""] * (len(CSV_COLUMNS) - 2), amount])
    return out.getvalue()
