"""Price books: versioned price lists (publishing freezes one), and what a quantity costs."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunguan.billing.models import PriceBook, PriceItem
from yunguan.billing.money import EXACT
from yunguan.core.clock import now
from yunguan.core.db import flush_or_conflict
from yunguan.core.errors import Conflict, NotFound
from yunguan.core.ids import new_id

MODELS = ("per_unit", "flat", "graduated", "volume")
BASES = ("second", "hour", "month", "day", "unit")
SECONDS_PER = {"second": 1, "hour": 3600}
ITEM_FIELDS = ("meter", "price_key", "model", "basis", "unit_price", "tiers")
ITEM_FIELDS += ("min_charge_seconds", "description", "included")
PLAN_METER = "subscription"
"""The meter of plan subscriptions: its items (price key = plan) are the plans on offer."""


@dataclass(frozen=True)
class Tier:
    upper: Decimal | None
    """The inclusive upper bound; None is no bound (the last tier)."""
    unit_price: Decimal


def tiers_of(item: PriceItem) -> list[Tier]:
    return [
        Tier(None if t["upper"] is None else Decimal(t["upper"]), Decimal(t["unit_price"]))
        for t in item.tiers
    ]


def graduated(tiers: list[Tier], quantity: Decimal) -> Decimal:
    """Each slice of ``quantity`` at its own tier's price (tier = lower < q ≤ upper)."""
    total, lower = Decimal(0), Decimal(0)
    with localcontext(EXACT):
        for tier in tiers:
            top = quantity if tier.upper is None else min(quantity, tier.upper)
            if top > lower:
                total += (top - lower) * tier.unit_price
            if tier.upper is None or quantity <= tier.upper:
                break
            lower = tier.upper
    return total


def volume(tiers: list[Tier], quantity: Decimal) -> Decimal:
    """Every unit at the price of the tier ``quantity`` reaches."""
    if quantity <= 0:
        return Decimal(0)
    with localcontext(EXACT):
        for tier in tiers:
            if tier.upper is None or quantity <= tier.upper:
                return quantity * tier.unit_price
    raise ValueError("the last tier must have no upper bound")


@dataclass(frozen=True)
class Usage:
    """What a line measured: ``amount`` is quantity times seconds for interval meters (GB-seconds,
    running seconds), quantity times days for a ``day`` basis, or the summed quantity of
    ``delta`` meters."""

    amount: Decimal
    month_seconds: int
    """The real length of the billing month, for a ``month`` basis."""
    month_days: int = 30
    """The days of the billing month, for a ``day`` basis."""

    def per_unit(self, basis: str) -> int:
        """How much ``amount`` makes one unit of ``basis``."""
        if basis == "month":
            return self.month_seconds
        if basis == "day":
            return self.month_days
        return SECONDS_PER.get(basis, 1)


def units(item: PriceItem, usage: Usage) -> Decimal:
    """The usage in the item's units (hours, months, seconds, or units), exact."""
    with localcontext(EXACT):
        return usage.amount / usage.per_unit(item.basis)


def price_of(item: PriceItem, quantity: Decimal) -> Decimal:
    """The exact cost of ``quantity`` of the item's units."""
    with localcontext(EXACT):
        if item.model == "per_unit":
            return item.unit_price * quantity
        if item.model == "flat":
            return item.unit_price if quantity > 0 else Decimal(0)
        if item.model == "graduated":
            return graduated(tiers_of(item), quantity)
        return volume(tiers_of(item), quantity)


def cost(item: PriceItem, usage: Usage) -> Decimal:
    """The exact, unrounded cost of ``usage`` under ``item``. A per-unit price multiplies
    first and divides last, so 900 s at 1.00/h is exactly 0.25."""
    with localcontext(EXACT):
        if item.model == "per_unit":
            return item.unit_price * usage.amount / usage.per_unit(item.basis)
        return price_of(item, units(item, usage))


