"""Networks: VLAN pools and IP pools (the classic, CloudStack-style side), VPCs with vxnets,
ports, security groups and EIPs (the QingCloud-style side), and the SDN controller's state.

Every address any pool can hand out is a row of ``ip_addresses``, made when the pool is
made; ``ip_chunks`` is the free list, a bitmap per 256 addresses (see ``network.ipam``).
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from yunguan.core.clock import now
from yunguan.core.db import Base
from yunguan.inventory.models import Timestamps

NETWORK_TYPES = ("vlan", "vxlan")
POOL_PURPOSES = ("guest", "public")
ROUTING_MODES = ("full", "ondemand")
DIRECTIONS = ("ingress", "egress")
PROTOCOLS = ("any", "tcp", "udp", "icmp")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class VlanPool(Timestamps, Base):
    """A range of segment ids of one zone: VLAN ids of a classic network (with its CIDR and
    gateway), or the VXLAN VNIs that the zone's vxnets take."""

    __tablename__ = "vlan_pools"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    network_type: Mapped[str] = mapped_column(String(8))
    first_id: Mapped[int]
    last_id: Mapped[int]
    cidr: Mapped[str | None] = mapped_column(String(64))
    gateway: Mapped[str | None] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(128), default="")
    description: Mapped[str] = mapped_column(String(1024), default="")


class Segment(Base):
    """A segment id in use: a VNI is unique in its zone."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("zone_id", "network_type", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    pool_id: Mapped[str] = mapped_column(ForeignKey("vlan_pools.id"), index=True)
    zone_id: Mapped[str] = mapped_column(String(40))
    network_type: Mapped[str] = mapped_column(String(8))
    number: Mapped[int]
    owner_id: Mapped[str] = mapped_column(String(40), unique=True)


class IpPool(Timestamps, Base):
    """Addresses of one subnet: on a VLAN of a VLAN pool (guest addresses for instances and
    bare metal, or public addresses for EIPs), or the hidden pool of one vxnet."""

    __tablename__ = "ip_pools"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    vlan_pool_id: Mapped[str | None] = mapped_column(ForeignKey("vlan_pools.id"), index=True)
    vlan: Mapped[int | None]
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(8), default="guest")
    version: Mapped[int] = mapped_column(default=4)
    cidr: Mapped[str] = mapped_column(String(64))
    gateway: Mapped[str | None] = mapped_column(String(64))
    ranges: Mapped[list[list[str]]] = mapped_column(JSON)
    reserved: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    cooldown_seconds: Mapped[int] = mapped_column(default=0)
    size: Mapped[int] = mapped_column(default=0)
    description: Mapped[str] = mapped_column(String(1024), default="")


class IpAddress(Base):
    """One address of a pool: held while ``owner_id`` is set; after a release it is
    ``cooling`` until ``free_after``, then free again."""

    __tablename__ = "ip_addresses"
    __table_args__ = (
        UniqueConstraint("pool_id", "address"),
        Index(
            "ix_ip_addresses_cooling",
            "pool_id",
            "free_after",
            postgresql_where=text("cooling"),
            sqlite_where=text("cooling"),
        ),
    )

    pool_id: Mapped[str] = mapped_column(
        ForeignKey("ip_pools.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    address: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[str | None] = mapped_column(String(40), index=True)
    cooling: Mapped[bool] = mapped_column(default=False)
    free_after: Mapped[datetime] = mapped_column(default=EPOCH)


class IpChunk(Base):
    """The free list of 256 consecutive positions of a pool: a bitmap (bit set = free) and
    its count. An allocation locks one chunk row, so concurrent allocators work in
    different chunks."""

    __tablename__ = "ip_chunks"

    pool_id: Mapped[str] = mapped_column(
        ForeignKey("ip_pools.id", ondelete="CASCADE"), primary_key=True
    )
    chunk: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    free: Mapped[int]
    bits: Mapped[bytes] = mapped_column(LargeBinary(32))


class Vpc(Timestamps, Base):
    __tablename__ = "vpcs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    cidr: Mapped[str] = mapped_column(String(64))
    router_mac: Mapped[str] = mapped_column(String(17))
    routing_mode: Mapped[str] = mapped_column(String(8), default="ondemand")
    # the routers' own VXLAN segment (to gateway and SNAT hosts), taken with the first vxnet
    transit_vni: Mapped[int | None]
    description: Mapped[str] = mapped_column(String(1024), default="")
    # SDN versions from the controller's sequence: any port / the layout (vxnets, EIPs)
    ports_version: Mapped[int] = mapped_column(BigInteger, default=0)
    layout_version: Mapped[int] = mapped_column(BigInteger, default=0)


class Vxnet(Timestamps, Base):
    __tablename__ = "vxnets"
    __table_args__ = (UniqueConstraint("vpc_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    vpc_id: Mapped[str] = mapped_column(ForeignKey("vpcs.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str] = mapped_column(String(64))
    vni: Mapped[int]
    ip_pool_id: Mapped[str] = mapped_column(ForeignKey("ip_pools.id"))
    description: Mapped[str] = mapped_column(String(1024), default="")


class SecurityGroup(Timestamps, Base):
    __tablename__ = "security_groups"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(1024), default="")
    rules: Mapped[list[dict]] = mapped_column(JSON, default=list)


class Port(Timestamps, Base):
    """A NIC: on a vxnet (VPC) or with an address of a guest IP pool (classic VLAN)."""

    __tablename__ = "ports"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    vxnet_id: Mapped[str | None] = mapped_column(ForeignKey("vxnets.id"), index=True)
    vpc_id: Mapped[str | None] = mapped_column(ForeignKey("vpcs.id"), index=True)
    ip_pool_id: Mapped[str] = mapped_column(ForeignKey("ip_pools.id"), index=True)
    mac: Mapped[str] = mapped_column(String(17), unique=True)
    ip: Mapped[str] = mapped_column(String(64))
    host_id: Mapped[str | None] = mapped_column(ForeignKey("hosts.id"), index=True)
    device_id: Mapped[str | None] = mapped_column(String(40), index=True)
    security_group_ids: Mapped[list[str]] = mapped_column(JSON, default=list)


class Eip(Timestamps, Base):
    """A public address: bound to a port (1:1 NAT) or to a VPC's router (SNAT)."""

    __tablename__ = "eips"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    ip_pool_id: Mapped[str] = mapped_column(ForeignKey("ip_pools.id"), index=True)
    address: Mapped[str] = mapped_column(String(64))
    bandwidth_mbps: Mapped[int] = mapped_column(default=10)
    port_id: Mapped[str | None] = mapped_column(ForeignKey("ports.id"), unique=True)
    vpc_id: Mapped[str | None] = mapped_column(ForeignKey("vpcs.id"), unique=True)


