"""Billing: usage events (the truth), price books, billing accounts, invoices and their lines."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from yunguan.core.clock import now
from yunguan.core.db import Base
from yunguan.inventory.models import Timestamps

SEQ = BigInteger().with_variant(Integer, "sqlite")
"""An auto-incrementing integer key (SQLite increments only an ``INTEGER PRIMARY KEY``)."""

ACTIONS = ("start", "stop", "end", "delta")


class UsageEvent(Base):
    """One lifecycle change of a metered resource; ``(source, event_id)`` is unique, so a
    retried emitter counts once. ``seq`` orders events of the same instant as they came."""

    __tablename__ = "usage_events"
    __table_args__ = (
        UniqueConstraint("source", "event_id", name="uq_usage_source_event"),
        UniqueConstraint("id", name="uq_usage_events_id"),
        Index("ix_usage_events_key", "resource_id", "meter", "occurred_at", "seq"),
        Index("ix_usage_events_tenant", "tenant_id", "at_s"),
    )

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(128))
    tenant_id: Mapped[str] = mapped_column(String(40))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(40))
    meter: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    """``start`` opens the meter's interval, ``stop`` closes it, ``end`` closes it for good
    (the resource is gone); ``delta`` is a quantity used at one instant (egress GB)."""
    quantity: Mapped[Decimal] = mapped_column(default=Decimal(1))
    """Per second while open (GB of a volume, seats), or the amount of a ``delta``."""
    price_key: Mapped[str] = mapped_column(String(64), default="")
    """Which price applies (a flavor id, ``bound``/``idle``); '' is the meter's default."""
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=now)
    at_s: Mapped[int] = mapped_column(BigInteger, default=0)
    """``occurred_at`` in whole epoch seconds: rating slices periods in integer seconds."""
    body_hash: Mapped[str] = mapped_column(String(32), default="")
    """A digest of everything but the time: a second copy with another digest is a conflict."""


class UsageQuarantine(Base):
    """A copy of an event that differs from the one recorded under its ``(source, event_id)``:
    kept aside for an administrator, never counted unless accepted. The first copy wins
    until then."""

    __tablename__ = "usage_quarantine"
    __table_args__ = (UniqueConstraint("source", "event_id", "body_hash", "occurred_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(128))
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    body_hash: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=now)
    state: Mapped[str] = mapped_column(String(16), default="held", index=True)
    """``held``; ``accepted`` (it replaced the recorded copy) or ``discarded``."""
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)


class PriceBook(Timestamps, Base):
    """One version of a named price list in one currency. Only a draft changes; publishing
    freezes it, and a change is a new version."""

    __tablename__ = "price_books"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(default=1)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(16), default="draft")
    effective_from: Mapped[datetime | None] = mapped_column(default=None)
    """When a published version takes over from the previous one (its publishing, if unset)."""
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    description: Mapped[str] = mapped_column(String(1024), default="")


