"""Deleting a tenant: a durable workflow, so a crash half-way never leaves it half-deleted.

Steps: re-check that the tenant is empty (no sub-tenants, no placement claims), revoke its
users' tokens, remove its groups, memberships and users (its zone grants, placement groups
and policies go with it), then remove the tenant and write the audit event. Each step is

idempotent and retried on transient errors; DBOS replays finished steps from their
checkpoints after a restart. A step that keeps failing fails the operation: before any
token was revoked the tenant is given back (``active``); after, it is ``delete-failed`` (its
members may be gone, so it takes nothing new) and can be deleted again. Never stuck in
``deleting``.
"""

from dbos import DBOS
from sqlalchemy.orm import Session

from yunguan.billing import service as billing
from yunguan.compute import service as compute
from yunguan.core import audit
from yunguan.core.db import get_database
from yunguan.core.errors import Conflict
from yunguan.core.faults import fault_point
from yunguan.identity import service as identity
from yunguan.identity.models import Tenant
from yunguan.identity.scope import Principal
from yunguan.network import ports as network
from yunguan.orders import lifecycle
from yunguan.quota import service as quota
from yunguan.scheduler import service as scheduler
from yunguan.workflows.models import Operation
from yunguan.workflows.service import advance, create_operation, load

KIND = "tenant.delete"
step = DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0.5)


def check_empty(session: Session, tenant: Tenant) -> None:
    """Nothing may live in a deleted tenant: no sub-tenants, placements, quota held,
    network or compute resources, open orders or services."""
    identity.check_deletable(session, tenant)
    for count, what in (
        (scheduler.count_tenant_claims, "placement claim(s)"),
        (quota.count_tenant_reservations, "quota reservation(s)"),
        (network.count_tenant_resources, "network resource(s)"),
        (compute.count_tenant_resources, "instance(s), image(s), volume(s) or snapshot(s)"),
        (lifecycle.count_tenant_services, "open order(s) or service(s)"),
        (billing.count_tenant_holdings, "billing account(s) or plan subscription(s)"),
    ):
        held = count(session, tenant.id)
        if held:
            raise Conflict(f"tenant {tenant.id} still holds {held} {what}", code="tenant-not-empty")


@step
def _recheck_empty(operation_id: str, tenant_id: str) -> str:
    advance(operation_id, state="running", step="check-empty", progress=10)
    with get_database().session() as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            return "gone"
        try:
            check_empty(session, tenant)
        except Conflict as exc:  # something appeared in it: give the tenant back
            tenant.state = "active"
            return exc.detail
    return "ok"


@step
def _revoke_tokens(operation_id: str, tenant_id: str) -> int:
    advance(operation_id, step="revoke-tokens", progress=30)
    with get_database().session() as session:
        return identity.revoke_tenant_tokens(session, tenant_id)


@step
def _remove_members(operation_id: str, tenant_id: str) -> int:
    advance(operation_id, step="remove-members", progress=60)
    with get_database().session() as session:
        return identity.remove_tenant_members(session, tenant_id)


@step
def _remove_tenant(operation_id: str, removed_users: int) -> None:
    operation = load(operation_id)
    assert operation is not None
    with get_database().session() as session:
        if identity.remove_tenant(session, operation.target_id):
            audit.record(
                session,
                audit.AuditNote(
                    action="tenant.deleted",
                    target_type="tenant",
                    target_id=operation.target_id,
                    tenant_id=operation.tenant_id,
                    actor_id=operation.requested_by,
                    actor_name=operation.params.get("username", ""),
                    actor_tenant_id=operation.params.get("tenant_id"),
                    detail={"operation_id": operation_id, "removed_users": removed_users},
                ),
                result="success",
            )
    advance(operation_id, state="succeeded", step="done", progress=100)


@step
def _give_up(operation_id: str, tenant_id: str, error: str, untouched: bool) -> None:
    with get_database().session() as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is not None:
            tenant.state = "active" if untouched else "delete-failed"
    advance(operation_id, state="failed", error=error[:2000])


@DBOS.workflow()
def delete_tenant(operation_id: str) -> str:
    tenant_id = load(operation_id).target_id  # type: ignore[union-attr]
    untouched = True
    try:
        verdict = _recheck_empty(operation_id, tenant_id)
        if verdict == "gone":
            advance(operation_id, state="succeeded", step="done", progress=100)
            return "gone"
        if verdict != "ok":
            advance(operation_id, state="failed", error=verdict)
            return "failed"
        fault_point("tenant-delete.after-check")
        untouched = False
        _revoke_tokens(operation_id, tenant_id)
        fault_point("tenant-delete.after-revoke")
        removed = _remove_members(operation_id, tenant_id)
        fault_point("tenant-delete.after-members")
        _remove_tenant(operation_id, removed)
    except Exception as exc:  # retries exhausted: fail visibly, leave nothing stuck
        _give_up(operation_id, tenant_id, f"{type(exc).__name__}: {exc}", untouched)
        return "failed"
    return "deleted"


def request_deletion(
    session: Session, principal: Principal, tenant_id: str
) -> tuple[Tenant, Operation]:
    """Mark the tenant ``deleting`` and record the operation. The caller commits, then
    queues the workflow with ``engine.submit(operation.id, KIND)``."""
    tenant = identity.begin_tenant_deletion(session, principal, tenant_id)
    check_empty(session, tenant)
    operation = create_operation(
        session,
        kind=KIND,
        tenant_id=tenant.parent_id or tenant.id,
        target_type="tenant",
        target_id=tenant.id,
        requested_by=principal.user_id,
        params={"username": principal.username, "tenant_id": principal.tenant_id},
    )
    return tenant, operation
