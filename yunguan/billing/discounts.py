"""Discounts and coupons, in the order they apply: price overrides, then percentages off
each line (both while valid, so a month is rated in segments at their validity bounds),
then amounts off the invoice (fixed discounts, then coupons), each capped so the lines it
reduces never go below zero. Tax comes after all of them."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from yunguan.billing.models import (
    BillingAccount,
    Coupon,
    CouponRedemption,
    Discount,
    Invoice,
    InvoiceLine,
    PriceItem,
)
from yunguan.billing.money import EXACT, round_minor
from yunguan.core.db import chunked

HUNDRED = Decimal(100)


def valid_during(model: type[Discount] | type[Coupon], start: datetime, end: datetime):
    """The rows of ``model`` valid at some time in ``[start, end)``."""
    return select(model).where(
        model.valid_from < end, or_(model.valid_until.is_(None), model.valid_until > start)
    )


def bounds_within(rows: list[Discount], start: datetime, end: datetime) -> list[datetime]:
    """Where a discount starts or stops being valid inside ``(start, end)``."""
    inside = {
        moment
        for row in rows
        for moment in (row.valid_from, row.valid_until)
        if moment is not None and start < moment < end
    }
    return sorted(inside)


@dataclass(frozen=True)
class Scope:
    """What a line is, for matching discounts."""

    tenant_path: str
    meter: str
    price_key: str
    currency: str


def _covers(row: Discount | Coupon, scope: Scope) -> bool:
    return (
        row.currency == scope.currency
        and scope.tenant_path.startswith(getattr(row, "tenant_path", ""))
        and row.meter in ("", scope.meter)
        and getattr(row, "price_key", "") in ("", scope.price_key)
    )


def line_discounts(
    discounts: list[Discount], scope: Scope, start: datetime, end: datetime
) -> list[Discount]:
    """The overrides and percentages that apply to a line's usage in ``[start, end)`` (a
    segment: a discount is valid for all of it or none of it)."""
    return [
        d
        for d in discounts
        if d.kind in ("override", "percent")
        and d.valid_from <= start
        and (d.valid_until is None or d.valid_until >= end)
        and _covers(d, scope)
    ]


def overridden(item: PriceItem, applied: list[Discount]) -> PriceItem:
    """The item as priced under the last override among ``applied`` (the item if none)."""
    overrides = [d for d in applied if d.kind == "override"]
    if not overrides:
        return item
    last = overrides[-1]
    return PriceItem(
        model=item.model,
        basis=item.basis,
        unit_price=item.unit_price if last.unit_price is None else last.unit_price,
        tiers=last.tiers or item.tiers,
    )


def net(amount: Decimal, applied: list[Discount]) -> Decimal:
    """``amount`` with every percentage off, one after the other."""
    with localcontext(EXACT):
        for d in applied:
            if d.kind == "percent":
                amount *= 1 - d.percent / HUNDRED
    return amount


@dataclass
class Reduction:
    """An amount off the invoice: a fixed discount or a coupon, as a negative line."""

    kind: str  # "discount" or "coupon"
    source_id: str
    meter: str
    amount: Decimal
    description: str


@dataclass
class Offers:
    """The fixed discounts and held coupons that may reduce a run's invoices."""

    fixed: list[Discount]
    coupons: dict[str, list[Coupon]]
    """By account id, in the order they were redeemed."""


def offers_for(session: Session, account_ids: list[str], start: datetime, end: datetime) -> Offers:
    """Load, once for a run, what ``invoice_reductions`` may apply in ``[start, end)``."""
    fixed = valid_during(Discount, start, end).where(Discount.kind == "fixed")
    held = valid_during(Coupon, start, end).add_columns(CouponRedemption.account_id)
    held = held.join(CouponRedemption, CouponRedemption.coupon_id == Coupon.id).where(
        CouponRedemption.redeemed_at < end
    )
    coupons: dict[str, list[Coupon]] = {}
    for chunk in chunked(account_ids):
        redeemed = held.where(CouponRedemption.account_id.in_(chunk))
        for coupon, account_id in session.execute(
            redeemed.order_by(CouponRedemption.redeemed_at, Coupon.id)
        ):
            coupons.setdefault(account_id, []).append(coupon)
    return Offers(list(session.scalars(fixed.order_by(Discount.id))), coupons)


def invoice_reductions(
    session: Session,
    account: BillingAccount,
    offers: Offers,
    amounts: list[tuple[str, str, Decimal]],
) -> list[Reduction]:
    """Fixed discounts, then the account's coupons, against the invoice's rounded lines
    (``(tenant_path, meter, amount)`` each). Each takes at most what the lines it covers
    still owe; an amount coupon at most what is left of it after earlier invoices."""
    owed = list(amounts)
    reductions = []

    def take(row: Discount | Coupon, wanted: Decimal | None, percent: Decimal | None) -> Decimal:
        covered = [
            n
            for n, (path, meter, _) in enumerate(owed)
            if _covers(row, Scope(path, meter, "", account.currency))
        ]
        base = sum((owed[n][2] for n in covered), Decimal(0))
        off = round_minor(base * percent / HUNDRED, account.currency) if percent else wanted
        off = min(off or Decimal(0), base)
        left = off
        for n in covered:  # reduce what the covered lines owe, in order
            path, meter, due = owed[n]
            used = min(due, left)
            owed[n], left = (path, meter, due - used), left - used
        return off

    for discount in offers.fixed:
        off = take(discount, discount.amount, None)
        if off:
            reductions.append(
                Reduction("discount", discount.id, discount.meter, off, discount.description)
            )
    for coupon in offers.coupons.get(account.id, []):
        left = coupon.amount - _spent(session, coupon, account) if coupon.kind == "amount" else None
        off = take(coupon, left, coupon.percent if coupon.kind == "percent" else None)
        if off:
            reductions.append(Reduction("coupon", coupon.id, coupon.meter, off, coupon.code))
    return reductions


def _spent(session: Session, coupon: Coupon, account: BillingAccount) -> Decimal:
    """What finalized invoices took of an amount coupon (its lines are negative)."""
    used = (
        select(func.coalesce(func.sum(InvoiceLine.amount), 0))
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(
            InvoiceLine.kind == "coupon",
            InvoiceLine.resource_id == coupon.id,
            Invoice.account_id == account.id,
            Invoice.state == "finalized",
        )
    )
    return -Decimal(session.scalar(used))
