"""Quota state per tenant and resource class, and the reservations that are its truth.

``quota_nodes`` holds each node's configuration and two caches that admission reads along
one path: ``subtree_usage`` (U) and ``slack`` (T, see ``quota.engine``). A row exists for a
tenant once it is configured or used, and then its ancestors' rows exist too. Reservations
are the source of truth for usage; ``quota.service.reconcile`` recomputes the caches.
"""

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from yunguan.core.clock import now
from yunguan.core.db import Base

RESOURCE_CLASSES = (
    "instances",
    "vcpus",
    "memory_mb",
    "gpus",
    "volumes",
    "volume_gb",
    "snapshots",
    "public_ips",
    "vpcs",
    "vxnets",
    "load_balancers",
)
# Running instances can be stopped to give capacity back; volumes and addresses cannot.
RECLAIMABLE = frozenset({"instances", "vcpus", "memory_mb", "gpus"})


class QuotaNode(Base):
    __tablename__ = "quota_nodes"
    __table_args__ = (Index("ix_quota_nodes_resource_depth", "resource", "depth"),)

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    resource: Mapped[str] = mapped_column(String(32), primary_key=True)
    parent_id: Mapped[str | None] = mapped_column(String(40), index=True)
    depth: Mapped[int]
    # configuration; None is "unlimited" (a guarantee is unlimited only at the root)
    guarantee: Mapped[int | None] = mapped_column(BigInteger)
    own_share: Mapped[int] = mapped_column(BigInteger, default=0)
    allocated: Mapped[int] = mapped_column(BigInteger, default=0)  # sum of the children's G
    lend_limit: Mapped[int | None] = mapped_column(BigInteger)
    borrow_limit: Mapped[int | None] = mapped_column(BigInteger)
    cap: Mapped[int | None] = mapped_column(BigInteger)
    weight: Mapped[int] = mapped_column(default=1)
    over_quota: Mapped[bool] = mapped_column(default=False)
    # set while the tenant waits for capacity it lent out that cannot be reclaimed
    # (volumes, addresses): it makes no new loans, and nothing is evicted
    lending_closed: Mapped[bool] = mapped_column(default=False)
    # usage of the tenant itself, and the caches admission reads
    used: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    subtree_usage: Mapped[int] = mapped_column(BigInteger, default=0)
    slack: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)


class QuotaReservation(Base):
    """Quota held for one consumer: ``reserved`` until committed (or expired), then
    ``committed`` until released."""

    __tablename__ = "quota_reservations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    consumer_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    amounts: Mapped[dict[str, int]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="reserved", index=True)
    """pending (waiting for reclaimed capacity) → reserved → committed."""
    priority: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    committed_at: Mapped[datetime | None]


class ReclaimNotice(Base):
    """A workload told to give back borrowed capacity: it is stopped at ``deadline`` (its
    reservation released) and the capacity goes to the pending reservation ``claim_id``."""

    __tablename__ = "quota_reclaims"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    victim_id: Mapped[str] = mapped_column(String(40), index=True)
    claim_id: Mapped[str] = mapped_column(String(40), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    consumer_id: Mapped[str | None] = mapped_column(String(64))
    amounts: Mapped[dict[str, int]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="notified", index=True)
    deadline: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=now)
