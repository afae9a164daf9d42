"""What an order makes, through the compute and network services, and the day-2 operations
on it. Pure translation: the callers (the order service, the fulfilment workflow and the
lifecycle rules) own the transactions.

A service records its resources in ``ServiceInstance.resources`` as ``{"type", "id"}``
(an instance also names its plan entry; a volume the operation that makes it). They are
made in two phases: first the network, the instances and the EIP's address; once the
instances run, the volumes (attached) and the EIP's binding. They are released in the
opposite order over as many calls as it takes (each call does what can be done now): the
EIPs and instances first, then, once the instances are gone, the volumes, the vxnet and
the VPC."""

from collections.abc import Callable
from contextlib import suppress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunguan.compute import service as compute
from yunguan.compute import volumes as compute_volumes
from yunguan.compute.models import Instance, Volume
from yunguan.compute.schemas import VolumeCreate
from yunguan.core.errors import Problem
from yunguan.identity.scope import SYSTEM
from yunguan.network import eips, vpcs
from yunguan.network.models import Eip, Vpc, Vxnet
from yunguan.network.schemas import EipAction, EipCreate, VpcCreate, VxnetCreate
from yunguan.orders import vendors
from yunguan.orders.models import ServiceInstance
from yunguan.orders.plans import EXTERNAL, Plan
from yunguan.workflows.models import Operation

GONE = ("deleted",)
ENDED = ("succeeded", "failed")
BUSY_VOLUME = ("creating", "attaching", "detaching", "extending")
MODELS: dict[str, Any] = {
    "instance": Instance,
    "volume": Volume,
    "eip": Eip,
    "vxnet": Vxnet,
    "vpc": Vpc,
}
"""The model of each type of resource a service records."""
NETWORK: dict[str, tuple[Any, Callable]] = {
    "eip": (Eip, eips.delete_eip),
    "vxnet": (Vxnet, vpcs.delete_vxnet),
    "vpc": (Vpc, vpcs.delete_vpc),
}


def _ids(service: ServiceInstance, kind: str, entry: str | None = None) -> list[str]:
    """The ids of the service's resources of ``kind`` (of one plan entry), in the order
    they were made."""
    return [
        r["id"]
        for r in service.resources
        if r["type"] == kind and (entry is None or r.get("entry") == entry)
    ]


def _record(service: ServiceInstance, kind: str, ident: str, **about: str) -> None:
    service.resources = [*service.resources, {"type": kind, "id": ident, **about}]


# --- making --------------------------------------------------------------------------------


def provision(session: Session, service: ServiceInstance, plan: Plan) -> list[Operation]:
    """The first phase: the bundle's network, the instances (compute provisions them) and
    the EIP's address (so a full pool fails the order before anything boots)."""
    tenant = {"tenant_id": service.tenant_id}
    place: dict[str, str] = {}
    if plan.network is not None:
        network = plan.network
        vpc = vpcs.create_vpc(
            session,
            SYSTEM,
            VpcCreate(name=service.name, zone_id=network.zone_id, cidr=network.cidr, **tenant),
        )
        cidr = network.vxnet_cidr or network.cidr
        vxnet = vpcs.create_vxnet(
            session, SYSTEM, VxnetCreate(name=service.name, vpc_id=vpc.id, cidr=cidr)
        )
        _record(service, "vpc", vpc.id)
        _record(service, "vxnet", vxnet.id)
        place = {"zone_id": network.zone_id, "vxnet_id": vxnet.id}
    operations = []
    for entry, request in plan.instances:
        made = compute.request_create(session, SYSTEM, request.model_copy(update=tenant | place))
        for instance, operation in made:
            _record(service, "instance", instance.id, entry=entry)
            operations.append(operation)
    if plan.eip is not None:
        zone_id = _instances_of(session, service, plan.eip_entry())[0].zone_id
        eip = eips.create_eip(
            session,
            SYSTEM,
            EipCreate(
                zone_id=zone_id, name=service.name, bandwidth_mbps=plan.eip.bandwidth_mbps, **tenant
            ),
        )
        _record(service, "eip", eip.id)
    return operations


def complete(session: Session, service: ServiceInstance, plan: Plan) -> list[Operation]:
    """The second phase, once the instances run: a volume for each instance of each
    volume's entry (attached when made), and the EIP bound to its instance's port."""
    operations = []
    for volume in plan.volumes:
        for instance in _instances_of(session, service, volume.instance):
            request = VolumeCreate(
                name=volume.name,
                size_gb=volume.size_gb,
                instance_id=instance.id,
                tenant_id=service.tenant_id,
            )
            made, operation = compute_volumes.request_create(session, SYSTEM, request)
            _record(service, "volume", made.id, operation_id=operation.id)
            operations.append(operation)
    for eip_id in _ids(service, "eip"):
        port_id = _instances_of(session, service, plan.eip_entry())[0].port_id
        eips.act(session, SYSTEM, eip_id, EipAction(action="bind", port_id=port_id))
    return operations


def completed(session: Session, service: ServiceInstance, plan: Plan) -> bool:
    """Whether the second phase ran (one transaction): its volumes are recorded, or, with
    none to make, its EIP is bound."""
    if plan.volumes:
        return bool(_ids(service, "volume"))
    return all(session.get(Eip, eip_id).port_id for eip_id in _ids(service, "eip"))  # type: ignore[union-attr]


