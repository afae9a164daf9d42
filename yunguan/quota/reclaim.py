"""Taking borrowed capacity back.

A request refused admission may still be granted by stopping workloads that borrow:
- a request within its tenant's guarantee (at every level below the common ancestor) may
  evict any workload whose tenant is above its guarantee at every level up to that
  ancestor — usage within a guarantee is never a victim;
- a request that itself borrows may evict another borrower only if, afterwards, its side's
  weighted dominant share is no larger than the victim side's, so two tenants never evict
  each other back and forth.
Victims are chosen deterministically: largest borrowed amount first, then lowest priority,
then most recently admitted. This module plans on copies; ``quota.service`` notifies the
victims and carries the plan out.
"""

from collections.abc import Iterable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunguan.identity import service as identity
from yunguan.identity.scope import subtree_ids
from yunguan.quota import engine
from yunguan.quota.models import QuotaNode, QuotaReservation, ReclaimNotice

GRACE = timedelta(minutes=5)
HOLD = timedelta(minutes=15)


class Picture:
    """Copies of the quota rows of some paths, to try releases and admissions on."""

    def __init__(self, session: Session, paths: Iterable[list[str]], resources: Iterable[str]):
        tenants = {t for path in paths for t in path}
        rows = session.scalars(
            select(QuotaNode).where(
                QuotaNode.tenant_id.in_(tenants), QuotaNode.resource.in_(set(resources))
            )
        )
        self.rows = {(r.tenant_id, r.resource): SimpleNamespace(**_fields(r)) for r in rows}

    def path(self, tenant_ids: list[str], resource: str) -> list[Any]:
        return [self.rows[(t, resource)] for t in tenant_ids if (t, resource) in self.rows]

    def fits(self, tenant_ids: list[str], amounts: dict[str, int]) -> bool:
        return all(engine.admit(self.path(tenant_ids, r), q)[1] is None for r, q in amounts.items())

    def release(self, tenant_ids: list[str], amounts: dict[str, int]) -> None:
        for resource, amount in amounts.items():
            path = self.path(tenant_ids, resource)
            after, _ = engine.admit(path, -amount)
            for node, (slack, usage) in zip(path, after, strict=True):
                node.slack, node.subtree_usage = slack, usage

    def usage(self, tenant_id: str, resource: str) -> int:
        node = self.rows.get((tenant_id, resource))
        return node.subtree_usage if node else 0

    def guarantee(self, tenant_id: str, resource: str) -> int:
        node = self.rows.get((tenant_id, resource))
        return engine.guarantee(node) if node else 0

    def share(self, tenant_id: str, parent_id: str, delta: dict[str, int]) -> float:
        """Weighted dominant share of a child of ``parent_id``, after ``delta``."""
        shares = []
        for resource in delta:
            basis = self.guarantee(parent_id, resource)
            basis = basis if 0 < basis < engine.INF else 1
            shares.append((self.usage(tenant_id, resource) + delta[resource]) / basis)
        node = self.rows.get((tenant_id, next(iter(delta))))
        return max(shares) / (node.weight if node else 1)


def _fields(row: QuotaNode) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in QuotaNode.__table__.columns}


def _split(requester: list[str], victim: list[str]) -> int:
    """How many leading tenants the two paths share (the common ancestor is the last)."""
    shared = 0
    for a, b in zip(requester, victim, strict=False):
        if a != b:
            break
        shared += 1
    return shared


def plan(
    session: Session, tenant_id: str, wanted: dict[str, int], below: str
) -> list[QuotaReservation] | None:
    """The victims whose release would admit ``wanted`` at the tenant, looking in the
    subtree of ``below`` (where admission was refused); None if no choice is enough."""
    paths = identity.tenant_paths(session, [tenant_id, below])
    requester = [t for t in paths[tenant_id].split("/") if t]
    noticed = select(ReclaimNotice.victim_id).where(ReclaimNotice.state == "notified")
    candidates = session.scalars(
        select(QuotaReservation).where(
            QuotaReservation.tenant_id.in_(subtree_ids(paths[below])),
            QuotaReservation.state.in_(("reserved", "committed")),
            QuotaReservation.id.not_in(noticed),
        )
    ).all()
    tenant_paths = identity.tenant_paths(session, {c.tenant_id for c in candidates})
    victim_paths = {t: [x for x in p.split("/") if x] for t, p in tenant_paths.items()}
    picture = Picture(session, [requester, *victim_paths.values()], wanted)

    def borrowing(path: list[str], amounts: dict[str, int]) -> bool:
        return all(
            picture.usage(t, r) > picture.guarantee(t, r)
            for r in wanted
            if amounts.get(r)
            for t in path
        )

    def eligible(victim: QuotaReservation) -> bool:
        path = victim_paths[victim.tenant_id]
        shared = _split(requester, path)
        if shared == len(requester) or not any(victim.amounts.get(r) for r in wanted):
            return False  # the requester's own subtree, or nothing we need
        if not borrowing(path[shared:], victim.amounts):
            return False
        mine = requester[shared:]
        within = all(
            picture.usage(t, r) + q <= picture.guarantee(t, r)
            for r, q in wanted.items()
            for t in mine
        )
        if within:
            return True
        parent, give = requester[shared - 1], {r: -victim.amounts.get(r, 0) for r in wanted}
        return picture.share(mine[0], parent, wanted) <= picture.share(path[shared], parent, give)

    def rank(victim: QuotaReservation) -> tuple:
        borrowed = max(
            picture.usage(victim.tenant_id, r) - picture.guarantee(victim.tenant_id, r)
            for r in wanted
        )
        return (-borrowed, victim.priority, -victim.created_at.timestamp(), victim.id)

    chosen: list[QuotaReservation] = []
    while not picture.fits(requester, wanted):
        ready = sorted((c for c in candidates if c not in chosen and eligible(c)), key=rank)
        if not ready:
            return None
        victim = ready[0]
        chosen.append(victim)
        picture.release(victim_paths[victim.tenant_id], victim.amounts)
    return chosen
