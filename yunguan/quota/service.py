"""Hierarchical quotas: configuration, reserve → commit or release, dry runs, reconcile.
The only code that writes the quota tables.

Other domains call ``reserve`` (in their own transaction), then ``commit`` once the resource
exists, or ``release`` when it fails or goes away. Each locks the quota rows of the
tenant's path, root first (PostgreSQL ``FOR UPDATE``; SQLite writers are serialised).
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from yunguan.core import audit
from yunguan.core.clock import now
from yunguan.core.config import Settings
from yunguan.core.db import insert_missing
from yunguan.core.errors import BadRequest, Conflict, Forbidden, NotFound
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams, paginate, where_equal
from yunguan.identity import service as identity
from yunguan.identity.scope import Principal, require, restrict
from yunguan.quota import engine, reclaim
from yunguan.quota.models import (
    RECLAIMABLE,
    RESOURCE_CLASSES,
    QuotaNode,
    QuotaReservation,
    ReclaimNotice,
)
from yunguan.quota.schemas import QuotaChange, QuotaNodeOut

DEFAULT_TTL = timedelta(minutes=10)


class QuotaExceeded(Conflict):
    code, title = "quota-exceeded", "Quota exceeded"


# --- rows along a path ---------------------------------------------------------------------


def _path(session: Session, tenant_id: str) -> list[str]:
    path = identity.tenant_paths(session, [tenant_id]).get(tenant_id)
    if path is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return [t for t in path.split("/") if t]


def _ensure_rows(session: Session, path: list[str], resources: Iterable[str]) -> None:
    """Create missing rows of the path: a new row has no children rows yet, so its slack is
    its guarantee's default (0, or unlimited at the root)."""
    rows = [
        {
            "tenant_id": tenant_id,
            "resource": resource,
            "parent_id": path[depth - 1] if depth else None,
            "depth": depth,
            "slack": engine.INF if depth == 0 else 0,
            "updated_at": now(),
        }
        for resource in resources
        for depth, tenant_id in enumerate(path)
    ]
    insert_missing(session, QuotaNode, rows)


def _lock_path(
    session: Session, tenant_id: str, resources: Iterable[str], *, lock: bool = True
) -> dict[str, list[QuotaNode]]:
    """The path's rows per resource, root first, locked in one global order (or only read,
    for a look that decides nothing)."""
    path, resources = _path(session, tenant_id), sorted(set(resources))
    _ensure_rows(session, path, resources)
    stmt = (
        select(QuotaNode)
        .where(QuotaNode.tenant_id.in_(path), QuotaNode.resource.in_(resources))
        .order_by(QuotaNode.resource, QuotaNode.depth)
        .execution_options(populate_existing=True)
    )
    rows = session.scalars(stmt.with_for_update() if lock else stmt).all()
    by_resource: dict[str, list[QuotaNode]] = defaultdict(list)
    for row in rows:
        by_resource[row.resource].append(row)
    return by_resource


def _apply(path: list[QuotaNode], after: list[tuple[int, int]]) -> None:
    for node, (slack, usage) in zip(path, after, strict=True):
        node.slack, node.subtree_usage = slack, usage
        if node.over_quota and usage <= min(engine.guarantee(node), engine.limit(node.cap)):
            node.over_quota = False


def validated(amounts: dict[str, int]) -> dict[str, int]:
    """Known resource classes only; zero amounts dropped."""
    unknown = set(amounts) - set(RESOURCE_CLASSES)
    if unknown:
        raise BadRequest(f"unknown resource classes: {', '.join(sorted(unknown))}")
    return {r: q for r, q in amounts.items() if q}


# --- reserve, commit, release --------------------------------------------------------------


def check(
    session: Session, tenant_id: str, amounts: dict[str, int], *, lock: bool = True
) -> list[dict[str, Any]]:
    """What admitting ``amounts`` at the tenant would do, per resource. It locks the path
    unless ``lock`` is false: then it is a look at the last committed figures, for an early
    answer that the real reservation confirms later."""
    wanted = validated(amounts)
    paths = _lock_path(session, tenant_id, wanted, lock=lock)
    return [
        {
            "resource": resource,
            "amount": amount,
            "admitted": refusal is None,
            "refused_at": refusal.tenant_id if refusal else None,
            "reason": refusal.reason if refusal else None,
            "slack_after": {
                n.tenant_id: s for n, (s, _) in zip(paths[resource], after, strict=True)
            },
        }
        for resource, amount, after, refusal in _outcomes(paths, wanted)
    ]