def _instances_of(session: Session, service: ServiceInstance, entry: str) -> list[Instance]:
    """The instances of a plan entry, in the order they were made."""
    ids = _ids(service, "instance", entry)
    found = {i.id: i for i in compute.instances_by_id(session, ids)}
    return [found[i] for i in ids]


def _instances(session: Session, service: ServiceInstance) -> list[Instance]:
    return compute.instances_by_id(session, _ids(service, "instance"))


def _volumes(session: Session, service: ServiceInstance) -> list[Volume]:
    ids = _ids(service, "volume")
    return list(session.scalars(select(Volume).where(Volume.id.in_(ids)).order_by(Volume.id)))


def progress(session: Session, service: ServiceInstance) -> tuple[str, str]:
    """(``ready`` | ``waiting`` | ``failed``, why) of a service's instances and volumes. A
    volume's failure counts once every volume's making has ended (none is left attaching
    to an instance about to be deleted)."""
    instances = _instances(session, service)
    broken = [i for i in instances if i.state in ("error", "deleted")]
    if broken:
        return "failed", f"instance {broken[0].id} is {broken[0].state}: {broken[0].error_reason}"
    makers = [r["operation_id"] for r in service.resources if r["type"] == "volume"]
    made = list(session.scalars(select(Operation).where(Operation.id.in_(makers))))
    if any(op.state not in ENDED for op in made):
        return "waiting", ""
    for operation in made:  # a failed attach leaves its volume available
        if operation.state == "failed":
            return "failed", f"volume {operation.target_id}: {operation.error}"
    running = all(i.state == "running" for i in instances)
    attached = all(v.state == "in-use" for v in _volumes(session, service))
    return ("ready", "") if running and attached else ("waiting", "")


# --- day 2 ---------------------------------------------------------------------------------


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


# --- giving back ---------------------------------------------------------------------------


def release(session: Session, service: ServiceInstance) -> list[Operation]:
    """The next steps of giving everything back (an external service's vendor is told to
    release it, until it takes the call). The EIPs now; the instances that are settled,
    once no volume is being attached or detached; once every instance is gone, the volumes
    they left detached, the vxnet and the VPC. What the tenant has since tied to something
    of its own (a volume attached to another instance, a port or vxnet of its own in the
    network) cannot go: it is kept, marked with why, and stays the tenant's."""
    if service.kind == EXTERNAL:  # once, or again after a call that failed for good
        if any(op.state != "failed" for op in vendors.calls(session, service, vendors.RELEASE)):
            return []
        return [vendors.tell(session, service, vendors.RELEASE)]
    _delete_network(session, service, "eip")
    volumes = _volumes(session, service)
    if any(v.state in BUSY_VOLUME for v in volumes):
        return []  # the instances go once their volumes rest
    instances = _instances(session, service)
    settled = [i.id for i in instances if i.state in compute.SETTLED]
    operations = _attempt_each(session, compute.request_delete, settled)
    if any(i.state not in GONE for i in instances):
        return operations
    for volume in volumes:
        if volume.state == "in-use":
            _keep(service, volume.id, f"attached to {volume.instance_id}")
    resting = [v.id for v in volumes if v.state in ("available", "error")]
    operations += _attempt_each(session, compute_volumes.request_delete, resting)
    _delete_network(session, service, "vxnet")
    _delete_network(session, service, "vpc")
    return operations


def _attempt_each(session: Session, request: Callable, idents: list[str]) -> list[Operation]:
    """The operations ``request`` starts on each of ``idents``; one refused now (it became
    busy meanwhile) is asked for again by a later call."""
    started = []
    for ident in idents:
        with suppress(Problem), session.begin_nested():
            started.append(request(session, SYSTEM, ident)[1])
    return started


def _delete_network(session: Session, service: ServiceInstance, kind: str) -> None:
    """Delete the service's network resources of ``kind`` that are still there; one that
    something else of the tenant's still uses is kept."""
    model, delete = NETWORK[kind]
    for ident in _ids(service, kind):
        if session.get(model, ident) is None:
            continue
        try:
            with session.begin_nested():
                delete(session, SYSTEM, ident)
        except Problem as exc:
            if exc.code == "in-use":
                _keep(service, ident, exc.detail)


def _keep(service: ServiceInstance, ident: str, why: str) -> None:
    """Leave a resource to the tenant: the service no longer waits for it to go."""
    service.resources = [r | {"kept": why} if r["id"] == ident else r for r in service.resources]


def released(session: Session, service: ServiceInstance) -> bool:
    """Whether every resource of the service is gone (or kept by the tenant): an external
    service's once its vendor took the release call (or never took the service)."""
    if service.kind == EXTERNAL:
        told = vendors.calls(session, service, vendors.RELEASE)
        return not service.external_ref or any(op.state == "succeeded" for op in told)
    for resource in service.resources:
        row = None if "kept" in resource else session.get(MODELS[resource["type"]], resource["id"])
        if row is not None and getattr(row, "state", None) not in GONE:
            return False
    return True
