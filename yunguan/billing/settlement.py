"""ISV settlement: each month a vendor is owed its lines of the invoices collected that
month (paid in full, in the platform's time zone), each line at what it listed at: a
discount the platform funds does not reduce the vendor's base, and the platform's coupons
and fixed discounts are lines of their own. The fee is the commission on the base, rounded
once; the vendor gets the rest. A line is settled once, on one statement."""

from collections import defaultdict
from decimal import Decimal

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from yunguan.billing import ledger, periods
from yunguan.billing.models import (
    Invoice,
    InvoiceLine,
    Vendor,
    VendorStatement,
    VendorStatementLine,
)
from yunguan.billing.money import round_minor
from yunguan.core.clock import now
from yunguan.core.errors import Conflict
from yunguan.core.ids import new_id

PLATFORM_TIMEZONE = "Asia/Shanghai"


def line_base(line: InvoiceLine, currency: str) -> Decimal:
    """What the line listed at before the platform's discounts (after the vendor's own),
    rounded as a line is."""
    for key in ("vendor_base", "list"):
        if key in line.detail:
            return round_minor(Decimal(line.detail[key]), currency)
    return round_minor(line.exact, currency)


def settle(session: Session, vendor: Vendor, period: str) -> list[VendorStatement]:
    """The vendor's statements (one per currency) for ``period``, from the lines of
    invoices collected in it and not settled before. 409 if the month is not over or was
    settled already."""
    start, end = periods.bounds(period, PLATFORM_TIMEZONE)
    if end > now():
        raise Conflict(f"{period} is not over yet", code="period-open")
    taken = select(VendorStatement.id).where(
        VendorStatement.vendor_id == vendor.id, VendorStatement.period == period
    )
    if session.scalars(taken).first() is not None:
        raise Conflict(f"{vendor.name} is settled for {period}", code="already-settled")
    if not vendor.products:
        return []
    products = or_(
        *(
            and_(InvoiceLine.meter == p["meter"], InvoiceLine.price_key == p["price_key"])
            for p in vendor.products
        )
    )
    settled = select(VendorStatementLine.invoice_line_id)
    rows = session.execute(
        select(InvoiceLine, Invoice.currency)
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(
            products,
            InvoiceLine.kind.in_(
                ("usage", "adjustment", "credit")
            ),  # not the platform's promotions
            Invoice.state == "finalized",
            Invoice.paid_at >= start,
            Invoice.paid_at < end,
            InvoiceLine.id.not_in(settled),
        )
        .order_by(InvoiceLine.id)
    ).all()
    by_currency: dict[str, list[InvoiceLine]] = defaultdict(list)
    for line, currency in rows:
        by_currency[currency].append(line)
    statements = []
    for currency, lines in sorted(by_currency.items()):
        bases = {line.id: line_base(line, currency) for line in lines}
        base = sum(bases.values(), Decimal(0))
        fee = round_minor(base * vendor.commission_rate, currency)
        statement = VendorStatement(
            id=new_id("vst"),
            vendor_id=vendor.id,
            tenant_path=vendor.tenant_path,
            period=period,
            currency=currency,
            commission_rate=vendor.commission_rate,
            base=base,
            fee=fee,
            payout=base - fee,
            lines=len(lines),
            created_at=now(),
        )
        session.add(statement)
        session.flush()
        session.add_all(
            VendorStatementLine(invoice_line_id=i, statement_id=statement.id, base=b)
            for i, b in bases.items()
        )
        ledger.post(
            session,
            f"statement:{statement.id}",
            "vendor-statement",
            [
                (ledger.PLATFORM, "revenue", currency, statement.payout),
                (vendor.id, "vendor_payable", currency, -statement.payout),
            ],
            tenant_path=vendor.tenant_path,
        )
        statements.append(statement)
    return statements
