"""Billing API schemas: money in as decimal strings (never floats), out as strings."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, PlainSerializer, field_validator, model_validator

from yunguan.billing import periods, pricing
from yunguan.billing.models import ACTIONS
from yunguan.billing.money import CURRENCIES, plain, round_minor
from yunguan.core.types import (
    Amount,
    Identifier,
    Input,
    Label,
    Money,
    Name,
    NoFloat,
    Output,
    Text,
    UtcTime,
)

Currency = Literal[CURRENCIES]  # type: ignore[valid-type]
Key = Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_.:-]*$")]
Period = Annotated[str, Field(pattern=periods.PERIOD.pattern)]
Quantity = Annotated[
    Decimal,
    NoFloat,
    Field(ge=0, le=10**12, decimal_places=6),
    PlainSerializer(str, return_type=str, when_used="json"),
]


Exact = Annotated[Decimal, PlainSerializer(plain, return_type=str, when_used="json")]
"""A price, rate or quantity as precise as it is, without padding: ``0.5``, ``75.5``."""
Rate = Annotated[Decimal, NoFloat, Field(ge=0, le=1, decimal_places=4)]


class InCurrency(Output):
    """An output whose ``MONEY`` fields show as the currency writes them (the database keeps
    ten places)."""

    MONEY: ClassVar[tuple[str, ...]] = ()
    currency: str

    @model_validator(mode="after")
    def _in_minor_units(self) -> "InCurrency":
        for name in self.MONEY:
            if getattr(self, name) is not None:
                setattr(self, name, round_minor(getattr(self, name), self.currency))
        return self


def _zone(value: str) -> str:
    periods.zone(value)
    return value


# --- usage ---


class UsageEventIn(Input):
    source: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    event_id: Annotated[str, Field(min_length=1, max_length=128)]
    tenant_id: Identifier
    resource_type: Key
    resource_id: Identifier
    meter: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")]
    action: Literal[ACTIONS]  # type: ignore[valid-type]
    quantity: Quantity = Decimal(1)
    price_key: Key = ""
    attributes: dict[str, Label | int | bool] = Field(default_factory=dict, max_length=16)
    occurred_at: UtcTime


class UsageBatch(Input):
    events: list[UsageEventIn] = Field(min_length=1, max_length=10_000)


class IngestOut(Output):
    received: int
    inserted: int
    duplicates: int
    quarantined: int


class UsageEventOut(Output):
    id: str
    source: str
    event_id: str
    tenant_id: str
    resource_type: str
    resource_id: str
    meter: str
    action: str
    quantity: Exact
    price_key: str
    attributes: dict[str, Any]
    occurred_at: datetime


class QuarantineOut(Output):
    id: str
    source: str
    event_id: str
    tenant_id: str
    occurred_at: datetime
    payload: dict[str, Any]
    received_at: datetime
    state: str
    resolved_at: datetime | None


class QuarantineAction(Input):
    action: Literal["accept", "discard"]


class IntervalOut(Output):
    meter: str
    price_key: str
    quantity: Exact
    started_at: datetime
    ended_at: datetime | None


# --- price books ---


class TierIn(Input):
    upper: Quantity | None
    unit_price: Money


MeterName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")]


class IncludedIn(Input):
    """Usage a package includes per month of its plan's use."""

    meter: MeterName
    price_key: Key = ""
    quantity: Annotated[Quantity, Field(gt=0)]


