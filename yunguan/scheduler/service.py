"""Placement: choose a host, hold capacity on it (a claim), give it back; plus the policies,
affinity groups, dry runs, evacuation plans and rebalancing reports built on the same
decision. The only code that writes the scheduler's tables.

Each process keeps one :class:`HostTable` per database. It is rebuilt when the inventory
generation moves (topology, host state, zone access, policies) and its usage columns are
re-read every ``RESYNC_SECONDS`` (other processes' claims) or before saying "no valid host".
"""

import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yunguan.core import audit
from yunguan.core.clock import now
from yunguan.core.db import Database
from yunguan.core.errors import Conflict
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams, paginate, where_equal
from yunguan.identity import service as identity
from yunguan.identity.scope import (
    Principal,
    get_permitted,
    get_visible,
    get_writable,
    list_permitted,
    require,
    restrict,
)
from yunguan.inventory import service as inventory
from yunguan.inventory.models import HYPERVISORS
from yunguan.scheduler.hosts import Decision, Demand, HostTable
from yunguan.scheduler.models import Claim, PlacementGroup, PlacementPolicy
from yunguan.scheduler.schemas import (
    ClaimCreate,
    GroupCreate,
    PlacementRequest,
    PolicyCreate,
    PolicyUpdate,
)

READ, WRITE = inventory.READ, inventory.WRITE
RESYNC_SECONDS = 5.0
MAX_ATTEMPTS = 8

_tables: dict[str, HostTable] = {}
_tables_lock = threading.Lock()


class NoValidHost(Conflict):
    code, title = "no-valid-host", "No valid host"


# --- the host table ------------------------------------------------------------------------


def load_table(session: Session) -> HostTable:
    policies = session.execute(
        select(
            PlacementPolicy.id,
            PlacementPolicy.strategy,
            PlacementPolicy.zone_id,
            PlacementPolicy.tenant_id,
        )
    ).all()
    return HostTable(
        inventory.generation(session),
        inventory.placement_hosts(session),
        inventory.placement_clusters(session),
        inventory.placement_pools(session),
        inventory.placement_zones(session),
        [tuple(p) for p in policies],
    )


def host_table(session: Session) -> HostTable:
    """This process's current table for the session's database."""
    key = str(session.get_bind().url)
    current = inventory.generation(session)
    with _tables_lock:
        table = _tables.get(key)
        if table is None or table.generation != current:
            table = _tables[key] = load_table(session)
        elif time.monotonic() - table.resynced_at > RESYNC_SECONDS:
            _resync(session, table)
    return table


def _resync(session: Session, table: HostTable, host_ids: list[str] | None = None) -> None:
    """Re-read usage from the database: of some hosts, or of all; pools always (few)."""
    rows = inventory.placement_usage(session, host_ids)
    pools = inventory.placement_pools(session)
    with table.lock:
        table.set_usage(rows)
        for pool in pools:
            table.set_pool(pool.id, pool.allocated_gb)
        if host_ids is None:
            table.resynced_at = time.monotonic()


# --- deciding and claiming -----------------------------------------------------------------


def _group_hosts(session: Session, group_id: str) -> frozenset[str]:
    rows = session.scalars(select(Claim.host_id).where(Claim.group_id == group_id).distinct())

    return frozenset(rows)


def _demand(
    session: Session, principal: Principal, data: PlacementRequest, lock_group: bool = False
) -> Demand:
    if lock_group:  # a claim: the tenant must be active and stay so until we commit
        tenant = identity.tenant_for_new_resource(session, principal, data.tenant_id)
    else:
        tenant = identity.get_tenant(session, principal, data.tenant_id)
    policy, hosts = None, frozenset[str]()
    if data.group_id is not None:
        group = get_visible(session, PlacementGroup, data.group_id, principal, "resource:read")
        if group.tenant_id != tenant.id:
            raise Conflict("the placement group belongs to another tenant", code="group-tenant")
        if lock_group:  # claims into one group take turns, so anti-affinity holds
            session.execute(
                update(PlacementGroup)
                .where(PlacementGroup.id == group.id)
                .values(generation=PlacementGroup.generation + 1)
            )
        policy, hosts = group.policy, _group_hosts(session, group.id)
    bm = data.baremetal
    return Demand(
        tenant_path=tenant.path,
        vcpus=data.vcpus,
        memory_mb=data.memory_mb,
        disk_gb=data.disk_gb,
        gpus=data.gpus,
        traits=tuple(data.traits),
        zone_id=data.zone_id,
        hypervisor=data.hypervisor,
        baremetal=(bm.cpu_count, bm.cpu_mhz, bm.disk_count, bm.disk_size_gb, bm.memory_mb)
        if bm
        else None,
        group_policy=policy,
        group_hosts=hosts,
    )


