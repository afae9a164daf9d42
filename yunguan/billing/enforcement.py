"""What becomes of a prepaid account's resources below zero: when it is suspended its
services and instances are stopped (disks and addresses keep accruing, as in public
clouds); once the retention period is over and it is still below zero, its services are
reclaimed and its own instances, volumes and EIPs deleted. The platform acts (``SYSTEM``);
the caller queues the operations this answers once its transaction commits."""

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunguan.billing import rating
from yunguan.billing.models import BillingAccount
from yunguan.compute import service as compute
from yunguan.compute import volumes
from yunguan.compute.models import Instance, Volume
from yunguan.core.errors import Problem
from yunguan.identity.models import Tenant
from yunguan.identity.scope import SYSTEM
from yunguan.network import eips
from yunguan.network.models import Eip
from yunguan.orders import lifecycle
from yunguan.orders.models import ServiceInstance
from yunguan.orders.schemas import ServiceAction
from yunguan.workflows.models import Operation

LIVE = ("released", "failed")


def stop(session: Session, account: BillingAccount) -> list[Operation]:
    """Stop the account's active services and its other running instances."""
    operations: list[Operation] = []
    services = _services(session, account)
    for service in services:
        if service.state == "active":
            operations += _attempt(
                lambda s=service: lifecycle.act(
                    session, SYSTEM, s.id, ServiceAction(action="stop")
                )[1]
            )
    for instance in _own(session, account, Instance, services):
        if instance.state == "running":
            operations += _attempt(
                lambda i=instance: [compute.request_action(session, SYSTEM, i.id, "stop")[1]]
            )
    return operations


def release(session: Session, account: BillingAccount) -> list[Operation]:
    """Reclaim the account's services; delete its other instances, volumes and EIPs."""
    operations: list[Operation] = []
    services = _services(session, account)
    for service in services:
        operations += _attempt(
            lambda s=service: lifecycle.act(session, SYSTEM, s.id, ServiceAction(action="reclaim"))[
                1
            ]
        )
    for instance in _own(session, account, Instance, services):
        operations += _attempt(
            lambda i=instance: [compute.request_delete(session, SYSTEM, i.id)[1]]
        )
    for volume in _own(session, account, Volume, services):
        operations += _attempt(lambda v=volume: [volumes.request_delete(session, SYSTEM, v.id)[1]])
    for eip in _own(session, account, Eip, services):
        _attempt(lambda e=eip: eips.delete_eip(session, SYSTEM, e.id) or [])
    return operations


def _attempt(action: Callable[[], list[Operation]]) -> list[Operation]:
    """What ``action`` started, or nothing if the resource cannot take it now (busy, gone):
    the next hourly run asks again."""
    try:
        return action()
    except Problem:
        return []


def _tenants(session: Session, account: BillingAccount) -> list[str]:
    """The tenants this account pays for (a sub-tenant with an account of its own pays its
    own way)."""
    below = select(Tenant.id).where(Tenant.path.startswith(account.tenant_path, autoescape=True))
    return [
        t
        for t in session.scalars(below)
        if getattr(rating.account_of(session, t), "id", None) == account.id
    ]


def _services(session: Session, account: BillingAccount) -> list[ServiceInstance]:
    stmt = select(ServiceInstance).where(
        ServiceInstance.tenant_id.in_(_tenants(session, account)),
        ServiceInstance.state.not_in(LIVE),
    )
    return list(session.scalars(stmt.order_by(ServiceInstance.id)))


def _own(session: Session, account: BillingAccount, model, services: list[ServiceInstance]) -> list:
    """The account's rows of ``model`` that are not part of a service (and not deleted)."""
    kind = {Instance: "instance", Volume: "volume", Eip: "eip"}[model]
    theirs = {r["id"] for s in services for r in s.resources if r["type"] == kind}
    stmt = select(model).where(model.tenant_id.in_(_tenants(session, account)))
    if hasattr(model, "deleted_at"):
        stmt = stmt.where(model.deleted_at.is_(None))
    return [row for row in session.scalars(stmt.order_by(model.id)) if row.id not in theirs]