class PriceItemIn(Input):
    meter: MeterName
    price_key: Key = ""
    model: Literal[pricing.MODELS] = "per_unit"  # type: ignore[valid-type]
    basis: Literal[pricing.BASES] = "hour"  # type: ignore[valid-type]
    unit_price: Money = Decimal(0)
    tiers: list[TierIn] = Field(default_factory=list, max_length=32)
    min_charge_seconds: Annotated[int, Field(ge=0, le=31 * 86400)] = 0
    description: Label = ""
    included: list[IncludedIn] = Field(default_factory=list, max_length=32)

    @model_validator(mode="after")
    def _tiers(self) -> "PriceItemIn":
        pricing.check_tiers(self.model, [t.model_dump() for t in self.tiers])
        if self.min_charge_seconds and self.basis in ("unit", "day"):
            raise ValueError(f"a minimum in seconds does not apply to a {self.basis!r} basis")
        if self.included and self.basis not in ("month", "day"):
            raise ValueError("a package includes usage per month: its basis is 'month' or 'day'")
        covered = [(i.meter, i.price_key) for i in self.included]
        if len(set(covered)) != len(covered) or (self.meter, self.price_key) in covered:
            raise ValueError("a package includes each other meter and price key once")
        return self

    def row(self) -> dict[str, Any]:
        data = self.model_dump()
        data["tiers"] = [
            {"upper": None if t.upper is None else str(t.upper), "unit_price": str(t.unit_price)}
            for t in self.tiers
        ]
        data["included"] = [{**i.model_dump(), "quantity": str(i.quantity)} for i in self.included]
        return data


def _distinct_items(items: list[PriceItemIn]) -> list[PriceItemIn]:
    keys = [(i.meter, i.price_key) for i in items]
    if len(set(keys)) != len(keys):
        raise ValueError("each meter and price key is priced once")
    return items


class PriceBookCreate(Input):
    name: Name
    currency: Currency = "CNY"
    description: Text = ""
    items: list[PriceItemIn] = Field(default_factory=list, max_length=1000)

    _distinct = field_validator("items")(_distinct_items)


class PriceBookUpdate(Input):
    description: Text | None = None
    currency: Currency | None = None
    items: list[PriceItemIn] | None = Field(default=None, max_length=1000)

    _distinct = field_validator("items")(lambda items: items and _distinct_items(items))


class PriceBookAction(Input):
    action: Literal["publish", "new-version"]
    effective_from: UtcTime | None = None


class TierOut(Output):
    upper: str | None
    unit_price: str


class IncludedOut(Output):
    meter: str
    price_key: str
    quantity: Exact


class PriceItemOut(Output):
    id: str
    meter: str
    price_key: str
    model: str
    basis: str
    unit_price: Exact
    tiers: list[TierOut]
    min_charge_seconds: int
    description: str
    included: list[IncludedOut]


class PriceBookSummary(Output):
    id: str
    name: str
    version: int
    currency: str
    state: str
    description: str
    effective_from: datetime | None
    published_at: datetime | None


class PriceBookOut(PriceBookSummary):
    items: list[PriceItemOut]


# --- accounts and invoices ---


class AccountCreate(Input):
    tenant_id: Identifier
    mode: Literal["postpaid", "prepaid"] = "postpaid"
    currency: Currency = "CNY"
    timezone: Annotated[str, Field(max_length=64)] = "Asia/Shanghai"
    price_book: Name = "list"
    tax_rate: Rate = Decimal("0.06")
    grace_hours: Annotated[int, Field(ge=0, le=31 * 24)] = 72
    credit_limit: Money | None = None

    _tz = field_validator("timezone")(_zone)


class AccountUpdate(Input):
    timezone: Annotated[str, Field(max_length=64)] | None = None
    price_book: Name | None = None
    tax_rate: Rate | None = None
    grace_hours: Annotated[int, Field(ge=0, le=31 * 24)] | None = None
    credit_limit: Money | None = None

    _tz = field_validator("timezone")(lambda v: v if v is None else _zone(v))


class AccountOut(InCurrency):
    MONEY = ("credit_limit",)

    id: str
    tenant_id: str
    mode: str
    timezone: str
    price_book: str
    tax_rate: Exact
    grace_hours: int
    credit_limit: Amount | None
    state: str
    created_at: datetime


class PlanSubscriptionCreate(Input):
    tenant_id: Identifier | None = None
    """The subscribing tenant (default: the caller's)."""
    plan: Annotated[Key, Field(min_length=1)]
    quantity: Annotated[int, Field(ge=1, le=100_000)] = 1