def preflight(session: Session, tenant_id: str, amounts: dict[str, int]) -> None:
    """A 409 now when the last committed figures already refuse ``amounts`` (the real
    reservation, later, confirms or refuses for good)."""
    for outcome in check(session, tenant_id, amounts, lock=False):
        if not outcome["admitted"]:
            raise QuotaExceeded(
                f"{outcome['resource']} +{outcome['amount']}: tenant {outcome['refused_at']} "
                f"{outcome['reason']}",
                resource=outcome["resource"],
                tenant_id=outcome["refused_at"],
            )


def _outcomes(paths: dict[str, list[QuotaNode]], wanted: dict[str, int]) -> list[tuple]:
    """Per resource: (resource, amount, each path node's (slack, usage) after, refusal)."""
    return [(r, q, *engine.admit(paths[r], q)) for r, q in sorted(wanted.items())]


def reserve(
    session: Session,
    tenant_id: str,
    amounts: dict[str, int],
    *,
    consumer_id: str | None = None,
    ttl: timedelta = DEFAULT_TTL,
    priority: int = 0,
) -> QuotaReservation:
    """Hold quota for a resource about to be created; 409 ``quota-exceeded`` if it does not
    fit. Commit it once the resource exists; it expires after ``ttl`` otherwise."""
    wanted = validated(amounts)
    admit(session, tenant_id, wanted)
    reservation = QuotaReservation(
        id=new_id("qr"),
        tenant_id=tenant_id,
        consumer_id=consumer_id,
        amounts=wanted,
        priority=priority,
        expires_at=now() + ttl,
    )
    session.add(reservation)
    session.flush()
    return reservation


def admit(session: Session, tenant_id: str, wanted: dict[str, int]) -> None:
    """Count ``wanted`` as reserved at the tenant if every resource fits; else change
    nothing and raise ``QuotaExceeded`` naming the first tenant that refused."""
    paths = _lock_path(session, tenant_id, wanted)
    outcomes = _outcomes(paths, wanted)
    for resource, amount, _, refusal in outcomes:
        if refusal is not None:
            raise QuotaExceeded(
                f"{resource} +{amount}: tenant {refusal.tenant_id} {refusal.reason}",
                resource=resource,
                tenant_id=refusal.tenant_id,
            )
    for resource, amount, after, _ in outcomes:
        _apply(paths[resource], after)
        paths[resource][-1].reserved += amount


