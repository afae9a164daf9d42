"""Metering of elastic IPs: ``eip.allocated`` while the tenant holds the address, priced
``idle`` while unbound and ``bound`` while bound (an idle address may cost more)."""

from decimal import Decimal

from sqlalchemy.orm import Session

from yunguan.billing import service as billing
from yunguan.core.clock import now
from yunguan.core.ids import new_id
from yunguan.network.models import Eip

IDLE, BOUND = "idle", "bound"
BIND = (("stop", IDLE), ("start", BOUND))
UNBIND = (("stop", BOUND), ("start", IDLE))


def bound(eip: Eip) -> bool:
    return eip.port_id is not None or eip.vpc_id is not None


def meter(session: Session, eip: Eip, *changes: tuple[str, str]) -> None:
    """Record each ``(action, price_key)`` of ``changes`` on the EIP's ``eip.allocated``
    interval, in order and at one instant. Source ``network``; these are synchronous API
    changes with no operation to derive ids from, so each event takes a fresh id and the
    caller's transaction makes it count once."""
    at = now()
    for action, price_key in changes:
        billing.record(
            session,
            source="network",
            event_id=new_id("ev"),
            tenant_id=eip.tenant_id,
            resource_type="eip",
            resource_id=eip.id,
            meter="eip.allocated",
            action=action,
            quantity=Decimal(1),
            price_key=price_key,
            attributes={"bandwidth_mbps": eip.bandwidth_mbps},
            occurred_at=at,
        )


def unbound(session: Session, eip: Eip) -> None:
    """What the EIP was bound to is gone or let go: the address stays the tenant's,
    unbound, and is priced idle from now on."""
    if bound(eip):
        eip.port_id = eip.vpc_id = None
        meter(session, eip, *UNBIND)
