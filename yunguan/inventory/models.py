"""The physical topology: regions → zones → pods → clusters → hosts, and storage pools.

Hosts carry their position in the tree (cluster, pod, zone, region) so every capacity
roll-up is one GROUP BY over ``hosts``, and their allocation counters so a placement claim
is one conditional UPDATE of one row.
"""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yunguan.core.clock import now
from yunguan.core.db import Base

HYPERVISORS = ("kvm", "vmware", "xen", "baremetal", "public-cloud")
HOST_STATES = ("enabled", "disabled", "maintenance")
POWER_STATES = ("on", "off", "unknown")
ZONE_VISIBILITIES = ("public", "private")
POOL_KINDS = ("primary", "secondary")


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)


class Region(Timestamps, Base):
    __tablename__ = "regions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(1024), default="")


class Zone(Timestamps, Base):
    """Public zones serve every tenant; private ones only the subtrees in ``zone_access``."""

    __tablename__ = "zones"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    region_id: Mapped[str] = mapped_column(ForeignKey("regions.id"), index=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    visibility: Mapped[str] = mapped_column(String(16), default="public")
    description: Mapped[str] = mapped_column(String(1024), default="")


class ZoneAccess(Base):
    __tablename__ = "zone_access"

    zone_id: Mapped[str] = mapped_column(
        ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Pod(Timestamps, Base):
    __tablename__ = "pods"
    __table_args__ = (UniqueConstraint("zone_id", "name", name="uq_pod_zone_name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(1024), default="")


class Cluster(Timestamps, Base):
    """Hosts of one hypervisor type sharing overcommit ratios and, optionally, a primary
    storage pool (``primary_pool_id``; without one, instance disks use the hosts' disks)."""

    __tablename__ = "clusters"
    __table_args__ = (UniqueConstraint("pod_id", "name", name="uq_cluster_pod_name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    pod_id: Mapped[str] = mapped_column(ForeignKey("pods.id"), index=True)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    hypervisor: Mapped[str] = mapped_column(String(16))
    cpu_overcommit: Mapped[Decimal] = mapped_column(default=Decimal(1))
    memory_overcommit: Mapped[Decimal] = mapped_column(default=Decimal(1))
    disk_overcommit: Mapped[Decimal] = mapped_column(default=Decimal(1))
    primary_pool_id: Mapped[str | None] = mapped_column(
        ForeignKey("storage_pools.id", use_alter=True, name="fk_cluster_primary_pool"),
        index=True,
    )
    description: Mapped[str] = mapped_column(String(1024), default="")


class Host(Timestamps, Base):
    """A hypervisor or bare-metal node. ``*_limit`` = capacity x the cluster's overcommit;
    ``used_*`` = Σ of the placement claims on it (kept by the scheduler's claims only)."""

    __tablename__ = "hosts"
    __table_args__ = (UniqueConstraint("provider_id", "external_id", name="uq_host_provider"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id"), index=True)
    pod_id: Mapped[str] = mapped_column(ForeignKey("pods.id"), index=True)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    region_id: Mapped[str] = mapped_column(ForeignKey("regions.id"), index=True)
    address: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(16), default="enabled")
    power_state: Mapped[str] = mapped_column(String(16), default="on")
    traits: Mapped[list[str]] = mapped_column(JSON, default=list)
    # hardware
    cpu_sockets: Mapped[int] = mapped_column(default=1)
    cpu_cores: Mapped[int]
    cpu_mhz: Mapped[int] = mapped_column(default=0)
    memory_mb: Mapped[int]
    disk_count: Mapped[int] = mapped_column(default=1)
    disk_gb: Mapped[int]
    gpus: Mapped[int] = mapped_column(default=0)
    nics: Mapped[int] = mapped_column(default=1)
    bmc_address: Mapped[str] = mapped_column(String(255), default="")
    # the provider that reports it (None for hosts registered by hand) and its id there
    provider_id: Mapped[str | None] = mapped_column(String(40), index=True, default=None)
    external_id: Mapped[str] = mapped_column(String(255), default="")
    # what the scheduler may hand out, and what it has
    vcpu_limit: Mapped[int]
    memory_limit_mb: Mapped[int]
    disk_limit_gb: Mapped[int]
    used_vcpus: Mapped[int] = mapped_column(default=0)
    used_memory_mb: Mapped[int] = mapped_column(default=0)
    used_disk_gb: Mapped[int] = mapped_column(default=0)
    used_gpus: Mapped[int] = mapped_column(default=0)
    claims: Mapped[int] = mapped_column(default=0)


class StoragePool(Timestamps, Base):
    """Primary pools hold instance disks (for one cluster or a whole zone); secondary pools
    hold templates, ISOs and snapshots (per zone). A ``file://`` source is measured on
    refresh; other pools keep the figures they were given."""

    __tablename__ = "storage_pools"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    cluster_id: Mapped[str | None] = mapped_column(ForeignKey("clusters.id"), index=True)
    source: Mapped[str] = mapped_column(String(1024), default="")
    total_gb: Mapped[int] = mapped_column(default=0)
    used_gb: Mapped[int] = mapped_column(default=0)
    allocated_gb: Mapped[int] = mapped_column(default=0)
    overprovisioning: Mapped[Decimal] = mapped_column(default=Decimal(1))
    limit_gb: Mapped[int] = mapped_column(default=0)
    refreshed_at: Mapped[datetime | None]


class InventoryGeneration(Base):
    """One row, bumped by every change that alters placement decisions (topology, host
    state, overcommit, zone access, policies), so schedulers know to reload."""

    __tablename__ = "inventory_generation"

    id: Mapped[int] = mapped_column(primary_key=True)
    epoch: Mapped[str] = mapped_column(String(40))
    generation: Mapped[int] = mapped_column(default=0)