def locked_reservation(session: Session, reservation_id: str) -> QuotaReservation | None:
    return session.scalars(
        select(QuotaReservation)
        .where(QuotaReservation.id == reservation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def commit(session: Session, reservation_id: str) -> QuotaReservation:
    """The resource exists: its quota is used now, and no longer expires. Idempotent."""
    reservation = locked_reservation(session, reservation_id)
    if reservation is None:
        raise NotFound(f"reservation {reservation_id} not found (expired or released)")
    if reservation.state == "pending":
        raise Conflict("the reservation still waits for reclaimed capacity", code="pending")
    if reservation.state == "reserved":
        paths = _lock_path(session, reservation.tenant_id, reservation.amounts)
        for resource, amount in reservation.amounts.items():
            paths[resource][-1].reserved -= amount
            paths[resource][-1].used += amount
        reservation.state, reservation.committed_at, reservation.expires_at = (
            "committed",
            now(),
            None,
        )
    return reservation


def charge(
    session: Session, tenant_id: str, amounts: dict[str, int], consumer_id: str
) -> QuotaReservation:
    """Reserve and commit at once, for a resource made within the caller's transaction."""
    return commit(session, reserve(session, tenant_id, amounts, consumer_id=consumer_id).id)


def refund(session: Session, consumer_id: str) -> bool:
    """Give back what ``consumer_id`` holds: its resource is gone. Idempotent."""
    held = select(QuotaReservation.id).where(QuotaReservation.consumer_id == consumer_id)
    reservation_id = session.scalar(held)
    return reservation_id is not None and release(session, reservation_id)


def release(session: Session, reservation_id: str) -> bool:
    """Give the quota back (rollback of a reservation, or deletion of its resource).
    Idempotent: an unknown reservation is already released."""
    reservation = locked_reservation(session, reservation_id)
    if reservation is None:
        return False
    if reservation.state == "pending":  # holds nothing yet
        session.delete(reservation)
        return True
    paths = _lock_path(session, reservation.tenant_id, reservation.amounts)
    for resource, amount in reservation.amounts.items():
        after, _ = engine.admit(paths[resource], -amount)
        _apply(paths[resource], after)
        leaf = paths[resource][-1]
        if reservation.state == "reserved":
            leaf.reserved -= amount
        else:
            leaf.used -= amount
    session.delete(reservation)
    return True


def expire(session: Session, limit: int = 500) -> int:
    """Release reservations never committed before their expiry."""
    stale = session.scalars(
        select(QuotaReservation.id)
        .where(QuotaReservation.state == "reserved", QuotaReservation.expires_at < now())
        .order_by(QuotaReservation.expires_at)
        .limit(limit)
    ).all()
    for reservation_id in stale:
        release(session, reservation_id)
    return len(stale)


# --- configuration -------------------------------------------------------------------------


def _children(session: Session, tenant_id: str, resource: str) -> list[QuotaNode]:
    return list(
        session.scalars(
            select(QuotaNode).where(
                QuotaNode.parent_id == tenant_id, QuotaNode.resource == resource
            )
        )
    )


def _recompute_up(session: Session, path: list[QuotaNode]) -> None:
    """Slack of the last node of the path, then of each ancestor, from their children."""
    for node in reversed(path):
        children = _children(session, node.tenant_id, node.resource)
        node.allocated = sum(engine.guarantee(c) for c in children)
        node.slack = engine.slack(node, node.used + node.reserved, children)
        session.flush()


def _check_configuration(
    session: Session, path: list[QuotaNode], node: QuotaNode, changes: dict[str, Any]
) -> None:
    children = _children(session, node.tenant_id, node.resource)
    if node.parent_id is None and changes.get("borrow_limit"):
        raise BadRequest("the root cannot borrow", code="invalid-field")
    if node.parent_id is not None and "guarantee" in changes and changes["guarantee"] is None:
        raise BadRequest("only the root's guarantee may be unlimited", code="invalid-field")
    g = changes.get("guarantee", node.guarantee)
    share = changes.get("own_share", node.own_share)
    cap = changes.get("cap", node.cap)
    if g is not None:
        needed = sum(engine.guarantee(c) for c in children) + share
        if needed > g:
            raise Conflict(
                f"the guarantee {g} is below what its children and own share need ({needed})",
                code="guarantee-too-small",
            )
    if node.parent_id is not None:
        parent = path[-2]
        siblings = _children(session, parent.tenant_id, node.resource)
        given = sum(engine.guarantee(s) for s in siblings if s.tenant_id != node.tenant_id)
        if given + (g or 0) + parent.own_share > engine.guarantee(parent):
            raise Conflict(
                f"the guarantees under {parent.tenant_id} would exceed its "
                f"{engine.guarantee(parent)}",
                code="exceeds-parent",
            )
        if engine.limit(cap) > engine.limit(parent.cap):
            raise Conflict("a cap cannot be above its parent's cap", code="cap-above-parent")
    if any(engine.limit(c.cap) > engine.limit(cap) for c in children):
        raise Conflict("a child's cap would be above this cap", code="cap-above-parent")


def configure(
    session: Session, principal: Principal, tenant_id: str, data: QuotaChange
) -> QuotaNode:
    """Set a tenant's limits for one resource class. A limit below current usage needs
    ``force`` and makes the tenant over quota: it admits nothing new, and nothing is evicted."""
    tenant = identity.get_tenant(session, principal, tenant_id)
    if tenant.id == principal.tenant_id and not principal.is_platform_admin:
        raise Forbidden("a tenant's own administrators cannot change its quota")
    require(principal, "tenant:write")
    audit.note(target_type="quota", target_id=tenant.id, tenant_id=tenant.id)
    path = _lock_path(session, tenant.id, [data.resource])[data.resource]
    node = path[-1]
    changes = data.model_dump(exclude_unset=True, exclude={"resource", "force"})
    _check_configuration(session, path, node, changes)
    lowered = [
        name
        for name in ("guarantee", "cap")
        if name in changes and engine.limit(changes[name]) < node.subtree_usage
    ]
    for name, value in changes.items():
        setattr(node, name, value)
    _recompute_up(session, path)
    # lower lend or borrow limits (or a lower guarantee) can make today's borrowing too much
    short = [n.tenant_id for n in path if n.slack < engine.floor_of(n)]
    if (lowered or short) and not data.force:
        what = " and ".join(lowered) or "these limits"
        raise Conflict(  # the caller's rollback undoes the change
            f"{what} below current usage (tenant {(short or [node.tenant_id])[0]}); "
            "send force to accept and mark the tenant over quota",
            code="below-usage",
        )
    node.over_quota = node.over_quota or bool(lowered or short)
    return node


# --- reading -------------------------------------------------------------------------------


def list_nodes(
    session: Session, principal: Principal, resource: str, page: PageParams, **filters: Any
) -> tuple[list[QuotaNode], str | None]:
    """The quota tree of one resource class, as far as the principal sees tenants."""
    stmt = restrict(select(QuotaNode), QuotaNode, principal, "resource:read")
    stmt = where_equal(stmt.where(QuotaNode.resource == resource), QuotaNode, **filters)
    return paginate(session, stmt, QuotaNode.tenant_id, page)


def describe(session: Session, nodes: Sequence[QuotaNode]) -> list[QuotaNodeOut]:
    """Nodes as shown: with how much of each others use (lent) and what its own requests
    wait for (pending)."""
    lent = _lent(session, nodes)
    pending: dict[tuple[str, str], int] = defaultdict(int)
    waiting = select(QuotaReservation).where(
        QuotaReservation.state == "pending",
        QuotaReservation.tenant_id.in_({n.tenant_id for n in nodes}),
    )
    for claim in session.scalars(waiting):
        for resource, amount in claim.amounts.items():
            pending[(claim.tenant_id, resource)] += amount
    return [
        QuotaNodeOut.model_validate(n).model_copy(
            update={"lent": lent.get(key, 0), "pending": pending[key]}
        )
        for n in nodes
        for key in [(n.tenant_id, n.resource)]
    ]


def _lent(session: Session, nodes: Sequence[QuotaNode]) -> dict[tuple[str, str], int]:
    """``engine.lent`` level by level from the root down, over the nodes' ancestors only."""
    paths = identity.tenant_paths(session, {n.tenant_id for n in nodes})
    parents = {t for path in paths.values() for t in path.strip("/").split("/")[:-1]}
    rows = session.scalars(
        select(QuotaNode)
        .where(
            QuotaNode.resource.in_({n.resource for n in nodes}),
            or_(QuotaNode.tenant_id.in_(parents), QuotaNode.parent_id.in_(parents)),
        )
        .order_by(QuotaNode.depth)
    ).all()
    children: dict[tuple[str, str], list[QuotaNode]] = defaultdict(list)
    for row in rows:
        children[(row.parent_id, row.resource)].append(row)
    lent: dict[tuple[str, str], int] = {}
    for row in rows:  # a parent before its children: their share includes what it lends
        key = (row.tenant_id, row.resource)
        if row.tenant_id in parents:
            shares = engine.lent(row, row.used + row.reserved, lent.get(key, 0), children[key])
            lent.update({(tenant, row.resource): amount for tenant, amount in shares.items()})
    return lent


def get_nodes(session: Session, principal: Principal, tenant_id: str) -> list[QuotaNode]:

    tenant = identity.get_tenant(session, principal, tenant_id)
    require(principal, "resource:read")
    return list(
        session.scalars(
            select(QuotaNode).where(QuotaNode.tenant_id == tenant.id).order_by(QuotaNode.resource)
        )
    )


# --- reconcile -----------------------------------------------------------------------------


def reconcile(session: Session) -> int:
    """Expire stale reservations, recount usage from reservations, recompute every cache
    bottom-up; the number of rows that were wrong."""
    expire(session)
    truth: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    counted = select(QuotaReservation).where(QuotaReservation.state != "pending")
    for reservation in session.scalars(counted):
        for resource, amount in reservation.amounts.items():
            truth[(reservation.tenant_id, resource)][reservation.state == "reserved"] += amount
    nodes = session.scalars(
        select(QuotaNode).order_by(QuotaNode.depth.desc()).with_for_update()
    ).all()
    children: dict[tuple[str, str], list[QuotaNode]] = defaultdict(list)
    wrong = 0
    for node in nodes:  # deepest first: children are settled before their parent
        used, reserved = truth.get((node.tenant_id, node.resource), (0, 0))
        below = children[(node.tenant_id, node.resource)]
        usage = used + reserved + sum(c.subtree_usage for c in below)
        right = {
            "used": used,
            "reserved": reserved,
            "subtree_usage": usage,
            "slack": engine.slack(node, used + reserved, below),
            "allocated": sum(engine.guarantee(c) for c in below),
        }
        if any(getattr(node, k) != v for k, v in right.items()):
            wrong += 1
            for key, value in right.items():
                setattr(node, key, value)
        if node.parent_id is not None:
            children[(node.parent_id, node.resource)].append(node)
    return wrong


def count_tenant_reservations(session: Session, tenant_id: str) -> int:
    return session.scalar(select(func.count()).where(QuotaReservation.tenant_id == tenant_id)) or 0


# --- reclaim: wait for borrowed capacity to come back ----------------------------------------
# A pending reservation holds nothing; when every victim's notice is due, one transaction
# stops the victims (releases their quota) and admits it, so nobody else takes what was freed.


def reserve_or_reclaim(
    session: Session,
    tenant_id: str,
    amounts: dict[str, int],
    *,
    grace: timedelta = reclaim.GRACE,
    hold: timedelta = reclaim.HOLD,
    **reservation: Any,
) -> tuple[QuotaReservation, list[ReclaimNotice]]:
    """Reserve; if refused, wait as a ``pending`` reservation for borrowed capacity to come
    back: running workloads are reclaimed (notices); what cannot be stopped (volumes,
    addresses) is not, but the tenant makes no new loans until it gets its share back.
    Re-raises the refusal when neither applies."""
    try:
        return reserve(session, tenant_id, amounts, **reservation), []
    except QuotaExceeded as refusal:
        wanted = validated(amounts)
        if set(wanted) <= RECLAIMABLE:
            victims = reclaim.plan(session, tenant_id, wanted, refusal.extra["tenant_id"])
            if not victims:
                raise
        elif _set_lending(session, tenant_id, wanted, closed=True):
            victims = []
        else:
            raise
    pending = QuotaReservation(
        id=new_id("qr"),
        tenant_id=tenant_id,
        consumer_id=reservation.get("consumer_id"),
        amounts=validated(amounts),
        priority=reservation.get("priority", 0),
        state="pending",
        expires_at=now() + hold,
    )
    session.add(pending)
    notices = [
        ReclaimNotice(
            id=new_id("qrc"),
            victim_id=victim.id,
            claim_id=pending.id,
            tenant_id=victim.tenant_id,
            consumer_id=victim.consumer_id,
            amounts=victim.amounts,
            deadline=now() + grace,
        )
        for victim in victims
    ]
    session.add_all(notices)
    session.flush()
    return pending, notices


def _set_lending(session: Session, tenant_id: str, wanted: dict[str, int], closed: bool) -> bool:
    """Close (or reopen) the tenant's lending of the classes that cannot be reclaimed.
    Closing needs the request to fit in the tenant's own guarantee."""
    resources = [r for r in wanted if r not in RECLAIMABLE]
    paths = _lock_path(session, tenant_id, resources)
    if closed and any(
        paths[r][-1].subtree_usage + wanted[r] > engine.guarantee(paths[r][-1]) for r in resources
    ):
        return False
    for resource in resources:
        paths[resource][-1].lending_closed = closed
        _recompute_up(session, paths[resource])
    return True


def _waits_on_demand(session: Session, claim: QuotaReservation) -> bool:
    """A pending request with no notices waits for lent capacity to come back."""
    noticed = select(ReclaimNotice.id).where(ReclaimNotice.claim_id == claim.id)
    return session.scalar(noticed.limit(1)) is None


def _reopen(session: Session, claim: QuotaReservation) -> None:
    """Lending reopens once no other request of the tenant waits for the same classes."""
    others = session.scalars(
        select(QuotaReservation).where(
            QuotaReservation.tenant_id == claim.tenant_id,
            QuotaReservation.state == "pending",
            QuotaReservation.id != claim.id,
        )
    ).all()
    waiting = {r for other in others if _waits_on_demand(session, other) for r in other.amounts}
    _set_lending(
        session,
        claim.tenant_id,
        {r: q for r, q in claim.amounts.items() if r not in waiting},
        closed=False,
    )


def run_due(session: Session, ttl: timedelta = DEFAULT_TTL) -> int:
    """Carry out the reclaims whose grace is over, admit requests whose lent capacity came
    back, and drop pending requests whose hold expired. Returns how many were admitted."""
    admitted = _admit_returned(session, ttl)
    due = session.scalars(
        select(ReclaimNotice.claim_id)
        .where(ReclaimNotice.state == "notified", ReclaimNotice.deadline <= now())
        .distinct()
    ).all()
    for claim_id in sorted(due):
        claim = locked_reservation(session, claim_id)
        notices = session.scalars(
            select(ReclaimNotice).where(
                ReclaimNotice.claim_id == claim_id, ReclaimNotice.state == "notified"
            )
        ).all()
        if claim is None or claim.state != "pending":
            for notice in notices:
                notice.state = "cancelled"
            continue
        if any(n.deadline > now() for n in notices):
            continue  # wait for every victim of this request
        for notice in notices:
            release(session, notice.victim_id)
            notice.state = "stopped"
        try:
            admit(session, claim.tenant_id, claim.amounts)
        except QuotaExceeded:
            continue  # something else changed; the request waits until its hold ends
        claim.state, claim.expires_at = "reserved", now() + ttl
        admitted += 1
    _drop_expired(session)
    return admitted


def _admit_returned(session: Session, ttl: timedelta) -> int:
    admitted = 0
    pending = session.scalars(
        select(QuotaReservation)
        .where(QuotaReservation.state == "pending")
        .order_by(QuotaReservation.created_at)
    ).all()
    for claim in pending:
        if not _waits_on_demand(session, claim):
            continue
        try:
            admit(session, claim.tenant_id, claim.amounts)
        except QuotaExceeded:
            continue
        claim.state, claim.expires_at = "reserved", now() + ttl
        _reopen(session, claim)
        admitted += 1
    return admitted


def _drop_expired(session: Session) -> None:
    expired = session.scalars(
        select(QuotaReservation).where(
            QuotaReservation.state == "pending", QuotaReservation.expires_at < now()
        )
    ).all()
    for claim in expired:
        for notice in session.scalars(
            select(ReclaimNotice).where(
                ReclaimNotice.claim_id == claim.id, ReclaimNotice.state == "notified"
            )
        ):
            notice.state = "cancelled"
        if _waits_on_demand(session, claim):
            _reopen(session, claim)
        session.delete(claim)


# --- through the API -----------------------------------------------------------------------

OPERATE = "quota:reserve"  # platform administrators; other domains reserve in-process


def dry_run(
    session: Session, principal: Principal, tenant_id: str, amounts: dict[str, int]
) -> dict[str, Any]:
    """Would ``amounts`` be admitted, and if not, what would a reclaim stop?"""
    identity.get_tenant(session, principal, tenant_id)
    require(principal, "resource:read")
    with session.begin_nested() as attempt:  # rows the check creates are not kept
        verdicts = check(session, tenant_id, amounts)
        refused = next((v for v in verdicts if not v["admitted"]), None)
        victims = refused and reclaim.plan(
            session, tenant_id, validated(amounts), refused["refused_at"]
        )
        attempt.rollback()
    return {
        "admitted": refused is None,
        "verdicts": verdicts,
        "reclaim": [v.id for v in victims or []] if refused else None,
    }


def reserve_by_request(
    session: Session, principal: Principal, data: Any, settings: Settings
) -> QuotaReservation:
    require(principal, OPERATE)
    identity.tenant_for_new_resource(session, principal, data.tenant_id)
    options = {
        "consumer_id": data.consumer_id,
        "ttl": timedelta(seconds=data.ttl_seconds),
        "priority": data.priority,
    }
    if data.reclaim:
        reservation, _ = reserve_or_reclaim(
            session,
            data.tenant_id,
            data.amounts,
            grace=timedelta(seconds=settings.quota_reclaim_grace_seconds),
            hold=timedelta(seconds=settings.quota_hold_seconds),
            **options,
        )
    else:
        reservation = reserve(session, data.tenant_id, data.amounts, **options)
    audit.note(target_type="quota-reservation", target_id=reservation.id, tenant_id=data.tenant_id)
    return reservation


def reservation_action(
    session: Session, principal: Principal, reservation_id: str, action: str
) -> QuotaReservation | None:
    require(principal, OPERATE)
    audit.note(target_type="quota-reservation", target_id=reservation_id)
    if action == "commit":
        return commit(session, reservation_id)
    release(session, reservation_id)
    return None


def list_reservations(session: Session, principal: Principal, page: PageParams, **filters: Any):
    stmt = restrict(select(QuotaReservation), QuotaReservation, principal, "resource:read")
    return paginate(
        session, where_equal(stmt, QuotaReservation, **filters), QuotaReservation.id, page
    )


def list_reclaims(session: Session, principal: Principal, page: PageParams, **filters: Any):
    stmt = restrict(select(ReclaimNotice), ReclaimNotice, principal, "resource:read")
    return paginate(session, where_equal(stmt, ReclaimNotice, **filters), ReclaimNotice.id, page)


def run_reclaims(session: Session, principal: Principal) -> int:
    require(principal, OPERATE)
    audit.note(target_type="quota-reclaim")
    return run_due(session)
