"""Versions of the hosts' desired-state documents.

Every version comes from one sequence (the ``sdn_hosts`` row of host ``*``), so a host's
document version is simply the largest of what it depends on: its own row (local ports,
learned entries), and for each VPC it serves the VPC's layout version and, where it holds
the VPC's full table, its ports version. Any change raises that maximum.
"""

from collections.abc import Iterable

from sqlalchemy import update
from sqlalchemy.orm import Session

from yunguan.core.db import insert_missing
from yunguan.network.models import PortEvent, SdnHost, Vpc

SEQUENCE = "*"
_NEXT = (
    update(SdnHost)
    .where(SdnHost.host_id == SEQUENCE)
    .values(version=SdnHost.version + 1)
    .returning(SdnHost.version)
)


def next_version(session: Session) -> int:
    version = session.execute(_NEXT).scalar_one_or_none()
    if version is None:
        insert_missing(session, SdnHost, [{"host_id": SEQUENCE, "version": 0}])
        version = session.execute(_NEXT).scalar_one()
    return version


def bump_hosts(session: Session, host_ids: Iterable[str | None]) -> None:
    hosts = sorted({h for h in host_ids if h})
    if not hosts:
        return
    version = next_version(session)
    insert_missing(session, SdnHost, [{"host_id": h, "version": version} for h in hosts])
    session.execute(update(SdnHost).where(SdnHost.host_id.in_(hosts)).values(version=version))


def bump_layout(session: Session, vpc_id: str) -> None:
    """The VPC's routing domain changed (vxnets, EIPs, mode): every host of it is told."""
    version = next_version(session)
    session.execute(update(Vpc).where(Vpc.id == vpc_id).values(layout_version=version))


def bump_port(session: Session, vpc_id: str, port_id: str) -> None:
    """A port of the VPC appeared, moved or went: the hosts with its full table are told,
    and the event lets cached tables catch up."""
    version = next_version(session)
    session.execute(update(Vpc).where(Vpc.id == vpc_id).values(ports_version=version))
    session.add(PortEvent(version=version, vpc_id=vpc_id, port_id=port_id))