def _decide(
    session: Session, table: HostTable, demand: Demand, exclude=(), reserve: bool = False
) -> Decision:
    """Decide; before answering "no valid host", look again at what other processes freed.
    ``reserve`` books the demand on the chosen host in the table at once, so this process's
    other schedulers look elsewhere instead of racing for the same row."""
    for attempt in (1, 2):
        with table.lock:
            decision = table.decide(demand, exclude)
            if decision.host is not None and reserve:
                table.add(decision.host, demand)
        stale = time.monotonic() - table.resynced_at > 0.5
        if decision.host is not None or attempt == 2 or not stale:
            return decision
        _resync(session, table)
    return decision


def _answer(session: Session, decision: Decision) -> dict[str, Any]:
    names = inventory.host_names(session, [decision.host_id] if decision.host_id else [])
    return {
        "fits": decision.host_id is not None,
        "host_id": decision.host_id,
        "host_name": names.get(decision.host_id or ""),
        "strategy": decision.strategy,
        "policy_id": decision.policy_id,
        "reason": None if decision.host_id else decision.explain(),
        "filters": [asdict(s) for s in decision.steps],
    }


def dry_run(session: Session, principal: Principal, data: PlacementRequest) -> dict[str, Any]:
    """Where a request would go now, claiming nothing."""
    require(principal, READ)
    demand = _demand(session, principal, data)
    return _answer(session, _decide(session, host_table(session), demand))


def _no_valid_host(session: Session, decision: Decision) -> NoValidHost:
    answer = _answer(session, decision)
    return NoValidHost(answer["reason"], filters=answer["filters"])


def claim(
    session: Session, principal: Principal, data: ClaimCreate, exclude: Sequence[str] = ()
) -> Claim:
    """Place a request and hold the capacity. A consumer that already holds a claim gets
    that claim back (so a retried provisioning step never claims twice), if it is the same
    request. ``exclude``: hosts it may not go to (the one a migration leaves)."""
    require(principal, WRITE)
    if data.consumer_id is not None:
        held = session.scalars(select(Claim).where(Claim.consumer_id == data.consumer_id)).first()
        if held is not None:
            return _same_claim(held, data)
    demand = _demand(session, principal, data, lock_group=True)
    table = host_table(session)
    tried: set[str] = set(exclude)
    for attempt in range(MAX_ATTEMPTS):
        decision = _decide(session, table, demand, tried, reserve=True)
        if decision.host is None:
            raise _no_valid_host(session, decision)
        taken = _take(session, table, decision.host, demand)
        if taken is None:  # another process got there first: our picture is behind
            with table.lock:
                table.add(decision.host, demand, sign=-1)  # our reservation
            tried.add(decision.host_id)  # type: ignore[arg-type]
            _resync(session, table, None if attempt >= 3 else [decision.host_id])  # type: ignore[list-item]
            continue
        try:
            return _record_claim(session, data, demand, decision.host_id, *taken)  # type: ignore[arg-type]
        except Conflict:
            table.resynced_at = 0.0  # the caller rolls back what _take wrote: re-read soon
            raise
    raise Conflict("other placements kept taking the chosen hosts; try again", code="contention")


def _same_claim(held: Claim, data: ClaimCreate) -> Claim:
    if data.baremetal is not None:
        same = held.baremetal and held.tenant_id == data.tenant_id
    else:
        asked = (data.tenant_id, data.vcpus, data.memory_mb, data.disk_gb, data.gpus)
        same = asked == (held.tenant_id, held.vcpus, held.memory_mb, held.disk_gb, held.gpus)
    if not same:
        raise Conflict(
            f"{data.consumer_id} already holds a different claim ({held.id})",
            code="consumer-mismatch",
        )
    return held


_INSERT_CLAIM = insert(Claim.__table__)
_CLAIM_COLUMNS = tuple(c.key for c in Claim.__table__.columns)


