"""Each VPC's table: an entry (IP, MAC, VNI, VTEP) per bound port, kept per process and
brought up to date from the port events since the cached version, so a document with the
VPC's whole table (a gateway's, or any host's in ``full`` mode) costs a read of what
changed, not of the whole VPC. A full read happens the first time, or when the events the
copy needs were pruned (``prune``, every few minutes)."""

import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from yunguan.core.clock import now
from yunguan.core.db import insert_missing
from yunguan.inventory.models import Host
from yunguan.network.models import Port, PortEvent, SdnHost, Vxnet

KEEP = timedelta(minutes=10)
PRUNED = "!pruned"  # the sdn_hosts row holding the highest version pruned
# what a remote entry needs
REMOTE_COLUMNS = (Port.id, Port.vpc_id, Port.vxnet_id, Port.mac, Port.ip, Port.host_id)

_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
Entry = tuple[str, dict[str, Any]]  # (host id, entry)


def _entries(stmt: Any, session: Session) -> dict[str, Entry]:
    return {
        row.id: (row.host_id, {"ip": row.ip, "mac": row.mac, "vni": row.vni, "vtep": row.address})
        for row in session.execute(stmt)
    }


def table(session: Session, vpc_id: str, version: int) -> list[Entry]:
    """The VPC's bound ports as of (at least) ``version``, its ``ports_version``."""
    key = (str(session.get_bind().url), vpc_id)
    with _lock:
        cached = _cache.get(key)
    if cached is not None and cached[0] == version:
        return list(cached[1].values())
    bound = (
        select(Port.id, Port.host_id, Port.ip, Port.mac, Vxnet.vni, Host.address)
        .join(Vxnet, Vxnet.id == Port.vxnet_id)
        .join(Host, Host.id == Port.host_id)
        .where(Port.vpc_id == vpc_id)
    )
    if cached is not None and cached[0] >= _pruned(session):
        rows = dict(cached[1])
        changed = set(
            session.scalars(
                select(PortEvent.port_id).where(
                    PortEvent.vpc_id == vpc_id,
                    PortEvent.version > cached[0],
                    PortEvent.version <= version,
                )
            )
        )
        for port_id in changed:
            rows.pop(port_id, None)
        rows.update(_entries(bound.where(Port.id.in_(changed)), session))
    else:
        rows = _entries(bound, session)
    with _lock:
        if key not in _cache or _cache[key][0] < version:
            _cache[key] = (version, rows)
    return list(rows.values())


def _pruned(session: Session) -> int:
    return session.scalar(select(SdnHost.version).where(SdnHost.host_id == PRUNED)) or 0


def prune(session: Session) -> int:
    """Forget events older than ``KEEP``; copies older than them will read afresh."""
    old = PortEvent.created_at < now() - KEEP
    highest = session.scalar(select(func.max(PortEvent.version)).where(old))
    if highest is None:
        return 0
    insert_missing(session, SdnHost, [{"host_id": PRUNED, "version": 0}])
    session.execute(update(SdnHost).where(SdnHost.host_id == PRUNED).values(version=highest))
    return session.execute(delete(PortEvent).where(PortEvent.version <= highest)).rowcount  # type: ignore[attr-defined]
