"""Billing as the API and other domains use it: who may see and change what.

Tenants see their subtree's usage (``resource:read``) and bills (``billing:read``), and
their administrators redeem coupons (``billing:pay``); price books are readable by every
signed-in principal; everything that sets prices, discounts, accounts or money is the
platform's (``billing:write``), and so is sending usage (``usage:write``).
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunguan.billing import invoices, metering, plans, pricing, schemas, settlement, wallets
from yunguan.billing.metering import record  # noqa: F401  (the emitters' entry point)
from yunguan.billing.models import (
    BillingAccount,
    Coupon,
    CouponRedemption,
    Discount,
    Invoice,
    LedgerTransaction,
    Payment,
    PlanSubscription,
    PriceBook,
    UsageEvent,
    UsageQuarantine,
    Vendor,
    VendorStatement,
)
from yunguan.billing.wallets import guard  # noqa: F401  (what may be ordered: 402 if not)
from yunguan.core.clock import now
from yunguan.core.db import flush_or_conflict, locked
from yunguan.core.errors import Conflict, NotFound, Unprocessable
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams
from yunguan.identity.crud import apply_changes
from yunguan.identity.models import Tenant
from yunguan.identity.scope import (
    Principal,
    get_permitted,
    get_visible,
    list_permitted,
    list_visible,
    require,
    restrict,
)
from yunguan.identity.service import tenant_for_new_resource

READ, WRITE, USAGE_WRITE, PAY = "billing:read", "billing:write", "usage:write", "billing:pay"
PRICES_READ = "resource:read"


# --- usage ---


def list_usage_events(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_visible(session, principal, UsageEvent, "resource:read", page, **filters)


def ingest(session: Session, principal: Principal, batch: schemas.UsageBatch) -> metering.Ingested:
    require(principal, USAGE_WRITE)
    return metering.ingest(session, [event.model_dump() for event in batch.events])


def list_quarantine(session: Session, principal: Principal, page: PageParams, **filters: Any):
    require(principal, WRITE)
    return list_visible(session, principal, UsageQuarantine, WRITE, page, **filters)


def resolve_quarantine(
    session: Session, principal: Principal, held_id: str, data: schemas.QuarantineAction
) -> UsageQuarantine:
    """``accept`` a quarantined copy in place of the recorded event, or ``discard`` it."""
    require(principal, WRITE)
    held = locked(session, UsageQuarantine, held_id)
    if held is None:
        raise NotFound(f"quarantined copy {held_id} not found")
    return metering.resolve(session, held, data.action == "accept")


def intervals_of(session: Session, principal: Principal, resource_id: str) -> list[Any]:
    """A resource's usage intervals, if the principal sees its events."""
    seen = select(UsageEvent.seq).where(UsageEvent.resource_id == resource_id).limit(1)
    if session.scalar(restrict(seen, UsageEvent, principal, "resource:read")) is None:
        raise NotFound(f"no usage of {resource_id} to show")
    return metering.resource_intervals(session, resource_id)


# --- price books ---


