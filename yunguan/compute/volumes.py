"""Volumes and snapshots: requests check, charge quota (``volumes`` + ``volume_gb``,
``snapshots``) and record; the workflows in ``workflows.volumes`` call the provider. A
volume lives at a provider of its zone that supports volumes, and attaches only to an
instance of the same tenant at the same provider."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunguan.billing import service as billing
from yunguan.compute import service as compute
from yunguan.compute.models import Instance, Snapshot, Volume
from yunguan.compute.schemas import SnapshotCreate, VolumeAction, VolumeCreate
from yunguan.core import audit
from yunguan.core.errors import BadRequest, Conflict
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams
from yunguan.identity import service as identity
from yunguan.identity.crud import apply_changes
from yunguan.identity.scope import Principal, get_visible, get_writable, require
from yunguan.inventory import service as inventory
from yunguan.network import vpcs
from yunguan.providers import registry
from yunguan.providers.models import Provider
from yunguan.quota import service as quota
from yunguan.workflows.models import Operation

READ, WRITE = compute.READ, compute.WRITE
CREATE, ATTACH, DETACH, EXTEND, DELETE = (
    "volume.create",
    "volume.attach",
    "volume.detach",
    "volume.extend",
    "volume.delete",
)
SNAPSHOT, SNAPSHOT_DELETE = "snapshot.create", "snapshot.delete"
# action -> (the states it starts from, the state while it runs, the operation kind)
ACTIONS = {
    "attach": (("available",), "attaching", ATTACH),
    "detach": (("in-use",), "detaching", DETACH),
    "extend": (("available", "in-use"), "extending", EXTEND),
}


def charge(session: Session, volume: Volume) -> None:
    quota.charge(session, volume.tenant_id, {"volumes": 1, "volume_gb": volume.size_gb}, volume.id)


# --- volumes -------------------------------------------------------------------------------


def list_volumes(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return compute.list_live(session, principal, Volume, page, **filters)


def get_volume(session: Session, principal: Principal, volume_id: str) -> Volume:
    return get_visible(session, Volume, volume_id, principal, READ)


def _provider_in(session: Session, zone_id: str) -> str:
    """The first enabled provider of the zone whose driver keeps volumes."""
    stmt = select(Provider).where(Provider.zone_id == zone_id, Provider.state == "enabled")
    for provider in session.scalars(stmt.order_by(Provider.id)):
        if registry.supports(provider.kind, "volumes"):
            return provider.id
    raise Conflict(f"no provider in zone {zone_id} keeps volumes", code="no-volume-provider")


def _attachable(session: Session, principal: Principal, volume: Volume, instance_id: str):
    instance = get_writable(session, Instance, instance_id, principal, "resource")
    if instance.tenant_id != volume.tenant_id:
        raise BadRequest(f"instance {instance.id} belongs to another tenant", code="bad-instance")
    if instance.state not in ("running", "stopped"):
        raise Conflict(f"instance {instance.id} is {instance.state}", code="invalid-state")
    if volume.provider_id is not None and instance.provider_id != volume.provider_id:
        raise BadRequest(
            f"instance {instance.id} runs at another provider than volume {volume.id}",
            code="bad-instance",
        )
    return instance


def request_create(
    session: Session, principal: Principal, data: VolumeCreate
) -> tuple[Volume, Operation]:
    require(principal, WRITE)
    tenant = identity.tenant_for_new_resource(
        session, principal, vpcs.tenant_id_for(principal, data.tenant_id)
    )
    billing.guard(session, tenant.id)
    volume = Volume(id=new_id("vol"), tenant_id=tenant.id, name=data.name, size_gb=data.size_gb)
    if data.instance_id is not None:
        instance = _attachable(session, principal, volume, data.instance_id)
        if data.zone_id not in (None, instance.zone_id):
            raise BadRequest(f"instance {instance.id} is in another zone", code="bad-instance")
        volume.zone_id, volume.provider_id = instance.zone_id, instance.provider_id
        if instance.provider_id is None or not registry.supports(
            session.get(Provider, instance.provider_id).kind,  # type: ignore[union-attr]
            "volumes",
        ):
            raise Conflict(f"instance {instance.id}'s provider keeps no volumes", code="no-volumes")
    else:
        zone_id = data.zone_id or _first_zone(session, principal)
        inventory.get_zone(session, principal, zone_id)
        volume.zone_id, volume.provider_id = zone_id, _provider_in(session, zone_id)
    session.add(volume)
    session.flush()
    charge(session, volume)
    operation = compute.start_work(session, principal, volume, CREATE, attach=data.instance_id)
    audit.note(target_type="volume", target_id=volume.id, tenant_id=tenant.id)
    return volume, operation


def _first_zone(session: Session, principal: Principal) -> str:
    for provider in session.scalars(select(Provider).order_by(Provider.id)):
        if compute.zone_usable(session, principal, provider.zone_id) and registry.supports(
            provider.kind, "volumes"
        ):
            return provider.zone_id
    raise BadRequest("no zone you may use keeps volumes; give zone_id", code="no-zone")


def request_action(
    session: Session, principal: Principal, volume_id: str, data: VolumeAction
) -> tuple[Volume, Operation]:
    volume = compute.locked_writable(session, principal, Volume, volume_id)
    starts, busy, kind = ACTIONS[data.action]
    if volume.state not in starts:
        raise Conflict(
            f"volume {volume.id} is {volume.state}; {data.action} needs {' or '.join(starts)}",
            code="invalid-state",
        )
    params: dict[str, Any] = {"resting": volume.state, "instance_id": volume.instance_id}
    if data.action == "attach":
        if data.instance_id is None:
            raise BadRequest("attach needs 'instance_id'", code="invalid-field")
        params["instance_id"] = _attachable(session, principal, volume, data.instance_id).id
    if data.action == "extend":
        if data.size_gb is None or data.size_gb <= volume.size_gb:
            raise BadRequest(f"extend needs a size_gb above {volume.size_gb}", code="invalid-field")
        params["previous_gb"] = volume.size_gb
        quota.refund(session, volume.id)
        volume.size_gb = data.size_gb
        charge(session, volume)  # the new size, or a 409 and nothing changed
    volume.state = busy
    return volume, compute.start_work(session, principal, volume, kind, **params)


def request_delete(
    session: Session, principal: Principal, volume_id: str
) -> tuple[Volume, Operation]:
    volume = compute.locked_writable(session, principal, Volume, volume_id)
    if volume.state not in ("available", "error"):
        raise Conflict(
            f"volume {volume.id} is {volume.state}; detach it first", code="invalid-state"
        )
    volume.state = "deleting"
    return volume, compute.start_work(session, principal, volume, DELETE)


def update_volume(session: Session, principal: Principal, volume_id: str, data: Any) -> Volume:
    volume = get_writable(session, Volume, volume_id, principal, "resource")
    apply_changes(volume, data)
    return volume


# --- snapshots -----------------------------------------------------------------------------


def list_snapshots(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return compute.list_live(session, principal, Snapshot, page, **filters)


def get_snapshot(session: Session, principal: Principal, snapshot_id: str) -> Snapshot:
    return get_visible(session, Snapshot, snapshot_id, principal, READ)


def request_snapshot(
    session: Session, principal: Principal, data: SnapshotCreate
) -> tuple[Snapshot, Operation]:
    volume = compute.locked_writable(session, principal, Volume, data.volume_id)
    if volume.state not in ("available", "in-use"):
        raise Conflict(f"volume {volume.id} is {volume.state}", code="invalid-state")
    if not registry.supports(session.get(Provider, volume.provider_id).kind, "snapshots"):  # type: ignore[union-attr]
        raise Conflict(f"volume {volume.id}'s provider takes no snapshots", code="unsupported")
    snapshot = Snapshot(
        id=new_id("snap"),
        tenant_id=volume.tenant_id,
        volume_id=volume.id,
        name=data.name,
        size_gb=volume.size_gb,
        provider_id=volume.provider_id,
    )
    session.add(snapshot)
    session.flush()
    quota.charge(session, snapshot.tenant_id, {"snapshots": 1}, snapshot.id)
    audit.note(target_type="snapshot", target_id=snapshot.id, tenant_id=snapshot.tenant_id)
    return snapshot, compute.start_work(session, principal, snapshot, SNAPSHOT)


def request_snapshot_delete(
    session: Session, principal: Principal, snapshot_id: str
) -> tuple[Snapshot, Operation]:
    snapshot = compute.locked_writable(session, principal, Snapshot, snapshot_id)
    if snapshot.state not in ("available", "error"):
        raise Conflict(f"snapshot {snapshot.id} is {snapshot.state}", code="invalid-state")
    snapshot.state = "deleting"
    return snapshot, compute.start_work(session, principal, snapshot, SNAPSHOT_DELETE)


def update_snapshot(session: Session, principal: Principal, snapshot_id: str, data: Any):
    snapshot = get_writable(session, Snapshot, snapshot_id, principal, "resource")
    apply_changes(snapshot, data)
    return snapshot


def attached_to(session: Session, instance_id: str) -> list[Volume]:
    stmt = select(Volume).where(Volume.instance_id == instance_id, Volume.state != "deleted")
    return list(session.scalars(stmt))
