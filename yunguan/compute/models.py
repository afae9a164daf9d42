"""Compute: flavors, images, instances and what happened to them."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yunguan.core.clock import now
from yunguan.core.db import Base
from yunguan.inventory.models import Timestamps

IMAGE_FORMATS = ("qcow2", "raw", "ami", "pxe")
VISIBILITIES = ("public", "private")
# The instance state machine: creating -> running <-> stopped, with transitional states
# while a workflow works on it; error when provisioning failed; deleted is final.
INSTANCE_STATES = (
    "creating",
    "running",
    "stopping",
    "stopped",
    "starting",
    "rebooting",
    "resizing",
    "migrating",
    "error",
    "deleting",
    "deleted",
)


class Flavor(Timestamps, Base):
    """A machine size. A bare-metal flavor names the exact hardware profile instead."""

    __tablename__ = "flavors"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    vcpus: Mapped[int] = mapped_column(default=0)
    memory_mb: Mapped[int] = mapped_column(default=0)
    disk_gb: Mapped[int] = mapped_column(default=0)
    gpus: Mapped[int] = mapped_column(default=0)
    baremetal: Mapped[dict[str, int] | None] = mapped_column(JSON, default=None)
    description: Mapped[str] = mapped_column(String(1024), default="")


class Image(Timestamps, Base):
    """An image or template. ``locations`` maps each zone it is available in to the
    provider's own handle there (a file path, an AMI id; empty for network boot)."""

    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    os_type: Mapped[str] = mapped_column(String(32), default="linux")
    os_version: Mapped[str] = mapped_column(String(64), default="")
    format: Mapped[str] = mapped_column(String(16), default="qcow2")
    min_disk_gb: Mapped[int] = mapped_column(default=0)
    visibility: Mapped[str] = mapped_column(String(16), default="private")
    locations: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    properties: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    """Boot details a driver may use: ``kernel``, ``initrd``, ``cmdline``."""
    description: Mapped[str] = mapped_column(String(1024), default="")


class Instance(Timestamps, Base):
    """A virtual machine, bare-metal server or public-cloud instance. The provisioning
    workflow records here everything it holds, so a resumed or compensating run finds it:
    the quota reservation, the placement claim, the port and the provider's machine id."""

    __tablename__ = "instances"
    __table_args__ = (Index("ix_instances_tenant_state", "tenant_id", "state"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # plain ids, not foreign keys: a deleted instance's row (its history) outlives its
    # tenant, flavor and image
    tenant_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(64))
    flavor_id: Mapped[str] = mapped_column(String(40), index=True)
    image_id: Mapped[str] = mapped_column(String(40), index=True)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    vxnet_id: Mapped[str | None] = mapped_column(String(40), index=True, default=None)
    state: Mapped[str] = mapped_column(String(16), default="creating")
    power_state: Mapped[str] = mapped_column(String(16), default="unknown")
    error_reason: Mapped[str] = mapped_column(String(2048), default="")
    vcpus: Mapped[int] = mapped_column(default=0)
    memory_mb: Mapped[int] = mapped_column(default=0)
    disk_gb: Mapped[int] = mapped_column(default=0)
    # what provisioning holds
    reservation_id: Mapped[str | None] = mapped_column(String(40), default=None)
    claim_id: Mapped[str | None] = mapped_column(String(40), default=None)
    host_id: Mapped[str | None] = mapped_column(String(40), index=True, default=None)
    provider_id: Mapped[str | None] = mapped_column(String(40), index=True, default=None)
    external_id: Mapped[str | None] = mapped_column(String(255), default=None)
    port_id: Mapped[str | None] = mapped_column(String(40), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    mac: Mapped[str | None] = mapped_column(String(17), default=None)
    operation_id: Mapped[str | None] = mapped_column(String(40), default=None)
    """The workflow working on it now, if any."""
    launched_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    imported: Mapped[bool] = mapped_column(default=False)


class InstanceEvent(Base):
    """What happened to an instance, for its detail page."""

    __tablename__ = "instance_events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(40), index=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(default=now)


VOLUME_STATES = (
    "creating",
    "available",
    "attaching",
    "in-use",
    "detaching",
    "extending",
    "error",
    "deleting",
    "deleted",
)
SNAPSHOT_STATES = ("creating", "available", "error", "deleting", "deleted")


class Volume(Timestamps, Base):
    """A data volume at a provider of its zone, attached to at most one instance."""

    __tablename__ = "volumes"
    __table_args__ = (Index("ix_volumes_tenant_state", "tenant_id", "state"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(64))
    size_gb: Mapped[int]
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="creating")
    error_reason: Mapped[str] = mapped_column(String(2048), default="")
    instance_id: Mapped[str | None] = mapped_column(String(40), index=True, default=None)
    device: Mapped[str | None] = mapped_column(String(16), default=None)
    provider_id: Mapped[str | None] = mapped_column(String(40), index=True, default=None)
    external_id: Mapped[str | None] = mapped_column(String(255), default=None)
    operation_id: Mapped[str | None] = mapped_column(String(40), default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class Snapshot(Timestamps, Base):
    """A point-in-time copy of a volume, kept at the volume's provider."""

    __tablename__ = "snapshots"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    volume_id: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(64))
    size_gb: Mapped[int]
    state: Mapped[str] = mapped_column(String(16), default="creating")
    error_reason: Mapped[str] = mapped_column(String(2048), default="")
    provider_id: Mapped[str | None] = mapped_column(String(40), default=None)
    external_id: Mapped[str | None] = mapped_column(String(255), default=None)
    operation_id: Mapped[str | None] = mapped_column(String(40), default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
