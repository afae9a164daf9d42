"""VPCs and their vxnets: tenant resources (``resource:read`` / ``resource:write``), counted
against the ``vpcs`` and ``vxnets`` quotas."""

import hashlib
import ipaddress
import secrets
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunguan.core import audit
from yunguan.core.db import flush_or_conflict
from yunguan.core.errors import BadRequest, Conflict
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams
from yunguan.identity import service as identity
from yunguan.identity.crud import apply_changes
from yunguan.identity.scope import (
    Principal,
    get_visible,
    get_writable,
    list_visible,
    require,
)
from yunguan.inventory import service as inventory
from yunguan.inventory.models import Host
from yunguan.network import eip_usage, ipam, pools
from yunguan.network.models import Eip, Gateway, IpPool, Port, Vpc, Vxnet
from yunguan.network.schemas import VpcCreate, VpcUpdate, VxnetCreate, VxnetUpdate
from yunguan.network.sdn import versions
from yunguan.quota import service as quota

READ, WRITE = "resource:read", "resource:write"
VPC_PREFIXES = (16, 28)
VXNET_SMALLEST = 29  # 8 addresses: network, gateway, broadcast and 5 for ports
MAX_VXNETS = 253
GATEWAY_TRAIT = "sdn-gateway"
GATEWAYS_PER_VPC = 2


def random_mac() -> str:
    """A locally administered unicast MAC (2^40 of them: collisions are negligible)."""
    return "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))


def tenant_id_for(principal: Principal, given: str | None) -> str:
    return given or principal.tenant_id


PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)


def _ipv4_private(cidr: str) -> Any:
    """A network inside RFC 1918 space (or the shared 100.64.0.0/10)."""
    net = ipam.network(cidr)
    if net.version != 4 or not any(net.subnet_of(p) for p in PRIVATE):  # type: ignore[arg-type]
        raise BadRequest(f"{net} is not a private IPv4 network (RFC 1918)", code="bad-cidr")
    return net


def vpc_network(cidr: str) -> Any:
    """A VPC's CIDR, checked: private IPv4 of a prefix length a VPC may have."""
    net = _ipv4_private(cidr)
    if not VPC_PREFIXES[0] <= net.prefixlen <= VPC_PREFIXES[1]:
        low, high = VPC_PREFIXES
        raise BadRequest(
            f"a VPC's prefix is /{low} to /{high}, not /{net.prefixlen}", code="bad-cidr"
        )
    return net


def vxnet_network(vpc_cidr: str, cidr: str) -> Any:
    """A vxnet's CIDR, checked: inside its VPC's and large enough."""
    net = _ipv4_private(cidr)
    vpc_net = ipam.network(vpc_cidr)
    if not net.subnet_of(vpc_net):  # type: ignore[arg-type]
        raise BadRequest(f"{net} is not inside the VPC's {vpc_net}", code="bad-cidr")
    if net.prefixlen > VXNET_SMALLEST:
        raise BadRequest(
            f"a vxnet needs at least /{VXNET_SMALLEST} (8 addresses), not /{net.prefixlen}",
            code="bad-cidr",
        )
    return net


def _flush_delete(session: Session, what: str) -> None:
    """A delete that something created meanwhile still refers to is a 409, not a 500."""
    flush_or_conflict(session, f"{what} is in use by something just created; try again", "in-use")


# --- VPCs ----------------------------------------------------------------------------------


