from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from yunguan.core.types import Identifier, Input, Label, Name, Output, Text
from yunguan.inventory.models import (
    HOST_STATES,
    HYPERVISORS,
    POOL_KINDS,
    POWER_STATES,
    ZONE_VISIBILITIES,
)

Hypervisor = Literal[HYPERVISORS]  # type: ignore[valid-type]
HostState = Literal[HOST_STATES]  # type: ignore[valid-type]
PowerState = Literal[POWER_STATES]  # type: ignore[valid-type]
Visibility = Literal[ZONE_VISIBILITIES]  # type: ignore[valid-type]
PoolKind = Literal[POOL_KINDS]  # type: ignore[valid-type]

# Bounds keep every product (capacity x overcommit) and every sum inside 32-bit columns.
Ratio = Annotated[Decimal, Field(ge=Decimal("0.1"), le=16, max_digits=5, decimal_places=2)]
Cores = Annotated[int, Field(ge=1, le=4096)]
MemoryMb = Annotated[int, Field(ge=1, le=16 * 1024 * 1024)]
DiskGb = Annotated[int, Field(ge=0, le=16 * 1024 * 1024)]
PoolGb = Annotated[int, Field(ge=0, le=64 * 1024 * 1024)]
Small = Annotated[int, Field(ge=0, le=64)]
Mhz = Annotated[int, Field(ge=0, le=20_000)]
Trait = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Traits = Annotated[list[Trait], Field(max_length=64)]
TenantIds = Annotated[list[Identifier], Field(max_length=256)]


class RegionCreate(Input):
    name: Name
    description: Text = ""


class RegionUpdate(Input):
    name: Name | None = None
    description: Text | None = None


class RegionOut(Output):
    id: str
    name: str
    description: str
    created_at: datetime


class ZoneCreate(Input):
    name: Name
    region_id: Identifier
    visibility: Visibility = "public"
    tenant_ids: TenantIds = Field(
        default_factory=list, description="private zones: the tenant subtrees that may use it"
    )
    description: Text = ""


class ZoneUpdate(Input):
    name: Name | None = None
    visibility: Visibility | None = None
    tenant_ids: TenantIds | None = None
    description: Text | None = None


class ZoneOut(Output):
    id: str
    region_id: str
    name: str
    visibility: str
    tenant_ids: list[str] = []
    description: str
    created_at: datetime


class PodCreate(Input):
    name: Name
    zone_id: Identifier
    description: Text = ""


class PodUpdate(Input):
    name: Name | None = None
    description: Text | None = None


class PodOut(Output):
    id: str
    zone_id: str
    name: str
    description: str
    created_at: datetime


class ClusterCreate(Input):
    name: Name
    pod_id: Identifier
    hypervisor: Hypervisor
    cpu_overcommit: Ratio = Decimal(1)
    memory_overcommit: Ratio = Decimal(1)
    disk_overcommit: Ratio = Decimal(1)
    primary_pool_id: Identifier | None = None
    description: Text = ""


class ClusterUpdate(Input):
    name: Name | None = None
    cpu_overcommit: Ratio | None = None
    memory_overcommit: Ratio | None = None
    disk_overcommit: Ratio | None = None
    primary_pool_id: Identifier | None = None
    description: Text | None = None


class ClusterOut(Output):
    id: str
    pod_id: str
    zone_id: str
    name: str
    hypervisor: str
    cpu_overcommit: Decimal
    memory_overcommit: Decimal
    disk_overcommit: Decimal
    primary_pool_id: str | None
    description: str
    created_at: datetime


class HostHardware(Input):
    cpu_sockets: Annotated[int, Field(ge=1, le=64)] = 1
    cpu_cores: Cores
    cpu_mhz: Mhz = 0
    memory_mb: MemoryMb
    disk_count: Small = 1
    disk_gb: DiskGb = 0
    gpus: Small = 0
    nics: Small = 1
    bmc_address: Label = ""


class HostCreate(HostHardware):
    name: Name
    cluster_id: Identifier
    address: Label = ""
    traits: Traits = Field(default_factory=list)
    state: HostState = "enabled"
    power_state: PowerState = "on"


class HostUpdate(Input):
    name: Name | None = None
    address: Label | None = None
    traits: Traits | None = None
    state: HostState | None = None
    power_state: PowerState | None = None
    cpu_sockets: Annotated[int, Field(ge=1, le=64)] | None = None
    cpu_cores: Cores | None = None
    cpu_mhz: Mhz | None = None
    memory_mb: MemoryMb | None = None
    disk_count: Small | None = None
    disk_gb: DiskGb | None = None
    gpus: Small | None = None
    nics: Small | None = None
    bmc_address: Label | None = None


class HostOut(Output):
    id: str
    name: str
    cluster_id: str
    pod_id: str
    zone_id: str
    region_id: str
    address: str
    state: str
    power_state: str
    traits: list[str]
    cpu_sockets: int
    cpu_cores: int
    cpu_mhz: int
    memory_mb: int
    disk_count: int
    disk_gb: int
    gpus: int
    nics: int
    bmc_address: str
    provider_id: str | None
    external_id: str
    vcpu_limit: int
    memory_limit_mb: int
    disk_limit_gb: int
    used_vcpus: int
    used_memory_mb: int
    used_disk_gb: int
    used_gpus: int
    claims: int
    created_at: datetime


class StoragePoolCreate(Input):
    name: Name
    kind: PoolKind
    zone_id: Identifier
    cluster_id: Identifier | None = Field(
        None, description="primary pools only: serve one cluster instead of the whole zone"
    )
    source: Annotated[str, StringConstraints(max_length=1024)] = Field(
        "", description="file:///path is measured on every refresh; anything else is not"
    )
    total_gb: PoolGb = 0
    used_gb: PoolGb = 0
    overprovisioning: Ratio = Decimal(1)


class StoragePoolUpdate(Input):
    name: Name | None = None
    source: Annotated[str, StringConstraints(max_length=1024)] | None = None
    total_gb: PoolGb | None = None
    used_gb: PoolGb | None = None
    overprovisioning: Ratio | None = None


class StoragePoolAction(Input):
    action: Literal["refresh"]


class StoragePoolOut(Output):
    id: str
    name: str
    kind: str
    zone_id: str
    cluster_id: str | None
    source: str
    total_gb: int
    used_gb: int
    allocated_gb: int
    overprovisioning: Decimal
    limit_gb: int
    refreshed_at: datetime | None
    created_at: datetime


class Dimension(Output):
    """One resource of a capacity view. ``limit`` includes overcommit; ``free`` counts
    enabled hosts only."""

    total: int
    limit: int
    allocated: int
    free: int


class CapacityOut(Output):
    id: str
    name: str
    level: str
    hosts: int
    hosts_enabled: int
    vcpus: Dimension
    memory_mb: Dimension
    disk_gb: Dimension
    gpus: Dimension
    children: list["CapacityOut"] = []
