"""Service instances and their subscriptions: activated when an order is fulfilled, then
day-2 operations (power, renew, resize through a change order, unsubscribe, reclaim) and
the time-driven rules that ``tick`` applies: reminders before expiry, auto-renewal, a stop
at expiry, and the release once the retention period is over. The only code that writes
service instances and subscriptions."""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunguan.billing import service as billing
from yunguan.core import audit
from yunguan.core.clock import add_months, now
from yunguan.core.config import get_settings
from yunguan.core.db import Database, locked
from yunguan.core.errors import Conflict, Forbidden, NotFound, Problem
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams, paginate, where_equal
from yunguan.identity.scope import Principal, get_visible, require, restrict
from yunguan.notifications import service as notifications
from yunguan.orders import provisioning
from yunguan.orders.models import Order, ServiceInstance, Subscription
from yunguan.orders.schemas import ServiceAction
from yunguan.workflows.models import Operation

log = structlog.get_logger("yunguan.orders")
READ = "resource:read"
WRITE = "resource:write"
REMINDER_DAYS = (7, 3, 1)


def list_services(session: Session, principal: Principal, page: PageParams, **filters: Any):
    stmt = restrict(select(ServiceInstance), ServiceInstance, principal, READ)
    rows, cursor = paginate(
        session,
        where_equal(stmt, ServiceInstance, **filters),
        ServiceInstance.id,
        page,
        newest_first=True,
    )
    return _with_subscriptions(session, rows), cursor


def get_service(session: Session, principal: Principal, service_id: str) -> ServiceInstance:
    service = get_visible(session, ServiceInstance, service_id, principal, READ)
    return _with_subscriptions(session, [service])[0]


def list_subscriptions(session: Session, principal: Principal, page: PageParams, **filters: Any):
    stmt = restrict(select(Subscription), Subscription, principal, READ)
    return paginate(session, where_equal(stmt, Subscription, **filters), Subscription.id, page)


def _with_subscriptions(session: Session, services: Sequence[ServiceInstance]):
    ids = [s.id for s in services]
    stmt = select(Subscription).where(Subscription.service_instance_id.in_(ids))
    by_service = {sub.service_instance_id: sub for sub in session.scalars(stmt)}
    for service in services:
        service.subscription = by_service.get(service.id)  # type: ignore[attr-defined]
    return services


def tell_requester(
    session: Session, order: Order, event: str, subject: str, body: str, about: Any = None
) -> None:
    """Tell the one who placed ``order`` about it, or about ``about`` (its service)."""
    target = about or order
    noun = "service_instance" if about is not None else "order"
    notifications.notify(
        session,
        event=event,
        tenant_id=order.tenant_id,
        user_ids=[order.requested_by],
        subject=subject,
        body=body,
        data={f"{noun}_id": target.id, "state": target.state},
        link=f"/{'services' if about is not None else 'orders'}/{target.id}",
    )


def _notify(
    session: Session, service: ServiceInstance, event: str, subject: str, body: str
) -> None:
    order = session.get(Order, service.order_id)
    if order is not None:
        tell_requester(session, order, event, subject, body, about=service)


def count_tenant_services(session: Session, tenant_id: str) -> int:
    """Open orders and services not yet released a tenant still has (it cannot go then)."""
    live = (
        select(func.count()).where(
            Order.tenant_id == tenant_id, Order.state.in_(("pending-approval", "fulfilling"))
        ),
        select(func.count()).where(
            ServiceInstance.tenant_id == tenant_id,
            ServiceInstance.state.not_in(("released", "failed")),
        ),
    )
    return sum(session.scalar(stmt) or 0 for stmt in live)


# --- from an order -------------------------------------------------------------------------


def of_order(session: Session, order_id: str) -> ServiceInstance:
    stmt = select(ServiceInstance).where(ServiceInstance.order_id == order_id)
    return session.scalars(stmt).one()


def with_order(session: Session, service_id: str) -> tuple[ServiceInstance, Order]:
    """A service and the order that made it (for work authorised earlier)."""
    service = session.get(ServiceInstance, service_id)
    if service is None:
        raise NotFound(f"service instance {service_id} not found")
    return service, session.get(Order, service.order_id)  # type: ignore[return-value]