def _record_claim(
    session: Session,
    data: ClaimCreate,
    demand: Demand,
    host_id: str,
    pool_id: str | None,
    amounts: tuple[int, int, int, int],
) -> Claim:
    row = Claim(  # written in Core below; the object only carries the answer
        id=new_id("clm"),
        host_id=host_id,
        pool_id=pool_id,
        tenant_id=data.tenant_id,
        group_id=data.group_id,
        consumer_id=data.consumer_id,
        vcpus=amounts[0],
        memory_mb=amounts[1],
        disk_gb=amounts[2],
        gpus=amounts[3],
        baremetal=demand.baremetal is not None,
        traits=list(demand.traits),
        created_at=now(),
    )
    try:
        session.execute(_INSERT_CLAIM, {c: getattr(row, c) for c in _CLAIM_COLUMNS})
    except IntegrityError:  # the transaction is lost: the caller's rollback undoes _take
        if data.consumer_id:
            raise Conflict(f"{data.consumer_id} already holds a claim", code="duplicate-consumer")
        raise Conflict("the tenant or placement group went away; try again", code="conflict")
    audit.note(target_type="claim", target_id=row.id, tenant_id=data.tenant_id)
    return row


def _take(
    session: Session, table: HostTable, i: int, demand: Demand
) -> tuple[str | None, tuple[int, int, int, int]] | None:
    """Hold the demand on host ``i`` (and its pool): the pool id and the amounts held."""
    host_id = table.ids[i]
    pool_id = table.pool_ids[table.pool[i]] if table.pooled[i] and demand.disk_gb else None
    local_disk = 0 if pool_id else demand.disk_gb
    amounts = (demand.vcpus, demand.memory_mb, local_disk, demand.gpus)
    whole = demand.baremetal is not None
    row = inventory.take(session, host_id, amounts, whole)
    if row is None:
        return None
    if pool_id is not None:
        allocated = inventory.take_pool(session, pool_id, demand.disk_gb)
        if allocated is None:
            inventory.give_back(session, host_id, amounts)
            return None
        table.set_pool(pool_id, allocated)
        amounts = (demand.vcpus, demand.memory_mb, demand.disk_gb, demand.gpus)
    if whole:
        amounts = (row.used_vcpus, row.used_memory_mb, row.used_disk_gb, row.used_gpus)
    with table.lock:
        table.set_usage([row])
    return pool_id, amounts


def release(session: Session, claim_id: str) -> bool:
    """Give a claim's capacity back. Idempotent: an unknown claim is already released."""
    claim_row = session.scalars(
        delete(Claim).where(Claim.id == claim_id).returning(Claim)
    ).one_or_none()
    if claim_row is None:
        return False
    local_disk = 0 if claim_row.pool_id else claim_row.disk_gb
    amounts = (claim_row.vcpus, claim_row.memory_mb, local_disk, claim_row.gpus)
    row = inventory.give_back(session, claim_row.host_id, amounts)
    table = _tables.get(str(session.get_bind().url))
    if claim_row.pool_id:
        allocated = inventory.give_back_pool(session, claim_row.pool_id, claim_row.disk_gb)
        if table:
            table.set_pool(claim_row.pool_id, allocated)
    if table and row is not None:
        with table.lock:
            table.set_usage([row])
    return True


def resize(session: Session, claim_id: str, vcpus: int, memory_mb: int, disk_gb: int) -> Claim:
    """Change a claim's size on its host (a resized instance stays where it is): the
    difference is taken or given back in one conditional UPDATE; 409 when it does not fit."""
    held = session.scalars(
        select(Claim).where(Claim.id == claim_id).with_for_update()
    ).one_or_none()
    if held is None or held.baremetal:
        raise Conflict(f"claim {claim_id} cannot be resized", code="invalid-state")
    disk = disk_gb - held.disk_gb
    delta = (vcpus - held.vcpus, memory_mb - held.memory_mb, 0 if held.pool_id else disk, 0)
    row = inventory.take(session, held.host_id, delta, whole=False, count=0)
    if row is None:
        raise NoValidHost(f"host {held.host_id} has no room for the new size")
    if held.pool_id and disk and inventory.take_pool(session, held.pool_id, disk) is None:
        raise NoValidHost(f"storage pool {held.pool_id} has no room for the new disk")
    held.vcpus, held.memory_mb, held.disk_gb = vcpus, memory_mb, disk_gb
    table = _tables.get(str(session.get_bind().url))
    if table is not None:
        with table.lock:
            table.set_usage([row])
    return held


def release_by_request(session: Session, principal: Principal, claim_id: str) -> None:
    """Release through the API; a claim already gone is released (idempotent)."""
    require(principal, WRITE)
    held = session.get(Claim, claim_id)
    audit.note(target_type="claim", target_id=claim_id, tenant_id=held and held.tenant_id)
    release(session, claim_id)


