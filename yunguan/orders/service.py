"""Orders: placed from a catalog item (a quota dry run, then the approval plan of the
tenant's policy), decided stage by stage, fulfilled exactly once by the ``order.fulfil``
workflow. With ``approvals`` (policies and tasks) and ``lifecycle`` (services and
subscriptions), the only code that writes the orders package's tables."""

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunguan.billing import service as billing
from yunguan.catalog import parameters as params
from yunguan.catalog import service as catalog
from yunguan.compute import service as compute
from yunguan.core import audit
from yunguan.core.db import locked
from yunguan.core.errors import Conflict, Forbidden, NotFound
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams, paginate, where_equal
from yunguan.identity import service as identity
from yunguan.identity.scope import Principal, get_visible, restrict
from yunguan.orders import approvals, lifecycle, plans, provisioning
from yunguan.orders.models import ApprovalTask, Order, OrderEvent
from yunguan.orders.schemas import ChangeCreate, OrderAction, OrderCreate
from yunguan.workflows.models import Operation
from yunguan.workflows.service import create_operation

READ = "resource:read"
WRITE = "resource:write"
APPROVE = "order:approve"
FULFIL = "order.fulfil"


def list_orders(session: Session, principal: Principal, page: PageParams, **filters: Any):
    stmt = where_equal(restrict(select(Order), Order, principal, READ), Order, **filters)
    return paginate(session, stmt, Order.id, page, newest_first=True)


def get_order(session: Session, principal: Principal, order_id: str) -> Order:
    return get_visible(session, Order, order_id, principal, READ)


def orders_by_id(
    session: Session, principal: Principal, order_ids: Iterable[str]
) -> dict[str, Order]:
    """The orders among ``order_ids`` the principal sees, by id (one query for a list)."""
    stmt = restrict(select(Order), Order, principal, READ).where(Order.id.in_(list(order_ids)))
    return {order.id: order for order in session.scalars(stmt)}


def describe(session: Session, order: Order) -> dict[str, Any]:
    """The order with its approval tasks and timeline."""
    tasks = session.scalars(
        select(ApprovalTask).where(ApprovalTask.order_id == order.id).order_by(ApprovalTask.id)
    )
    events = session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
    )
    return {**_columns(order), "tasks": list(tasks), "events": list(events)}


def _columns(order: Order) -> dict[str, Any]:
    return {c.key: getattr(order, c.key) for c in Order.__table__.columns}


def record(session: Session, order: Order, actor: str, kind: str, message: str = "") -> None:
    session.add(OrderEvent(order_id=order.id, actor=actor, kind=kind, message=message))


# --- placing -------------------------------------------------------------------------------


def place_order(
    session: Session, principal: Principal, data: OrderCreate
) -> tuple[Order, list[Operation]]:
    """Check the values against the item's parameters and the demand against quota (a dry
    run), then open the first approval stage, or start fulfilment when none applies."""
    tenant = identity.tenant_for_new_resource(
        session, principal, data.tenant_id or principal.tenant_id
    )
    if not principal.can(WRITE):
        raise Forbidden(f"permission '{WRITE}' required")
    billing.guard(session, tenant.id)
    item, version = catalog.orderable(session, principal, data.item_id)
    values = params.complete(catalog.parameters_of(version), data.values)
    spec = params.render(version.spec, values)
    plan = plans.plan(item.kind, spec, data.name)  # type: ignore[attr-defined]
    plans.check(session, principal, tenant.id, plan)
    cost = item.price_monthly * max(data.term_months, 1)
    order = Order(
        id=new_id("ord"),
        tenant_id=tenant.id,
        requested_by=principal.user_id,
        item_id=item.id,
        template_version_id=version.id,
        name=data.name,
        values=values,
        spec=spec,
        term_months=data.term_months,
        auto_renew=data.auto_renew,
        cost=cost,
        plan=approvals.plan_for(session, tenant.id, cost),
    )
    session.add(order)
    session.flush()
    record(session, order, principal.username, "placed", f"{item.name}, cost {cost:.2f}")
    audit.note(target_type="order", target_id=order.id, tenant_id=tenant.id)
    return order, _advance(session, order, principal.username)


def place_change(
    session: Session, principal: Principal, service_id: str, data: ChangeCreate
) -> tuple[Order, list[Operation]]:
    """A change order for a running service, planned like a new order of its price: one
    at a time per service, to a virtual-machine size some of its instances do not have."""
    service = lifecycle.get_service(session, principal, service_id)
    if not principal.can(WRITE):
        raise Forbidden(f"permission '{WRITE}' required")
    lifecycle.lock(session, service.id)  # two change orders placed at once take turns
    if service.state != "active" or service.kind == plans.EXTERNAL:
        raise Conflict(
            f"service {service.id} ({service.kind}) is {service.state}: not resizable",
            code="invalid-state",
        )
    open_change = select(Order.id).where(
        Order.service_instance_id == service.id,
        Order.state.in_(("pending-approval", "fulfilling")),
    )
    if (pending := session.scalars(open_change).first()) is not None:
        raise Conflict(f"order {pending} is changing this service already", code="change-pending")
    flavor = compute.get_flavor(session, principal, data.flavor_id)
    if flavor.baremetal or not provisioning.changes_size(session, service, flavor.id):
        raise Conflict(
            f"flavor {flavor.id} is not another virtual-machine size for it",
            code="invalid-flavor",
        )
    first = session.get(Order, service.order_id)
    subscription = service.subscription  # type: ignore[attr-defined]
    cost = subscription.price_monthly if subscription else first.cost  # type: ignore[union-attr]
    order = Order(
        id=new_id("ord"),
        tenant_id=service.tenant_id,
        requested_by=principal.user_id,
        kind="change",
        item_id=service.item_id,
        template_version_id=first.template_version_id,  # type: ignore[union-attr]
        service_instance_id=service.id,
        name=service.name,
        spec={"resize": flavor.id},
        cost=cost,
        plan=approvals.plan_for(session, service.tenant_id, cost),
    )
    session.add(order)
    session.flush()
    message = f"resize to {flavor.name}, cost {cost:.2f}. {data.comment}".strip()
    record(session, order, principal.username, "placed", message)
    audit.note(target_type="order", target_id=order.id, tenant_id=order.tenant_id)
    return order, _advance(session, order, principal.username)


