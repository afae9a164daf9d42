"""Plan subscriptions: a tenant's recurring charge for a plan of its account's price book.

A plan is an item of the ``subscription`` meter (its price key names it): billed by the
``hour``, or by the month prorated by ``day``, and, as a package, including usage of other
meters. A subscription is metered like any resource, so a change of plan or quantity stops
one interval and starts the next at the same instant, and the day of a change is billed to
the new plan.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunguan.billing import metering, pricing, rating, wallets
from yunguan.billing.models import PlanSubscription, PriceItem
from yunguan.core.clock import now
from yunguan.core.errors import Conflict, Unprocessable
from yunguan.core.ids import new_id
from yunguan.identity.models import Tenant


def check_plan(session: Session, tenant_id: str, plan: str) -> None:
    """The tenant's account must offer ``plan`` in the book now in effect (422 if not) and
    be in good standing (402 if not, as for anything new)."""
    account = rating.account_of(session, tenant_id)
    if account is None:
        raise Unprocessable(f"tenant {tenant_id} has no billing account", code="no-account")
    wallets.guard(session, tenant_id)
    book = pricing.in_effect(session, account.price_book, now())
    offered = book is not None and session.scalar(
        select(PriceItem.id).where(
            PriceItem.price_book_id == book.id,
            PriceItem.meter == pricing.PLAN_METER,
            PriceItem.price_key == plan,
        )
    )
    if not offered:
        raise Unprocessable(
            f"price book {account.price_book!r} offers no plan {plan!r}", code="unknown-plan"
        )


def subscribe(session: Session, tenant: Tenant, plan: str, quantity: int) -> PlanSubscription:
    check_plan(session, tenant.id, plan)
    at = now()
    subscription = PlanSubscription(
        id=new_id("psub"),
        tenant_id=tenant.id,
        tenant_path=tenant.path,
        plan=plan,
        quantity=quantity,
        started_at=at,
    )
    session.add(subscription)
    _meter(session, subscription, "start", at)
    return subscription


def change(session: Session, subscription: PlanSubscription, data: Any) -> PlanSubscription:
    """Another ``data.plan`` or ``data.quantity`` from now on (nothing changes if both are
    the same)."""
    if subscription.state != "active":
        raise Conflict(f"subscription {subscription.id} has ended", code="subscription-ended")
    plan, quantity = data.plan or subscription.plan, data.quantity or subscription.quantity
    if (plan, quantity) == (subscription.plan, subscription.quantity):
        return subscription
    check_plan(session, subscription.tenant_id, plan)
    at = now()
    _meter(session, subscription, "stop", at)
    subscription.changes += 1
    subscription.plan, subscription.quantity = plan, quantity
    _meter(session, subscription, "start", at)
    return subscription


def end(session: Session, subscription: PlanSubscription) -> None:
    """Unsubscribe (once: ending an ended subscription changes nothing)."""
    if subscription.state == "active":
        subscription.state, subscription.ended_at = "ended", now()
        _meter(session, subscription, "end", subscription.ended_at)


def _meter(session: Session, subscription: PlanSubscription, action: str, at: datetime) -> None:
    metering.record(
        session,
        source="billing",
        event_id=f"{subscription.id}:{subscription.changes}:{action}",
        tenant_id=subscription.tenant_id,
        resource_type="subscription",
        resource_id=subscription.id,
        meter=pricing.PLAN_METER,
        action=action,
        quantity=subscription.quantity,
        price_key=subscription.plan,
        occurred_at=at,
    )
