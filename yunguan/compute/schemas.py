from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from yunguan.compute.models import IMAGE_FORMATS, VISIBILITIES
from yunguan.core.types import Identifier, Input, Label, Name, Output, Text
from yunguan.scheduler.schemas import BareMetalSpec
from yunguan.workflows.schemas import Accepted

Vcpus = Annotated[int, Field(ge=1, le=4096)]
MemoryMb = Annotated[int, Field(ge=16, le=16 * 1024 * 1024)]
DiskGb = Annotated[int, Field(ge=0, le=1024 * 1024)]
Location = Annotated[str, StringConstraints(max_length=1024)]
Locations = Annotated[dict[Identifier, Location], Field(max_length=256)]
Property = Annotated[str, StringConstraints(max_length=1024)]
Properties = Annotated[dict[Literal["kernel", "initrd", "cmdline"], Property], Field(max_length=3)]


class FlavorCreate(Input):
    """A virtual-machine size (vcpus, memory_mb, disk_gb) or, with ``baremetal``, the exact
    hardware profile of a physical server."""

    name: Name
    vcpus: Annotated[int, Field(ge=0, le=4096)] = 0
    memory_mb: Annotated[int, Field(ge=0, le=16 * 1024 * 1024)] = 0
    disk_gb: DiskGb = 0
    gpus: Annotated[int, Field(ge=0, le=64)] = 0
    baremetal: BareMetalSpec | None = None
    description: Text = ""

    @model_validator(mode="after")
    def _shape(self) -> "FlavorCreate":
        if self.baremetal is None and not (self.vcpus and self.memory_mb >= 16):
            raise ValueError("a flavor needs vcpus and memory_mb (or a baremetal profile)")
        if self.baremetal is not None and (self.vcpus or self.memory_mb or self.gpus):
            raise ValueError("a bare-metal flavor gives only its hardware profile")
        return self


class FlavorUpdate(Input):
    name: Name | None = None
    description: Text | None = None


class FlavorOut(Output):
    id: str
    name: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    gpus: int
    baremetal: dict[str, int] | None
    description: str
    created_at: datetime


class ImageCreate(Input):
    name: Name
    tenant_id: Identifier | None = None
    os_type: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,32}$")] = "linux"
    os_version: Label = ""
    format: Literal[IMAGE_FORMATS] = "qcow2"  # type: ignore[valid-type]
    min_disk_gb: DiskGb = 0
    visibility: Literal[VISIBILITIES] = "private"  # type: ignore[valid-type]
    locations: Locations = Field(
        default_factory=dict,
        description="zone id -> the provider's handle there (file path, AMI id; '' for PXE)",
    )
    properties: Properties = Field(default_factory=dict)
    description: Text = ""


class ImageUpdate(Input):
    name: Name | None = None
    os_version: Label | None = None
    min_disk_gb: DiskGb | None = None
    visibility: Literal[VISIBILITIES] | None = None  # type: ignore[valid-type]
    locations: Locations | None = None
    properties: Properties | None = None
    description: Text | None = None


class ImageOut(Output):
    id: str
    tenant_id: str
    name: str
    os_type: str
    os_version: str
    format: str
    min_disk_gb: int
    visibility: str
    locations: dict[str, str]
    properties: dict[str, str]
    description: str
    created_at: datetime


class InstanceCreate(Input):
    """Zone, network and host are chosen when not given: the zone from the vxnet, else the
    first zone the image is available in that has capacity; the tenant's first vxnet in it."""

    name: Name
    flavor_id: Identifier
    image_id: Identifier
    tenant_id: Identifier | None = None
    zone_id: Identifier | None = None
    vxnet_id: Identifier | None = None
    count: Annotated[int, Field(ge=1, le=100)] = 1


class InstanceUpdate(Input):
    name: Name | None = None


class InstanceAction(Input):
    """``resize`` (stopped; with ``flavor_id``), ``migrate`` (stopped) and ``live-migrate``
    (running) go where the provider can; power actions need nothing else."""

    action: Literal["start", "stop", "reboot", "resize", "migrate", "live-migrate"]
    flavor_id: Identifier | None = Field(None, description="resize: the new flavor")


class InstanceOut(Output):
    id: str
    tenant_id: str
    name: str
    flavor_id: str
    image_id: str
    zone_id: str
    vxnet_id: str | None
    state: str
    power_state: str
    error_reason: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    host_id: str | None
    provider_id: str | None
    port_id: str | None
    ip: str | None
    mac: str | None
    operation_id: str | None
    imported: bool
    launched_at: datetime | None
    created_at: datetime
    updated_at: datetime


class InstanceEventOut(Output):
    id: str
    kind: str
    message: str
    detail: dict
    at: datetime


class ConsoleOut(Output):
    instance_id: str
    output: str


class InstancesAccepted(Output):
    """202 answer of a create: each new instance (``creating``) with its operation."""

    items: list[Accepted[InstanceOut]]


SizeGb = Annotated[int, Field(ge=1, le=65536)]


class VolumeCreate(Input):
    """A data volume in a zone (the instance's, when ``instance_id`` is given: it is attached
    once made)."""

    name: Name
    size_gb: SizeGb
    zone_id: Identifier | None = None
    instance_id: Identifier | None = None
    tenant_id: Identifier | None = None


class VolumeUpdate(Input):
    name: Name | None = None


class VolumeAction(Input):
    action: Literal["attach", "detach", "extend"]
    instance_id: Identifier | None = Field(None, description="attach: the instance")
    size_gb: SizeGb | None = Field(None, description="extend: the new, larger size")


class VolumeOut(Output):
    id: str
    tenant_id: str
    name: str
    size_gb: int
    zone_id: str
    state: str
    error_reason: str
    instance_id: str | None
    device: str | None
    provider_id: str | None
    operation_id: str | None
    created_at: datetime
    updated_at: datetime


class SnapshotCreate(Input):
    name: Name
    volume_id: Identifier


class SnapshotUpdate(Input):
    name: Name | None = None


class SnapshotOut(Output):
    id: str
    tenant_id: str
    volume_id: str
    name: str
    size_gb: int
    state: str
    error_reason: str
    operation_id: str | None
    created_at: datetime
    updated_at: datetime