class PriceItem(Base):
    """The price of one meter (and price key) in a book."""

    __tablename__ = "price_items"
    __table_args__ = (UniqueConstraint("price_book_id", "meter", "price_key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    price_book_id: Mapped[str] = mapped_column(
        ForeignKey("price_books.id", ondelete="CASCADE"), index=True
    )
    meter: Mapped[str] = mapped_column(String(64))
    price_key: Mapped[str] = mapped_column(String(64), default="")
    model: Mapped[str] = mapped_column(String(16), default="per_unit")
    """``per_unit``, ``flat`` (once per period if used), ``graduated`` or ``volume`` (tiers)."""
    basis: Mapped[str] = mapped_column(String(8), default="hour")
    """What one unit is: a ``second``, ``hour`` or ``month`` of use, a ``unit`` (a delta), or
    a month prorated by ``day`` (a subscription plan's fee)."""
    unit_price: Mapped[Decimal] = mapped_column(default=Decimal(0))
    tiers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """``[{"upper": "10", "unit_price": "0.80"}, …, {"upper": null, …}]``: lower < q ≤ upper."""
    min_charge_seconds: Mapped[int] = mapped_column(default=0)
    description: Mapped[str] = mapped_column(String(256), default="")
    included: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """A package: ``[{"meter", "price_key", "quantity"}, …]`` included per month of this
    item's use (a plan's), so only the usage beyond it is charged."""


class PlanSubscription(Timestamps, Base):
    """A tenant's subscription to a plan of its account's price book (an item of meter
    ``subscription``). It is metered as an interval: a change of plan or quantity stops one
    interval and starts the next at the same instant."""

    __tablename__ = "plan_subscriptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    tenant_path: Mapped[str] = mapped_column(String(1024), index=True)
    plan: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(default=1)
    state: Mapped[str] = mapped_column(String(16), default="active", index=True)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    changes: Mapped[int] = mapped_column(default=0)
    """How many times plan or quantity changed (numbers the usage events)."""


class BillingAccount(Timestamps, Base):
    """Who pays for a tenant's subtree (down to the next tenant with an account of its own),
    in which currency and time zone, under which price book."""

    __tablename__ = "billing_accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), unique=True)
    tenant_path: Mapped[str] = mapped_column(String(1024), index=True)
    mode: Mapped[str] = mapped_column(String(16), default="postpaid")
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    price_book: Mapped[str] = mapped_column(String(64), default="list")
    tax_rate: Mapped[Decimal] = mapped_column(default=Decimal("0.06"))
    grace_hours: Mapped[int] = mapped_column(default=72)
    credit_limit: Mapped[Decimal | None] = mapped_column(default=None)
    """Postpaid: what may be owed (unpaid invoices and this month's draft) before new
    orders are refused; none is no limit."""
    state: Mapped[str] = mapped_column(String(16), default="active")
    """``active``, or ``suspended`` (prepaid, below zero: nothing new may be ordered)."""
    suspended_at: Mapped[datetime | None] = mapped_column(default=None)
    low_alerted_at: Mapped[datetime | None] = mapped_column(default=None)


class Invoice(Timestamps, Base):
    """An account's bill for one month of its time zone: a draft rated again as usage
    arrives, then finalized and never changed (a correction is a credit note)."""

    __tablename__ = "invoices"
    __table_args__ = (
        Index(
            "uq_invoices_account_period",
            "account_id",
            "period",
            unique=True,
            postgresql_where=text("kind = 'invoice'"),
            sqlite_where=text("kind = 'invoice'"),
        ),
        Index("ix_invoices_state_finalize_after", "state", "finalize_after"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("billing_accounts.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    tenant_path: Mapped[str] = mapped_column(String(1024), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="invoice")
    period: Mapped[str] = mapped_column(String(7))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="draft")
    number: Mapped[str | None] = mapped_column(String(32), unique=True, default=None)
    currency: Mapped[str] = mapped_column(String(3))
    price_book_id: Mapped[str | None] = mapped_column(String(40), default=None)
    subtotal: Mapped[Decimal] = mapped_column(default=Decimal(0))
    tax_rate: Mapped[Decimal] = mapped_column(default=Decimal(0))
    tax: Mapped[Decimal] = mapped_column(default=Decimal(0))
    total: Mapped[Decimal] = mapped_column(default=Decimal(0))
    rated_at: Mapped[datetime | None] = mapped_column(default=None)
    finalize_after: Mapped[datetime]
    finalized_at: Mapped[datetime | None] = mapped_column(default=None)
    amount_due: Mapped[Decimal] = mapped_column(default=Decimal(0))
    """What is left to pay once finalized (wallets and payments taken off)."""
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    corrects_invoice_id: Mapped[str | None] = mapped_column(String(40), default=None)
    """A credit note's original."""
    reason: Mapped[str] = mapped_column(String(1024), default="")
    rated_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    """The last usage event the rating saw: a later event of the period is a correction."""


class InvoiceLine(Base):
    """One priced group of usage: a resource's meter at one price, rounded once."""

    __tablename__ = "invoice_lines"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(
        ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    line_no: Mapped[int]
    """The order of the line among its kind's."""
    kind: Mapped[str] = mapped_column(String(16), default="usage")
    """``usage``, ``adjustment`` (late usage of a finalized period) or ``credit``."""
    tenant_id: Mapped[str] = mapped_column(String(40))
    resource_type: Mapped[str] = mapped_column(String(32), default="")
    resource_id: Mapped[str] = mapped_column(String(40), default="", index=True)
    meter: Mapped[str] = mapped_column(String(64), default="")
    price_key: Mapped[str] = mapped_column(String(64), default="")
    price_item_id: Mapped[str | None] = mapped_column(String(40), default=None)
    basis: Mapped[str] = mapped_column(String(8), default="")
    quantity: Mapped[Decimal] = mapped_column(default=Decimal(0))
    """Units of the basis (hours, GB-months, GB) at full precision."""
    seconds: Mapped[int] = mapped_column(default=0)
    starts: Mapped[int] = mapped_column(default=0)
    unit_price: Mapped[Decimal] = mapped_column(default=Decimal(0))
    exact: Mapped[Decimal] = mapped_column(default=Decimal(0))
    """The amount before rounding (kept to the column's precision, for explanation)."""
    amount: Mapped[Decimal] = mapped_column(default=Decimal(0))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    corrects_invoice_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    """For an adjustment or credit line: the finalized invoice whose period it corrects."""
    corrects_line_id: Mapped[str | None] = mapped_column(String(40), default=None)


class InvoiceCounter(Base):
    """The last invoice number given out per prefix (``INV-2027-03``)."""

    __tablename__ = "invoice_counters"

    prefix: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


class Discount(Timestamps, Base):
    """A price change for a tenant subtree (all tenants when none), a meter and price key
    (all when ''), while valid (``[valid_from, valid_until)``): ``percent`` off each line,
    an ``override`` of the unit price or tiers, or a ``fixed`` amount off each invoice."""

    __tablename__ = "discounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    tenant_id: Mapped[str | None] = mapped_column(String(40), default=None)
    tenant_path: Mapped[str] = mapped_column(String(1024), default="")
    meter: Mapped[str] = mapped_column(String(64), default="")
    price_key: Mapped[str] = mapped_column(String(64), default="")
    percent: Mapped[Decimal] = mapped_column(default=Decimal(0))
    amount: Mapped[Decimal] = mapped_column(default=Decimal(0))
    unit_price: Mapped[Decimal | None] = mapped_column(default=None)
    tiers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime | None] = mapped_column(default=None)
    description: Mapped[str] = mapped_column(String(256), default="")
    funded_by: Mapped[str] = mapped_column(String(16), default="platform")
    """Who gives it up: the ``platform``, or the ``vendor`` of the product (it then reduces
    what the vendor is settled on)."""


class Coupon(Timestamps, Base):
    """A code an account redeems: ``percent`` off its invoices of the months the coupon is
    valid in, or an ``amount`` used up across invoices until it is spent."""

    __tablename__ = "coupons"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    percent: Mapped[Decimal] = mapped_column(default=Decimal(0))
    amount: Mapped[Decimal] = mapped_column(default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    meter: Mapped[str] = mapped_column(String(64), default="")
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime | None] = mapped_column(default=None)
    max_redemptions: Mapped[int | None] = mapped_column(default=None)
    description: Mapped[str] = mapped_column(String(256), default="")


class CouponRedemption(Base):
    """An account holds a coupon (once)."""

    __tablename__ = "coupon_redemptions"

    coupon_id: Mapped[str] = mapped_column(
        ForeignKey("coupons.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    redeemed_at: Mapped[datetime] = mapped_column(default=now)


class LedgerAccount(Base):
    """A book-keeping account of a billing account (``owner_id``) or of the platform:
    ``receivable``, ``cash_wallet``, ``credit_wallet``, ``prepaid_clearing`` are the
    customer's; ``revenue``, ``tax_payable``, ``promotions``, ``bank_clearing`` the
    platform's. ``balance`` caches the sum of its entries (debits positive)."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (UniqueConstraint("owner_id", "code", "currency"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[Decimal] = mapped_column(default=Decimal(0))


class LedgerTransaction(Base):
    """One money movement: balanced entries, posted once per ``reference``."""

    __tablename__ = "ledger_transactions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    reference: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    tenant_path: Mapped[str] = mapped_column(String(1024), default="", index=True)
    invoice_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    at: Mapped[datetime] = mapped_column(default=now)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(
        ForeignKey("ledger_transactions.id", ondelete="CASCADE"), index=True
    )
    ledger_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount: Mapped[Decimal]
    """A debit is positive, a credit negative; a transaction's entries add up to zero."""


class Payment(Base):
    """Money received: a top-up of the cash wallet, or the payment of an invoice. Its
    ``reference`` (the bank's or gateway's) is unique per account, so a retry counts once."""

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("account_id", "reference"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("billing_accounts.id"), index=True)
    tenant_path: Mapped[str] = mapped_column(String(1024), index=True)
    invoice_id: Mapped[str | None] = mapped_column(String(40), default=None)
    kind: Mapped[str] = mapped_column(String(16))
    """``top-up``, ``payment`` (of an invoice) or ``grant`` (credit the platform gives)."""
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(32), default="")
    reference: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=now)


class Vendor(Timestamps, Base):
    """A third party whose SaaS or PaaS offerings the platform sells: its products are the
    ``(meter, price_key)`` pairs its usage is billed under; it is paid what its invoice lines
    listed at, less the platform's commission, once the customer's invoice is collected."""

    __tablename__ = "vendors"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    """The vendor's own tenant: its administrators read its statements."""
    tenant_path: Mapped[str] = mapped_column(String(1024), index=True)
    commission_rate: Mapped[Decimal] = mapped_column(default=Decimal("0.15"))
    products: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    """``[{"meter": "saas.seats", "price_key": "crm-pro"}, …]``."""


class VendorStatement(Base):
    """What a vendor is owed for a month: its lines of the invoices collected in it."""

    __tablename__ = "vendor_statements"
    __table_args__ = (UniqueConstraint("vendor_id", "period", "currency"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    vendor_id: Mapped[str] = mapped_column(ForeignKey("vendors.id"), index=True)
    tenant_path: Mapped[str] = mapped_column(String(1024), index=True)
    period: Mapped[str] = mapped_column(String(7))
    currency: Mapped[str] = mapped_column(String(3))
    commission_rate: Mapped[Decimal]
    base: Mapped[Decimal]
    fee: Mapped[Decimal]
    payout: Mapped[Decimal]
    lines: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=now)


class VendorStatementLine(Base):
    """An invoice line settled with a vendor: once, on one statement."""

    __tablename__ = "vendor_statement_lines"

    invoice_line_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    statement_id: Mapped[str] = mapped_column(
        ForeignKey("vendor_statements.id", ondelete="CASCADE"), index=True
    )
    base: Mapped[Decimal]
