from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from yunguan.core.types import Identifier, Input, Label, Name, Output, Text
from yunguan.network.models import (
    DIRECTIONS,
    NETWORK_TYPES,
    POOL_PURPOSES,
    PROTOCOLS,
    ROUTING_MODES,
)
from yunguan.network.sdn.agents import STALE_AFTER

NetworkType = Literal[NETWORK_TYPES]  # type: ignore[valid-type]
Purpose = Literal[POOL_PURPOSES]  # type: ignore[valid-type]
RoutingMode = Literal[ROUTING_MODES]  # type: ignore[valid-type]
Direction = Literal[DIRECTIONS]  # type: ignore[valid-type]
Protocol = Literal[PROTOCOLS]  # type: ignore[valid-type]

# parsed and checked by the service (clear 400s); here only their shape and length
Ip = Annotated[str, StringConstraints(min_length=2, max_length=45, pattern=r"^[0-9a-fA-F.:]+$")]
Cidr = Annotated[
    str, StringConstraints(min_length=4, max_length=49, pattern=r"^[0-9a-fA-F.:]+/[0-9]{1,3}$")
]
IpRange = Annotated[list[Ip], Field(min_length=2, max_length=2)]
IpRanges = Annotated[list[IpRange], Field(max_length=64)]
SegmentId = Annotated[int, Field(ge=1, le=16_777_215)]
Ids = Annotated[list[Identifier], Field(max_length=16)]
Mac = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")]


def ranges_from_text(lines: list[str]) -> list[list[str]]:
    """Address ranges typed as ``first-last`` (or one address), one per item."""
    pairs = (line.strip().partition("-") for line in lines if line.strip())
    return [[first.strip(), (last or first).strip()] for first, _, last in pairs]


class VlanPoolCreate(Input):
    name: Name
    zone_id: Identifier
    network_type: NetworkType = "vlan"
    first_id: SegmentId
    last_id: SegmentId
    cidr: Cidr | None = Field(None, description="classic networks: the VLAN's subnet")
    gateway: Ip | None = None
    label: Label = ""
    description: Text = ""


class VlanPoolUpdate(Input):
    name: Name | None = None
    label: Label | None = None
    description: Text | None = None


class VlanPoolOut(Output):
    id: str
    name: str
    zone_id: str
    network_type: str
    first_id: int
    last_id: int
    cidr: str | None
    gateway: str | None
    label: str
    description: str
    created_at: datetime


class IpPoolCreate(Input):
    name: Name
    vlan_pool_id: Identifier
    vlan: SegmentId | None = Field(None, description="default: the VLAN pool's first id")
    purpose: Purpose = "guest"
    cidr: Cidr | None = Field(None, description="default: the VLAN pool's CIDR")
    gateway: Ip | None = None
    ranges: IpRanges = Field(
        default_factory=list, description="[first, last] pairs; default: the whole subnet"
    )
    reserved: IpRanges = Field(default_factory=list, description="never handed out")
    cooldown_seconds: Annotated[int, Field(ge=0, le=30 * 86400)] = 0
    description: Text = ""


class IpPoolUpdate(Input):
    name: Name | None = None
    cooldown_seconds: Annotated[int, Field(ge=0, le=30 * 86400)] | None = None
    description: Text | None = None


class IpPoolOut(Output):
    id: str
    name: str
    vlan_pool_id: str | None
    vlan: int | None
    zone_id: str
    purpose: str
    version: int
    cidr: str
    gateway: str | None
    ranges: list[list[str]]
    reserved: list[list[str]]
    cooldown_seconds: int
    description: str
    created_at: datetime
    usage: dict[str, int] = Field(
        default_factory=dict, description="total, used, reserved, cooling, free"
    )


class AddressRequest(Input):
    owner_id: Identifier = Field(description="the instance or server the address is for")
    address: Ip | None = Field(None, description="a specific free address")


class AddressOut(Output):
    pool_id: str
    address: str
    owner_id: str | None
    free_after: datetime


class VpcCreate(Input):
    name: Name
    zone_id: Identifier
    cidr: Cidr
    tenant_id: Identifier | None = None
    routing_mode: RoutingMode | None = Field(
        None, description="default: ondemand where the zone has gateway hosts, else full"
    )
    description: Text = ""


class VpcUpdate(Input):
    name: Name | None = None
    routing_mode: RoutingMode | None = None
    description: Text | None = None


class VpcOut(Output):
    id: str
    tenant_id: str
    zone_id: str
    name: str
    cidr: str
    router_mac: str
    routing_mode: str
    description: str
    created_at: datetime


