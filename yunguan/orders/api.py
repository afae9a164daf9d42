"""REST: /approval-policies, /orders (with their actions), /approval-tasks (the caller's
inbox), /service-instances (with day-2 actions) and /subscriptions."""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request

from yunguan.core.api import Filter, ResourceId, problem_responses
from yunguan.core.deps import DbSession, get_db
from yunguan.core.pagination import Page, Pages
from yunguan.identity.crud import Collection, add_collection
from yunguan.identity.deps import CurrentPrincipal
from yunguan.orders import approvals, lifecycle, schemas
from yunguan.orders import service as orders
from yunguan.workflows import engine
from yunguan.workflows.models import Operation

router = APIRouter(responses=problem_responses(400, 401, 403, 404, 422))
WRITES = problem_responses(409)

add_collection(
    router,
    Collection(
        "approval-policy",
        "/approval-policies",
        schemas.PolicyOut,
        schemas.PolicyCreate,
        schemas.PolicyUpdate,
        approvals.list_policies,
        approvals.create_policy,
        approvals.get_policy,
        approvals.update_policy,
        approvals.delete_policy,
        filters=("tenant_id",),
    ),
)


def _then_queue(
    request: Request, work: Callable[..., tuple[Any, list[Operation]]], *args: Any
) -> Any:
    """Run ``work(session, *args)`` (it answers a result and the operations it started) in
    a transaction of its own; once that commits, queue the operations' workflows."""
    with get_db(request).session() as session:
        result, started = work(session, *args)
        queued = [(op.id, op.kind) for op in started]
    for operation_id, kind in queued:
        engine.submit(operation_id, kind)
    return result


def _order_changed(request: Request, change: Callable[..., tuple[Any, Any]], *args: Any) -> Any:
    """``change(session, *args)`` answers an order and the operations it started: the
    answer is the order's detail, and the operations are queued after the commit."""

    def work(session: Any) -> tuple[Any, Any]:
        order, started = change(session, *args)
        return schemas.OrderDetail.model_validate(orders.describe(session, order)), started

    return _then_queue(request, work)


ORDERS = ["orders"]


@router.get("/orders", response_model=Page[schemas.OrderOut], tags=ORDERS, name="order.list")
def list_orders(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    tenant_id: Filter = None,
    state: Filter = None,
    requested_by: Filter = None,
    service_instance_id: Filter = None,
):
    rows, cursor = orders.list_orders(
        session,
        principal,
        page,
        tenant_id=tenant_id,
        state=state,
        requested_by=requested_by,
        service_instance_id=service_instance_id,
    )
    return Page(items=[schemas.OrderOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/orders",
    response_model=schemas.OrderDetail,
    status_code=201,
    tags=ORDERS,
    name="order.create",
    responses=WRITES,
)
def place_order(request: Request, principal: CurrentPrincipal, body: schemas.OrderCreate):
    """Place an order: it waits for approval, or, when no approval applies, its fulfilment
    starts at once (``state`` fulfilling, ``operation_id`` to follow)."""
    return _order_changed(request, orders.place_order, principal, body)


@router.get("/orders/{item_id}", response_model=schemas.OrderDetail, tags=ORDERS, name="order.get")
def get_order(session: DbSession, principal: CurrentPrincipal, item_id: ResourceId):
    return orders.describe(session, orders.get_order(session, principal, item_id))


@router.post(
    "/orders/{item_id}/actions",
    response_model=schemas.OrderDetail,
    tags=ORDERS,
    name="order.action",
    responses=WRITES,
)
def order_action(
    request: Request, principal: CurrentPrincipal, item_id: ResourceId, body: schemas.OrderAction
):
    """Approve, reject, delegate, comment on or cancel an order."""
    return _order_changed(request, orders.act, principal, item_id, body)


@router.post(
    "/service-instances/{item_id}/change-orders",
    response_model=schemas.OrderDetail,
    status_code=201,
    tags=ORDERS,
    name="order.change",
    responses=WRITES,
)
def place_change(
    request: Request, principal: CurrentPrincipal, item_id: ResourceId, body: schemas.ChangeCreate
):
    """A change to a service (a resize), approved like an order."""
    return _order_changed(request, orders.place_change, principal, item_id, body)


@router.get(
    "/approval-tasks",
    response_model=Page[schemas.TaskOut],
    tags=ORDERS,
    name="approval-task.list",
)
def list_tasks(session: DbSession, principal: CurrentPrincipal, page: Pages, state: Filter = None):
    """The caller's own approval inbox."""
    rows, cursor = approvals.list_tasks(session, principal, page, state)
    return Page(items=[schemas.TaskOut.model_validate(r) for r in rows], next_cursor=cursor)


SERVICES = ["service-instances"]
ServiceOut = schemas.ServiceInstanceOut


@router.get(
    "/service-instances",
    response_model=Page[ServiceOut],
    tags=SERVICES,
    name="service-instance.list",
)
def list_services(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    tenant_id: Filter = None,
    state: Filter = None,
    item_id: Filter = None,
):
    rows, cursor = lifecycle.list_services(
        session, principal, page, tenant_id=tenant_id, state=state, item_id=item_id
    )
    return Page(items=[ServiceOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get(
    "/service-instances/{item_id}",
    response_model=ServiceOut,
    tags=SERVICES,
    name="service-instance.get",
)
def get_service(session: DbSession, principal: CurrentPrincipal, item_id: ResourceId):
    return lifecycle.get_service(session, principal, item_id)


@router.post(
    "/service-instances/{item_id}/actions",
    response_model=ServiceOut,
    tags=SERVICES,
    name="service-instance.action",
    responses=WRITES,
)
def service_action(
    request: Request,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    body: schemas.ServiceAction,
):
    """Start, stop, renew, set auto-renew, unsubscribe or (the platform) reclaim."""

    def work(session: Any) -> tuple[Any, Any]:
        service, operations = lifecycle.act(session, principal, item_id, body)
        return ServiceOut.model_validate(service), operations

    return _then_queue(request, work)


@router.get(
    "/subscriptions",
    response_model=Page[schemas.SubscriptionOut],
    tags=SERVICES,
    name="subscription.list",
)
def list_subscriptions(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    tenant_id: Filter = None,
    state: Filter = None,
    service_instance_id: Filter = None,
):
    rows, cursor = lifecycle.list_subscriptions(
        session,
        principal,
        page,
        tenant_id=tenant_id,
        state=state,
        service_instance_id=service_instance_id,
    )
    return Page(items=[schemas.SubscriptionOut.model_validate(r) for r in rows], next_cursor=cursor)
