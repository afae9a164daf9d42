"""Metering: the usage events every resource lifecycle change emits."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yunguan.core.clock import now
from yunguan.core.db import Base


class UsageEvent(Base):
    """One lifecycle change of a metered resource; ``(source, event_id)`` is unique, so a
    retried emitter counts once."""

    __tablename__ = "usage_events"
    __table_args__ = (UniqueConstraint("source", "event_id", name="uq_usage_source_event"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(128))
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(40), index=True)
    meter: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    """``start`` or ``stop`` of the meter's usage interval."""
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=now)