def list_books(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_permitted(session, principal, PriceBook, PRICES_READ, page, **filters)


def get_book(session: Session, principal: Principal, book_id: str) -> PriceBook:
    require(principal, PRICES_READ)
    return pricing.get_book(session, book_id)


def book_out(session: Session, book: PriceBook) -> schemas.PriceBookOut:
    items = [schemas.PriceItemOut.model_validate(i) for i in pricing.items_of(session, book.id)]
    summary = schemas.PriceBookSummary.model_validate(book)
    return schemas.PriceBookOut(**summary.model_dump(), items=items)


def create_book(session: Session, principal: Principal, data: schemas.PriceBookCreate) -> PriceBook:
    require(principal, WRITE)
    items = [item.row() for item in data.items]
    return pricing.create_book(
        session, name=data.name, currency=data.currency, description=data.description, items=items
    )


def update_book(
    session: Session, principal: Principal, book_id: str, data: schemas.PriceBookUpdate
) -> PriceBook:
    require(principal, WRITE)
    book = pricing.draft(session, book_id)
    apply_changes(book, data, skip=("items",))
    if data.items is not None:
        pricing.set_items(session, book, [item.row() for item in data.items])
    return book


def delete_book(session: Session, principal: Principal, book_id: str) -> None:
    require(principal, WRITE)
    session.delete(pricing.draft(session, book_id))


def act_on_book(
    session: Session, principal: Principal, book_id: str, data: schemas.PriceBookAction
) -> PriceBook:
    require(principal, WRITE)
    if data.action == "publish":
        book = pricing.draft(session, book_id)
        _check_currency(session, book.name, book.currency)
        _check_not_history(session, data.effective_from, f"price book {book.name}", book.name)
        pricing.publish(session, book, data.effective_from)
        return book
    return pricing.new_version(session, pricing.get_book(session, book_id))


# --- accounts ---


def list_accounts(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_visible(session, principal, BillingAccount, READ, page, **filters)


def get_account(session: Session, principal: Principal, account_id: str) -> BillingAccount:
    return get_visible(session, BillingAccount, account_id, principal, READ)


def create_account(
    session: Session, principal: Principal, data: schemas.AccountCreate
) -> BillingAccount:
    require(principal, WRITE)
    tenant = _tenant(session, data.tenant_id)
    _check_currency(session, data.price_book, data.currency)
    account = BillingAccount(id=new_id("ba"), tenant_path=tenant.path, **data.model_dump())
    session.add(account)
    flush_or_conflict(session, f"tenant {tenant.id} has a billing account", "duplicate-account")
    return account


def update_account(
    session: Session, principal: Principal, account_id: str, data: schemas.AccountUpdate
) -> BillingAccount:
    require(principal, WRITE)
    account = get_account(session, principal, account_id)
    if data.price_book is not None:
        _check_currency(session, data.price_book, account.currency)
    moved = data.timezone is not None and data.timezone != account.timezone
    if moved and session.scalar(
        select(Invoice.id).where(Invoice.account_id == account.id).limit(1)
    ):
        raise Conflict(
            "an account with invoices keeps its time zone: its months would overlap",
            code="account-invoiced",
        )
    apply_changes(account, data)
    return account


def delete_account(session: Session, principal: Principal, account_id: str) -> None:
    """Only an account nothing was billed or paid to (409 otherwise): its records stay."""
    require(principal, WRITE)
    account = get_account(session, principal, account_id)
    used = select(Invoice.id).where(Invoice.account_id == account.id)
    paid = select(Payment.id).where(Payment.account_id == account.id)
    if session.scalar(used.union_all(paid).limit(1)):
        raise Conflict(
            f"billing account {account.id} has invoices or payments: it stays",
            code="account-in-use",
        )
    session.delete(account)


def _tenant(session: Session, tenant_id: str) -> Tenant:
    """The tenant a new billing object is for; 422 if there is none."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise Unprocessable(f"tenant {tenant_id} not found", code="unknown-tenant")
    return tenant


def _check_currency(session: Session, book: str, currency: str) -> None:
    """A price book (every version) and the accounts billed by it share one currency; 422
    if ``currency`` differs from theirs."""
    versions = select(PriceBook.currency).where(
        PriceBook.name == book, PriceBook.currency != currency
    )
    accounts = select(BillingAccount.currency).where(
        BillingAccount.price_book == book, BillingAccount.currency != currency
    )
    other = session.scalar(versions.union_all(accounts).limit(1))
    if other:
        raise Unprocessable(
            f"price book {book!r} is in {other}, the account in {currency}",
            code="currency-mismatch",
        )


def _check_not_history(
    session: Session, moment: datetime | None, what: str = "a discount", book: str | None = None
) -> None:
    """Prices of finalized months stay as they were billed: 422 for a change taking effect
    before the end of the last finalized month (of the accounts on ``book``, if given)."""
    closed = invoices.finalized_through(session, book)
    if closed is not None and moment is not None and moment < closed:
        raise Unprocessable(
            f"{what} cannot take effect before {closed.isoformat()}: months up to then are"
            " finalized",
            code="period-finalized",
        )


# --- plan subscriptions ---


def count_tenant_holdings(session: Session, tenant_id: str) -> int:
    """What keeps a tenant from being deleted: its billing account, its active plans."""
    accounts = select(func.count()).where(BillingAccount.tenant_id == tenant_id)
    active = select(func.count()).where(
        PlanSubscription.tenant_id == tenant_id, PlanSubscription.state == "active"
    )
    return (session.scalar(accounts) or 0) + (session.scalar(active) or 0)


def list_plan_subscriptions(
    session: Session, principal: Principal, page: PageParams, **filters: Any
):
    return list_visible(session, principal, PlanSubscription, READ, page, **filters)


def get_plan_subscription(
    session: Session, principal: Principal, subscription_id: str
) -> PlanSubscription:
    return get_visible(session, PlanSubscription, subscription_id, principal, READ)


def create_plan_subscription(
    session: Session, principal: Principal, data: schemas.PlanSubscriptionCreate
) -> PlanSubscription:
    require(principal, PAY)
    tenant = tenant_for_new_resource(session, principal, data.tenant_id or principal.tenant_id)
    return plans.subscribe(session, tenant, data.plan, data.quantity)


def update_plan_subscription(
    session: Session,
    principal: Principal,
    subscription_id: str,
    data: schemas.PlanSubscriptionUpdate,
) -> PlanSubscription:
    return plans.change(session, _plan_to_change(session, principal, subscription_id), data)


def end_plan_subscription(session: Session, principal: Principal, subscription_id: str) -> None:
    plans.end(session, _plan_to_change(session, principal, subscription_id))


def _plan_to_change(session: Session, principal: Principal, subscription_id: str):
    """The subscription, locked and read afresh: two changes at once take turns."""
    get_plan_subscription(session, principal, subscription_id)
    require(principal, PAY)
    return locked(session, PlanSubscription, subscription_id)


# --- invoices ---


def list_invoices(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_visible(session, principal, Invoice, READ, page, **filters)


def get_invoice(session: Session, principal: Principal, invoice_id: str) -> Invoice:
    return get_visible(session, Invoice, invoice_id, principal, READ)


def invoice_out(session: Session, invoice: Invoice) -> schemas.InvoiceDetailOut:
    lines = [
        schemas.InvoiceLineOut.model_validate(line)
        for line in invoices.lines_of(session, invoice.id)
    ]
    return schemas.InvoiceDetailOut.model_validate({**_columns(invoice), "lines": lines})


def invoice_csv(session: Session, invoice: Invoice) -> Response:
    """The invoice as a CSV attachment named by its number (its id while a draft)."""
    name = invoice.number or invoice.id
    return Response(
        invoices.as_csv(session, invoice),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _columns(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


def act_on_invoice(
    session: Session, principal: Principal, invoice_id: str, data: schemas.InvoiceAction
) -> Invoice:
    require(principal, WRITE)
    invoice = get_invoice(session, principal, invoice_id)
    if data.action == "finalize":
        if invoice.period_end > now():
            raise Conflict(f"{invoice.period} is not over yet", code="period-open")
        return invoices.finalize(session, invoice)
    if data.action == "pay":
        invoice = invoices.lock(session, invoice.id)
        account = session.get(BillingAccount, invoice.account_id)
        wallets.receive(
            session, account, "payment", data.amount, data.reference, data.method, invoice
        )  # type: ignore[arg-type]
        return invoice
    return invoices.credit(session, invoice, Decimal(data.amount), data.reason)  # type: ignore[arg-type]


# --- discounts and coupons ---


def _tiers(tiers: list[schemas.TierIn]) -> list[dict[str, str | None]]:
    return [
        {"upper": None if t.upper is None else str(t.upper), "unit_price": str(t.unit_price)}
        for t in tiers
    ]


def list_discounts(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_permitted(session, principal, Discount, WRITE, page, **filters)


def get_discount(session: Session, principal: Principal, discount_id: str) -> Discount:
    return get_permitted(session, Discount, discount_id, principal, WRITE, "discount")


def create_discount(
    session: Session, principal: Principal, data: schemas.DiscountCreate
) -> Discount:
    require(principal, WRITE)
    _check_not_history(session, data.valid_from)
    path = "" if data.tenant_id is None else _tenant(session, data.tenant_id).path
    fields = data.model_dump(exclude={"tiers", "percent", "amount"})
    discount = Discount(
        id=new_id("dis"),
        tenant_path=path,
        tiers=_tiers(data.tiers),
        percent=data.percent or Decimal(0),
        amount=data.amount or Decimal(0),
        **fields,
    )
    session.add(discount)
    session.flush()
    return discount


def update_discount(
    session: Session, principal: Principal, discount_id: str, data: schemas.DiscountUpdate
) -> Discount:
    discount = get_discount(session, principal, discount_id)
    if "valid_until" in data.model_fields_set:  # neither end may lie in a finalized month
        endless = datetime.max.replace(tzinfo=UTC)
        ends = (data.valid_until or endless, discount.valid_until or endless)
        _check_not_history(session, min(ends))
    apply_changes(discount, data)
    return discount


def delete_discount(session: Session, principal: Principal, discount_id: str) -> None:
    discount = get_discount(session, principal, discount_id)
    closed = invoices.finalized_through(session)
    if closed is not None and discount.valid_from < closed:
        raise Conflict(
            f"discount {discount.id} priced finalized months: end it (valid_until) instead",
            code="period-finalized",
        )
    session.delete(discount)


def list_coupons(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_permitted(session, principal, Coupon, WRITE, page, **filters)


def get_coupon(session: Session, principal: Principal, coupon_id: str) -> Coupon:
    return get_permitted(session, Coupon, coupon_id, principal, WRITE, "coupon")


def create_coupon(session: Session, principal: Principal, data: schemas.CouponCreate) -> Coupon:
    require(principal, WRITE)
    fields = data.model_dump(exclude={"percent", "amount"})
    coupon = Coupon(
        id=new_id("cpn"),
        percent=data.percent or Decimal(0),
        amount=data.amount or Decimal(0),
        **fields,
    )
    session.add(coupon)
    flush_or_conflict(session, f"a coupon with code {data.code!r} exists", "duplicate-code")
    return coupon


def update_coupon(
    session: Session, principal: Principal, coupon_id: str, data: schemas.CouponUpdate
) -> Coupon:
    coupon = get_coupon(session, principal, coupon_id)
    apply_changes(coupon, data)
    return coupon


def delete_coupon(session: Session, principal: Principal, coupon_id: str) -> None:
    session.delete(get_coupon(session, principal, coupon_id))


def act_on_account(
    session: Session, principal: Principal, account_id: str, data: schemas.AccountAction
) -> BillingAccount:
    """``redeem-coupon``: the account holds the coupon from now on (once; while the coupon
    is valid and has redemptions left). ``top-up`` and ``grant``: money recorded once per
    reference (the platform's, as a payment gateway or operator reports it)."""
    if data.action != "redeem-coupon":
        require(principal, WRITE)
        account = get_account(session, principal, account_id)
        kind = data.action
        wallets.receive(session, account, kind, data.amount, data.reference, data.method)  # type: ignore[arg-type]
        return account
    require(principal, PAY)
    account = get_account(session, principal, account_id)
    coupon = session.scalars(
        select(Coupon).where(Coupon.code == data.code).with_for_update()
    ).one_or_none()
    at = now()
    expired = coupon is not None and coupon.valid_until is not None and coupon.valid_until <= at
    if coupon is None or coupon.valid_from > at or expired:
        raise Unprocessable(f"no coupon {data.code!r} is valid now", code="invalid-coupon")
    if coupon.currency != account.currency:
        raise Unprocessable(f"the coupon is in {coupon.currency}", code="currency-mismatch")
    if session.get(CouponRedemption, (coupon.id, account.id)) is not None:
        raise Conflict(f"the account holds coupon {data.code!r}", code="coupon-redeemed")
    taken = session.scalar(select(func.count()).where(CouponRedemption.coupon_id == coupon.id))
    if coupon.max_redemptions is not None and taken >= coupon.max_redemptions:
        raise Conflict(f"coupon {data.code!r} is used up", code="coupon-used-up")
    session.add(CouponRedemption(coupon_id=coupon.id, account_id=account.id, redeemed_at=at))
    return account


# --- wallets, payments, ledger ---


def list_wallets(
    session: Session, principal: Principal, page: PageParams, **filters: Any
) -> tuple[list[schemas.WalletOut], str | None]:
    """Each visible account's wallets: cash, granted credit, and their sum."""
    accounts, cursor = list_accounts(session, principal, page, **filters)
    return [wallet_out(session, account) for account in accounts], cursor


def wallet_out(session: Session, account: BillingAccount) -> schemas.WalletOut:
    cash, credit = wallets.balances(session, account)
    return schemas.WalletOut(
        account_id=account.id,
        tenant_id=account.tenant_id,
        mode=account.mode,
        state=account.state,
        currency=account.currency,
        cash=cash,
        credit=credit,
        balance=cash + credit,
    )


def list_payments(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_visible(session, principal, Payment, READ, page, **filters)


def list_ledger(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_permitted(session, principal, LedgerTransaction, WRITE, page, **filters)


# --- ISV settlement ---


def list_vendors(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_visible(session, principal, Vendor, READ, page, **filters)


def get_vendor(session: Session, principal: Principal, vendor_id: str) -> Vendor:
    return get_visible(session, Vendor, vendor_id, principal, READ)


def create_vendor(session: Session, principal: Principal, data: schemas.VendorCreate) -> Vendor:
    require(principal, WRITE)
    tenant = _tenant(session, data.tenant_id)
    vendor = Vendor(id=new_id("vnd"), tenant_path=tenant.path, **data.model_dump())
    session.add(vendor)
    flush_or_conflict(session, f"a vendor named {data.name!r} exists", "duplicate-name")
    return vendor


def update_vendor(
    session: Session, principal: Principal, vendor_id: str, data: schemas.VendorUpdate
) -> Vendor:
    require(principal, WRITE)
    vendor = get_vendor(session, principal, vendor_id)
    apply_changes(vendor, data, skip=("products",))
    if data.products is not None:
        vendor.products = [p.model_dump() for p in data.products]
    return vendor


def list_statements(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_visible(session, principal, VendorStatement, READ, page, **filters)


def settle_vendor(
    session: Session, principal: Principal, data: schemas.StatementCreate
) -> list[VendorStatement]:
    require(principal, WRITE)
    vendor = session.scalars(
        select(Vendor).where(Vendor.id == data.vendor_id).with_for_update()
    ).one_or_none()
    if vendor is None:
        raise NotFound(f"vendor {data.vendor_id} not found")
    return settlement.settle(session, vendor, data.period)