def check_tiers(model: str, tiers: list[dict[str, Any]]) -> None:
    """Tiered models need ascending upper bounds with only the last one open; ValueError."""
    if model not in ("graduated", "volume"):
        if tiers:
            raise ValueError(f"a {model} price has no tiers")
        return
    if not tiers:
        raise ValueError(f"a {model} price needs tiers")
    uppers = [t["upper"] for t in tiers]
    if uppers[-1] is not None or None in uppers[:-1]:
        raise ValueError("only the last tier is open (upper: null)")
    bounded = [Decimal(u) for u in uppers[:-1]]
    if any(b <= a for a, b in zip([Decimal(0), *bounded], bounded, strict=False)):
        raise ValueError("tier upper bounds must be positive and ascending")


# --- books ---


def get_book(session: Session, book_id: str) -> PriceBook:
    book = session.get(PriceBook, book_id)
    if book is None:
        raise NotFound(f"price book {book_id} not found")
    return book


def items_of(session: Session, book_id: str) -> list[PriceItem]:
    stmt = select(PriceItem).where(PriceItem.price_book_id == book_id)
    return list(session.scalars(stmt.order_by(PriceItem.meter, PriceItem.price_key)))


def draft(session: Session, book_id: str) -> PriceBook:
    """The book, which must still be a draft (publishing froze the others)."""
    book = session.scalars(
        select(PriceBook).where(PriceBook.id == book_id).with_for_update()
    ).one_or_none()
    if book is None:
        raise NotFound(f"price book {book_id} not found")
    if book.state != "draft":
        raise Conflict(
            f"price book {book.name} v{book.version} is {book.state}: make a new version",
            code="price-book-published",
        )
    return book


def create_book(
    session: Session, *, name: str, currency: str, description: str = "", items: list[dict]
) -> PriceBook:
    """A draft: version 1 of a new name, or the next version of an existing one."""
    last = session.scalar(select(func.max(PriceBook.version)).where(PriceBook.name == name))
    book = PriceBook(
        id=new_id("pb"),
        name=name,
        version=(last or 0) + 1,
        currency=currency,
        description=description,
    )
    session.add(book)
    flush_or_conflict(
        session, f"price book {name} v{book.version} was just made", "concurrent-update"
    )
    set_items(session, book, items)
    return book


def set_items(session: Session, book: PriceBook, items: list[dict]) -> None:
    """Replace the draft's items."""
    for old in items_of(session, book.id):
        session.delete(old)
    session.flush()
    for item in items:
        session.add(PriceItem(id=new_id("pi"), price_book_id=book.id, **item))
    session.flush()


def new_version(session: Session, book: PriceBook) -> PriceBook:
    """A draft copy of ``book`` under the next version number."""
    items = [
        {column: getattr(item, column) for column in ITEM_FIELDS}
        for item in items_of(session, book.id)
    ]
    return create_book(
        session,
        name=book.name,
        currency=book.currency,
        description=book.description,
        items=items,
    )


def publish(session: Session, book: PriceBook, effective_from: datetime | None) -> None:
    book.state, book.published_at = "published", now()
    book.effective_from = effective_from or book.published_at


def in_effect(session: Session, name: str, at: datetime) -> PriceBook | None:
    """The published version of ``name`` in effect at ``at`` (the latest to take effect by
    then), or the first one to take effect later (a period priced before its book existed)."""
    published = select(PriceBook).where(PriceBook.name == name, PriceBook.state == "published")
    earlier = published.where(PriceBook.effective_from <= at)
    book = session.scalars(earlier.order_by(PriceBook.effective_from.desc()).limit(1)).first()
    if book is None:
        book = session.scalars(published.order_by(PriceBook.effective_from).limit(1)).first()
    return book


def changes_within(session: Session, name: str, start: datetime, end: datetime) -> list[datetime]:
    """When a published version of ``name`` takes over inside ``(start, end)``."""
    stmt = select(PriceBook.effective_from).where(
        PriceBook.name == name,
        PriceBook.state == "published",
        PriceBook.effective_from > start,
        PriceBook.effective_from < end,
    )
    return list(session.scalars(stmt))
