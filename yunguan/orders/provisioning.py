"""What an order makes, through the compute service: the instances a spec asks for, their
quota demand, their progress, and the day-2 operations on them. Pure translation: the
callers (the order service and the fulfilment workflow) own the transactions."""

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from yunguan.compute import service as compute
from yunguan.compute.models import Instance
from yunguan.compute.schemas import InstanceCreate
from yunguan.core.errors import NotFound, Unprocessable, field_errors, summary
from yunguan.identity.scope import SYSTEM, Principal
from yunguan.orders import vendors
from yunguan.orders.models import ServiceInstance
from yunguan.quota import service as quota
from yunguan.workflows.models import Operation

EXTERNAL = "external"
INSTANCE_FIELDS = ("flavor_id", "image_id", "zone_id", "vxnet_id", "count")


def instance_requests(kind: str, spec: dict[str, Any], name: str) -> list[InstanceCreate]:
    """The instances a rendered spec of ``kind`` stands for (a 422 when the spec, once its
    parameters are filled in, does not describe valid instances); none for an external
    offering, whose vendor provisions it."""
    if kind == EXTERNAL:
        vendors.check_url(spec)
        return []
    entries = spec["instances"] if kind == "bundle" else [spec]
    try:
        return [
            InstanceCreate.model_validate(
                {"name": entry.get("name", name)}
                | {k: entry[k] for k in INSTANCE_FIELDS if entry.get(k) is not None}
            )
            for entry in entries
        ]
    except (ValidationError, AttributeError, TypeError) as exc:
        errors = (
            field_errors(exc.errors())
            if isinstance(exc, ValidationError)
            else [{"loc": ["spec"], "msg": str(exc), "type": "invalid"}]
        )
        raise Unprocessable(summary(errors), code="invalid-spec", errors=errors)


def check_requests(
    session: Session, principal: Principal, tenant_id: str, requests: Iterable[InstanceCreate]
) -> None:
    """What the requester may ask for (its flavors, images and zones: fulfilment acts as
    the platform), and a quota dry run: a 409 now if the tenant's quota already refuses it."""
    wanted: dict[str, int] = {}
    for request in requests:
        if request.zone_id and not compute.zone_usable(session, principal, request.zone_id):
            raise NotFound(f"zone {request.zone_id} not found")
        flavor = compute.get_flavor(session, principal, request.flavor_id)
        compute.get_image(session, principal, request.image_id)
        for resource, amount in compute.demand(flavor).items():
            wanted[resource] = wanted.get(resource, 0) + amount * request.count
    quota.preflight(session, tenant_id, wanted)


def provision(
    session: Session, service: ServiceInstance, requests: Iterable[InstanceCreate]
) -> list[Operation]:
    """Ask compute for the instances; they are recorded on the service instance."""
    operations = []
    for request in requests:
        made = compute.request_create(
            session, SYSTEM, request.model_copy(update={"tenant_id": service.tenant_id})
        )
        service.resources = [
            *service.resources,
            *({"type": "instance", "id": instance.id} for instance, _ in made),
        ]
        operations += [operation for _, operation in made]
    return operations


def _instances(session: Session, service: ServiceInstance) -> list[Instance]:
    return compute.instances_by_id(
        session, [r["id"] for r in service.resources if r["type"] == "instance"]
    )


def progress(session: Session, service: ServiceInstance) -> tuple[str, str]:
    """(``ready`` | ``waiting`` | ``failed``, why) of a service instance's resources."""
    instances = _instances(session, service)
    broken = [i for i in instances if i.state in ("error", "deleted")]
    if broken:
        return "failed", f"instance {broken[0].id} is {broken[0].state}: {broken[0].error_reason}"
    if all(i.state == "running" for i in instances):
        return "ready", ""
    return "waiting", ""


def _each(
    session: Session, service: ServiceInstance, states: tuple[str, ...], call: Callable
) -> list[Operation]:
    return [call(i)[1] for i in _instances(session, service) if i.state in states]


def power(session: Session, service: ServiceInstance, action: str) -> list[Operation]:
    """Start or stop the service's instances that are not there already (an external
    service's vendor is told to resume or suspend it)."""
    if service.kind == EXTERNAL:
        event = "service.resume" if action == "start" else "service.suspend"
        return [vendors.tell(session, service, event)]
    resting = "stopped" if action == "start" else "running"
    return _each(
        session,
        service,
        (resting,),
        lambda i: compute.request_action(session, SYSTEM, i.id, action),
    )


def release(session: Session, service: ServiceInstance) -> list[Operation]:
    """Delete every instance of the service that is settled (the rest are already going);
    an external service's vendor is told to release it."""
    if service.kind == EXTERNAL:
        return [vendors.tell(session, service, "service.release")]
    return _each(
        session, service, compute.SETTLED, lambda i: compute.request_delete(session, SYSTEM, i.id)
    )


def resize(session: Session, service: ServiceInstance, flavor_id: str) -> list[Operation]:
    """Resize the service's stopped instances to ``flavor_id``."""
    return _each(
        session,
        service,
        ("stopped",),
        lambda i: compute.request_action(session, SYSTEM, i.id, "resize", flavor_id),
    )


def changes_size(session: Session, service: ServiceInstance, flavor_id: str) -> bool:
    """Whether some instance of the service would change size with ``flavor_id``."""
    return any(i.flavor_id != flavor_id for i in _instances(session, service))


def released(session: Session, service: ServiceInstance) -> bool:
    return all(i.state == "deleted" for i in _instances(session, service))