class VxnetCreate(Input):
    name: Name
    vpc_id: Identifier
    cidr: Cidr
    description: Text = ""


class VxnetUpdate(Input):
    name: Name | None = None
    description: Text | None = None


class VxnetOut(Output):
    id: str
    tenant_id: str
    vpc_id: str
    name: str
    cidr: str
    gateway_ip: str
    vni: int
    ip_pool_id: str
    description: str
    created_at: datetime


class Rule(Input):
    direction: Direction
    protocol: Protocol = "any"
    port_min: Annotated[int, Field(ge=0, le=65535)] | None = None
    port_max: Annotated[int, Field(ge=0, le=65535)] | None = None
    remote_cidr: Cidr | None = None
    remote_group_id: Identifier | None = None


class RuleOut(Output):
    id: str
    direction: str
    protocol: str
    port_min: int | None
    port_max: int | None
    remote_cidr: str | None
    remote_group_id: str | None


Rules = Annotated[list[Rule], Field(max_length=256)]


class SecurityGroupCreate(Input):
    name: Name
    tenant_id: Identifier | None = None
    rules: Rules = Field(default_factory=list)
    description: Text = ""


class SecurityGroupUpdate(Input):
    name: Name | None = None
    rules: Rules | None = Field(None, description="replaces every rule")
    description: Text | None = None


class SecurityGroupOut(Output):
    id: str
    tenant_id: str
    name: str
    rules: list[RuleOut]
    description: str
    created_at: datetime


class PortCreate(Input):
    vxnet_id: Identifier | None = Field(None, description="a VPC port; or give ip_pool_id")
    ip_pool_id: Identifier | None = Field(None, description="a classic (VLAN) port")
    tenant_id: Identifier | None = None
    name: Label = ""
    ip: Ip | None = Field(None, description="a specific free address")
    mac: Mac | None = None
    host_id: Identifier | None = None
    device_id: Identifier | None = None
    security_group_ids: Ids = Field(default_factory=list)


class PortUpdate(Input):
    name: Label | None = None
    host_id: Identifier | None = Field(None, description="bind to a host (a move if bound)")
    device_id: Identifier | None = None
    security_group_ids: Ids | None = None


class PortOut(Output):
    id: str
    tenant_id: str
    name: str
    vxnet_id: str | None
    vpc_id: str | None
    ip_pool_id: str
    mac: str
    ip: str
    host_id: str | None
    device_id: str | None
    security_group_ids: list[str]
    created_at: datetime


class EipCreate(Input):
    ip_pool_id: Identifier | None = Field(None, description="default: a public pool with room")
    zone_id: Identifier | None = None
    tenant_id: Identifier | None = None
    name: Label = ""
    address: Ip | None = None
    bandwidth_mbps: Annotated[int, Field(ge=1, le=100_000)] = 10


class EipUpdate(Input):
    name: Label | None = None
    bandwidth_mbps: Annotated[int, Field(ge=1, le=100_000)] | None = None


class EipAction(Input):
    action: Literal["bind", "unbind"]
    port_id: Identifier | None = Field(None, description="bind: 1:1 NAT to this port")
    vpc_id: Identifier | None = Field(None, description="bind: SNAT for this VPC's router")


class EipOut(Output):
    id: str
    tenant_id: str
    name: str
    ip_pool_id: str
    address: str
    bandwidth_mbps: int
    port_id: str | None
    vpc_id: str | None
    created_at: datetime


class Destination(Input):
    vpc_id: Identifier
    ip: Ip


class LearnReport(Input):
    destinations: Annotated[list[Destination], Field(max_length=1000)]


Count = Annotated[int, Field(ge=0, le=2**31 - 1)]


class AgentReport(Input):
    """What a host's agent reports about its kernel."""

    applied_version: Annotated[int, Field(ge=0, le=2**63 - 1)] = Field(
        description="the version of the document it applied last"
    )
    routers: Count = Field(description="router namespaces the kernel holds")
    entries: Count = Field(description="routes, permanent neighbours and static fdb entries")
    errors: Annotated[dict[Identifier, Text], Field(max_length=1000)] = Field(
        default_factory=dict, description="VPC id -> why its router was not reconciled"
    )


class AgentStatusOut(Output):
    applied_version: int
    up_to_date: bool = Field(description="it applied the host's current document")
    routers: int
    entries: int
    errors: dict[str, str]
    reported_at: datetime
    stale: bool = Field(description=f"no report for over {STALE_AFTER.seconds} seconds")


class SdnHostOut(Output):
    host_id: str
    version: int = Field(description="the host's current document version")
    agent: AgentStatusOut | None = Field(description="its last report; null: none yet")
