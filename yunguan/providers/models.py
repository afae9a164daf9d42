"""Providers (the clouds and hypervisors Yunguan drives) and the simulator's machines."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yunguan.core.clock import now
from yunguan.core.db import Base
from yunguan.inventory.models import Timestamps

PROVIDER_KINDS = ("simulator", "libvirt", "ec2", "redfish")
PROVIDER_STATES = ("enabled", "disabled")


class Provider(Timestamps, Base):
    """One endpoint of one driver kind, serving one zone. The hosts it reports go into
    ``cluster_id``; its credentials are kept encrypted in ``secret`` and never shown."""

    __tablename__ = "providers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id"), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secret: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="enabled")
    description: Mapped[str] = mapped_column(String(1024), default="")
    synced_at: Mapped[datetime | None] = mapped_column(default=None)
    """The last successful collect."""
    sync_error: Mapped[str] = mapped_column(String(2048), default="")
    """Why the last collect failed; empty when it succeeded."""
    importable: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """Machines the provider has that Yunguan did not make, as of the last collect."""

    @property
    def has_credentials(self) -> bool:
        return bool(self.secret)


class SimulatedMachine(Base):
    """A machine of the ``simulator`` driver: it lives only in this table."""

    __tablename__ = "sim_machines"

    external_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    realm: Mapped[str] = mapped_column(String(40), index=True)
    """The simulator provider's ``realm``: one table serves every simulator."""
    instance_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    host: Mapped[str | None] = mapped_column(String(64))
    vcpus: Mapped[int] = mapped_column(default=0)
    memory_mb: Mapped[int] = mapped_column(default=0)
    power: Mapped[str] = mapped_column(String(16), default="on")
    running_at: Mapped[datetime] = mapped_column(default=now)
    """When a powered-on machine counts as booted (``pending`` until then)."""
    console: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=now)


class SimulatedDisk(Base):
    """A volume (or a snapshot of one) of the ``simulator`` driver."""

    __tablename__ = "sim_disks"

    external_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    realm: Mapped[str] = mapped_column(String(40), index=True)
    our_id: Mapped[str] = mapped_column(String(40), unique=True)
    """Our volume id (or snapshot id)."""
    kind: Mapped[str] = mapped_column(String(16), default="volume")
    size_gb: Mapped[int] = mapped_column(default=0)
    source: Mapped[str | None] = mapped_column(String(64), default=None)
    """A snapshot's volume."""
    attached_to: Mapped[str | None] = mapped_column(String(64), default=None)
    device: Mapped[str | None] = mapped_column(String(16), default=None)