class PlanSubscriptionUpdate(Input):
    plan: Annotated[Key, Field(min_length=1)] | None = None
    quantity: Annotated[int, Field(ge=1, le=100_000)] | None = None


class PlanSubscriptionOut(Output):
    id: str
    tenant_id: str
    plan: str
    quantity: int
    state: str
    started_at: datetime
    ended_at: datetime | None
    changes: int


class InvoiceLineOut(Output):
    id: str
    line_no: int
    kind: str
    tenant_id: str
    resource_type: str
    resource_id: str
    meter: str
    price_key: str
    price_item_id: str | None
    basis: str
    quantity: Exact
    seconds: int
    starts: int
    unit_price: Exact
    exact: Exact
    amount: Amount
    detail: dict[str, Any]
    corrects_invoice_id: str | None


class InvoiceOut(InCurrency):
    MONEY = ("subtotal", "tax", "total", "amount_due")

    id: str
    number: str | None
    account_id: str
    tenant_id: str
    kind: str
    period: str
    period_start: datetime
    period_end: datetime
    state: str
    price_book_id: str | None
    subtotal: Amount
    tax_rate: Exact
    tax: Amount
    total: Amount
    amount_due: Amount
    paid_at: datetime | None
    rated_at: datetime | None
    finalize_after: datetime
    finalized_at: datetime | None
    corrects_invoice_id: str | None
    reason: str


class InvoiceDetailOut(InvoiceOut):
    lines: list[InvoiceLineOut]

    @model_validator(mode="after")
    def _lines_in_minor_units(self) -> "InvoiceDetailOut":
        for line in self.lines:
            line.amount = round_minor(line.amount, self.currency)
        return self


Reference = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:/-]+$")]
Method = Annotated[str, Field(max_length=32, pattern=r"^[a-z0-9_-]*$")]


class Received(Input):
    """Money received or granted, recorded once per ``reference`` (the bank's or gateway's)."""

    amount: Annotated[Decimal, NoFloat, Field(gt=0, le=10**12, decimal_places=2)] | None = None
    reference: Reference | None = None
    method: Method = ""

    def _needs_money(self, action: str) -> None:
        if self.amount is None or self.reference is None:
            raise ValueError(f"{action} needs an amount and a reference")


class InvoiceAction(Received):
    """``finalize`` a draft now; ``credit`` a finalized invoice (``amount`` before tax,
    ``reason``); record a ``pay``ment of it (``amount``, ``reference``)."""

    action: Literal["finalize", "credit", "pay"]
    reason: Text = ""

    @model_validator(mode="after")
    def _complete(self) -> "InvoiceAction":
        if self.action == "credit" and (not self.amount or not self.reason.strip()):
            raise ValueError("a credit needs a positive amount and a reason")
        if self.action == "pay":
            self._needs_money("pay")
        return self


class BillingRun(Input):
    period: Period | None = None
    """Rate this month for every account (default: each account's current month)."""
    finalize_due: bool = True


# --- discounts and coupons ---

Percent = Annotated[Decimal, NoFloat, Field(gt=0, le=100, decimal_places=4)]
Scoped = Annotated[str, Field(max_length=64, pattern=r"^[a-z0-9_.-]*$")]


class Validity(Input):
    valid_from: UtcTime
    valid_until: UtcTime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "Validity":
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must come after valid_from")
        return self


class DiscountCreate(Validity):
    kind: Literal["percent", "fixed", "override"]
    tenant_id: Identifier | None = None
    """A tenant subtree; none is every tenant."""
    meter: Scoped = ""
    price_key: Key = ""
    percent: Percent | None = None
    amount: Money | None = None
    unit_price: Money | None = None
    tiers: list[TierIn] = Field(default_factory=list, max_length=32)
    currency: Currency = "CNY"
    description: Label = ""
    funded_by: Literal["platform", "vendor"] = "platform"

    @model_validator(mode="after")
    def _complete(self) -> "DiscountCreate":
        needs = {"percent": self.percent, "fixed": self.amount}
        if self.kind in needs and not needs[self.kind]:
            raise ValueError("a percent discount needs its percent, a fixed one its amount")
        if self.kind == "override":
            if self.unit_price is None and not self.tiers:
                raise ValueError("an override needs a unit_price or tiers")
            if self.tiers:
                pricing.check_tiers("graduated", [t.model_dump() for t in self.tiers])
        if self.kind == "fixed" and self.price_key:
            raise ValueError("a fixed discount comes off the invoice: it has no price key")
        if self.kind == "fixed" and self.funded_by == "vendor":
            raise ValueError("a fixed discount comes off the invoice: the platform funds it")
        return self


