from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from yunguan.core.types import Identifier, Input, Label, Name, Output, Text
from yunguan.inventory.schemas import Hypervisor, Mhz, Traits
from yunguan.scheduler.models import GROUP_POLICIES, STRATEGIES

Strategy = Literal[STRATEGIES]  # type: ignore[valid-type]
GroupPolicy = Literal[GROUP_POLICIES]  # type: ignore[valid-type]
Amount = Annotated[int, Field(ge=0, le=16 * 1024 * 1024)]


class PolicyCreate(Input):
    name: Name
    strategy: Strategy
    zone_id: Identifier | None = None
    tenant_id: Identifier | None = None
    description: Text = ""

    @model_validator(mode="after")
    def _one_scope(self) -> "PolicyCreate":
        if (self.zone_id is None) == (self.tenant_id is None):
            raise ValueError("give exactly one of zone_id and tenant_id")
        return self


class PolicyUpdate(Input):
    name: Name | None = None
    strategy: Strategy | None = None
    description: Text | None = None


class PolicyOut(Output):
    id: str
    name: str
    strategy: str
    zone_id: str | None
    tenant_id: str | None
    description: str
    created_at: datetime


class GroupCreate(Input):
    name: Name
    tenant_id: Identifier
    policy: GroupPolicy


class GroupOut(Output):
    id: str
    name: str
    tenant_id: str
    policy: str
    host_ids: list[str] = []
    created_at: datetime


class BareMetalSpec(Input):
    cpu_count: Annotated[int, Field(ge=1, le=64)]
    cpu_mhz: Mhz
    disk_count: Annotated[int, Field(ge=1, le=64)]
    disk_size_gb: Annotated[int, Field(ge=1, le=1024 * 1024)]
    memory_mb: Annotated[int, Field(ge=1, le=16 * 1024 * 1024)]


class PlacementRequest(Input):
    """A virtual machine needs vcpus and memory; a bare-metal request gives ``baremetal``
    (the exact hardware profile) and nothing else."""

    tenant_id: Identifier
    vcpus: Annotated[int, Field(ge=0, le=4096)] = 0
    memory_mb: Amount = 0
    disk_gb: Amount = 0
    gpus: Annotated[int, Field(ge=0, le=64)] = 0
    traits: Traits = Field(default_factory=list)
    zone_id: Identifier | None = None
    hypervisor: Hypervisor | None = None
    group_id: Identifier | None = None
    baremetal: BareMetalSpec | None = None

    @model_validator(mode="after")
    def _shape(self) -> "PlacementRequest":
        sized = self.vcpus or self.memory_mb or self.disk_gb or self.gpus
        if self.baremetal is not None:
            if sized or self.hypervisor not in (None, "baremetal"):
                raise ValueError("a bare-metal request gives only its hardware profile")
        elif not (self.vcpus and self.memory_mb):
            raise ValueError("a virtual machine needs vcpus and memory_mb")
        elif self.hypervisor == "baremetal":
            raise ValueError("a bare-metal request gives its hardware profile in 'baremetal'")
        return self


class ClaimCreate(PlacementRequest):
    consumer_id: Label | None = Field(
        None, description="who holds the claim (an instance id); one claim per consumer"
    )


class ClaimOut(Output):
    id: str
    host_id: str
    pool_id: str | None
    tenant_id: str
    group_id: str | None
    consumer_id: str | None
    vcpus: int
    memory_mb: int
    disk_gb: int
    gpus: int
    baremetal: bool
    created_at: datetime


class StepOut(Output):
    filter: str
    before: int
    after: int


class PlacementOut(Output):
    """The scheduler's answer; ``filters`` says how many hosts each filter left."""

    fits: bool
    host_id: str | None
    host_name: str | None = None
    strategy: str
    policy_id: str | None
    reason: str | None = None
    filters: list[StepOut]


class MoveOut(Output):
    claim_id: str
    consumer_id: str | None
    from_host_id: str
    to_host_id: str | None
    reason: str | None = None


class EvacuationOut(Output):
    host_id: str
    moves: list[MoveOut]
    complete: bool


class LoadOut(Output):
    host_id: str
    utilisation: float


class RebalanceOut(Output):
    threshold: float
    overloaded: list[LoadOut]
    moves: list[MoveOut]