def begin(session: Session, order: Order, kind: str) -> ServiceInstance:
    """The service instance an order makes (one per order, even when asked twice)."""
    if order.service_instance_id is not None:
        return lock(session, order.service_instance_id)
    service = ServiceInstance(
        id=new_id("si"),
        tenant_id=order.tenant_id,
        order_id=order.id,
        item_id=order.item_id,
        name=order.name,
        kind=kind,
    )
    session.add(service)
    session.flush()
    order.service_instance_id = service.id
    return service


def activate(session: Session, service: ServiceInstance, order: Order) -> Subscription:
    """The service is up: its subscription starts now and runs for the order's term."""
    service.state = "active"
    start = now()
    subscription = Subscription(
        id=new_id("sub"),
        tenant_id=service.tenant_id,
        service_instance_id=service.id,
        term_months=order.term_months,
        auto_renew=order.auto_renew,
        price_monthly=order.cost / max(order.term_months, 1),
        starts_at=start,
        expires_at=add_months(start, order.term_months) if order.term_months else None,
    )
    session.add(subscription)
    return subscription


def fail(session: Session, service: ServiceInstance) -> list[Operation]:
    """Provisioning failed: give back what was made."""
    service.state = "failed"
    return provisioning.release(session, service)


# --- day 2 ---------------------------------------------------------------------------------


def lock(session: Session, service_id: str) -> ServiceInstance:
    service = locked(session, ServiceInstance, service_id)
    if service is None:
        raise NotFound(f"service instance {service_id} not found")
    return service


def subscription_of(session: Session, service: ServiceInstance) -> Subscription | None:
    stmt = select(Subscription).where(Subscription.service_instance_id == service.id)
    return session.scalars(stmt.with_for_update()).one_or_none()


def act(
    session: Session, principal: Principal, service_id: str, data: ServiceAction
) -> tuple[ServiceInstance, list[Operation]]:
    """A day-2 action. ``resize`` is not here: it is a change order (``orders.service``)."""
    get_visible(session, ServiceInstance, service_id, principal, READ, owned=True)
    require(principal, WRITE)
    service = lock(session, service_id)
    subscription = subscription_of(session, service)
    audit.note(target_type="service-instance", target_id=service.id, tenant_id=service.tenant_id)
    operations: list[Operation] = []
    if data.action in ("start", "stop"):
        _require_state(service, ("active",), data.action)
        if data.action == "start":
            billing.guard(session, service.tenant_id)
        operations = provisioning.power(session, service, data.action)
    elif data.action == "renew":
        operations = _renew(session, service, subscription, data.months or 0)
    elif data.action == "set-auto-renew":
        _require_state(service, ("active", "expired"), data.action)
        _require_term(service, subscription).auto_renew = bool(data.auto_renew)
    elif data.action == "unsubscribe":
        operations = _release(session, service, subscription, "unsubscribed")
    elif data.action == "reclaim":
        if not principal.is_platform_admin:
            raise Forbidden("only the platform reclaims a service")
        operations = _release(session, service, subscription, "reclaimed by the platform")
    return _with_subscriptions(session, [service])[0], operations


def _require_state(service: ServiceInstance, states: Sequence[str], action: str) -> None:
    if service.state not in states:
        raise Conflict(
            f"service {service.id} is {service.state}; {action} needs it {' or '.join(states)}",
            code="invalid-state",
        )


def _require_term(service: ServiceInstance, subscription: Subscription | None) -> Subscription:
    if subscription is None or not subscription.term_months:
        raise Conflict(
            f"service {service.id} is pay-as-you-go: it has no term to renew",
            code="no-term",
        )
    return subscription


def _renew(
    session: Session,
    service: ServiceInstance,
    subscription: Subscription | None,
    months: int,
    automatic: bool = False,
) -> list[Operation]:
    """Extend the term: from its expiry (from now, once expired), or, renewing
    automatically, term after term from the expiry until it lies ahead (no drift). An
    expired service is started again and kept."""
    _require_state(service, ("active", "expired"), "renew")
    subscription = _require_term(service, subscription)
    expires = subscription.expires_at or now()
    if automatic:
        while expires <= now():
            expires = add_months(expires, months)
    else:
        expires = add_months(max(expires, now()), months)
    subscription.expires_at = expires
    subscription.state, subscription.reminded = "active", []
    operations: list[Operation] = []
    if service.state == "expired":
        service.state, service.release_at = "active", None
        operations = provisioning.power(session, service, "start")
    _notify(
        session,
        service,
        "subscription.renewed",
        f"“{service.name}” renewed",
        f"It now expires on {subscription.expires_at:%Y-%m-%d %H:%M} UTC.",
    )
    return operations


