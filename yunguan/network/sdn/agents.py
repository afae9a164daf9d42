"""What the hosts' data-plane agents report: the document version each applied last, the
routers and forwarding entries its kernel holds, and the routers it could not reconcile.

An agent reports when that changes and at least every 30 seconds; one silent for longer
than ``STALE_AFTER`` is ``stale`` (stopped, or cut off from the controller). Agents and
platform administrators only (``inventory:write`` to report, ``inventory:read`` to look).
"""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from yunguan.core.clock import now
from yunguan.core.db import upsert
from yunguan.identity.scope import Principal, require
from yunguan.inventory.models import Host
from yunguan.network.models import AgentStatus, Gateway, Port
from yunguan.network.sdn import controller

STALE_AFTER = timedelta(seconds=90)
READ, WRITE = "inventory:read", "inventory:write"


def record(session: Session, principal: Principal, host_id: str, report: dict[str, Any]) -> None:
    """Keep the agent's report (its time is the controller's); 404 for an unknown host."""
    require(principal, WRITE)
    controller.require_host(session, host_id)
    upsert(session, AgentStatus, {"host_id": host_id, **report, "reported_at": now()})


def host_state(session: Session, principal: Principal, host_id: str) -> dict[str, Any]:
    """The host's document version and its agent's last report (None: it never reported)."""
    require(principal, READ)
    version = controller.host_version(session, host_id)
    return _states(session, {host_id: version})[host_id]


def overview(
    session: Session, principal: Principal, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """Hosts that need an agent (they have ports or are gateways) or have one, by id: the
    first ``limit`` with their names and states, and whether there are more."""
    require(principal, READ)
    watched = union(
        select(Port.host_id).where(Port.host_id.is_not(None)),
        select(Gateway.host_id),
        select(AgentStatus.host_id),
    ).subquery()
    host_ids = list(
        session.scalars(select(watched.c.host_id).order_by(watched.c.host_id).limit(limit + 1))
    )
    shown = host_ids[:limit]
    names = dict(session.execute(select(Host.id, Host.name).where(Host.id.in_(shown))).all())
    states = _states(session, controller.versions(session, shown))
    return [{**states[h], "name": names.get(h, "")} for h in shown], len(host_ids) > limit


def _states(session: Session, versions: dict[str, int]) -> dict[str, dict[str, Any]]:
    reports = session.scalars(select(AgentStatus).where(AgentStatus.host_id.in_(versions)))
    agents = {row.host_id: row for row in reports}
    at = now()
    return {
        host_id: {
            "host_id": host_id,
            "version": version,
            "agent": _agent(agents[host_id], version, at) if host_id in agents else None,
        }
        for host_id, version in versions.items()
    }


def _agent(row: AgentStatus, version: int, at: datetime) -> dict[str, Any]:
    return {
        "applied_version": row.applied_version,
        "up_to_date": row.applied_version == version,
        "routers": row.routers,
        "entries": row.entries,
        "errors": row.errors,
        "reported_at": row.reported_at,
        "stale": at - row.reported_at > STALE_AFTER,
    }