def _advance(session: Session, order: Order, actor: str) -> list[Operation]:
    """Open the order's current stage, or, past the last one, start its fulfilment (the
    operation it starts)."""
    if order.stage < len(order.plan):
        approvals.open_stage(session, order)
        return []
    return [_start_fulfilment(session, order, actor)]


def _start_fulfilment(session: Session, order: Order, actor: str) -> Operation:
    operation = create_operation(
        session,
        kind=FULFIL,
        tenant_id=order.tenant_id,
        target_type="order",
        target_id=order.id,
        requested_by=order.requested_by,
        params={"order_kind": order.kind},
    )
    order.state, order.operation_id = "fulfilling", operation.id
    record(session, order, actor, "fulfilling", "approved; fulfilment started")
    return operation


# --- deciding ------------------------------------------------------------------------------


def lock(session: Session, order_id: str) -> Order:
    order = locked(session, Order, order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    return order


def act(
    session: Session, principal: Principal, order_id: str, data: OrderAction
) -> tuple[Order, list[Operation]]:
    """One action on an order, under its row lock: two approvals racing each other decide
    it once, and start its fulfilment at most once."""
    get_order(session, principal, order_id)
    order = lock(session, order_id)
    audit.note(target_type="order", target_id=order.id, tenant_id=order.tenant_id)
    if data.action == "comment":
        if not (principal.can(WRITE) or principal.can(APPROVE)):
            raise Forbidden("commenting takes resource:write or order:approve")
        record(session, order, principal.username, "comment", data.comment)
        return order, []
    if order.state != "pending-approval":
        raise Conflict(f"order {order.id} is {order.state}", code="order-decided")
    if data.action == "cancel":
        return _cancel(session, principal, order, data.comment), []
    if data.action == "approve" and principal.user_id == order.requested_by:
        raise Forbidden("the requester does not approve its own order", code="self-approval")
    task = _my_task(session, principal, order)
    message = data.comment or data.action
    if data.action == "delegate":
        if task is None:
            raise Conflict("only an assigned approver delegates", code="not-an-approver")
        made = approvals.delegate(session, order, task, data.user_id)  # type: ignore[arg-type]
        record(session, order, principal.username, "delegated", f"to {made.assignee_id}: {message}")
        return order, []
    approvals.close_stage(
        session, order, task, "approved" if data.action == "approve" else "rejected"
    )
    if task is not None:
        task.comment = data.comment
    stage = order.plan[order.stage]["name"]
    if data.action == "reject":
        order.state = "rejected"
        record(session, order, principal.username, "rejected", f"{stage}: {message}")
        lifecycle.tell_requester(
            session, order, "order.rejected", f"Order “{order.name}” was rejected", message
        )
        return order, []
    record(session, order, principal.username, "approved", f"{stage}: {message}")
    order.stage += 1
    return order, _advance(session, order, principal.username)


def _my_task(session: Session, principal: Principal, order: Order) -> ApprovalTask | None:
    """The principal's pending task on the current stage; the platform may decide without
    one; anyone else is refused."""
    mine = [
        t for t in approvals.pending_tasks(session, order) if t.assignee_id == principal.user_id
    ]
    if mine:
        return mine[0]
    if principal.is_platform_admin:
        return None
    raise Forbidden(
        f"you are not an approver of stage {order.stage + 1} of order {order.id}",
        code="not-an-approver",
    )


def _cancel(session: Session, principal: Principal, order: Order, comment: str) -> Order:
    if order.requested_by != principal.user_id and not principal.can("tenant:write"):
        raise Forbidden("only the requester or a tenant administrator cancels an order")
    approvals.close_stage(session, order, None, "withdrawn")
    order.state = "cancelled"
    record(session, order, principal.username, "cancelled", comment)
    return order


def escalate_due(session: Session) -> int:
    """Escalate the approval tasks whose deadline has passed (periodic)."""
    order_ids = approvals.due_orders(session)
    orders = {order_id: lock(session, order_id) for order_id in sorted(order_ids)}
    made = approvals.escalate_due(session, orders)
    for task in made:
        record(session, orders[task.order_id], "system", "escalated", f"to {task.assignee_id}")
    return len(made)


# --- fulfilment (called by the workflow) ---------------------------------------------------


def finish(session: Session, order: Order, error: str = "") -> None:
    order.state, order.error = ("failed", error) if error else ("completed", "")
    record(session, order, "system", order.state, error)
    subject = f"Order “{order.name}” {'failed' if error else 'is done'}"
    lifecycle.tell_requester(session, order, f"order.{order.state}", subject, error or "Fulfilled.")