def _release(
    session: Session, service: ServiceInstance, subscription: Subscription | None, why: str
) -> list[Operation]:
    """Release the resources now; billing ends with the subscription."""
    _require_state(service, ("active", "expired"), "release")
    service.state, service.release_at = "releasing", now()
    if subscription is not None:
        subscription.state, subscription.ended_at = "ended", now()
    _notify(
        session,
        service,
        "service.releasing",
        f"“{service.name}” is being released",
        f"Its resources are being deleted: {why}.",
    )
    return provisioning.release(session, service)


# --- time-driven rules ---------------------------------------------------------------------


def tick(database: Database) -> list[tuple[str, str]]:
    """Apply every rule that is due now, one service at a time in a transaction of its own
    (a service that fails is logged and tried again at the next tick; the others go on).
    Returns the operations to queue."""
    queued: list[tuple[str, str]] = []
    for service_id in _due(database):
        try:
            with database.session() as session:
                queued += [(op.id, op.kind) for op in _apply_rules(session, service_id)]
        except Problem as exc:
            log.warning("service-rules-failed", service_id=service_id, error=exc.detail)
    return queued


def _due(database: Database) -> list[str]:
    """Services with a rule that may be due: a subscription expiring within the reminder
    horizon, an expired service past its retention, a release not finished yet."""
    horizon = now() + timedelta(days=max(REMINDER_DAYS))
    expiring = select(Subscription.service_instance_id).where(
        Subscription.state == "active", Subscription.expires_at <= horizon
    )
    retained = select(ServiceInstance.id).where(
        ServiceInstance.state == "expired", ServiceInstance.release_at <= now()
    )
    unfinished = select(ServiceInstance.id).where(
        ServiceInstance.state.in_(("releasing", "failed")), ServiceInstance.released_at.is_(None)
    )
    with database.session(write=False) as session:
        found = [set(session.scalars(stmt)) for stmt in (expiring, retained, unfinished)]
    return sorted(set().union(*found))


def _apply_rules(session: Session, service_id: str) -> list[Operation]:
    """The rule due for one service, under its lock (the service first, then its
    subscription, as day-2 actions take them)."""
    service = lock(session, service_id)
    subscription = subscription_of(session, service)
    if service.state == "active" and subscription is not None and subscription.expires_at:
        if subscription.state != "active":
            return []
        if subscription.expires_at <= now():
            return _expire(session, service, subscription)
        _remind(session, service, subscription)
        return []
    if service.state == "expired" and service.release_at and service.release_at <= now():
        return _release(session, service, subscription, "its retention period is over")
    if service.state in ("releasing", "failed") and service.released_at is None:
        if provisioning.released(session, service):
            service.released_at = now()
            service.state = "released" if service.state == "releasing" else service.state
            return []
        return provisioning.release(session, service)  # what was busy before is settled now
    return []


def _remind(session: Session, service: ServiceInstance, subscription: Subscription) -> None:
    """Once per threshold (T-7, T-3, T-1 days): the nearest one reached; those further
    away count as sent, so a late tick does not send three at once."""
    left = subscription.expires_at - now()  # type: ignore[operator]
    reached = [d for d in REMINDER_DAYS if left <= timedelta(days=d)]
    if not reached or min(reached) in subscription.reminded:
        return
    subscription.reminded = sorted(set(subscription.reminded) | set(reached))
    what = "renews automatically" if subscription.auto_renew else "expires"
    _notify(
        session,
        service,
        "subscription.expiring",
        f"“{service.name}” {what} in {min(reached)} day(s)",
        f"It {what} on {subscription.expires_at:%Y-%m-%d %H:%M} UTC.",
    )


def _expire(
    session: Session, service: ServiceInstance, subscription: Subscription
) -> list[Operation]:
    if subscription.auto_renew:
        return _renew(session, service, subscription, subscription.term_months, automatic=True)
    retention = timedelta(days=get_settings().service_retention_days)
    subscription.state = "expired"
    service.state, service.release_at = "expired", subscription.expires_at + retention  # type: ignore[operator]
    _notify(
        session,
        service,
        "subscription.expired",
        f"“{service.name}” expired and is stopped",
        f"Renew it before {service.release_at:%Y-%m-%d %H:%M} UTC, or it is released then.",
    )
    return provisioning.power(session, service, "stop")
