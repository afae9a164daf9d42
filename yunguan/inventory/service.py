"""Inventory: the topology, hosts and storage pools. The only code that writes these tables.

Everything here is platform administration (``inventory:read`` / ``inventory:write``),
except zones, which every tenant may list as far as it may use them.
"""

import math
import shutil
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sqlalchemy import Row, bindparam, case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yunguan.core import audit
from yunguan.core.clock import now
from yunguan.core.errors import BadRequest, Conflict, NotFound
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams, paginate, where_equal
from yunguan.identity import service as identity
from yunguan.identity.crud import apply_changes
from yunguan.identity.scope import (
    Principal,
    get_permitted,
    list_permitted,
    require,
    restrict_granted,
)
from yunguan.inventory.models import (
    Cluster,
    Host,
    InventoryGeneration,
    Pod,
    Region,
    StoragePool,
    Zone,
    ZoneAccess,
)
from yunguan.inventory.schemas import (
    ClusterCreate,
    ClusterUpdate,
    HostCreate,
    HostUpdate,
    PodCreate,
    PodUpdate,
    RegionCreate,
    RegionUpdate,
    StoragePoolCreate,
    StoragePoolUpdate,
    ZoneCreate,
    ZoneUpdate,
)

M = TypeVar("M")
READ, WRITE = "inventory:read", "inventory:write"
PREFIXES = {Region: "reg", Zone: "zone", Pod: "pod", Cluster: "cl", Host: "host", StoragePool: "sp"}
NOUNS = {Region: "region", Zone: "zone", Pod: "pod", Cluster: "cluster", Host: "host"}
NOUNS[StoragePool] = "storage pool"


# --- generic pieces ------------------------------------------------------------------------


def touch(session: Session) -> None:
    """Tell every scheduler that placement inputs changed."""
    bumped = session.execute(
        update(InventoryGeneration)
        .where(InventoryGeneration.id == 1)
        .values(generation=InventoryGeneration.generation + 1)
    )
    if bumped.rowcount != 1:  # type: ignore[attr-defined]
        raise RuntimeError("the inventory generation row is missing: run 'yunguan db upgrade'")


_GENERATION = select(InventoryGeneration.epoch, InventoryGeneration.generation)


def generation(session: Session) -> tuple[str, int]:
    """(epoch, counter): the epoch tells a recreated row from the one a cache saw."""
    found = session.execute(_GENERATION).one_or_none()
    return (found[0], found[1]) if found else ("", 0)


def _get(session: Session, principal: Principal, model: type[M], ident: str) -> M:
    return get_permitted(session, model, ident, principal, READ, NOUNS[model])  # type: ignore[index]


def _list(
    session: Session, principal: Principal, model: Any, page: PageParams, **filters: Any
) -> tuple[list[Any], str | None]:
    return list_permitted(session, principal, model, READ, page, **filters)


def _save(session: Session, row: Any) -> Any:
    """Flush a new or changed row; a taken name is a 409, not a 500. Callers query before
    they change a row, so nothing flushes it earlier, outside this ``try``."""
    noun, name, ident = NOUNS[type(row)], row.name, row.id
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # the request's transaction is lost; nothing is written
        raise Conflict(
            f"a {noun} named '{name}' already exists, or what it refers to is gone",
            code="duplicate",
        )
    audit.note(target_type=noun.replace(" ", "-"), target_id=ident)
    touch(session)
    return row


def _create(session: Session, principal: Principal, model: type[M], **values: Any) -> M:
    require(principal, WRITE)
    return _save(session, model(id=new_id(PREFIXES[model]), **values))  # type: ignore[call-arg]


def _delete(session: Session, principal: Principal, model: type[M], ident: str) -> None:
    row = _get(session, principal, model, ident)
    require(principal, WRITE)
    audit.note(target_type=NOUNS[model].replace(" ", "-"), target_id=ident)  # type: ignore[index]
    try:
        with session.begin_nested():
            session.delete(row)
            session.flush()
    except IntegrityError:
        raise Conflict(
            f"{NOUNS[model]} {ident} is still in use; remove what it contains first",  # type: ignore[index]
            code="in-use",
        )
    touch(session)