class Gateway(Base):
    """A host that holds a VPC's full table in ``ondemand`` mode; the others route to it."""

    __tablename__ = "sdn_gateways"

    vpc_id: Mapped[str] = mapped_column(ForeignKey("vpcs.id", ondelete="CASCADE"), primary_key=True)
    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id"), primary_key=True, index=True)


class SdnHost(Base):
    """The controller's per-host version (local ports, learned entries) and the sequence
    every version is drawn from (the row with ``host_id`` '*')."""

    __tablename__ = "sdn_hosts"

    host_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class AgentStatus(Base):
    """What a host's data-plane agent last reported: the document version it applied, the
    router namespaces and forwarding entries its kernel holds, and the routers it failed to
    reconcile (VPC id -> message)."""

    __tablename__ = "sdn_agents"

    host_id: Mapped[str] = mapped_column(
        ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    )
    applied_version: Mapped[int] = mapped_column(BigInteger)
    routers: Mapped[int]
    entries: Mapped[int]
    errors: Mapped[dict[str, Any]] = mapped_column(JSON)
    reported_at: Mapped[datetime]


class PortEvent(Base):
    """A port of a VPC appeared, moved or went at ``version``: what brings a cached copy of
    the VPC's table up to date. Pruned after a while (see ``sdn.tables``)."""

    __tablename__ = "sdn_port_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(BigInteger, index=True)
    vpc_id: Mapped[str] = mapped_column(String(40), index=True)
    port_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=now, index=True)


class LearnedRoute(Base):
    """A direct entry granted to a host in ``ondemand`` mode, until ``expires_at``."""

    __tablename__ = "sdn_learned"
    __table_args__ = (UniqueConstraint("host_id", "vpc_id", "ip"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    host_id: Mapped[str] = mapped_column(String(40), index=True)
    vpc_id: Mapped[str] = mapped_column(String(40))
    ip: Mapped[str] = mapped_column(String(64))
    port_id: Mapped[str] = mapped_column(String(40), index=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    granted_at: Mapped[datetime] = mapped_column(default=now)
