"""VLAN pools, segment ids (VLANs, VNIs) and IP pools: platform infrastructure, managed by
platform administrators (``inventory:read`` / ``inventory:write``)."""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunguan.core import audit
from yunguan.core.db import flush_or_conflict
from yunguan.core.errors import BadRequest, Conflict, NotFound
from yunguan.core.ids import new_id
from yunguan.core.pagination import (
    PageParams,
    decode_cursor,
    encode_cursor,
    paginate,
    where_equal,
)
from yunguan.identity.crud import apply_changes
from yunguan.identity.scope import Principal, get_permitted, list_permitted, require
from yunguan.inventory.models import Zone
from yunguan.network import ipam
from yunguan.network.models import IpAddress, IpPool, Segment, VlanPool
from yunguan.network.schemas import (
    IpPoolCreate,
    IpPoolUpdate,
    VlanPoolCreate,
    VlanPoolUpdate,
)

READ, WRITE = "inventory:read", "inventory:write"
VLAN_MAX = 4094


def _flush(session: Session, what: str) -> None:
    flush_or_conflict(session, f"{what} already exists, or what it refers to is gone", "duplicate")


# --- VLAN pools ----------------------------------------------------------------------------


def list_vlan_pools(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_permitted(session, principal, VlanPool, READ, page, **filters)


def get_vlan_pool(session: Session, principal: Principal, pool_id: str) -> VlanPool:
    return get_permitted(session, VlanPool, pool_id, principal, READ, "vlan pool")


def create_vlan_pool(session: Session, principal: Principal, data: VlanPoolCreate) -> VlanPool:
    require(principal, WRITE)
    if session.get(Zone, data.zone_id) is None:
        raise NotFound(f"zone {data.zone_id} not found")
    if data.first_id > data.last_id:
        raise BadRequest("first_id is above last_id", code="bad-range")
    if data.network_type == "vlan" and data.last_id > VLAN_MAX:
        raise BadRequest(f"VLAN ids go up to {VLAN_MAX}", code="bad-range")
    if data.cidr is not None:
        net = ipam.network(data.cidr)
        if data.gateway is not None and ipam.address(data.gateway) not in net:
            raise BadRequest(f"gateway {data.gateway} is not in {net}", code="bad-gateway")
    overlapping = select(VlanPool.id).where(
        VlanPool.zone_id == data.zone_id,
        VlanPool.network_type == data.network_type,
        VlanPool.first_id <= data.last_id,
        VlanPool.last_id >= data.first_id,
    )
    if session.scalar(overlapping.limit(1)):
        raise Conflict("the id range overlaps another pool of the zone", code="overlap")
    pool = VlanPool(id=new_id("vlan"), **data.model_dump())
    session.add(pool)
    _flush(session, f"a VLAN pool named '{data.name}'")
    audit.note(target_type="vlan-pool", target_id=pool.id)
    return pool


def update_vlan_pool(
    session: Session, principal: Principal, pool_id: str, data: VlanPoolUpdate
) -> VlanPool:
    pool = get_vlan_pool(session, principal, pool_id)
    require(principal, WRITE)
    apply_changes(pool, data)
    _flush(session, f"a VLAN pool named '{pool.name}'")
    audit.note(target_type="vlan-pool", target_id=pool.id)
    return pool


def delete_vlan_pool(session: Session, principal: Principal, pool_id: str) -> None:
    pool = get_vlan_pool(session, principal, pool_id)
    require(principal, WRITE)
    used = select(func.count()).where(Segment.pool_id == pool.id)
    pools = select(func.count()).where(IpPool.vlan_pool_id == pool.id)
    if session.scalar(used) or session.scalar(pools):
        raise Conflict(f"vlan pool {pool.id} still has IP pools or segments", code="in-use")
    session.delete(pool)
    audit.note(target_type="vlan-pool", target_id=pool.id)


def take_segment(session: Session, zone_id: str, network_type: str, owner_id: str) -> int:
    """The lowest free segment id of the zone's pools of ``network_type``; 409 when none is
    left. The pools are locked while choosing, so concurrent callers never collide."""
    pools = session.scalars(
        select(VlanPool)
        .where(VlanPool.zone_id == zone_id, VlanPool.network_type == network_type)
        .order_by(VlanPool.first_id)
        .with_for_update()
    ).all()
    if not pools:
        raise Conflict(f"zone {zone_id} has no {network_type} pool", code="no-segment-pool")
    for pool in pools:
        taken = session.scalars(
            select(Segment.number).where(Segment.pool_id == pool.id).order_by(Segment.number)
        )
        number = pool.first_id
        for used in taken:
            if used != number:
                break
            number += 1
        if number <= pool.last_id:
            session.add(
                Segment(
                    pool_id=pool.id,
                    zone_id=zone_id,
                    network_type=network_type,
                    number=number,
                    owner_id=owner_id,
                )
            )
            session.flush()
            return number
    raise Conflict(
        f"every {network_type} id of zone {zone_id} is in use", code="segments-exhausted"
    )


def free_segment(session: Session, owner_id: str) -> None:
    segment = session.scalars(select(Segment).where(Segment.owner_id == owner_id)).one_or_none()
    if segment is not None:
        session.delete(segment)


# --- IP pools ------------------------------------------------------------------------------


def list_ip_pools(session: Session, principal: Principal, page: PageParams, **filters: Any):
    require(principal, READ)
    stmt = where_equal(select(IpPool).where(IpPool.vlan_pool_id.is_not(None)), IpPool, **filters)
    rows, cursor = paginate(session, stmt, IpPool.id, page)
    return with_usage(session, rows), cursor


def get_ip_pool(session: Session, principal: Principal, pool_id: str) -> IpPool:
    pool = get_permitted(session, IpPool, pool_id, principal, READ, "ip pool")
    if pool.vlan_pool_id is None:
        raise NotFound(f"ip pool {pool_id} not found")  # vxnets' pools are not infrastructure
    return with_usage(session, [pool])[0]


def new_pool(
    session: Session,
    *,
    name: str,
    zone_id: str,
    cidr: str,
    gateway: str | None,
    ranges: list[list[str]],
    reserved: list[list[str]],
    **fields: Any,
) -> IpPool:
    """An IP pool with a row for each of its addresses (also vxnets' hidden pools)."""
    net = ipam.network(cidr)
    spans = ipam.parse_ranges(net, ranges, "range") if ranges else ipam.host_range(net)
    size = sum(last - first + 1 for first, last in spans)
    if size > ipam.MAX_POOL_SIZE:
        raise BadRequest(
            f"a pool holds at most {ipam.MAX_POOL_SIZE} addresses ({size} asked)",
            code="pool-too-large",
        )
    held = ipam.parse_ranges(net, reserved, "reserved range")
    if any(not any(a <= first and last <= b for a, b in spans) for first, last in held):
        raise BadRequest("a reserved range is not inside the pool's ranges", code="bad-range")
    taken = {n: ipam.RESERVED for first, last in held for n in range(first, last + 1)}
    if gateway is not None:
        gateway_address = ipam.address(gateway)
        if gateway_address not in net:
            raise BadRequest(f"gateway {gateway} is not in {net}", code="bad-gateway")
        taken[int(gateway_address)] = ipam.GATEWAY
    pool = IpPool(
        id=new_id("ipp"),
        name=name,
        zone_id=zone_id,
        cidr=str(net),
        gateway=gateway,
        version=net.version,
        ranges=[[ipam.text(net, first), ipam.text(net, last)] for first, last in spans],
        reserved=reserved,
        **fields,
    )
    session.add(pool)
    session.flush()
    pool.size = ipam.materialize(session, pool, spans, taken)
    return pool


def create_ip_pool(session: Session, principal: Principal, data: IpPoolCreate) -> IpPool:
    require(principal, WRITE)
    vlan_pool = get_vlan_pool(session, principal, data.vlan_pool_id)
    if vlan_pool.network_type != "vlan":
        raise BadRequest("IP pools belong to VLAN pools of type vlan", code="invalid-field")
    vlan = vlan_pool.first_id if data.vlan is None else data.vlan
    if not vlan_pool.first_id <= vlan <= vlan_pool.last_id:
        raise BadRequest(f"VLAN {vlan} is outside the pool's range", code="bad-range")
    cidr = data.cidr or vlan_pool.cidr
    if cidr is None:
        raise BadRequest("give a cidr (the VLAN pool has none)", code="invalid-field")
    pool = new_pool(
        session,
        vlan_pool_id=vlan_pool.id,
        vlan=vlan,
        **data.model_dump(exclude={"vlan_pool_id", "vlan", "cidr", "gateway"}),
        zone_id=vlan_pool.zone_id,
        cidr=cidr,
        gateway=data.gateway or (vlan_pool.gateway if cidr == vlan_pool.cidr else None),
    )
    same_vlan = select(IpPool.id, IpPool.cidr).where(
        IpPool.vlan_pool_id == vlan_pool.id, IpPool.vlan == vlan, IpPool.id != pool.id
    )
    for other_id, other in session.execute(same_vlan):
        if ipam.network(pool.cidr).overlaps(ipam.network(other)):  # type: ignore[arg-type]
            raise Conflict(f"{cidr} overlaps ip pool {other_id} on VLAN {vlan}", code="overlap")
    audit.note(target_type="ip-pool", target_id=pool.id)
    return with_usage(session, [pool])[0]


def update_ip_pool(
    session: Session, principal: Principal, pool_id: str, data: IpPoolUpdate
) -> IpPool:
    pool = get_ip_pool(session, principal, pool_id)
    require(principal, WRITE)
    apply_changes(pool, data)
    audit.note(target_type="ip-pool", target_id=pool.id)
    return pool


def delete_ip_pool(session: Session, principal: Principal, pool_id: str) -> None:
    pool = get_ip_pool(session, principal, pool_id)
    require(principal, WRITE)
    in_use = select(func.count()).where(
        IpAddress.pool_id == pool.id,
        IpAddress.owner_id.is_not(None),
        IpAddress.owner_id.not_in((ipam.RESERVED, ipam.GATEWAY)),
    )
    if session.scalar(in_use):
        raise Conflict(f"ip pool {pool.id} still has addresses in use", code="in-use")
    session.delete(pool)
    audit.note(target_type="ip-pool", target_id=pool.id)


def with_usage(session: Session, pools: list[IpPool]) -> list[IpPool]:
    """Pools with their address counts attached (``usage``)."""
    figures = ipam.usage(session, [p.id for p in pools])
    for pool in pools:
        pool.usage = figures[pool.id]  # type: ignore[attr-defined]
    return pools


# --- addresses of classic pools ------------------------------------------------------------


def allocate_address(
    session: Session, principal: Principal, pool_id: str, owner_id: str, wanted: str | None
) -> IpAddress:
    pool = get_ip_pool(session, principal, pool_id)
    require(principal, WRITE)
    got = ipam.allocate(session, pool.id, owner_id, wanted)
    audit.note(target_type="ip-pool", target_id=pool.id, detail={"address": got})
    return session.scalars(
        select(IpAddress).where(IpAddress.pool_id == pool.id, IpAddress.address == got)
    ).one()


def release_address(session: Session, principal: Principal, pool_id: str, address: str) -> None:
    pool = get_ip_pool(session, principal, pool_id)
    require(principal, WRITE)
    text = str(ipam.address(address))
    row = session.scalars(
        select(IpAddress).where(IpAddress.pool_id == pool.id, IpAddress.address == text)
    ).one_or_none()
    if row is None or row.owner_id is None:
        raise NotFound(f"{text} is not allocated in ip pool {pool.id}")
    if row.owner_id in (ipam.RESERVED, ipam.GATEWAY):
        raise Conflict(f"{text} is reserved", code="reserved")
    if row.owner_id.startswith(("port-", "eip-")):
        raise Conflict(f"{text} belongs to {row.owner_id}: delete that", code="in-use")
    ipam.release(session, row.owner_id, pool_id=pool.id, address=text)

    audit.note(target_type="ip-pool", target_id=pool.id, detail={"released": text})


def list_addresses(
    session: Session, principal: Principal, pool_id: str, page: PageParams, **filters: Any
):
    """One page of a pool's addresses in order; the cursor is the last position shown."""
    pool = get_ip_pool(session, principal, pool_id)
    stmt = where_equal(select(IpAddress).where(IpAddress.pool_id == pool.id), IpAddress, **filters)
    if page.cursor is not None:
        after = decode_cursor(page.cursor)
        if not after.isdigit():
            raise BadRequest("cursor is not one this server issued", code="invalid-cursor")
        stmt = stmt.where(IpAddress.position > int(after))
    rows = list(session.scalars(stmt.order_by(IpAddress.position).limit(page.limit + 1)))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return rows, encode_cursor(str(rows[-1].position)) if more else None
