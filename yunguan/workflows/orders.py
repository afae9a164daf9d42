"""Order fulfilment and the subscription clock.

``order.fulfil``: the order's service instance is made and compute and network are asked for
its instances, a bundle's network and its EIP's address (one step, one transaction); the
instances' own workflows provision them. Once every instance runs, a second step asks for
the bundle's volumes (attached) and binds the EIP; once those are ready too, the service and
its subscription are activated and the order completes. A refusal or a failed instance fails
the order and gives back what was made. The workflow id is the operation id, which an order
gets once (under its row lock), so however many approvals race, an order is fulfilled once.

A change order (a resize) runs three phases on the service's instances, each waiting
for the compute operations it started: stop, resize, start.

``lifecycle``: every minute, due reminders, expiries, releases and escalations.
"""

from datetime import datetime
from typing import Any

from dbos import DBOS

from yunguan.catalog import service as catalog
from yunguan.core.clock import now
from yunguan.core.config import get_settings
from yunguan.core.db import get_database
from yunguan.core.errors import Problem
from yunguan.identity.scope import SYSTEM
from yunguan.orders import lifecycle, plans, provisioning, vendors
from yunguan.orders import service as orders
from yunguan.workflows import engine
from yunguan.workflows.service import advance, load, outcome, pending_operations

step = DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0.5)


def _queue(operations: list[tuple[str, str]]) -> None:
    for operation_id, kind in operations:
        engine.submit(operation_id, kind)


def _plan(session: Any, order: Any) -> plans.Plan:
    kind = catalog.template_of(session, order.template_version_id).kind
    return plans.plan(kind, order.spec, order.name)


@step
def _order_provision(operation_id: str, order_id: str) -> tuple[str, list[tuple[str, str]]]:
    """(refusal, the compute operations to queue) of the first phase. Run again after a
    crash, it finds the service instance it made and asks for nothing more (its operations
    not started yet are queued again, which runs each once). An external offering asks
    compute for nothing: its vendor is called next."""
    with get_database().session() as session:
        advance(operation_id, state="running", step="provision", progress=10, session=session)
        order = orders.lock(session, order_id)
        item_kind = catalog.template_of(session, order.template_version_id).kind
        service = lifecycle.begin(session, order, item_kind)
        if service.resources:  # made before a crash: queue what has not started
            return "", pending_operations([r["id"] for r in service.resources])
        try:
            with session.begin_nested():
                made = provisioning.provision(session, service, _plan(session, order))
        except Problem as exc:
            return f"{exc.title}: {exc.detail}", []
        return "", [(op.id, op.kind) for op in made]


@step
def _order_complete(operation_id: str, order_id: str) -> tuple[str, list[tuple[str, str]]]:
    """(refusal, the operations to queue) of the second phase, once the instances run:
    volumes attached to them and the EIP bound. Run again after a crash, it makes nothing
    twice."""
    with get_database().session() as session:
        advance(operation_id, step="attach", progress=70, session=session)
        order = orders.lock(session, order_id)
        service = lifecycle.of_order(session, order_id)
        try:
            plan = _plan(session, order)
            if provisioning.completed(session, service, plan):
                return "", pending_operations([r["id"] for r in service.resources])
            with session.begin_nested():
                made = provisioning.complete(session, service, plan)
        except Problem as exc:
            return f"{exc.title}: {exc.detail}", []
        return "", [(op.id, op.kind) for op in made]


@DBOS.step(retries_allowed=True, max_attempts=4, interval_seconds=0.5, backoff_rate=3)
def _order_vendor(order_id: str) -> None:
    """Tell an external offering's vendor to provision the service (outside any
    transaction); the call's id becomes the service's reference. Raises, and is retried,
    until the vendor takes it. A crash after the call calls again: vendors deduplicate on
    ``service_instance_id``."""
    with get_database().session(write=False) as session:
        service = lifecycle.of_order(session, order_id)
        order = orders.get_order(session, SYSTEM, order_id)
        template_id = catalog.template_of(session, order.template_version_id).id
    if service.kind != plans.EXTERNAL or service.external_ref:
        return
    reference = vendors.call(order, service, template_id, "service.provision")
    with get_database().session() as session:
        lifecycle.lock(session, service.id).external_ref = reference


def _vendor_error(order_id: str) -> str:
    try:
        _order_vendor(order_id)
    except Exception as exc:  # the vendor kept refusing: the order fails
        return f"the vendor did not take the order: {exc}"
    return ""


@step
def _order_waiting(operation_id: str, progress: int) -> float:
    advance(operation_id, step="wait-resources", progress=progress)
    return now().timestamp() + get_settings().provision_timeout_seconds


@step
def _order_progress(order_id: str, deadline: float) -> tuple[str, str]:
    with get_database().session(write=False) as session:
        state, why = provisioning.progress(session, lifecycle.of_order(session, order_id))
    if state == "waiting" and now().timestamp() > deadline:
        return "failed", "the resources did not become ready in time"
    return state, why


def _ready(operation_id: str, order_id: str, progress: int) -> str:
    """Wait (up to the provision timeout) until the service's resources are ready: "" or
    why they will not be."""
    return _poll(_order_progress, order_id, _order_waiting(operation_id, progress))[1]


def _close(session: Any, operation_id: str, order: Any, error: str) -> None:
    orders.finish(session, order, error)
    state = "failed" if error else "succeeded"
    advance(operation_id, state=state, step="done", progress=100, error=error, session=session)


