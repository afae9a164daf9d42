"""Orders and what they produce: approval policies and tasks, orders and their timeline,
service instances and their subscriptions."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from yunguan.core.clock import now
from yunguan.core.db import Base
from yunguan.inventory.models import Timestamps

# Orders, services and subscriptions hold plain tenant ids, not foreign keys: their history
# outlives the tenant (a tenant with live services cannot be deleted: their instances hold it).

# pending-approval -> fulfilling -> completed | failed; or rejected / cancelled while pending
ORDER_STATES = ("pending-approval", "fulfilling", "completed", "failed", "rejected", "cancelled")
TASK_STATES = ("pending", "approved", "rejected", "delegated", "escalated", "withdrawn")
# provisioning -> active <-> stopped (day-2) ; active -> expired (stopped at expiry) ->
# released after the retention period; unsubscribe or reclaim -> releasing -> released
SERVICE_STATES = ("provisioning", "active", "expired", "releasing", "released", "failed")


class ApprovalPolicy(Timestamps, Base):
    """The approval chain of a tenant's subtree: the nearest policy up the tree applies.
    ``stages`` (validated by ``schemas.Stage``) run in order; a stage with ``min_cost``
    applies only to orders costing at least that much."""

    __tablename__ = "approval_policies"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    name: Mapped[str] = mapped_column(String(64))
    stages: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class Order(Timestamps, Base):
    """A request for a catalog item (``new``) or a change to a service instance
    (``change``), with the approval plan it was given when it was placed."""

    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    requested_by: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="new")
    item_id: Mapped[str] = mapped_column(String(40), index=True)
    template_version_id: Mapped[str] = mapped_column(String(40))
    service_instance_id: Mapped[str | None] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(64))
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    term_months: Mapped[int] = mapped_column(default=0)
    """0: pay-as-you-go (no expiry)."""
    auto_renew: Mapped[bool] = mapped_column(default=False)
    cost: Mapped[Decimal] = mapped_column(default=Decimal(0))
    state: Mapped[str] = mapped_column(String(24), default="pending-approval", index=True)
    plan: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    stage: Mapped[int] = mapped_column(default=0)
    operation_id: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str] = mapped_column(String(2048), default="")


class OrderEvent(Base):
    """One line of an order's timeline: placed, each decision, comments, fulfilment. The
    id is a sequence, so the timeline keeps its order within one clock tick."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=now)
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(24))
    message: Mapped[str] = mapped_column(String(2048), default="")


class ApprovalTask(Base):
    """One approver's turn on one stage of an order. Any approver of the stage decides it;
    the others' tasks are then withdrawn."""

    __tablename__ = "approval_tasks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    stage: Mapped[int]
    stage_name: Mapped[str] = mapped_column(String(64))
    assignee_id: Mapped[str] = mapped_column(String(40), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    decided_at: Mapped[datetime | None]
    comment: Mapped[str] = mapped_column(String(1024), default="")
    created_at: Mapped[datetime] = mapped_column(default=now)


class ServiceInstance(Timestamps, Base):
    """What an order produced: the resources it provisioned (``resources``: a list of
    ``{"type", "id"}``) or, for an external offering, the vendor's reference."""

    __tablename__ = "service_instances"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    order_id: Mapped[str] = mapped_column(String(40), unique=True)
    item_id: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="provisioning", index=True)
    resources: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    external_ref: Mapped[str] = mapped_column(String(256), default="")
    release_at: Mapped[datetime | None] = mapped_column(index=True)
    released_at: Mapped[datetime | None]


class Subscription(Timestamps, Base):
    """The lease of a service instance: its term, expiry and renewals. Pay-as-you-go
    subscriptions have no expiry and run until unsubscribed."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    service_instance_id: Mapped[str] = mapped_column(
        ForeignKey("service_instances.id", ondelete="CASCADE"), unique=True
    )
    term_months: Mapped[int] = mapped_column(default=0)
    auto_renew: Mapped[bool] = mapped_column(default=False)
    price_monthly: Mapped[Decimal] = mapped_column(default=Decimal(0))
    state: Mapped[str] = mapped_column(String(16), default="active", index=True)
    starts_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    reminded: Mapped[list[int]] = mapped_column(JSON, default=list)
    """Days-before-expiry already reminded of, for the current expiry date."""
    ended_at: Mapped[datetime | None]