def list_vpcs(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_visible(session, principal, Vpc, READ, page, **filters)


def get_vpc(session: Session, principal: Principal, vpc_id: str) -> Vpc:
    return get_visible(session, Vpc, vpc_id, principal, READ)


def _gateway_hosts(session: Session, zone_id: str, vpc_id: str) -> list[str]:
    """Hosts of the zone with the gateway trait, a stable choice per VPC (rendezvous
    hashing spreads VPCs over them)."""
    hosts = session.execute(select(Host.id, Host.traits).where(Host.zone_id == zone_id)).all()
    candidates = [h for h, traits in hosts if GATEWAY_TRAIT in (traits or [])]
    ranked = sorted(candidates, key=lambda h: hash_pair(vpc_id, h))
    return ranked[:GATEWAYS_PER_VPC]


def hash_pair(a: str, b: str) -> str:
    return hashlib.blake2b(f"{a}/{b}".encode(), digest_size=8).hexdigest()


def create_vpc(session: Session, principal: Principal, data: VpcCreate) -> Vpc:
    tenant = identity.tenant_for_new_resource(
        session, principal, tenant_id_for(principal, data.tenant_id)
    )
    require(principal, WRITE)
    zone = inventory.get_zone(session, principal, data.zone_id)
    net = vpc_network(data.cidr)
    vpc_id = new_id("vpc")
    gateways = _gateway_hosts(session, zone.id, vpc_id)
    mode = data.routing_mode or ("ondemand" if gateways else "full")
    if mode == "ondemand" and not gateways:
        raise Conflict(
            f"zone {zone.id} has no host with trait '{GATEWAY_TRAIT}': use routing_mode full",
            code="no-gateway-hosts",
        )
    quota.charge(session, tenant.id, {"vpcs": 1}, consumer_id=vpc_id)
    vpc = Vpc(
        id=vpc_id,
        tenant_id=tenant.id,
        zone_id=zone.id,
        name=data.name,
        cidr=str(net),
        router_mac=random_mac(),
        routing_mode=mode,
        description=data.description,
    )
    session.add(vpc)
    session.flush()
    session.add_all(Gateway(vpc_id=vpc.id, host_id=h) for h in gateways)
    versions.bump_layout(session, vpc.id)
    audit.note(target_type="vpc", target_id=vpc.id, tenant_id=tenant.id)
    return vpc


def update_vpc(session: Session, principal: Principal, vpc_id: str, data: VpcUpdate) -> Vpc:
    vpc = get_writable(session, Vpc, vpc_id, principal, "resource")
    if data.routing_mode == "ondemand" and not _gateways_of(session, vpc.id):
        raise Conflict(
            "this VPC has no gateway hosts: it stays in full mode", code="no-gateway-hosts"
        )
    apply_changes(vpc, data)
    versions.bump_layout(session, vpc.id)
    audit.note(target_type="vpc", target_id=vpc.id, tenant_id=vpc.tenant_id)
    return vpc


def _gateways_of(session: Session, vpc_id: str) -> list[str]:
    return list(session.scalars(select(Gateway.host_id).where(Gateway.vpc_id == vpc_id)))


def delete_vpc(session: Session, principal: Principal, vpc_id: str) -> None:
    vpc = get_writable(session, Vpc, vpc_id, principal, "resource")
    if session.scalar(select(func.count()).where(Vxnet.vpc_id == vpc.id)):
        raise Conflict(f"vpc {vpc.id} still has vxnets; delete them first", code="in-use")
    for eip in session.scalars(select(Eip).where(Eip.vpc_id == vpc.id)):
        eip_usage.unbound(session, eip)
    versions.bump_hosts(session, _gateways_of(session, vpc.id))  # they stop serving it
    session.flush()
    session.delete(vpc)
    _flush_delete(session, f"vpc {vpc.id}")
    pools.free_segment(session, vpc.id)
    quota.refund(session, vpc.id)
    audit.note(target_type="vpc", target_id=vpc.id, tenant_id=vpc.tenant_id)


# --- vxnets --------------------------------------------------------------------------------


def list_vxnets(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_visible(session, principal, Vxnet, READ, page, **filters)


def get_vxnet(session: Session, principal: Principal, vxnet_id: str) -> Vxnet:
    return get_visible(session, Vxnet, vxnet_id, principal, READ)


def zone_of(session: Session, vxnet: Vxnet) -> str:
    return session.get(Vpc, vxnet.vpc_id).zone_id  # type: ignore[union-attr]


def first_vxnet(session: Session, tenant_id: str, zone_id: str) -> Vxnet | None:
    """The tenant's oldest vxnet in the zone: where its machines go when none is named."""
    stmt = (
        select(Vxnet)
        .join(Vpc, Vpc.id == Vxnet.vpc_id)
        .where(Vxnet.tenant_id == tenant_id, Vpc.zone_id == zone_id)
        .order_by(Vxnet.id)
        .limit(1)
    )
    return session.scalars(stmt).first()


def create_vxnet(session: Session, principal: Principal, data: VxnetCreate) -> Vxnet:
    vpc = get_writable(session, Vpc, data.vpc_id, principal, "resource")
    # the VPC's row is the lock that keeps concurrent vxnets from overlapping
    session.scalars(select(Vpc.id).where(Vpc.id == vpc.id).with_for_update()).one()
    net = vxnet_network(vpc.cidr, data.cidr)
    siblings = session.execute(select(Vxnet.id, Vxnet.cidr).where(Vxnet.vpc_id == vpc.id)).all()
    if len(siblings) >= MAX_VXNETS:
        raise Conflict(f"a VPC holds at most {MAX_VXNETS} vxnets", code="too-many-vxnets")
    for other_id, other in siblings:
        if net.overlaps(ipam.network(other)):
            raise Conflict(f"{net} overlaps vxnet {other_id} ({other})", code="overlap")
    if session.scalar(select(Vxnet.id).where(Vxnet.vpc_id == vpc.id, Vxnet.name == data.name)):
        raise Conflict(f"the VPC already has a vxnet named '{data.name}'", code="duplicate")
    vxnet_id = new_id("vxnet")
    quota.charge(session, vpc.tenant_id, {"vxnets": 1}, consumer_id=vxnet_id)
    vni = pools.take_segment(session, vpc.zone_id, "vxlan", vxnet_id)
    if vpc.transit_vni is None:
        vpc.transit_vni = pools.take_segment(session, vpc.zone_id, "vxlan", vpc.id)
    pool = pools.new_pool(
        session,
        name=vxnet_id,
        zone_id=vpc.zone_id,
        cidr=str(net),
        gateway=str(net[1]),
        ranges=[],
        reserved=[],
    )
    vxnet = Vxnet(
        id=vxnet_id,
        tenant_id=vpc.tenant_id,
        vpc_id=vpc.id,
        name=data.name,
        cidr=str(net),
        gateway_ip=str(net[1]),
        vni=vni,
        ip_pool_id=pool.id,
        description=data.description,
    )
    session.add(vxnet)
    session.flush()
    versions.bump_layout(session, vpc.id)
    audit.note(target_type="vxnet", target_id=vxnet.id, tenant_id=vpc.tenant_id)
    return vxnet


def update_vxnet(session: Session, principal: Principal, vxnet_id: str, data: VxnetUpdate) -> Vxnet:
    vxnet = get_writable(session, Vxnet, vxnet_id, principal, "resource")
    if data.name is not None and data.name != vxnet.name:
        taken = select(Vxnet.id).where(Vxnet.vpc_id == vxnet.vpc_id, Vxnet.name == data.name)
        if session.scalar(taken):
            raise Conflict(f"the VPC already has a vxnet named '{data.name}'", code="duplicate")
    apply_changes(vxnet, data)
    audit.note(target_type="vxnet", target_id=vxnet.id, tenant_id=vxnet.tenant_id)
    return vxnet


def delete_vxnet(session: Session, principal: Principal, vxnet_id: str) -> None:
    vxnet = get_writable(session, Vxnet, vxnet_id, principal, "resource")
    if session.scalar(select(func.count()).where(Port.vxnet_id == vxnet.id)):
        raise Conflict(f"vxnet {vxnet.id} still has ports; delete them first", code="in-use")
    pool = session.get(IpPool, vxnet.ip_pool_id)
    session.delete(vxnet)
    _flush_delete(session, f"vxnet {vxnet.id}")
    session.delete(pool)
    pools.free_segment(session, vxnet.id)
    quota.refund(session, vxnet.id)
    versions.bump_layout(session, vxnet.vpc_id)
    audit.note(target_type="vxnet", target_id=vxnet.id, tenant_id=vxnet.tenant_id)
