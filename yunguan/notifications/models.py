"""Notifications: each user's inbox, tenants' webhooks, and the outbox of deliveries (email
and webhook calls) that workers send after the transaction that queued them commits."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yunguan.core.clock import now
from yunguan.core.db import Base
from yunguan.inventory.models import Timestamps

CHANNELS = ("email", "webhook")
# pending -> sending (claimed by one worker) -> sent | pending again (retry) | failed
DELIVERY_STATES = ("pending", "sending", "sent", "failed")


class Notification(Base):
    """One message in one user's inbox."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_id", "user_id", "id"),
        Index("ix_notifications_user_unread", "user_id", "read_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(40))
    """The tenant the event is about (a plain id: the message outlives it)."""
    event: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str] = mapped_column(String(1024), default="")
    """A portal path, e.g. ``/orders/ord-…``."""
    created_at: Mapped[datetime] = mapped_column(default=now)
    read_at: Mapped[datetime | None] = mapped_column(default=None)


class Webhook(Timestamps, Base):
    """An endpoint called for the events of its tenant's subtree that ``events`` selects
    (names or prefixes like ``order.*``; empty: all). The HMAC ``secret`` is kept sealed."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str] = mapped_column(String(1024), default="")
    secret: Mapped[str] = mapped_column(Text)


class Delivery(Base):
    """One email or webhook call to make. A worker claims it by moving it to ``sending``
    with ``next_attempt_at`` as the lease's end (a worker that dies leaves it due again);
    ``claim`` names the worker whose outcome counts."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_notification_deliveries_due", "state", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    webhook_id: Mapped[str | None] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True, default=None
    )
    recipient: Mapped[str] = mapped_column(String(254), default="")
    """An email delivery's address."""
    tenant_id: Mapped[str] = mapped_column(String(40))
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    """Email: subject, body and link; webhook: the JSON body sent."""
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=now)
    claim: Mapped[str | None] = mapped_column(String(40), default=None)
    last_error: Mapped[str] = mapped_column(String(1024), default="")
    created_at: Mapped[datetime] = mapped_column(default=now)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
