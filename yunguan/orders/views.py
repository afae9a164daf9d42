"""Portal pages of orders, for every tenant user: the catalog, with an order form made from
each item's parameters; one's orders with their approval plan, tasks and timeline; the
approvals inbox; one's services with their subscription and day-2 actions. Every change goes
through the orders services, as the API's do, and the workflows it starts are queued once
its transaction has committed (``web.portal.submit_work``)."""

from collections.abc import Sequence
from contextlib import suppress
from operator import attrgetter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from yunguan.catalog import service as catalog
from yunguan.catalog.models import CatalogItem
from yunguan.catalog.parameters import Parameter
from yunguan.compute import service as compute
from yunguan.core.errors import NotFound, Problem, field_errors
from yunguan.identity import service as identity
from yunguan.identity.scope import Principal, get_visible
from yunguan.orders import approvals, lifecycle, provisioning, schemas
from yunguan.orders import service as orders
from yunguan.orders.models import Order, ServiceInstance
from yunguan.web.portal import ALL, FormText, Panel, page, page_principal, panel, submit_work
from yunguan.workflows import service as operations
from yunguan.workflows.models import Operation

router = APIRouter(include_in_schema=False)
Comment = Annotated[str, Form(max_length=1024)]
FIELD = "values."  # an order form names a parameter's field values.<name>, as its errors do
TERMS = (0, 1, 3, 6, 12, 24, 36)
# what the service page offers -> the service states it needs (as lifecycle.act checks)
OFFERED = {
    "start": ("active",),
    "stop": ("active",),
    "resize": ("active",),
    "renew": ("active", "expired"),
    "set-auto-renew": ("active", "expired"),
    "unsubscribe": ("active", "expired"),
    "reclaim": ("active", "expired"),
}
WORKING_SERVICE = ("provisioning", "releasing")


async def posted_form(request: Request) -> dict[str, str]:
    """Every text field of a posted form (an order form's fields follow its item)."""
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


PostedForm = Annotated[dict[str, str], Depends(posted_form)]


