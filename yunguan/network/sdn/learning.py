"""``ondemand`` mode: hosts report destinations they reached through a gateway; the
controller grants them direct entries for a while (TTL), at most ``cap`` per host (the
least recently granted go first)."""

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from yunguan.core.clock import now
from yunguan.network.models import LearnedRoute, Port, Vpc
from yunguan.network.sdn import versions


def learn(
    session: Session,
    host_id: str,
    destinations: list[tuple[str, str]],
    *,
    ttl: timedelta,
    cap: int,
) -> list[dict[str, Any]]:
    """Grant the host direct entries to (vpc id, ip) destinations; each answer says
    ``granted`` or why not. A destination granted before only has its expiry extended."""
    at = now()
    mine = set(
        session.scalars(
            select(Port.vpc_id).where(Port.host_id == host_id, Port.vpc_id.is_not(None))
        )
    )
    modes = dict(session.execute(select(Vpc.id, Vpc.routing_mode).where(Vpc.id.in_(mine))).all())
    answers, new = [], False
    for vpc_id, ip in destinations:
        answer = {"vpc_id": vpc_id, "ip": ip, "granted": False}
        answers.append(answer)
        if modes.get(vpc_id) != "ondemand":
            answer["reason"] = "the host has no ports of this VPC, or it is not in ondemand mode"
            continue
        target = session.execute(
            select(Port.id, Port.host_id).where(Port.vpc_id == vpc_id, Port.ip == ip)
        ).one_or_none()
        if target is None or target.host_id is None or target.host_id == host_id:
            answer["reason"] = "no remote port has this address"
            continue
        extended = session.execute(
            update(LearnedRoute)
            .where(
                LearnedRoute.host_id == host_id,
                LearnedRoute.vpc_id == vpc_id,
                LearnedRoute.ip == ip,
                LearnedRoute.port_id == target.id,
            )
            .values(expires_at=at + ttl)
        ).rowcount  # type: ignore[attr-defined]
        if not extended:
            session.execute(
                delete(LearnedRoute).where(
                    LearnedRoute.host_id == host_id,
                    LearnedRoute.vpc_id == vpc_id,
                    LearnedRoute.ip == ip,
                )
            )
            session.add(
                LearnedRoute(
                    host_id=host_id,
                    vpc_id=vpc_id,
                    ip=ip,
                    port_id=target.id,
                    expires_at=at + ttl,
                    granted_at=at,
                )
            )
            new = True
        answer["granted"] = True
    if new:
        session.flush()
        _trim(session, host_id, cap)
        versions.bump_hosts(session, [host_id])
    return answers


def _trim(session: Session, host_id: str, cap: int) -> None:
    count = session.scalar(select(func.count()).where(LearnedRoute.host_id == host_id)) or 0
    if count > cap:
        oldest = (
            select(LearnedRoute.id)
            .where(LearnedRoute.host_id == host_id)
            .order_by(LearnedRoute.granted_at, LearnedRoute.id)
            .limit(count - cap)
        )
        session.execute(delete(LearnedRoute).where(LearnedRoute.id.in_(oldest)))


def expire(session: Session) -> int:
    """Remove entries past their TTL and tell their hosts."""
    hosts = session.scalars(
        delete(LearnedRoute).where(LearnedRoute.expires_at <= now()).returning(LearnedRoute.host_id)
    ).all()
    versions.bump_hosts(session, hosts)
    return len(hosts)