def get_claim(session: Session, principal: Principal, claim_id: str) -> Claim:
    return get_permitted(session, Claim, claim_id, principal, READ, "claim")


def list_claims(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_permitted(session, principal, Claim, READ, page, **filters)


def count_tenant_claims(session: Session, tenant_id: str) -> int:
    return session.scalar(select(func.count()).where(Claim.tenant_id == tenant_id)) or 0


# --- policies ------------------------------------------------------------------------------


def create_policy(session: Session, principal: Principal, data: PolicyCreate) -> PlacementPolicy:
    require(principal, WRITE)
    if data.zone_id is not None:
        inventory.get_zone(session, principal, data.zone_id)
    if data.tenant_id is not None:
        identity.get_tenant(session, principal, data.tenant_id)
    policy = PlacementPolicy(id=new_id("pp"), **data.model_dump())
    return _save_policy(session, policy)


def _save_policy(session: Session, policy: PlacementPolicy) -> PlacementPolicy:
    session.add(policy)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(
            "a policy with this name, or for this zone or tenant, already exists",
            code="duplicate",
        )
    audit.note(target_type="placement-policy", target_id=policy.id)
    inventory.touch(session)
    return policy


def get_policy(session: Session, principal: Principal, policy_id: str) -> PlacementPolicy:
    return get_permitted(session, PlacementPolicy, policy_id, principal, READ, "placement policy")


def list_policies(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_permitted(session, principal, PlacementPolicy, READ, page, **filters)


def update_policy(
    session: Session, principal: Principal, policy_id: str, data: PolicyUpdate
) -> PlacementPolicy:
    policy = get_policy(session, principal, policy_id)
    require(principal, WRITE)
    for key, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(policy, key, value)
    return _save_policy(session, policy)


def delete_policy(session: Session, principal: Principal, policy_id: str) -> None:
    policy = get_policy(session, principal, policy_id)
    require(principal, WRITE)
    audit.note(target_type="placement-policy", target_id=policy.id)
    session.delete(policy)
    inventory.touch(session)


# --- affinity groups -----------------------------------------------------------------------


def create_group(session: Session, principal: Principal, data: GroupCreate) -> PlacementGroup:
    tenant = identity.tenant_for_new_resource(session, principal, data.tenant_id)
    require(principal, "resource:write")
    group = PlacementGroup(id=new_id("pg"), **data.model_dump())
    session.add(group)
    session.flush()
    audit.note(target_type="placement-group", target_id=group.id, tenant_id=tenant.id)
    return group


def get_group(session: Session, principal: Principal, group_id: str) -> PlacementGroup:
    return get_visible(session, PlacementGroup, group_id, principal, "resource:read")


def group_hosts(session: Session, group_id: str) -> list[str]:
    return sorted(_group_hosts(session, group_id))


def list_groups(session: Session, principal: Principal, page: PageParams, **filters: Any):
    stmt = restrict(select(PlacementGroup), PlacementGroup, principal, "resource:read")
    return paginate(session, where_equal(stmt, PlacementGroup, **filters), PlacementGroup.id, page)


def delete_group(session: Session, principal: Principal, group_id: str) -> None:
    group = get_writable(session, PlacementGroup, group_id, principal, "resource")
    audit.note(target_type="placement-group", target_id=group.id, tenant_id=group.tenant_id)
    # claims into the group lock its row too: count members only once they are settled
    session.execute(
        select(PlacementGroup.id).where(PlacementGroup.id == group.id).with_for_update()
    )
    if session.scalar(select(func.count()).where(Claim.group_id == group.id)):
        raise Conflict(f"placement group {group.id} still has members", code="in-use")
    session.delete(group)


# --- what-if planning ----------------------------------------------------------------------


def _moves(
    session: Session, table: HostTable, host_id: str, ceiling: float | None = None
) -> tuple[list[dict[str, Any]], HostTable]:
    """Plan where the claims on ``host_id`` would go (largest first) on a scratch table.
    With a ``ceiling``, stop once the host is under it and keep destinations under it."""
    if host_id not in table.index:  # created after this process loaded its table
        raise Conflict("the inventory changed meanwhile; try again", code="concurrent-update")
    scratch = table.scratch()
    source = table.index[host_id]
    claims = session.scalars(
        select(Claim).where(Claim.host_id == host_id).order_by(Claim.memory_mb.desc(), Claim.id)
    ).all()
    paths = identity.tenant_paths(session, [c.tenant_id for c in claims])
    groups = {c.group_id: set(_group_hosts(session, c.group_id)) for c in claims if c.group_id}
    policies = dict(
        session.execute(
            select(PlacementGroup.id, PlacementGroup.policy).where(PlacementGroup.id.in_(groups))
        ).all()
    )
    moves = []
    for c in claims:
        if ceiling is not None and scratch.utilisation()[source] <= ceiling:
            break
        move = {"claim_id": c.id, "consumer_id": c.consumer_id, "from_host_id": host_id}
        if c.baremetal:
            moves.append({**move, "to_host_id": None, "reason": "bare-metal nodes do not move"})
            continue
        members = groups.get(c.group_id, set()) - {host_id}
        demand = Demand(  # what the instance asked for, on a host of the same kind and zone
            tenant_path=paths[c.tenant_id],
            vcpus=c.vcpus,
            memory_mb=c.memory_mb,
            disk_gb=c.disk_gb,
            gpus=c.gpus,
            traits=tuple(c.traits),
            zone_id=table.zone_ids[table.zone[source]],
            hypervisor=HYPERVISORS[table.hypervisor[source]],
            group_policy=policies.get(c.group_id),
            group_hosts=frozenset(members),
        )
        scratch.add(source, demand, sign=-1)  # off the source first: a shared pool nets out
        decision = scratch.decide(demand, exclude=[host_id])
        target = decision.host
        if target is not None:
            scratch.add(target, demand)
            if ceiling is not None and scratch.utilisation()[target] > ceiling:
                scratch.add(target, demand, sign=-1)
                target = None
        if target is None:
            scratch.add(source, demand)
            reason = (
                decision.explain()
                if decision.host is None
                else "every host would pass the threshold"
            )
            moves.append({**move, "to_host_id": None, "reason": reason})
            continue
        if c.group_id:
            groups[c.group_id] = members | {table.ids[target]}
        moves.append({**move, "to_host_id": table.ids[target], "reason": None})
    return moves, scratch


def evacuation_plan(session: Session, principal: Principal, host_id: str) -> dict[str, Any]:
    """Where each placement on a host would go if the host had to be emptied now."""
    inventory.get_host(session, principal, host_id)
    moves, _ = _moves(session, host_table(session), host_id)
    return {
        "host_id": host_id,
        "moves": moves,
        "complete": all(m["to_host_id"] for m in moves),
    }


def rebalance_report(
    session: Session, principal: Principal, threshold: float, zone_id: str | None = None
) -> dict[str, Any]:
    """Hosts above ``threshold`` utilisation and the moves that would bring them under it."""
    require(principal, READ)
    table = host_table(session)
    load = table.utilisation()
    hot = [i for i in map(int, (-load).argsort(kind="stable")) if load[i] > threshold]
    if zone_id is not None:
        hot = [i for i in hot if table.zone_ids[table.zone[i]] == zone_id]
    overloaded = [{"host_id": table.ids[i], "utilisation": round(float(load[i]), 4)} for i in hot]
    moves: list[dict[str, Any]] = []
    for i in hot:
        plan, scratch = _moves(session, table, table.ids[i], ceiling=threshold)
        good = [m for m in plan if m["to_host_id"]]
        moves += good
        table = scratch if good else table
    return {"threshold": threshold, "overloaded": overloaded, "moves": moves}


# --- storage pools -------------------------------------------------------------------------


def refresh_pool(session: Session, pool_id: str, measured: tuple[int, int] | None):
    """Store a pool's measurement; its allocation is recounted from the claims on it."""

    def allocated() -> int:
        return session.scalar(
            select(func.coalesce(func.sum(Claim.disk_gb), 0)).where(Claim.pool_id == pool_id)
        )

    return inventory.refresh_pool(session, pool_id, measured, allocated)


def refresh_pools(db: Database) -> int:
    """Every pool, each measured outside any transaction and stored in its own."""
    with db.session(write=False) as session:
        sources = inventory.pool_sources(session)
    for pool_id, source in sources.items():
        measured = inventory.measure(source)
        with db.session() as session:
            refresh_pool(session, pool_id, measured)
    return len(sources)


def refresh_pool_by_request(session: Session, principal: Principal, pool_id: str):
    pool = inventory.get_pool(session, principal, pool_id)
    require(principal, WRITE)
    audit.note(target_type="storage-pool", target_id=pool_id)
    return refresh_pool(session, pool_id, inventory.measure(pool.source))
