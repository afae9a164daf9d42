"""Approval chains: the policy of each tenant subtree, the plan an order gets from it, and
the approvers' tasks (opened per stage, delegated, escalated when their time runs out)."""

from collections.abc import Iterable, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunguan.core import audit
from yunguan.core.clock import now
from yunguan.core.db import flush_or_conflict
from yunguan.core.errors import Forbidden, NotFound, Unprocessable, summary
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams, paginate, where_equal
from yunguan.identity import service as identity
from yunguan.identity.crud import apply_changes
from yunguan.identity.scope import Principal, ancestors, get_visible, list_visible, require
from yunguan.notifications import service as notifications
from yunguan.orders.models import ApprovalPolicy, ApprovalTask, Order
from yunguan.orders.schemas import PolicyCreate, PolicyUpdate, Stage

READ = "tenant:read"
MANAGE = "tenant:write"  # a tenant administrator configures its subtree's chains


# --- policies ------------------------------------------------------------------------------


def list_policies(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_visible(session, principal, ApprovalPolicy, READ, page, **filters)


def get_policy(session: Session, principal: Principal, policy_id: str) -> ApprovalPolicy:
    return get_visible(session, ApprovalPolicy, policy_id, principal, READ)


def create_policy(session: Session, principal: Principal, data: PolicyCreate) -> ApprovalPolicy:
    require(principal, MANAGE)
    tenant = identity.tenant_for_new_resource(session, principal, data.tenant_id)
    _require_above(principal, tenant.id)
    policy = ApprovalPolicy(id=new_id("apol"), tenant_id=tenant.id)
    return _save(session, policy, tenant.path, data)


def update_policy(session: Session, principal: Principal, policy_id: str, data: PolicyUpdate):
    policy = _managed(session, principal, policy_id)
    return _save(session, policy, _path(session, policy.tenant_id), data)


def delete_policy(session: Session, principal: Principal, policy_id: str) -> None:
    policy = _managed(session, principal, policy_id)
    session.delete(policy)
    audit.note(target_type="approval-policy", target_id=policy_id, tenant_id=policy.tenant_id)


def _managed(session: Session, principal: Principal, policy_id: str) -> ApprovalPolicy:
    policy = get_visible(session, ApprovalPolicy, policy_id, principal, READ, owned=True)
    require(principal, MANAGE)
    _require_above(principal, policy.tenant_id)
    return policy


def _require_above(principal: Principal, tenant_id: str) -> None:
    """A tenant's chain is set from above it: its own administrators, whose orders it
    approves, cannot change it."""
    if tenant_id == principal.tenant_id and not principal.is_platform_admin:
        raise Forbidden("a tenant's approval chain is set by the administrators above it")


def _path(session: Session, tenant_id: str) -> str:
    path = identity.tenant_paths(session, [tenant_id]).get(tenant_id)
    if path is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return path


def _save(
    session: Session, policy: ApprovalPolicy, tenant_path: str, data: PolicyCreate | PolicyUpdate
) -> ApprovalPolicy:
    if data.stages is not None:
        _check_people(session, tenant_path, data.stages)
    apply_changes(policy, data, skip=["tenant_id", "stages"])
    if data.stages is not None:
        policy.stages = [stage.model_dump(mode="json") for stage in data.stages]
    session.add(policy)
    flush_or_conflict(session, "the tenant has an approval policy already", "duplicate-policy")
    audit.note(target_type="approval-policy", target_id=policy.id, tenant_id=policy.tenant_id)
    return policy


def _check_people(session: Session, tenant_path: str, stages: Sequence[Stage]) -> None:
    """Every approver must be an active user who sees the subtree's orders: one of its
    tenant or of a tenant above it."""
    named = {u for stage in stages for u in (*stage.approvers, *stage.escalate_to)}
    homes = identity.active_user_tenants(session, named)
    errors = [
        {
            "loc": ["stages", str(n), field],
            "msg": f"{user}: not an active user of the tenant or one above it",
            "type": "unknown-approver",
        }
        for n, stage in enumerate(stages)
        for field, users in (("approvers", stage.approvers), ("escalate_to", stage.escalate_to))
        for user in users
        if not (user in homes and tenant_path.startswith(homes[user]))
    ]
    if errors:
        raise Unprocessable(summary(errors), code="unknown-approver", errors=errors)


# --- an order's plan and tasks -------------------------------------------------------------


def plan_for(session: Session, tenant_id: str, cost: Decimal) -> list[dict[str, Any]]:
    """The stages an order of the tenant costing ``cost`` goes through: those of the
    nearest policy up the tree whose ``min_cost`` it reaches (none: no approval needed)."""
    line = ancestors(_path(session, tenant_id))
    policies = session.scalars(select(ApprovalPolicy).where(ApprovalPolicy.tenant_id.in_(line)))
    nearest = max(policies, key=lambda p: line.index(p.tenant_id), default=None)
    stages = [Stage.model_validate(s) for s in nearest.stages] if nearest else []
    return [s.model_dump(mode="json") for s in stages if cost >= s.min_cost]


def open_stage(session: Session, order: Order) -> None:
    """Give each approver of the order's current stage a task, and tell them."""
    stage = Stage.model_validate(order.plan[order.stage])
    _assign(
        session, order, stage, stage.approvers, stage.timeout_hours if stage.escalate_to else None
    )


def _assign(
    session: Session, order: Order, stage: Stage, users: Iterable[str], hours: int | None
) -> list[ApprovalTask]:
    due_at = now() + timedelta(hours=hours) if hours else None
    tasks = [
        ApprovalTask(
            id=new_id("apr"),
            order_id=order.id,
            tenant_id=order.tenant_id,
            stage=order.stage,
            stage_name=stage.name,
            assignee_id=user,
            due_at=due_at,
        )
        for user in dict.fromkeys(users)
    ]
    session.add_all(tasks)
    notifications.notify(
        session,
        event="order.approval-requested",
        tenant_id=order.tenant_id,
        user_ids=[t.assignee_id for t in tasks],
        subject=f"Order “{order.name}” awaits your approval ({stage.name})",
        body=f"Order {order.id} costs {order.cost}. Approve or reject it in the approvals inbox.",
        data={"order_id": order.id, "stage": stage.name},
        link=f"/orders/{order.id}",
    )
    return tasks


def pending_tasks(session: Session, order: Order) -> list[ApprovalTask]:
    stmt = select(ApprovalTask).where(
        ApprovalTask.order_id == order.id,
        ApprovalTask.stage == order.stage,
        ApprovalTask.state == "pending",
    )
    return list(session.scalars(stmt))


def close_stage(session: Session, order: Order, decided: ApprovalTask | None, state: str) -> None:
    """The stage is decided (``decided`` by its assignee, or by the platform): every other
    pending task of it is withdrawn."""
    for task in pending_tasks(session, order):
        task.state = state if task is decided else "withdrawn"
        task.decided_at = now()


def delegate(session: Session, order: Order, task: ApprovalTask, user_id: str) -> ApprovalTask:
    """Hand ``task`` to another user who sees the order; the deadline stays."""
    stage = Stage(name=task.stage_name, approvers=[user_id])
    _check_people(session, _path(session, order.tenant_id), [stage])
    if user_id == order.requested_by:
        raise Unprocessable(
            "the requester does not approve its own order",
            code="self-approval",
            errors=[{"loc": ["user_id"], "msg": "the requester", "type": "self-approval"}],
        )
    if any(t.assignee_id == user_id for t in pending_tasks(session, order)):
        raise Unprocessable(
            f"{user_id} is an approver of this stage already",
            code="already-approver",
            errors=[{"loc": ["user_id"], "msg": "already an approver", "type": "duplicate"}],
        )
    task.state, task.decided_at = "delegated", now()
    [made] = _assign(session, order, stage, [user_id], None)
    made.due_at = task.due_at
    return made


def escalate_due(session: Session, orders_by_id: dict[str, Order]) -> list[ApprovalTask]:
    """Tasks past their deadline: the stage's ``escalate_to`` users get it (with no further
    deadline), the late tasks are marked escalated. ``orders_by_id`` gives the locked orders
    (the caller locks them)."""
    late = session.scalars(
        select(ApprovalTask)
        .where(
            ApprovalTask.state == "pending",
            ApprovalTask.due_at.is_not(None),
            ApprovalTask.due_at <= now(),
            ApprovalTask.order_id.in_(orders_by_id),
        )
        .order_by(ApprovalTask.id)
    ).all()
    made: list[ApprovalTask] = []
    for task in late:
        order = orders_by_id[task.order_id]
        if order.state != "pending-approval" or task.stage != order.stage:
            continue
        stage = Stage.model_validate(order.plan[order.stage])
        task.state, task.decided_at = "escalated", now()
        assigned = {t.assignee_id for t in pending_tasks(session, order)}
        made += _assign(
            session, order, stage, [u for u in stage.escalate_to if u not in assigned], None
        )
    return made


def due_orders(session: Session, limit: int = 200) -> list[str]:
    """Orders with an approval task past its deadline."""
    stmt = (
        select(ApprovalTask.order_id)
        .where(
            ApprovalTask.state == "pending",
            ApprovalTask.due_at.is_not(None),
            ApprovalTask.due_at <= now(),
        )
        .distinct()
        .limit(limit)
    )
    return list(session.scalars(stmt))


def list_tasks(session: Session, principal: Principal, page: PageParams, state: str | None):
    """The principal's own approval inbox."""
    stmt = select(ApprovalTask).where(ApprovalTask.assignee_id == principal.user_id)
    stmt = where_equal(stmt, ApprovalTask, state=state)
    return paginate(session, stmt, ApprovalTask.id, page, newest_first=True)
