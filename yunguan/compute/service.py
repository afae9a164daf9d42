"""Compute: flavors (platform-defined sizes), images (tenant-owned, optionally public) and
instances. Requests check and record; the workflows in ``workflows.instances`` do the work
and call back here to move an instance through its states. The only code that writes the
compute tables."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunguan.billing import service as billing
from yunguan.compute.models import Flavor, Image, Instance, InstanceEvent, Snapshot, Volume
from yunguan.compute.schemas import (
    FlavorCreate,
    FlavorUpdate,
    ImageCreate,
    ImageUpdate,
    InstanceCreate,
    InstanceUpdate,
)
from yunguan.core import audit
from yunguan.core.clock import now
from yunguan.core.db import flush_or_conflict, locked
from yunguan.core.errors import BadGateway, BadRequest, Conflict, NotFound
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams, paginate, where_equal
from yunguan.identity import service as identity
from yunguan.identity.crud import apply_changes
from yunguan.identity.scope import (
    Principal,
    get_permitted,
    get_visible,
    get_writable,
    list_permitted,
    list_visible,
    require,
    restrict,
)
from yunguan.inventory import service as inventory
from yunguan.network import vpcs
from yunguan.network.models import Vxnet
from yunguan.providers import base as drivers
from yunguan.providers import registry
from yunguan.providers.models import Provider
from yunguan.quota import service as quota
from yunguan.scheduler import service as scheduler
from yunguan.workflows.models import Operation
from yunguan.workflows.service import create_operation

READ, WRITE = "resource:read", "resource:write"
SETTLED = ("running", "stopped", "error")
# action -> (the state it starts from, the state while it runs)
ACTIONS = {
    "start": ("stopped", "starting"),
    "stop": ("running", "stopping"),
    "reboot": ("running", "rebooting"),
}
CREATE, POWER, DELETE = "instance.create", "instance.power", "instance.delete"
CHANGE = "instance.change"
METER = "instance.running"
BAREMETAL_METER = "baremetal.allocated"


# --- flavors -------------------------------------------------------------------------------


def list_flavors(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_permitted(session, principal, Flavor, READ, page, **filters)


def get_flavor(session: Session, principal: Principal, flavor_id: str) -> Flavor:
    return get_permitted(session, Flavor, flavor_id, principal, READ, "flavor")


def create_flavor(session: Session, principal: Principal, data: FlavorCreate) -> Flavor:
    require(principal, inventory.WRITE)
    flavor = Flavor(id=new_id("flv"), **data.model_dump())
    session.add(flavor)
    flush_or_conflict(session, f"a flavor named {data.name!r} exists", "duplicate-name")
    audit.note(target_type="flavor", target_id=flavor.id)
    return flavor


def update_flavor(session: Session, principal: Principal, flavor_id: str, data: FlavorUpdate):
    require(principal, inventory.WRITE)
    flavor = get_flavor(session, principal, flavor_id)
    apply_changes(flavor, data)
    flush_or_conflict(session, f"a flavor named {data.name!r} exists", "duplicate-name")
    return flavor


def _refuse_if_used(session: Session, column: Any, ident: str, what: str) -> None:
    used = session.scalar(select(func.count()).where(column == ident, Instance.state != "deleted"))
    if used:
        raise Conflict(f"{what} {ident} is used by {used} instance(s)", code="in-use")


def delete_flavor(session: Session, principal: Principal, flavor_id: str) -> None:
    require(principal, inventory.WRITE)
    flavor = get_flavor(session, principal, flavor_id)
    _refuse_if_used(session, Instance.flavor_id, flavor.id, "flavor")
    session.delete(flavor)
    flush_or_conflict(session, f"flavor {flavor_id} is in use", "in-use")


# --- images --------------------------------------------------------------------------------


def list_images(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_visible(session, principal, Image, READ, page, **filters)


def get_image(session: Session, principal: Principal, image_id: str) -> Image:
    return get_visible(session, Image, image_id, principal, READ)


PLATFORM_FIELDS = frozenset({"visibility", "locations", "properties"})


def _check_image(
    session: Session, principal: Principal, image: Image, changed: set[str], was_public: bool
) -> None:
    """Where an image lives (a provider's file path, an AMI) and whether every tenant sees
    it are the platform's to say: a tenant's locations could name another tenant's disk or
    any file of a hypervisor."""
    if changed & PLATFORM_FIELDS and (image.visibility == "public" or was_public):
        require(principal, inventory.WRITE)
    if changed & {"locations", "properties"} and (image.locations or image.properties):
        require(principal, inventory.WRITE)
    for zone_id in image.locations:
        if not zone_usable(session, principal, zone_id):
            raise BadRequest(f"zone {zone_id} not found", code="bad-zone")


def create_image(session: Session, principal: Principal, data: ImageCreate) -> Image:
    require(principal, WRITE)
    tenant_id = vpcs.tenant_id_for(principal, data.tenant_id)
    tenant = identity.tenant_for_new_resource(session, principal, tenant_id)
    image = Image(id=new_id("img"), **data.model_dump(exclude={"tenant_id"}), tenant_id=tenant.id)
    _check_image(session, principal, image, set(data.model_fields_set), was_public=False)
    session.add(image)
    session.flush()
    audit.note(target_type="image", target_id=image.id, tenant_id=tenant.id)
    return image


def update_image(session: Session, principal: Principal, image_id: str, data: ImageUpdate):
    image = get_writable(session, Image, image_id, principal, "resource")
    was_public = image.visibility == "public"
    changed = apply_changes(image, data)
    _check_image(session, principal, image, set(changed), was_public)
    audit.note(target_type="image", target_id=image.id, tenant_id=image.tenant_id)
    return image


def delete_image(session: Session, principal: Principal, image_id: str) -> None:
    image = get_writable(session, Image, image_id, principal, "resource")
    _refuse_if_used(session, Instance.image_id, image.id, "image")
    session.delete(image)
    flush_or_conflict(session, f"image {image_id} is in use", "in-use")
    audit.note(target_type="image", target_id=image.id, tenant_id=image.tenant_id)


# --- instances: requests -------------------------------------------------------------------


def list_live(
    session: Session, principal: Principal, model: Any, page: PageParams, **filters: Any
) -> tuple[list[Any], str | None]:
    """Rows of a resource with a ``deleted`` state: deleted ones only when asked for."""
    stmt = where_equal(restrict(select(model), model, principal, READ), model, **filters)
    if filters.get("state") is None:
        stmt = stmt.where(model.state != "deleted")
    return paginate(session, stmt, model.id, page)


def list_instances(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_live(session, principal, Instance, page, **filters)


def get_instance(session: Session, principal: Principal, instance_id: str) -> Instance:
    return get_visible(session, Instance, instance_id, principal, READ)


def instances_by_id(session: Session, instance_ids: Sequence[str]) -> list[Instance]:
    """Instances of work authorised earlier (an order's), in id order."""
    stmt = select(Instance).where(Instance.id.in_(instance_ids)).order_by(Instance.id)
    return list(session.scalars(stmt))


def demand(flavor: Flavor) -> dict[str, int]:
    """What one instance of the flavor counts against quota."""
    amounts = {"instances": 1, "vcpus": flavor.vcpus, "memory_mb": flavor.memory_mb}
    if flavor.gpus:
        amounts["gpus"] = flavor.gpus
    return {k: v for k, v in amounts.items() if v}


def _zone_and_vxnet(
    session: Session, principal: Principal, tenant_id: str, image: Image, data: InstanceCreate
) -> tuple[str, Vxnet | None]:
    """Where the instances go: the vxnet's zone, the zone asked for, or the first zone the
    image is available in; and on which vxnet (the tenant's first in that zone if none)."""
    vxnet = None
    if data.vxnet_id is not None:
        vxnet = get_writable(session, Vxnet, data.vxnet_id, principal, "resource")
        if vxnet.tenant_id != tenant_id:
            raise BadRequest(f"vxnet {vxnet.id} belongs to another tenant", code="bad-vxnet")
    zone_id = data.zone_id or (vxnet and vpcs.zone_of(session, vxnet))
    if zone_id is None:
        usable = [z for z in sorted(image.locations) if zone_usable(session, principal, z)]
        if not usable:
            raise BadRequest(
                f"image {image.id} is available in no zone you may use", code="no-zone"
            )
        zone_id = usable[0]
    inventory.get_zone(session, principal, zone_id)
    if zone_id not in image.locations:
        raise BadRequest(f"image {image.id} is not available in zone {zone_id}", code="no-zone")
    if vxnet is not None and vpcs.zone_of(session, vxnet) != zone_id:
        raise BadRequest(f"vxnet {vxnet.id} is not in zone {zone_id}", code="bad-vxnet")
    return zone_id, vxnet or vpcs.first_vxnet(session, tenant_id, zone_id)


def zone_usable(session: Session, principal: Principal, zone_id: str) -> bool:
    try:
        inventory.get_zone(session, principal, zone_id)
    except NotFound:
        return False
    return True


def request_create(
    session: Session, principal: Principal, data: InstanceCreate
) -> list[tuple[Instance, Operation]]:
    """Record ``count`` instances in ``creating`` and their provisioning operations. Quota is
    checked now (a dry run, so an obvious refusal is a 409 here); the workflow reserves it."""
    require(principal, WRITE)
    tenant = identity.tenant_for_new_resource(
        session, principal, vpcs.tenant_id_for(principal, data.tenant_id)
    )
    flavor = get_flavor(session, principal, data.flavor_id)
    image = get_image(session, principal, data.image_id)
    if flavor.disk_gb and image.min_disk_gb > flavor.disk_gb:
        raise BadRequest(
            f"image {image.id} needs {image.min_disk_gb} GB of disk; flavor {flavor.id} has "
            f"{flavor.disk_gb}",
            code="disk-too-small",
        )
    zone_id, vxnet = _zone_and_vxnet(session, principal, tenant.id, image, data)
    billing.guard(session, tenant.id)
    quota.preflight(session, tenant.id, {k: v * data.count for k, v in demand(flavor).items()})
    made = []
    for n in range(data.count):
        instance = Instance(
            id=new_id("i"),
            tenant_id=tenant.id,
            name=data.name if data.count == 1 else f"{data.name}-{n + 1}"[:64],
            flavor_id=flavor.id,
            image_id=image.id,
            zone_id=zone_id,
            vxnet_id=vxnet and vxnet.id,
            state="creating",
            vcpus=flavor.vcpus,
            memory_mb=flavor.memory_mb,
            disk_gb=max(flavor.disk_gb, image.min_disk_gb),
        )
        session.add(instance)
        made.append((instance, start_work(session, principal, instance, CREATE)))
    audit.note(target_type="instance", target_id=made[0][0].id, tenant_id=tenant.id)
    return made


def start_work(
    session: Session, principal: Principal, row: Any, kind: str, **params: Any
) -> Operation:
    """Record the operation a workflow will carry out on ``row`` (an instance, volume or
    snapshot), which now points at it."""
    operation = create_operation(
        session,
        kind=kind,
        tenant_id=row.tenant_id,
        target_type=kind.split(".")[0],
        target_id=row.id,
        requested_by=principal.user_id,
        params=params,
    )
    row.operation_id = operation.id
    if isinstance(row, Instance):
        record_event(session, row, kind, f"{kind} requested by {principal.username}")
    return operation


def locked_writable(session: Session, principal: Principal, model: Any, ident: str) -> Any:
    """Writable by the principal, and locked so two requests cannot both start work."""
    get_writable(session, model, ident, principal, "resource")
    return lock(session, ident, model)


def _locked(session: Session, principal: Principal, instance_id: str) -> Instance:
    return locked_writable(session, principal, Instance, instance_id)


def request_action(
    session: Session, principal: Principal, instance_id: str, action: str, flavor_id: str = ""
) -> tuple[Instance, Operation]:
    if action in CHANGES:
        return _request_change(session, principal, instance_id, action, flavor_id)
    instance = _locked(session, principal, instance_id)
    if action == "start":
        billing.guard(session, instance.tenant_id)
    start_state, busy_state = ACTIONS[action]
    if instance.state != start_state:
        raise Conflict(
            f"instance {instance.id} is {instance.state}; {action} needs it {start_state}",
            code="invalid-state",
        )
    instance.state = busy_state
    return instance, start_work(session, principal, instance, POWER, action=action)


# action -> (the state it starts from, the state while it runs, the provider capability)
CHANGES = {
    "resize": ("stopped", "resizing", "resize"),
    "migrate": ("stopped", "migrating", "migrate"),
    "live-migrate": ("running", "migrating", "live_migrate"),
}


def _request_change(
    session: Session, principal: Principal, instance_id: str, action: str, flavor_id: str
) -> tuple[Instance, Operation]:
    """Resize (quota and the host's claim change now; both change back if the provider
    refuses) or move to another host."""
    instance = _locked(session, principal, instance_id)
    start_state, busy_state, capability = CHANGES[action]
    if instance.state != start_state:
        raise Conflict(
            f"instance {instance.id} is {instance.state}; {action} needs it {start_state}",
            code="invalid-state",
        )
    provider = session.get(Provider, instance.provider_id)
    if provider is None or not registry.supports(provider.kind, capability):
        raise Conflict(f"instance {instance.id}'s provider cannot {action}", code="unsupported")
    params: dict[str, Any] = {"action": action, "resting": instance.state}
    if action == "resize":
        params |= _resize_now(session, principal, instance, flavor_id)
    instance.state = busy_state
    return instance, start_work(session, principal, instance, CHANGE, **params)


def _resize_now(
    session: Session, principal: Principal, instance: Instance, flavor_id: str
) -> dict[str, Any]:
    """Hold the new size's quota and host capacity; what to restore if the provider refuses."""
    if not flavor_id:
        raise BadRequest("resize needs 'flavor_id'", code="invalid-field")
    flavor = get_flavor(session, principal, flavor_id)
    if flavor.baremetal or flavor.id == instance.flavor_id:
        raise BadRequest(f"flavor {flavor.id} is not another VM size", code="invalid-field")
    before = {"flavor_id": instance.flavor_id, "vcpus": instance.vcpus}
    before |= {"memory_mb": instance.memory_mb, "disk_gb": instance.disk_gb}
    disk_gb = max(flavor.disk_gb, instance.disk_gb)  # disks grow, never shrink
    hold(session, instance, {"vcpus": flavor.vcpus, "memory_mb": flavor.memory_mb}, disk_gb)
    return {"before": before, "flavor_id": flavor.id, "disk_gb": disk_gb}


def hold(session: Session, instance: Instance, size: dict[str, int], disk_gb: int) -> None:
    """Quota and the claim on its host at ``size``: all of it, or a 409 and nothing."""
    if instance.reservation_id is not None:
        quota.release(session, instance.reservation_id)
    instance.reservation_id = quota.charge(
        session, instance.tenant_id, {"instances": 1, **size}, consumer_id=instance.id
    ).id
    if instance.claim_id is not None:
        scheduler.resize(session, instance.claim_id, size["vcpus"], size["memory_mb"], disk_gb)


def request_delete(
    session: Session, principal: Principal, instance_id: str
) -> tuple[Instance, Operation]:
    instance = _locked(session, principal, instance_id)
    if instance.state not in SETTLED:
        raise Conflict(
            f"instance {instance.id} is {instance.state}; wait until it settles",
            code="invalid-state",
        )
    instance.state = "deleting"
    return instance, start_work(session, principal, instance, DELETE)


def update_instance(session: Session, principal: Principal, instance_id: str, data: InstanceUpdate):
    instance = get_writable(session, Instance, instance_id, principal, "resource")
    apply_changes(instance, data)
    return instance


def list_events(session: Session, principal: Principal, instance_id: str) -> list[InstanceEvent]:
    instance = get_instance(session, principal, instance_id)
    stmt = select(InstanceEvent).where(InstanceEvent.instance_id == instance.id)
    return list(session.scalars(stmt.order_by(InstanceEvent.at, InstanceEvent.id)))


def count_tenant_resources(session: Session, tenant_id: str) -> int:
    """Compute resources a tenant still owns (a deleted tenant may own none)."""
    live = (
        select(func.count()).where(Instance.tenant_id == tenant_id, Instance.state != "deleted"),
        select(func.count()).where(Image.tenant_id == tenant_id),
        select(func.count()).where(Volume.tenant_id == tenant_id, Volume.state != "deleted"),
        select(func.count()).where(Snapshot.tenant_id == tenant_id, Snapshot.state != "deleted"),
    )
    return sum(session.scalar(stmt) or 0 for stmt in live)


def count_provider_instances(session: Session, provider_id: str) -> int:
    stmt = select(func.count()).where(
        Instance.provider_id == provider_id, Instance.state != "deleted"
    )
    return session.scalar(stmt) or 0


# --- instances: what the workflows call ----------------------------------------------------


def lock(session: Session, ident: str, model: Any = Instance) -> Any:
    row = locked(session, model, ident)
    if row is None:
        raise NotFound(f"{model.__tablename__.rstrip('s')} {ident} not found")
    return row


def record_event(
    session: Session, instance: Instance, kind: str, message: str, **detail: Any
) -> None:
    session.add(
        InstanceEvent(
            id=new_id("iev"),
            instance_id=instance.id,
            tenant_id=instance.tenant_id,
            kind=kind,
            message=message[:2000],
            detail=detail,
            at=now(),
        )
    )


def settle(session: Session, instance: Instance, state: str, message: str, **fields: Any) -> None:
    """The workflow is done with the instance: it rests in ``state``."""
    instance.state, instance.operation_id = state, None
    for key, value in fields.items():
        setattr(instance, key, value)
    record_event(session, instance, f"instance.{state}", message)


def of_provider(session: Session, provider_id: str) -> list[Instance]:
    """The live instances a provider holds, locked (a request or workflow that changes one
    meanwhile waits, then sees the reconciled row), for reconciling."""
    stmt = select(Instance).where(
        Instance.provider_id == provider_id, Instance.state.not_in(("deleted", "creating"))
    )
    stmt = stmt.order_by(Instance.id).with_for_update().execution_options(populate_existing=True)
    return list(session.scalars(stmt))


def meter(
    session: Session,
    instance: Instance,
    action: str,
    event_id: str,
    *,
    power: bool = False,
    occurred_at: datetime | None = None,
) -> None:
    """Open (``start``) or close (``stop``; ``end`` when deleted) the instance's billed
    interval, priced by its flavor. A virtual machine is billed while it runs; a bare-metal
    server while it is allocated, so its ``power`` changes are not metered."""
    flavor = session.get(Flavor, instance.flavor_id)
    baremetal = flavor is not None and bool(flavor.baremetal)
    if baremetal and power:
        return
    billing.record(
        session,
        source="compute",
        event_id=event_id,
        tenant_id=instance.tenant_id,
        resource_type="instance",
        resource_id=instance.id,
        meter=BAREMETAL_METER if baremetal else METER,
        action=action,
        price_key=instance.flavor_id,
        occurred_at=occurred_at or now(),
        attributes={
            "flavor": flavor.name if flavor else "",
            "vcpus": instance.vcpus,
            "memory_mb": instance.memory_mb,
            "zone_id": instance.zone_id,
        },
    )


# --- reconcile and import ------------------------------------------------------------------


def reconcile(
    session: Session, provider_id: str, machines: list[Any], seen_at: datetime
) -> dict[str, int]:
    """Compare the provider's machines (as collected at ``seen_at``) with our instances: an
    instance whose machine is gone is marked ``error``; a power state changed out of band
    is taken over (and metered). Instances a workflow is working on, or that changed since
    the collect began, are left alone (the picture of them is older than they are)."""
    by_external = {m.external_id: m for m in machines}
    by_instance = {m.instance_id: m for m in machines if m.instance_id}
    gone = corrected = 0
    for instance in of_provider(session, provider_id):
        if instance.operation_id is not None or instance.state not in ("running", "stopped"):
            continue
        if instance.updated_at > seen_at:
            continue
        machine = by_external.get(instance.external_id or "") or by_instance.get(instance.id)
        if machine is None:
            if instance.power_state == "on":
                gone_id = f"{instance.id}:gone:{seen_at.isoformat()}"
                meter(session, instance, "stop", gone_id, occurred_at=seen_at)
            settle(
                session,
                instance,
                "error",
                "the machine was deleted outside Yunguan",
                error_reason="the machine was deleted outside Yunguan (not found on sync)",
                power_state="unknown",
            )
            gone += 1
            continue
        observed = {"running": "running", "stopped": "stopped"}.get(machine.state)
        if observed is not None and observed != instance.state:
            stamp = f"{instance.id}:sync:{observed}:{seen_at.isoformat()}"
            usage = "start" if observed == "running" else "stop"
            meter(session, instance, usage, stamp, power=True, occurred_at=seen_at)
            settle(
                session,
                instance,
                observed,
                f"power state corrected to {observed} (changed outside Yunguan)",
                power_state="on" if observed == "running" else "off",
            )
            corrected += 1
    return {"gone": gone, "corrected": corrected}


def known_machines(session: Session, provider_id: str) -> set[str]:
    """External ids of the machines our instances hold at the provider."""
    stmt = select(Instance.external_id).where(
        Instance.provider_id == provider_id, Instance.state != "deleted"
    )
    return {e for e in session.scalars(stmt) if e}


def import_machine(
    session: Session,
    principal: Principal,
    provider_id: str,
    machine: dict[str, Any],
    host_id: str | None,
    data: Any,
    zone_id: str,
) -> Instance:
    """Adopt a machine made outside Yunguan: it becomes an instance of the tenant, counted
    against its quota, with the flavor and image the operator names."""
    tenant = identity.tenant_for_new_resource(session, principal, data.tenant_id)
    flavor = get_flavor(session, principal, data.flavor_id)
    image = get_image(session, principal, data.image_id)
    state = {"running": "running", "stopped": "stopped"}.get(machine["state"], "error")
    instance = Instance(
        id=new_id("i"),
        tenant_id=tenant.id,
        name=data.name or machine["name"][:64],
        flavor_id=flavor.id,
        image_id=image.id,
        zone_id=zone_id,
        state=state,
        power_state={"running": "on", "stopped": "off"}.get(state, "unknown"),
        vcpus=flavor.vcpus,
        memory_mb=flavor.memory_mb,
        disk_gb=flavor.disk_gb,
        host_id=host_id,
        provider_id=provider_id,
        external_id=machine["external_id"],
        imported=True,
        launched_at=now(),
    )
    session.add(instance)
    session.flush()
    instance.reservation_id = quota.charge(
        session, tenant.id, demand(flavor), consumer_id=instance.id
    ).id
    record_event(session, instance, "instance.imported", f"imported from {provider_id}")
    if state == "running":
        meter(session, instance, "start", f"{instance.id}:import")
    audit.note(target_type="instance", target_id=instance.id, tenant_id=tenant.id)
    return instance


def console_log(session: Session, principal: Principal, instance_id: str) -> str:
    """The machine's console log, read from its provider now (the last 64 KiB)."""
    instance = get_instance(session, principal, instance_id)
    if instance.state == "deleted":
        raise Conflict(f"instance {instance.id} is deleted", code="no-machine")
    if instance.provider_id is None or instance.external_id is None:
        raise Conflict(f"instance {instance.id} has no machine yet", code="no-machine")
    driver = registry.driver(session.get(Provider, instance.provider_id))  # type: ignore[arg-type]
    try:
        drivers.require(driver, "console_log")
        return driver.console_log(instance.external_id)[-65536:]
    except drivers.Unsupported as exc:
        raise Conflict(str(exc), code="unsupported")
    except drivers.MachineNotFound as exc:
        raise Conflict(f"the machine is gone at the provider: {exc}", code="no-machine")
    except drivers.ProviderError as exc:
        raise BadGateway(str(exc))
