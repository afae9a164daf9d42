"""Claim through the scheduler service directly, as provisioning workflows will."""

from sqlalchemy import func, select

from yunguan.core.db import Database
from yunguan.identity.scope import Principal
from yunguan.inventory.models import Host, StoragePool
from yunguan.scheduler import service
from yunguan.scheduler.models import Claim
from yunguan.scheduler.schemas import ClaimCreate


def operator(root_id: str) -> Principal:
    return Principal(
        "u-operator", "operator", root_id, f"/{root_id}/", frozenset({"platform-admin"})
    )


def claim(db: Database, principal: Principal, **request) -> str | None:
    """The claim's id, or None when no host fits."""
    try:
        with db.session() as session:
            return service.claim(session, principal, ClaimCreate(**request)).id
    except service.NoValidHost:
        return None


def release(db: Database, claim_id: str) -> None:
    with db.session() as session:
        service.release(session, claim_id)


def overfull(db: Database) -> list[str]:
    """Every way a host or pool breaks the books: over its limit, or not Σ of its claims."""
    problems = []
    with db.session(write=False) as session:
        held = {
            row.host_id: row
            for row in session.execute(
                select(
                    Claim.host_id,
                    func.count().label("n"),
                    func.sum(Claim.vcpus).label("vcpus"),
                    func.sum(Claim.memory_mb).label("memory"),
                ).group_by(Claim.host_id)
            )
        }
        for host in session.scalars(select(Host)):
            if host.used_vcpus > host.vcpu_limit or host.used_memory_mb > host.memory_limit_mb:
                problems.append(f"{host.name} over its limits")
            if host.used_disk_gb > host.disk_limit_gb or host.used_gpus > host.gpus:
                problems.append(f"{host.name} over its disk or gpu limit")
            mine = held.get(host.id)
            counted = (mine.n, mine.vcpus, mine.memory) if mine else (0, 0, 0)
            if counted != (host.claims, host.used_vcpus, host.used_memory_mb):
                problems.append(f"{host.name} holds {counted}, books say {host.used_vcpus}")
        for pool in session.scalars(select(StoragePool)):
            on_pool = session.scalar(
                select(func.coalesce(func.sum(Claim.disk_gb), 0)).where(Claim.pool_id == pool.id)
            )
            if pool.allocated_gb > pool.limit_gb or pool.allocated_gb != on_pool:
                problems.append(f"pool {pool.name}: {pool.allocated_gb} of {pool.limit_gb}")
    return problems


def anti_affinity_broken(db: Database, group_id: str) -> list[str]:
    """Hosts holding more than one member of an anti-affinity group."""
    with db.session(write=False) as session:
        rows = session.execute(
            select(Claim.host_id)
            .where(Claim.group_id == group_id)
            .group_by(Claim.host_id)
            .having(func.count() > 1)
        )
        return list(rows.scalars())