class DiscountOut(Output):
    id: str
    kind: str
    tenant_id: str | None
    meter: str
    price_key: str
    percent: Exact
    amount: Exact
    unit_price: Exact | None
    tiers: list[TierOut]
    currency: str
    valid_from: datetime
    valid_until: datetime | None
    description: str
    funded_by: str


class DiscountUpdate(Input):
    """Only when a discount stops and what it says change; what it does is set at creation."""

    valid_until: UtcTime | None = None
    description: Label | None = None


class CouponCreate(Validity):
    code: Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    kind: Literal["percent", "amount"]
    percent: Percent | None = None
    amount: Money | None = None
    currency: Currency = "CNY"
    meter: Scoped = ""
    max_redemptions: Annotated[int, Field(ge=1, le=10**7)] | None = None
    description: Label = ""

    @model_validator(mode="after")
    def _complete(self) -> "CouponCreate":
        if not (self.percent if self.kind == "percent" else self.amount):
            raise ValueError(f"a {self.kind} coupon needs its {self.kind}")
        return self


class CouponUpdate(Input):
    valid_until: UtcTime | None = None
    max_redemptions: Annotated[int, Field(ge=1, le=10**7)] | None = None
    description: Label | None = None


class CouponOut(Output):
    id: str
    code: str
    kind: str
    percent: Exact
    amount: Exact
    currency: str
    meter: str
    valid_from: datetime
    valid_until: datetime | None
    max_redemptions: int | None
    description: str


class AccountAction(Received):
    """``redeem-coupon`` (``code``; the account's administrators), ``top-up`` the cash
    wallet or ``grant`` credit (``amount``, ``reference``; the platform)."""

    action: Literal["redeem-coupon", "top-up", "grant"]
    code: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _complete(self) -> "AccountAction":
        if self.action == "redeem-coupon" and not self.code:
            raise ValueError("redeem-coupon needs the coupon's code")
        if self.action != "redeem-coupon":
            self._needs_money(self.action)
        return self


class WalletOut(InCurrency):
    MONEY = ("cash", "credit", "balance")

    account_id: str
    tenant_id: str
    mode: str
    state: str
    cash: Amount
    credit: Amount
    balance: Amount


class PaymentOut(InCurrency):
    MONEY = ("amount",)

    id: str
    account_id: str
    invoice_id: str | None
    kind: str
    amount: Amount
    method: str
    reference: str
    created_at: datetime


class LedgerTransactionOut(Output):
    id: str
    reference: str
    kind: str
    account_id: str | None
    invoice_id: str | None
    at: datetime


# --- ISV settlement ---


class Product(Input):
    meter: Scoped
    price_key: Key = ""


class VendorCreate(Input):
    name: Name
    tenant_id: Identifier
    commission_rate: Rate = Decimal("0.15")
    products: list[Product] = Field(min_length=1, max_length=100)


class VendorUpdate(Input):
    commission_rate: Rate | None = None
    products: list[Product] | None = Field(default=None, min_length=1, max_length=100)


class VendorOut(Output):
    id: str
    name: str
    tenant_id: str
    commission_rate: Exact
    products: list[dict[str, str]]
    created_at: datetime


class StatementCreate(Input):
    vendor_id: Identifier
    period: Period


class StatementOut(InCurrency):
    MONEY = ("base", "fee", "payout")

    id: str
    vendor_id: str
    period: str
    commission_rate: Exact
    base: Amount
    fee: Amount
    payout: Amount
    lines: int
    created_at: datetime