# --- regions -------------------------------------------------------------------------------


def create_region(session: Session, principal: Principal, data: RegionCreate) -> Region:
    return _create(session, principal, Region, **data.model_dump())


def get_region(session: Session, principal: Principal, region_id: str) -> Region:
    return _get(session, principal, Region, region_id)


def list_regions(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return _list(session, principal, Region, page, **filters)


def update_region(session: Session, principal: Principal, region_id: str, data: RegionUpdate):
    region = _get(session, principal, Region, region_id)
    require(principal, WRITE)
    apply_changes(region, data)
    return _save(session, region)


def delete_region(session: Session, principal: Principal, region_id: str) -> None:
    _delete(session, principal, Region, region_id)


# --- zones ---------------------------------------------------------------------------------


def _visible_zones(principal: Principal) -> Any:
    """Zones the principal may use: all for platform readers, else public ones and private
    ones granted to its tenant or an ancestor of it."""
    stmt = select(Zone)
    if principal.can(READ):
        return stmt
    grants = (ZoneAccess.zone_id, ZoneAccess.tenant_id)
    public = Zone.visibility == "public"
    return restrict_granted(stmt, Zone, grants, principal, "resource:read", everyone=public)


def zone_tenants(session: Session, zone_ids: Sequence[str]) -> dict[str, list[str]]:
    granted: dict[str, list[str]] = {z: [] for z in zone_ids}
    rows = session.execute(
        select(ZoneAccess.zone_id, ZoneAccess.tenant_id)
        .where(ZoneAccess.zone_id.in_(zone_ids))
        .order_by(ZoneAccess.tenant_id)
    )
    for zone_id, tenant_id in rows:
        granted[zone_id].append(tenant_id)
    return granted


def _with_grants(session: Session, principal: Principal, zones: list[Zone]) -> list[Zone]:
    """Show platform readers which tenants a zone is granted to (others never see ids)."""
    if principal.can(READ):
        granted = zone_tenants(session, [z.id for z in zones])
        for zone in zones:
            zone.tenant_ids = granted[zone.id]  # type: ignore[attr-defined]
    return zones


def _set_access(session: Session, principal: Principal, zone: Zone, tenant_ids: list[str]):
    for tenant_id in set(tenant_ids):
        identity.get_tenant(session, principal, tenant_id)
    session.execute(delete(ZoneAccess).where(ZoneAccess.zone_id == zone.id))
    session.add_all(ZoneAccess(zone_id=zone.id, tenant_id=t) for t in sorted(set(tenant_ids)))


def create_zone(session: Session, principal: Principal, data: ZoneCreate) -> Zone:
    _get(session, principal, Region, data.region_id)
    zone = _create(session, principal, Zone, **data.model_dump(exclude={"tenant_ids"}))
    _set_access(session, principal, zone, data.tenant_ids)
    return _with_grants(session, principal, [zone])[0]


def get_zone(session: Session, principal: Principal, zone_id: str) -> Zone:
    zone = session.scalars(_visible_zones(principal).where(Zone.id == zone_id)).one_or_none()
    if zone is None:
        raise NotFound(f"zone {zone_id} not found")
    return _with_grants(session, principal, [zone])[0]


def list_zones(session: Session, principal: Principal, page: PageParams, **filters: Any):
    stmt = where_equal(_visible_zones(principal), Zone, **filters)
    zones, cursor = paginate(session, stmt, Zone.id, page)
    return _with_grants(session, principal, zones), cursor


def update_zone(session: Session, principal: Principal, zone_id: str, data: ZoneUpdate) -> Zone:
    zone = _get(session, principal, Zone, zone_id)
    require(principal, WRITE)
    if data.tenant_ids is not None:
        _set_access(session, principal, zone, data.tenant_ids)
    apply_changes(zone, data, skip=["tenant_ids"])
    return _with_grants(session, principal, [_save(session, zone)])[0]


def delete_zone(session: Session, principal: Principal, zone_id: str) -> None:
    _delete(session, principal, Zone, zone_id)


# --- pods ----------------------------------------------------------------------------------


def create_pod(session: Session, principal: Principal, data: PodCreate) -> Pod:
    _get(session, principal, Zone, data.zone_id)
    return _create(session, principal, Pod, **data.model_dump())


def get_pod(session: Session, principal: Principal, pod_id: str) -> Pod:
    return _get(session, principal, Pod, pod_id)


def list_pods(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return _list(session, principal, Pod, page, **filters)


def update_pod(session: Session, principal: Principal, pod_id: str, data: PodUpdate) -> Pod:
    pod = _get(session, principal, Pod, pod_id)
    require(principal, WRITE)
    apply_changes(pod, data)
    return _save(session, pod)


def delete_pod(session: Session, principal: Principal, pod_id: str) -> None:
    _delete(session, principal, Pod, pod_id)


# --- clusters ------------------------------------------------------------------------------


def _check_primary_pool(session: Session, cluster: Cluster, pool_id: str | None) -> None:
    if pool_id is None:
        return
    pool = session.get(StoragePool, pool_id)
    if pool is None:
        raise NotFound(f"storage pool {pool_id} not found")
    if pool.kind != "primary" or pool.zone_id != cluster.zone_id:
        raise BadRequest("a cluster's pool must be a primary pool of its zone", code="bad-pool")
    if pool.cluster_id not in (None, cluster.id):
        raise BadRequest(f"pool {pool.id} serves another cluster", code="bad-pool")


def _limits(cluster: Cluster, cpu_cores: int, memory_mb: int, disk_gb: int) -> dict[str, int]:
    """What a host may hand out: its hardware times the cluster's overcommit ratios."""
    return {
        "vcpu_limit": math.floor(cpu_cores * Decimal(cluster.cpu_overcommit)),
        "memory_limit_mb": math.floor(memory_mb * Decimal(cluster.memory_overcommit)),
        "disk_limit_gb": math.floor(disk_gb * Decimal(cluster.disk_overcommit)),
    }


def _set_limits(cluster: Cluster, host: Host) -> None:
    for key, value in _limits(cluster, host.cpu_cores, host.memory_mb, host.disk_gb).items():
        setattr(host, key, value)


def create_cluster(session: Session, principal: Principal, data: ClusterCreate) -> Cluster:
    pod = _get(session, principal, Pod, data.pod_id)
    require(principal, WRITE)
    cluster = Cluster(id=new_id("cl"), zone_id=pod.zone_id, **data.model_dump())
    _check_primary_pool(session, cluster, data.primary_pool_id)
    return _save(session, cluster)


def get_cluster(session: Session, principal: Principal, cluster_id: str) -> Cluster:
    return _get(session, principal, Cluster, cluster_id)


def list_clusters(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return _list(session, principal, Cluster, page, **filters)


def update_cluster(
    session: Session, principal: Principal, cluster_id: str, data: ClusterUpdate
) -> Cluster:
    cluster = _get(session, principal, Cluster, cluster_id)
    require(principal, WRITE)
    fields = data.model_dump(exclude_unset=True)
    if "primary_pool_id" in fields:  # null detaches the pool: disks go to the hosts again
        held = select(func.count()).where(Host.cluster_id == cluster.id, Host.claims > 0)
        if session.scalar(held):
            raise Conflict("the cluster has placements; empty it first", code="in-use")
        _check_primary_pool(session, cluster, fields["primary_pool_id"])
    hosts = session.scalars(select(Host).where(Host.cluster_id == cluster.id)).all()
    for key, value in fields.items():
        if value is None and key != "primary_pool_id":
            raise BadRequest(f"'{key}' cannot be null", code="invalid-field")
        setattr(cluster, key, value)
    for host in hosts:
        _set_limits(cluster, host)
    return _save(session, cluster)


def delete_cluster(session: Session, principal: Principal, cluster_id: str) -> None:
    _delete(session, principal, Cluster, cluster_id)


# --- hosts ---------------------------------------------------------------------------------


def create_host(session: Session, principal: Principal, data: HostCreate) -> Host:
    cluster = _get(session, principal, Cluster, data.cluster_id)
    require(principal, WRITE)
    pod = session.get(Pod, cluster.pod_id)
    zone = session.get(Zone, cluster.zone_id)
    host = Host(
        id=new_id("host"),
        pod_id=pod.id,  # type: ignore[union-attr]
        zone_id=zone.id,  # type: ignore[union-attr]
        region_id=zone.region_id,  # type: ignore[union-attr]
        **data.model_dump(),
    )
    _set_limits(cluster, host)
    return _save(session, host)


def get_host(session: Session, principal: Principal, host_id: str) -> Host:
    return _get(session, principal, Host, host_id)


def list_hosts(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return _list(session, principal, Host, page, **filters)


def update_host(session: Session, principal: Principal, host_id: str, data: HostUpdate) -> Host:
    host = _get(session, principal, Host, host_id)
    require(principal, WRITE)
    host = _lock_host(session, host_id)
    cluster = session.get(Cluster, host.cluster_id)
    apply_changes(host, data)
    _set_limits(cluster, host)  # type: ignore[arg-type]
    return _save(session, host)


def delete_host(session: Session, principal: Principal, host_id: str) -> None:
    host = _get(session, principal, Host, host_id)
    if _lock_host(session, host.id).claims:
        raise Conflict(
            f"host {host_id} still holds {host.claims} placement(s); evacuate it first",
            code="in-use",
        )
    _delete(session, principal, Host, host_id)


def _lock_host(session: Session, host_id: str) -> Host:
    return session.scalars(
        select(Host)
        .where(Host.id == host_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


# --- storage pools -------------------------------------------------------------------------


def _pool_limit(pool: StoragePool) -> None:
    pool.limit_gb = math.floor(pool.total_gb * pool.overprovisioning)


def create_pool(session: Session, principal: Principal, data: StoragePoolCreate) -> StoragePool:
    _get(session, principal, Zone, data.zone_id)
    if data.cluster_id is not None:
        if data.kind != "primary":
            raise BadRequest("only primary pools belong to a cluster", code="bad-pool")
        if _get(session, principal, Cluster, data.cluster_id).zone_id != data.zone_id:
            raise BadRequest("the cluster is in another zone", code="bad-pool")
    pool = StoragePool(id=new_id("sp"), **data.model_dump())
    _pool_limit(pool)
    require(principal, WRITE)
    return _save(session, pool)


def get_pool(session: Session, principal: Principal, pool_id: str) -> StoragePool:
    return _get(session, principal, StoragePool, pool_id)


def list_pools(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return _list(session, principal, StoragePool, page, **filters)


def update_pool(
    session: Session, principal: Principal, pool_id: str, data: StoragePoolUpdate
) -> StoragePool:
    pool = _get(session, principal, StoragePool, pool_id)
    require(principal, WRITE)
    apply_changes(pool, data)
    _pool_limit(pool)
    return _save(session, pool)


def delete_pool(session: Session, principal: Principal, pool_id: str) -> None:
    _delete(session, principal, StoragePool, pool_id)


def measure(source: str) -> tuple[int, int] | None:
    """(total, used) GB of a ``file://`` source, None for sources we cannot measure."""
    parts = urlsplit(source)
    if parts.scheme != "file":
        return None
    try:
        usage = shutil.disk_usage(parts.path)
    except OSError:
        return None
    return usage.total // 2**30, usage.used // 2**30


def pool_sources(session: Session) -> dict[str, str]:
    rows = session.execute(select(StoragePool.id, StoragePool.source).order_by(StoragePool.id))
    return {pool_id: source for pool_id, source in rows}


def refresh_pool(
    session: Session,
    pool_id: str,
    measured: tuple[int, int] | None,
    count_allocated: Callable[[], int],
) -> StoragePool | None:
    """Store a pool's measurement (taken before, outside any lock) and recount its
    allocation under its row lock (the scheduler, which owns the claims, counts)."""
    pool = session.scalars(
        select(StoragePool)
        .where(StoragePool.id == pool_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if pool is None:  # deleted meanwhile
        return None
    limit = pool.limit_gb
    if measured is not None:
        pool.total_gb, pool.used_gb = measured
        _pool_limit(pool)
    pool.allocated_gb = count_allocated()
    pool.refreshed_at = now()
    if pool.limit_gb != limit:
        touch(session)
    return pool


# --- capacity ------------------------------------------------------------------------------

LEVELS = {"region": Region, "zone": Zone, "pod": Pod, "cluster": Cluster, "host": Host}
CHILD = {"region": "zone", "zone": "pod", "pod": "cluster", "cluster": "host"}
_COLUMN = {
    "region": Host.region_id,
    "zone": Host.zone_id,
    "pod": Host.pod_id,
    "cluster": Host.cluster_id,
    "host": Host.id,
}
_DIMENSIONS = {
    "vcpus": (Host.cpu_cores, Host.vcpu_limit, Host.used_vcpus),
    "memory_mb": (Host.memory_mb, Host.memory_limit_mb, Host.used_memory_mb),
    "disk_gb": (Host.disk_gb, Host.disk_limit_gb, Host.used_disk_gb),
    "gpus": (Host.gpus, Host.gpus, Host.used_gpus),
}


def _sums(session: Session, group: Any, where: Any) -> list[Row[Any]]:
    enabled = Host.state == "enabled"
    columns = [group, func.count(), func.sum(case((enabled, 1), else_=0))]
    for total, limit, used in _DIMENSIONS.values():
        free = case((enabled, limit - used), else_=0)
        columns += [func.sum(total), func.sum(limit), func.sum(used), func.sum(free)]
    return list(session.execute(select(*columns).where(where).group_by(group)))


def _figures(row: Row[Any] | None) -> dict[str, Any]:
    values = list(row[1:]) if row is not None else [0] * (2 + 4 * len(_DIMENSIONS))
    values = [int(v or 0) for v in values]
    figures: dict[str, Any] = {"hosts": values[0], "hosts_enabled": values[1]}
    for n, name in enumerate(_DIMENSIONS):
        total, limit, allocated, free = values[2 + 4 * n : 6 + 4 * n]
        figures[name] = {"total": total, "limit": limit, "allocated": allocated, "free": free}
    return figures


def capacity(session: Session, principal: Principal, level: str, ident: str) -> dict[str, Any]:
    """Totals of one node of the tree, with one entry per child one level down."""
    node = _get(session, principal, LEVELS[level], ident)
    column = _COLUMN[level]
    (total,) = _sums(session, column, column == ident) or [None]
    view = {"id": ident, "name": node.name, "level": level, **_figures(total), "children": []}
    child = CHILD.get(level)
    if child:
        model = LEVELS[child]
        stmt = select(model.id, model.name).where(_parent(child) == ident)
        names = {row.id: row.name for row in session.execute(stmt)}

        sums = {row[0]: row for row in _sums(session, _COLUMN[child], column == ident)}
        view["children"] = [
            {"id": i, "name": n, "level": child, **_figures(sums.get(i)), "children": []}
            for i, n in sorted(names.items(), key=lambda item: item[1])
        ]
    return view


def capacity_by(session: Session, principal: Principal, level: str) -> dict[str, dict[str, Any]]:
    """The figures of every node of one level (one GROUP BY), by node id."""
    require(principal, READ)
    column = _COLUMN[level]
    return {row[0]: _figures(row) for row in _sums(session, column, column.is_not(None))}


def _parent(level: str) -> Any:

    return {"zone": Zone.region_id, "pod": Pod.zone_id, "cluster": Cluster.pod_id}.get(
        level, Host.cluster_id
    )


# --- what the scheduler reads and writes ---------------------------------------------------

PLACEMENT_COLUMNS = (
    Host.id,
    Host.name,
    Host.zone_id,
    Host.cluster_id,
    Host.state,
    Host.traits,
    Host.vcpu_limit,
    Host.memory_limit_mb,
    Host.disk_limit_gb,
    Host.gpus,
    Host.used_vcpus,
    Host.used_memory_mb,
    Host.used_disk_gb,
    Host.used_gpus,
    Host.claims,
    Host.cpu_sockets,
    Host.cpu_mhz,
    Host.disk_count,
    Host.disk_gb,
    Host.memory_mb,
)
USAGE_COLUMNS = (
    Host.id,
    Host.state,
    Host.used_vcpus,
    Host.used_memory_mb,
    Host.used_disk_gb,
    Host.used_gpus,
    Host.claims,
)


def placement_hosts(session: Session) -> list[Row[Any]]:
    return list(session.execute(select(*PLACEMENT_COLUMNS).order_by(Host.id)))


def placement_usage(session: Session, host_ids: Sequence[str] | None = None) -> list[Row[Any]]:
    stmt = select(*USAGE_COLUMNS)
    if host_ids is not None:
        stmt = stmt.where(Host.id.in_(host_ids))
    return list(session.execute(stmt))


def placement_clusters(session: Session) -> dict[str, tuple[str, str | None]]:
    """cluster id → (hypervisor, primary pool id)."""
    rows = session.execute(select(Cluster.id, Cluster.hypervisor, Cluster.primary_pool_id))
    return {cid: (hypervisor, pool) for cid, hypervisor, pool in rows}


def placement_pools(session: Session) -> list[Row[Any]]:
    return list(
        session.execute(
            select(StoragePool.id, StoragePool.limit_gb, StoragePool.allocated_gb).where(
                StoragePool.kind == "primary"
            )
        )
    )


def placement_zones(session: Session) -> list[tuple[str, bool, list[str]]]:
    """(zone id, public?, tenants granted) for every zone."""
    zones = session.execute(select(Zone.id, Zone.visibility).order_by(Zone.id)).all()
    granted = zone_tenants(session, [z for z, _ in zones])
    return [(z, visibility == "public", granted[z]) for z, visibility in zones]


# The claim path runs these hundreds of times a second: statements built once, in Core
# (no ORM bookkeeping), with parameters named apart from the columns they change.
_h, _p = Host.__table__.c, StoragePool.__table__.c
_USAGE = (_h.id, _h.state, _h.used_vcpus, _h.used_memory_mb, _h.used_disk_gb, _h.used_gpus)
_USAGE += (_h.claims,)
_TAKE = (
    update(Host.__table__)
    .where(
        _h.id == bindparam("p_host"),
        _h.state == "enabled",
        _h.used_vcpus + bindparam("p_vcpus") <= _h.vcpu_limit,
        _h.used_memory_mb + bindparam("p_memory") <= _h.memory_limit_mb,
        _h.used_disk_gb + bindparam("p_disk") <= _h.disk_limit_gb,
        _h.used_gpus + bindparam("p_gpus") <= _h.gpus,
    )
    .values(
        used_vcpus=_h.used_vcpus + bindparam("p_vcpus"),
        used_memory_mb=_h.used_memory_mb + bindparam("p_memory"),
        used_disk_gb=_h.used_disk_gb + bindparam("p_disk"),
        used_gpus=_h.used_gpus + bindparam("p_gpus"),
        claims=_h.claims + bindparam("p_count"),
    )
    .returning(*_USAGE)
)
_TAKE_WHOLE = (
    update(Host.__table__)
    .where(_h.id == bindparam("p_host"), _h.state == "enabled", _h.claims == 0)
    .values(
        used_vcpus=_h.vcpu_limit,
        used_memory_mb=_h.memory_limit_mb,
        used_disk_gb=_h.disk_limit_gb,
        used_gpus=_h.gpus,
        claims=1,
    )
    .returning(*_USAGE)
)
_GIVE_BACK = (
    update(Host.__table__)
    .where(_h.id == bindparam("p_host"))
    .values(
        used_vcpus=_h.used_vcpus - bindparam("p_vcpus"),
        used_memory_mb=_h.used_memory_mb - bindparam("p_memory"),
        used_disk_gb=_h.used_disk_gb - bindparam("p_disk"),
        used_gpus=_h.used_gpus - bindparam("p_gpus"),
        claims=_h.claims - bindparam("p_count"),
    )
    .returning(*_USAGE)
)
_TAKE_POOL = (
    update(StoragePool.__table__)
    .where(_p.id == bindparam("p_pool"), _p.allocated_gb + bindparam("p_gb") <= _p.limit_gb)
    .values(allocated_gb=_p.allocated_gb + bindparam("p_gb"))
    .returning(_p.allocated_gb)
)
_GIVE_BACK_POOL = (
    update(StoragePool.__table__)
    .where(_p.id == bindparam("p_pool"))
    .values(allocated_gb=_p.allocated_gb - bindparam("p_gb"))
    .returning(_p.allocated_gb)
)


def _amounts(host_id: str, amounts: Sequence[int], count: int = 1) -> dict[str, Any]:
    vcpus, memory, disk, gpus = amounts
    return {
        "p_host": host_id,
        "p_vcpus": vcpus,
        "p_memory": memory,
        "p_disk": disk,
        "p_gpus": gpus,
        "p_count": count,
    }


def take(
    session: Session, host_id: str, amounts: Sequence[int], whole: bool, count: int = 1
) -> Row | None:
    """Add ``amounts`` (vcpus, memory, local disk, gpus) to a host if it stays within its
    limits and is enabled — one conditional UPDATE, so concurrent claims cannot overfill it.
    ``whole`` takes a bare-metal node: only when it holds nothing, all of it. ``count`` 0:
    an existing claim grows (or shrinks, with negative amounts)."""
    if whole:
        return session.execute(_TAKE_WHOLE, {"p_host": host_id}).one_or_none()
    return session.execute(_TAKE, _amounts(host_id, amounts, count)).one_or_none()


def give_back(session: Session, host_id: str, amounts: Sequence[int]) -> Row | None:
    return session.execute(_GIVE_BACK, _amounts(host_id, amounts)).one_or_none()


def take_pool(session: Session, pool_id: str, gb: int) -> int | None:
    """Allocate ``gb`` on a primary pool within its limit; the new allocation or None."""
    return session.execute(_TAKE_POOL, {"p_pool": pool_id, "p_gb": gb}).scalar()


def give_back_pool(session: Session, pool_id: str, gb: int) -> int | None:
    return session.execute(_GIVE_BACK_POOL, {"p_pool": pool_id, "p_gb": gb}).scalar()


def host_names(session: Session, host_ids: Sequence[str]) -> dict[str, str]:
    return dict(session.execute(select(Host.id, Host.name).where(Host.id.in_(host_ids))).all())


def insert_hosts(session: Session, rows: list[dict[str, Any]]) -> None:
    """Bulk-add hosts (demo and benchmark data centres); limits are computed here."""
    clusters = {c.id: c for c in session.scalars(select(Cluster))}
    pods = {p.id: p for p in session.scalars(select(Pod))}
    zones = {z.id: z for z in session.scalars(select(Zone))}
    for row in rows:
        cluster = clusters[row["cluster_id"]]
        pod = pods[cluster.pod_id]
        row.setdefault("id", new_id("host"))
        row.update(pod_id=pod.id, zone_id=pod.zone_id, region_id=zones[pod.zone_id].region_id)
        row.update(_limits(cluster, row["cpu_cores"], row["memory_mb"], row.get("disk_gb", 0)))
    for start in range(0, len(rows), 5000):
        session.execute(insert(Host), rows[start : start + 5000])
    touch(session)


# --- hosts a provider reports --------------------------------------------------------------

MANAGED_TRAIT = "yunguan:managed"
"""Every host a provider reports carries it; compute places machines only on such hosts."""
_HARDWARE = ("cpu_sockets", "cpu_cores", "cpu_mhz", "memory_mb", "disk_count", "disk_gb")
_REPORTED = (*_HARDWARE, "gpus", "nics", "power_state", "address", "bmc_address")


def sync_provider_hosts(
    session: Session, provider_id: str, cluster_id: str, reported: Sequence[dict[str, Any]]
) -> dict[str, int]:
    """Make the cluster's hosts match what a provider reports (each a dict of the host's
    fields plus ``external_id``, ``name``, ``hypervisor`` and ``traits``): new ones are added,
    known ones take the reported hardware and power state, vanished ones are marked
    ``power_state=unknown`` and disabled (their placements stay; back, they are enabled).
    The placement tables reload only when something changed."""
    cluster = session.get(Cluster, cluster_id)
    if cluster is None:
        raise NotFound(f"cluster {cluster_id} not found")
    known = {
        h.external_id: h
        for h in session.scalars(select(Host).where(Host.provider_id == provider_id))
    }
    added: list[dict[str, Any]] = []
    changed = 0
    for fact in reported:
        host = known.pop(fact["external_id"], None)
        values = {k: fact[k] for k in _REPORTED if k in fact}
        values["traits"] = sorted({*fact.get("traits", ()), MANAGED_TRAIT})
        if host is not None and host.power_state == "unknown" and host.state == "disabled":
            values["state"] = "enabled"  # back after it vanished (which disabled it)
        if host is None:
            added.append(
                {
                    **values,
                    "name": _free_host_name(session, fact, {h["name"] for h in added}),
                    "cluster_id": cluster.id,
                    "provider_id": provider_id,
                    "external_id": fact["external_id"],
                }
            )
            continue
        if any(getattr(host, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(host, key, value)
            _set_limits(cluster, host)
            changed += 1
    for host in known.values():  # vanished: nothing new goes there until it is back
        if host.power_state != "unknown":
            host.power_state, host.state, changed = "unknown", "disabled", changed + 1
    if added:
        insert_hosts(session, added)
    elif changed:
        touch(session)
    return {"added": len(added), "changed": changed}


def _free_host_name(session: Session, fact: dict[str, Any], batch: set[str]) -> str:
    """Host names are unique platform-wide, and providers (BMCs above all) may report the
    same name twice: then the name takes the host's external id."""
    for name in (fact["name"][:64], f"{fact['name'][:20]}-{fact['external_id']}"[:64]):
        taken = name in batch or session.scalar(select(func.count()).where(Host.name == name))
        if not taken:
            return name
    return f"{fact['name'][:20]}-{new_id('h')}"


def provider_hosts(session: Session, provider_id: str) -> dict[str, str]:
    """Our host id of each host a provider reported, by its external id."""
    rows = session.execute(select(Host.external_id, Host.id).where(Host.provider_id == provider_id))
    return dict(rows.all())


def count_provider_hosts(session: Session, provider_id: str) -> tuple[int, int]:
    """(hosts, placements on them) of a provider."""
    row = session.execute(
        select(func.count(), func.coalesce(func.sum(Host.claims), 0)).where(
            Host.provider_id == provider_id
        )
    ).one()
    return int(row[0]), int(row[1])


def remove_provider_hosts(session: Session, provider_id: str) -> None:
    session.execute(delete(Host).where(Host.provider_id == provider_id))
    touch(session)
