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
from yunguan.network.models import SdnHost, Vpc

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


def bump_vpc(session: Session, vpc_id: str, *, ports: bool = False, layout: bool = False) -> None:
    version = next_version(session)
    values = {"ports_version": version} if ports else {}
    values |= {"layout_version": version} if layout else {}
    session.execute(update(Vpc).where(Vpc.id == vpc_id).values(**values))
