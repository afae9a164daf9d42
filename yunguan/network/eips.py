"""Elastic IPs: public addresses a tenant holds (``public_ips`` quota) and binds to a port
(1:1 NAT) or to a VPC's router (SNAT for the whole VPC). An EIP is metered while the tenant
holds it (``eip.allocated``), priced ``idle`` while unbound and ``bound`` while bound."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunguan.billing import service as billing
from yunguan.core import audit
from yunguan.core.db import flush_or_conflict
from yunguan.core.errors import BadRequest, Conflict, NotFound
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
from yunguan.network import eip_usage as usage
from yunguan.network import ipam
from yunguan.network.models import Eip, IpPool, Port, Vpc
from yunguan.network.schemas import EipAction, EipCreate, EipUpdate
from yunguan.network.sdn import versions
from yunguan.network.vpcs import READ, WRITE, tenant_id_for
from yunguan.quota import service as quota


def list_eips(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_visible(session, principal, Eip, READ, page, **filters)


def get_eip(session: Session, principal: Principal, eip_id: str) -> Eip:
    return get_visible(session, Eip, eip_id, principal, READ)


def _public_pools(session: Session, principal: Principal, data: EipCreate) -> list[IpPool]:
    stmt = select(IpPool).where(IpPool.purpose == "public").order_by(IpPool.id)
    if data.ip_pool_id is not None:
        stmt = stmt.where(IpPool.id == data.ip_pool_id)
    if data.zone_id is not None:
        stmt = stmt.where(IpPool.zone_id == data.zone_id)
    usable = []
    for pool in session.scalars(stmt):
        try:
            inventory.get_zone(session, principal, pool.zone_id)
        except NotFound:
            continue
        usable.append(pool)
    if not usable:
        raise NotFound("no public ip pool matches")
    return usable


def create_eip(session: Session, principal: Principal, data: EipCreate) -> Eip:
    tenant = identity.tenant_for_new_resource(
        session, principal, tenant_id_for(principal, data.tenant_id)
    )
    require(principal, WRITE)
    billing.guard(session, tenant.id)
    if data.address is not None and data.ip_pool_id is None:
        raise BadRequest("a specific address needs its ip_pool_id", code="invalid-field")
    eip_id = new_id("eip")
    quota.charge(session, tenant.id, {"public_ips": 1}, consumer_id=eip_id)
    for pool in _public_pools(session, principal, data):
        try:
            address = ipam.allocate(session, pool.id, eip_id, data.address)
        except ipam.PoolExhausted:
            continue
        eip = Eip(
            id=eip_id,
            tenant_id=tenant.id,
            name=data.name,
            ip_pool_id=pool.id,
            address=address,
            bandwidth_mbps=data.bandwidth_mbps,
        )
        session.add(eip)
        session.flush()
        usage.meter(session, eip, ("start", usage.IDLE))
        audit.note(target_type="eip", target_id=eip.id, tenant_id=tenant.id)
        return eip
    raise ipam.PoolExhausted("every matching public ip pool is full")


def update_eip(session: Session, principal: Principal, eip_id: str, data: EipUpdate) -> Eip:
    eip = get_writable(session, Eip, eip_id, principal, "resource")
    apply_changes(eip, data)
    _changed(session, eip)
    audit.note(target_type="eip", target_id=eip.id, tenant_id=eip.tenant_id)
    return eip


def _changed(session: Session, eip: Eip) -> None:
    """The documents that show the EIP: its VPC's layout, or a classic port's host."""
    if eip.vpc_id is not None:
        versions.bump_layout(session, eip.vpc_id)
    if eip.port_id is not None:
        port = session.get(Port, eip.port_id)
        if port.vpc_id is not None:  # type: ignore[union-attr]
            versions.bump_layout(session, port.vpc_id)  # type: ignore[union-attr]
        versions.bump_hosts(session, [port.host_id])  # type: ignore[union-attr]


def act(session: Session, principal: Principal, eip_id: str, data: EipAction) -> Eip:
    eip = get_writable(session, Eip, eip_id, principal, "resource")
    session.refresh(eip, with_for_update=True)  # one binding at a time
    if data.action == "unbind":
        unbind(session, eip)
        return eip
    if (data.port_id is None) == (data.vpc_id is None):
        raise BadRequest("bind to a port_id or to a vpc_id", code="invalid-field")
    if eip.port_id is not None or eip.vpc_id is not None:
        raise Conflict(f"eip {eip.id} is bound already; unbind it first", code="bound")
    target: Port | Vpc
    if data.port_id is not None:
        target = get_writable(session, Port, data.port_id, principal, "resource")
        taken = select(Eip.id).where(Eip.port_id == target.id)
    else:
        target = get_writable(session, Vpc, data.vpc_id, principal, "resource")  # type: ignore[arg-type]
        taken = select(Eip.id).where(Eip.vpc_id == target.id)
    if target.tenant_id != eip.tenant_id:
        raise BadRequest("the EIP and its target belong to different tenants", code="bad-target")
    if session.scalar(taken):
        raise Conflict(f"{target.id} has an EIP already", code="bound")
    pool = session.get(IpPool, eip.ip_pool_id)
    zone = (
        target.zone_id
        if isinstance(target, Vpc)
        else session.get(IpPool, target.ip_pool_id).zone_id
    )  # type: ignore[union-attr]
    if pool.zone_id != zone:  # type: ignore[union-attr]
        raise BadRequest("the EIP is from another zone", code="bad-target")
    eip.port_id, eip.vpc_id = data.port_id, data.vpc_id
    flush_or_conflict(session, f"{target.id} has an EIP already", "bound")
    _changed(session, eip)
    usage.meter(session, eip, *usage.BIND)
    audit.note(
        target_type="eip", target_id=eip.id, tenant_id=eip.tenant_id, detail=data.model_dump()
    )
    return eip


def unbind(session: Session, eip: Eip) -> None:
    """Unbind the EIP (locked by the caller) and meter it idle; an unbound one stays as it is."""
    if usage.bound(eip):
        _changed(session, eip)
        usage.unbound(session, eip)


def delete_eip(session: Session, principal: Principal, eip_id: str) -> None:
    eip = get_writable(session, Eip, eip_id, principal, "resource")
    _changed(session, eip)
    quota.refund(session, eip.id)  # quota rows before the pool's chunk, as create takes them
    ipam.release(session, eip.id)
    usage.meter(session, eip, ("end", usage.BOUND if usage.bound(eip) else usage.IDLE))
    session.delete(eip)
    audit.note(target_type="eip", target_id=eip.id, tenant_id=eip.tenant_id)