@step
def _order_finish(operation_id: str, order_id: str, error: str) -> list[tuple[str, str]]:
    """Complete the order (the service is active, its subscription runs) or fail it and
    give back what was made. Run again after a crash, it finds the order closed."""
    with get_database().session() as session:
        order = orders.lock(session, order_id)
        if order.state != "fulfilling":
            return []
        service = lifecycle.of_order(session, order_id)
        undo = lifecycle.fail(session, service) if error else []
        if not error:
            lifecycle.activate(session, service, order)
        _close(session, operation_id, order, error)
        return [(op.id, op.kind) for op in undo]


@step
def _order_change(
    operation_id: str, order_id: str, phase: str, progress: int
) -> tuple[str, list[tuple[str, str]]]:
    """(refusal, the compute operations started) of one phase of a resize. The service
    must still be active: it may have expired or gone since the change was approved."""
    with get_database().session() as session:
        advance(operation_id, state="running", step=phase, progress=progress, session=session)
        order = orders.lock(session, order_id)
        service = lifecycle.lock(session, order.service_instance_id)  # type: ignore[arg-type]
        if service.state != "active":
            return f"the service is {service.state}", []
        try:
            with session.begin_nested():
                if phase == "resize":
                    made = provisioning.resize(session, service, order.spec["resize"])
                else:
                    made = provisioning.power(session, service, phase)
        except Problem as exc:
            return f"{exc.title}: {exc.detail}", []
        return "", [(op.id, op.kind) for op in made]


@step
def _order_changed(operation_id: str, order_id: str, error: str) -> None:
    with get_database().session() as session:
        order = orders.lock(session, order_id)
        if order.state == "fulfilling":
            _close(session, operation_id, order, error)


def _poll(check: Any, *args: Any) -> Any:
    """Call the step ``check`` until its first value is no longer ``waiting`` (a durable
    sleep between calls, growing to 2 s)."""
    pause = 0.2
    answer = check(*args)
    while answer[0] == "waiting":
        DBOS.sleep(pause)
        pause = min(pause * 2, 2.0)
        answer = check(*args)
    return answer


@step
def _order_operations_ended(operation_ids: list[str]) -> tuple[str, str]:
    ended, error = outcome(operation_ids)
    return ("ended" if ended else "waiting"), error


def _phase(operation_id: str, order_id: str, phase: str, progress: int) -> str:
    """Run one phase of a resize and wait for its compute operations; what went wrong."""
    refusal, started = _order_change(operation_id, order_id, phase, progress)
    _queue(started)
    _, error = _poll(_order_operations_ended, [op_id for op_id, _ in started])
    return f"{phase}: {refusal or error}" if refusal or error else ""


def _resize(operation_id: str, order_id: str) -> str:
    """Stop, resize, start. The instances are started again whether the resize worked or
    not (unless the service is no longer active)."""
    error = _phase(operation_id, order_id, "stop", 20)
    error = error or _phase(operation_id, order_id, "resize", 50)
    restarted = _phase(operation_id, order_id, "start", 80)
    return error or restarted


@DBOS.workflow()
def fulfil_order(operation_id: str) -> str:
    operation = load(operation_id)
    order_id = operation.target_id  # type: ignore[union-attr]
    if operation.params.get("order_kind") == "change":  # type: ignore[union-attr]
        error = _resize(operation_id, order_id)
        _order_changed(operation_id, order_id, error)
        return "failed" if error else "completed"
    error, made = _order_provision(operation_id, order_id)
    _queue(made)
    error = error or _vendor_error(order_id)
    error = error or _ready(operation_id, order_id, 40)  # the instances run
    if not error:  # then what attaches to them
        error, made = _order_complete(operation_id, order_id)
        _queue(made)
        error = error or _ready(operation_id, order_id, 80)
    _queue(_order_finish(operation_id, order_id, error))
    return "failed" if error else "completed"


@step
def _services_tick() -> list[tuple[str, str]]:
    with get_database().session() as session:
        orders.escalate_due(session)
    return lifecycle.tick(get_database())


@DBOS.workflow()
def service_lifecycle(scheduled_time: datetime, context: Any) -> int:
    due = _services_tick()
    _queue(due)
    return len(due)


@DBOS.step(retries_allowed=True, max_attempts=5, interval_seconds=1, backoff_rate=3)
def _vendor_call(operation_id: str) -> None:
    operation = load(operation_id)
    with get_database().session(write=False) as session:
        service, order = lifecycle.with_order(session, operation.target_id)  # type: ignore[union-attr]
        template_id = catalog.template_of(session, order.template_version_id).id
    vendors.call(order, service, template_id, operation.params["event"])  # type: ignore[union-attr]


@DBOS.workflow()
def call_vendor(operation_id: str) -> str:
    """Tell an external service's vendor what became of it, retried with backoff."""
    advance(operation_id, state="running", step="call", progress=10)
    try:
        _vendor_call(operation_id)
    except Exception as exc:  # the vendor kept refusing: recorded on the operation
        advance(operation_id, state="failed", step="done", progress=100, error=str(exc)[:2000])
        return "failed"
    advance(operation_id, state="succeeded", step="done", progress=100)
    return "called"


WORKFLOWS = {orders.FULFIL: fulfil_order, vendors.CALL: call_vendor}
