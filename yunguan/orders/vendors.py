"""External (SaaS) offerings: the vendor's endpoint (the spec's ``webhook_url``) is told in
a signed JSON POST when one of its services is provisioned, suspended (stopped or
expired), resumed (started or renewed) or released. Calls are signed like notification
webhooks (``notifications.signing``), with a secret per template derived from the platform
key: ``yunguan admin vendor-secret TEMPLATE_ID`` shows it to the operator, who gives it to
the vendor."""

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunguan.core import secrets
from yunguan.core.errors import Unprocessable
from yunguan.core.ids import new_id
from yunguan.notifications import channels
from yunguan.orders.models import Order, ServiceInstance
from yunguan.workflows.models import Operation
from yunguan.workflows.service import create_operation

CALL = "service.vendor-call"
RELEASE = "service.release"
PURPOSE = "vendor-webhooks"


def secret(template_id: str) -> str:
    """The secret that signs calls made for one service template's vendor (each vendor
    gets its own, so none can forge calls to another)."""
    return secrets.derived(f"{PURPOSE}:{template_id}")


def check_url(spec: dict[str, Any]) -> None:
    """The rendered spec of an external offering must name an http(s) endpoint (422)."""
    url = spec.get("webhook_url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        error = {"loc": ["spec", "webhook_url"], "msg": "an http(s) URL", "type": "invalid"}
        raise Unprocessable("spec.webhook_url: an http(s) URL", code="invalid-spec", errors=[error])


def tell(session: Session, service: ServiceInstance, event: str) -> Operation:
    """Queue a call telling the vendor ``event`` (a workflow makes it, with retries)."""
    return create_operation(
        session,
        kind=CALL,
        tenant_id=service.tenant_id,
        target_type="service-instance",
        target_id=service.id,
        requested_by=None,
        params={"event": event},
    )


def calls(session: Session, service: ServiceInstance, event: str) -> list[Operation]:
    """The calls made (or queued) to tell the service's vendor ``event``."""
    stmt = select(Operation).where(Operation.kind == CALL, Operation.target_id == service.id)
    return [op for op in session.scalars(stmt) if op.params.get("event") == event]


def call(order: Order, service: ServiceInstance, template_id: str, event: str) -> str:
    """POST ``event`` about ``service`` to its vendor; the call's id, which the vendor sees
    as ``X-Yunguan-Delivery``. Raises when the vendor does not take it (2xx)."""
    call_id = new_id("vc")
    payload = {
        "id": call_id,
        "event": event,
        "service_instance_id": service.id,
        "order_id": order.id,
        "tenant_id": service.tenant_id,
        "name": service.name,
        "values": order.values,
    }
    url = order.spec["webhook_url"]
    channels.post_webhook(url, secret(template_id), call_id, event, payload)
    return call_id
