"""Placement policies, affinity groups and the claims that hold capacity on hosts."""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from yunguan.core.clock import now
from yunguan.core.db import Base

STRATEGIES = ("pack", "spread")
GROUP_POLICIES = ("affinity", "anti-affinity")


class PlacementPolicy(Base):
    """The strategy for requests of one tenant subtree or into one zone. The deepest tenant
    policy on the requester's path wins, then the zone's, then the platform default."""

    __tablename__ = "placement_policies"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    strategy: Mapped[str] = mapped_column(String(16))
    zone_id: Mapped[str | None] = mapped_column(
        ForeignKey("zones.id", ondelete="CASCADE"), unique=True
    )
    tenant_id: Mapped[str | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    description: Mapped[str] = mapped_column(String(1024), default="")
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)


class PlacementGroup(Base):
    """Instances that must share a host (affinity) or never share one (anti-affinity).
    ``generation`` is bumped by each claim into the group, serialising them."""

    __tablename__ = "placement_groups"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str] = mapped_column(String(16))
    generation: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=now)


class Claim(Base):
    """Capacity held on a host (and its primary pool) for one consumer, e.g. an instance."""

    __tablename__ = "placement_claims"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id"), index=True)
    pool_id: Mapped[str | None] = mapped_column(ForeignKey("storage_pools.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    group_id: Mapped[str | None] = mapped_column(ForeignKey("placement_groups.id"), index=True)
    consumer_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    vcpus: Mapped[int]
    memory_mb: Mapped[int]
    disk_gb: Mapped[int]
    gpus: Mapped[int] = mapped_column(default=0)
    baremetal: Mapped[bool] = mapped_column(default=False)
    traits: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=now)