def _go(request: Request, url: str) -> Response:
    """Send the browser to ``url``: HTMX follows ``HX-Redirect``, a plain form post a 303."""
    if request.headers.get("hx-request"):
        return Response(headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def _to_order(placed: list[str], otherwise: Panel) -> Panel:
    """The answer to a form that places an order: the order's page once it is placed, else
    ``otherwise`` with the error."""

    def answer(
        request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
    ) -> Response:
        if placed and error is None:
            return _go(request, f"/orders/{placed[0]}")
        return otherwise(request, principal, error=error, status=status)

    return answer


def _names(session: Session, principal: Principal) -> dict[str, dict[str, str]]:
    """Names for the ids the order pages show: catalog items and people the principal sees
    (others stay ids)."""
    items, _ = catalog.list_items(session, principal, ALL)
    users, _ = identity.list_users(session, principal, ALL)
    people = {u.id: u.username for u in users} | {principal.user_id: principal.username}
    return {"item_names": {i.id: i.name for i in items}, "people": people}


# --- the catalog and its order forms --------------------------------------------------------


def _catalog_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        categories, _ = catalog.list_categories(session, principal, ALL)
        items, _ = catalog.list_items(session, principal, ALL)
    shelves = [
        (
            category,
            sorted((i for i in items if i.category_id == category.id), key=attrgetter("name")),
        )
        for category in sorted(categories, key=lambda c: (c.sort_order, c.name))
    ]
    return panel(
        request,
        "orders_catalog.html",
        principal,
        status,
        shelves=[(category, shelf) for category, shelf in shelves if shelf],
        error=error,
        notice=notice,
    )


@router.get("/catalog", response_class=HTMLResponse)
def catalog_page(request: Request) -> Response:
    intro = "What your organisation can order, by category. Prices are per month."
    return page(request, "Catalog", _catalog_panel, intro)


def _parameters(item: CatalogItem) -> list[Parameter]:
    return [Parameter.model_validate(p) for p in item.parameters]  # type: ignore[attr-defined]


def _order_form(typed: dict[str, str] | None = None, faults: dict[str, str] | None = None) -> Panel:
    """The order form of the item in the path: blank (its defaults), or as it was posted
    (``typed``) with the faults found in it by field."""

    def render(
        request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
    ) -> Response:
        with request.app.state.db.session(write=False) as session:
            item = catalog.get_item(session, principal, request.path_params["item_id"])
        return panel(
            request,
            "orders_order_form.html",
            principal,
            status,
            item=item,
            parameters=_parameters(item),
            typed=typed,
            faults=faults or {},
            terms=TERMS,
            error=error,
            notice=notice,
        )

    return render


@router.get("/catalog/{item_id}", response_class=HTMLResponse)
def order_form_page(request: Request, item_id: str) -> Response:
    return page(request, "New order", _order_form())


def _typed_value(parameter: Parameter, text: str) -> Any:
    """A field's text as the JSON value its parameter's type wants (an integer as int, a
    number as int or float); text that is no such value goes on as it is, for the service
    to say what is wrong with it."""
    kinds = {"integer": (int,), "number": (int, float)}.get(parameter.type, ())
    for kind in kinds:
        with suppress(ValueError):
            return kind(text)
    return text


def _values(parameters: Sequence[Parameter], form: dict[str, str]) -> dict[str, Any]:
    """An order's values from its form: a checkbox is true when sent; a blank field is not
    given (its default applies)."""
    values: dict[str, Any] = {}
    for parameter in parameters:
        field = FIELD + parameter.name
        if parameter.type == "boolean":
            values[parameter.name] = field in form
        elif form.get(field, "") != "":
            values[parameter.name] = _typed_value(parameter, form[field])
    return values


def _faults(exc: Problem | ValidationError) -> dict[str, str]:
    """Each fault of a refused form by the field it belongs to."""
    errors = (
        field_errors(exc.errors())
        if isinstance(exc, ValidationError)
        else exc.extra.get("errors", [])
    )
    return {".".join(error["loc"]): error["msg"] for error in errors}


@router.post("/catalog/{item_id}", name="order.create")
def order_place(request: Request, item_id: str, form: PostedForm) -> Response:
    """Place an order from the form; its page follows, or the form again, as it was typed,
    with each fault next to its field."""
    faults: dict[str, str] = {}
    placed: list[str] = []

    def change(session: Session, principal: Principal) -> tuple[str, list[Operation]]:
        item = catalog.get_item(session, principal, item_id)
        try:
            data = schemas.OrderCreate.model_validate(
                {
                    "item_id": item.id,
                    "name": form.get("name", ""),
                    "values": _values(_parameters(item), form),
                    "term_months": form.get("term_months") or 0,
                    "auto_renew": "auto_renew" in form,
                }
            )
            order, started = orders.place_order(session, principal, data)
        except (Problem, ValidationError) as exc:
            faults.update(_faults(exc))
            raise
        placed.append(order.id)
        return f"Placed order “{order.name}”.", started

    return submit_work(request, _to_order(placed, _order_form(form, faults)), change)


# --- orders ----------------------------------------------------------------------------------


def _orders_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        rows, more = orders.list_orders(session, principal, ALL)
        names = _names(session, principal)
    return panel(
        request,
        "orders_list.html",
        principal,
        status,
        orders=rows,
        more=more,
        error=error,
        notice=notice,
        **names,
    )


@router.get("/orders", response_class=HTMLResponse)
def orders_page(request: Request) -> Response:
    intro = "Orders of your organisation, newest first, with where each one stands."
    return page(request, "My orders", _orders_panel, intro)


def _stage_states(order: Order) -> list[str]:
    """Where each stage of the order's plan stands."""
    current = {"pending-approval": "pending", "rejected": "rejected", "cancelled": "withdrawn"}
    ongoing = current.get(order.state)
    states = []
    for number in range(len(order.plan)):
        if ongoing is None or number < order.stage:
            states.append("approved")
        else:
            states.append(ongoing if number == order.stage else "waiting")
    return states


def _described(session: Session, principal: Principal, order: Order) -> dict[str, Any]:
    """The order with its fulfilment's progress, its approval tasks and its timeline."""
    operation = None
    if order.operation_id:
        with suppress(NotFound):
            operation = operations.get_operation(session, principal, order.operation_id)
    detail = orders.describe(session, order)
    return {
        "o": order,
        "operation": operation,
        "events": detail["events"],
        "tasks": detail["tasks"],
    }


def _order(session: Session, principal: Principal, order_id: str) -> dict[str, Any]:
    """The order page: its state, plan, tasks, timeline and what the principal may do."""
    order = orders.get_order(session, principal, order_id)
    context = _described(session, principal, order) | _names(session, principal)
    pending = order.state == "pending-approval"
    assigned = [t for t in context["tasks"] if t.assignee_id == principal.user_id]
    mine = [t for t in assigned if t.state == "pending" and t.stage == order.stage]
    requester = order.requested_by == principal.user_id
    delegates = []
    if pending and mine:
        users, _ = identity.list_users(session, principal, ALL, state="active")
        delegates = sorted(
            (u for u in users if u.id != principal.user_id), key=attrgetter("username")
        )
    flavors = {}
    if order.kind == "change":
        flavors = {f.id: f.name for f in compute.list_flavors(session, principal, ALL)[0]}
    return context | {
        "stages": list(zip(order.plan, _stage_states(order), strict=True)),
        "can_decide": pending and (bool(mine) or principal.is_platform_admin),
        "delegates": delegates,
        "can_comment": requester or bool(assigned) or principal.is_platform_admin,
        "can_cancel": pending and (requester or principal.can("tenant:write")),
        "flavor_names": flavors,
    }


def _order_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        context = _order(session, principal, request.path_params["order_id"])
    return panel(
        request, "orders_order.html", principal, status, error=error, notice=notice, **context
    )


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(request: Request, order_id: str) -> Response:
    return page(request, "Order", _order_panel)


@router.get("/orders/{order_id}/state", response_class=HTMLResponse)
def order_state(request: Request, order_id: str) -> Response:
    """The order's state part, polled while it is fulfilled; its timeline comes along (an
    out-of-band swap), so the page is current once the order settles."""
    principal = page_principal(request)
    with request.app.state.db.session(write=False) as session:
        context = _described(session, principal, orders.get_order(session, principal, order_id))
    return panel(request, "orders_order_state.html", principal, 200, oob=True, **context)


def _decided(order: Order, data: schemas.OrderAction) -> str:
    if data.action == "approve":
        then = " Its fulfilment has started." if order.state == "fulfilling" else ""
        return f"Approved “{order.name}”.{then}"
    return {
        "reject": f"Rejected “{order.name}”.",
        "delegate": f"Delegated “{order.name}”.",
        "comment": "Comment added.",
        "cancel": f"Cancelled “{order.name}”.",
    }[data.action]


@router.post("/orders/{order_id}/actions", name="order.action")
def order_action(
    request: Request,
    order_id: str,
    action: FormText = "",
    comment: Comment = "",
    user_id: FormText = "",
    view: FormText = "order",
) -> Response:
    """Approve, reject, delegate, comment on or cancel the order; answer the view it was
    asked from (the order's page, or the approvals inbox)."""

    def change(session: Session, principal: Principal) -> tuple[str, list[Operation]]:
        data = schemas.OrderAction.model_validate(
            {"action": action, "comment": comment, "user_id": user_id or None}
        )
        order, started = orders.act(session, principal, order_id, data)
        return _decided(order, data), started

    answer = _approvals_panel if view == "inbox" else _order_panel
    return submit_work(request, answer, change)


# --- the approvals inbox ---------------------------------------------------------------------


def _approvals_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        tasks, more = approvals.list_tasks(session, principal, ALL, "pending")
        waiting = orders.orders_by_id(session, principal, {t.order_id for t in tasks})
        names = _names(session, principal)
    return panel(
        request,
        "orders_approvals.html",
        principal,
        status,
        tasks=[(task, waiting[task.order_id]) for task in tasks if task.order_id in waiting],
        more=more,
        error=error,
        notice=notice,
        **names,
    )


@router.get("/approvals", response_class=HTMLResponse)
def approvals_page(request: Request) -> Response:
    intro = "Orders waiting for your decision. Approving the last stage starts the fulfilment."
    return page(request, "Approvals", _approvals_panel, intro)


# --- services --------------------------------------------------------------------------------


def _services_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        rows, more = lifecycle.list_services(session, principal, ALL)
        names = _names(session, principal)
    return panel(
        request,
        "orders_services.html",
        principal,
        status,
        services=rows,
        more=more,
        error=error,
        notice=notice,
        **names,
    )


@router.get("/services", response_class=HTMLResponse)
def services_page(request: Request) -> Response:
    intro = "What your orders made: each service with its subscription and its resources."
    return page(request, "My services", _services_panel, intro)


RESTING = (*compute.SETTLED, "deleted", "available", "in-use")
"""Where instances and volumes rest: the service page stops polling."""


def _resources(
    session: Session, principal: Principal, service: ServiceInstance
) -> list[tuple[dict[str, str], Any]]:
    """The service's resources, each with its row (None: gone, or not one the principal
    sees)."""
    found = []
    for resource in service.resources:
        row = None
        with suppress(NotFound):
            model = provisioning.MODELS[resource["type"]]
            row = get_visible(session, model, resource["id"], principal, lifecycle.READ)
        found.append((resource, row))
    return found


def _service(session: Session, principal: Principal, service_id: str) -> dict[str, Any]:
    service = lifecycle.get_service(session, principal, service_id)
    resources = _resources(session, principal, service)
    flavors, _ = compute.list_flavors(session, principal, ALL)
    history, _ = orders.list_orders(session, principal, ALL, service_instance_id=service.id)
    return _names(session, principal) | {
        "s": service,
        "sub": service.subscription,  # type: ignore[attr-defined]
        "resources": resources,
        "working": service.state in WORKING_SERVICE
        or any(getattr(row, "state", "deleted") not in RESTING for _, row in resources),
        "offered": [
            action
            for action, states in OFFERED.items()
            if service.state in states and (action != "reclaim" or principal.is_platform_admin)
        ],
        "flavors": flavors,
        "history": history,
    }


def _service_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        context = _service(session, principal, request.path_params["service_id"])
    return panel(
        request, "orders_service.html", principal, status, error=error, notice=notice, **context
    )


@router.get("/services/{service_id}", response_class=HTMLResponse)
def service_page(request: Request, service_id: str) -> Response:
    """The service's page; HTMX gets its panel alone, which polls itself while work runs."""
    return page(request, "Service", _service_panel)


def _done(service: ServiceInstance, data: schemas.ServiceAction) -> str:
    subscription = service.subscription  # type: ignore[attr-defined]
    if data.action == "renew":
        return f"Renewed “{service.name}” until {subscription.expires_at:%Y-%m-%d %H:%M} UTC."
    if data.action == "set-auto-renew":
        return f"Auto-renew is {'on' if data.auto_renew else 'off'}."
    return {
        "start": f"Starting “{service.name}”.",
        "stop": f"Stopping “{service.name}”.",
        "unsubscribe": f"Unsubscribed: “{service.name}” is being released.",
        "reclaim": f"Reclaimed: “{service.name}” is being released.",
    }[data.action]


@router.post("/services/{service_id}/actions", name="service-instance.action")
def service_action(
    request: Request,
    service_id: str,
    action: FormText = "",
    months: FormText = "",
    auto_renew: FormText = "",
) -> Response:
    """Start, stop, renew, set auto-renew, unsubscribe or (the platform) reclaim."""

    def change(session: Session, principal: Principal) -> tuple[str, list[Operation]]:
        data = schemas.ServiceAction.model_validate(
            {"action": action, "months": months or None, "auto_renew": auto_renew or None}
        )
        service, started = lifecycle.act(session, principal, service_id, data)
        return _done(service, data), started

    return submit_work(request, _service_panel, change)


@router.post("/services/{service_id}/change-orders", name="order.change")
def service_resize(
    request: Request, service_id: str, flavor_id: FormText = "", comment: Comment = ""
) -> Response:
    """Order a resize of the service; the change order's page follows."""
    placed: list[str] = []

    def change(session: Session, principal: Principal) -> tuple[str, list[Operation]]:
        data = schemas.ChangeCreate.model_validate({"flavor_id": flavor_id, "comment": comment})
        order, started = orders.place_change(session, principal, service_id, data)
        placed.append(order.id)
        return f"Placed a change of “{order.name}”.", started

    return submit_work(request, _to_order(placed, _service_panel), change)
