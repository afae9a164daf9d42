"""Metering: record usage events (compute and network emit them; billing rates them)."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunguan.billing.models import UsageEvent
from yunguan.core.clock import now
from yunguan.core.db import insert_missing
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams
from yunguan.identity.scope import Principal, list_visible


def record(
    session: Session,
    *,
    source: str,
    event_id: str,
    tenant_id: str,
    resource_type: str,
    resource_id: str,
    meter: str,
    action: str,
    attributes: dict[str, Any] | None = None,
) -> None:
    """Record once: the same ``(source, event_id)`` again changes nothing."""
    row = {
        "id": new_id("ue"),
        "source": source,
        "event_id": event_id,
        "tenant_id": tenant_id,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "meter": meter,
        "action": action,
        "attributes": attributes or {},
        "occurred_at": now(),
    }
    insert_missing(session, UsageEvent, [row])


def list_usage_events(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_visible(session, principal, UsageEvent, "resource:read", page, **filters)


def events_of(session: Session, resource_id: str) -> list[UsageEvent]:
    stmt = select(UsageEvent).where(UsageEvent.resource_id == resource_id)
    return list(session.scalars(stmt.order_by(UsageEvent.occurred_at, UsageEvent.id)))
