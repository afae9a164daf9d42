"""Volume and snapshot workflows: one provider call, then the row settles. A call that fails
for good leaves the row where it rested (a create or delete: in ``error``) with the reason;
an extend that fails gives the quota of the larger size back. A call that succeeds meters
the row's size (``volume.gb``, ``snapshot.gb``) in the same transaction."""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from dbos import DBOS
from sqlalchemy.orm import Session

from yunguan.billing import service as billing
from yunguan.compute import service as compute
from yunguan.compute import volumes
from yunguan.compute.models import Instance, Snapshot, Volume
from yunguan.core.clock import now
from yunguan.core.db import get_database
from yunguan.inventory.models import Host
from yunguan.providers import registry
from yunguan.providers.base import Driver, ProviderError, VolumeSpec
from yunguan.providers.models import Provider
from yunguan.quota import service as quota
from yunguan.workflows.service import advance, load

step = DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0.5)
Call = Callable[[Driver, Any, Instance | None], dict[str, Any]]


def _machine(instance: Instance | None) -> str:
    return instance.external_id if instance and instance.external_id else ""


def _host(instance: Instance | None) -> str | None:
    """Where a volume made for an instance must be: its host, as the provider names it."""
    if instance is None or instance.host_id is None:
        return None
    with get_database().session(write=False) as session:
        return session.get(Host, instance.host_id).external_id or None  # type: ignore[union-attr]


CALLS: dict[str, Call] = {
    volumes.CREATE: lambda d, v, i: {
        "external_id": d.create_volume(VolumeSpec(v.id, v.name, v.size_gb, _host(i))).external_id
    },
    volumes.ATTACH: lambda d, v, i: {"device": d.attach_volume(_machine(i), v.external_id)},
    volumes.DETACH: lambda d, v, i: d.detach_volume(_machine(i), v.external_id) or {},
    volumes.EXTEND: lambda d, v, _: d.extend_volume(v.external_id, v.size_gb) or {},
    volumes.DELETE: lambda d, v, _: (v.external_id and d.delete_volume(v.external_id)) or {},
    volumes.SNAPSHOT: lambda d, s, _: {"external_id": d.create_snapshot(_source(s), s.id)},
    volumes.SNAPSHOT_DELETE: lambda d, s, _: (
        (s.external_id and d.delete_snapshot(s.external_id)) or {}
    ),
}


def _source(snapshot: Snapshot) -> str:
    with get_database().session(write=False) as session:
        return session.get(Volume, snapshot.volume_id).external_id  # type: ignore[union-attr,return-value]


def _row(session: Session, kind: str, ident: str) -> Any:
    return compute.lock(session, ident, Snapshot if kind.startswith("snapshot") else Volume)


@step
def _call(operation_id: str, kind: str, instance_id: str | None) -> dict[str, Any]:
    """The provider call of ``kind``: what it answered, or ``{"error": why}``."""
    with get_database().session() as session:
        advance(operation_id, state="running", step=kind, progress=30, session=session)
        row = _row(session, kind, load(operation_id).target_id)  # type: ignore[union-attr]
        instance = session.get(Instance, instance_id) if instance_id else None
        driver = registry.driver(session.get(Provider, row.provider_id))  # type: ignore[arg-type]
        session.expunge_all()
    try:
        return CALLS[kind](driver, row, instance)
    except ProviderError as exc:
        if exc.transient:
            raise
        return {"error": f"provider: {exc}"}


# where a row rests when the provider did it (an extend: where it was)
SUCCEEDED = {
    volumes.CREATE: "available",
    volumes.ATTACH: "in-use",
    volumes.DETACH: "available",
    volumes.DELETE: "deleted",
    volumes.SNAPSHOT: "available",
    volumes.SNAPSHOT_DELETE: "deleted",
}


# what a success does to the row's metered size: an extend closes the old size's interval
# and opens the new size's at the same instant
USAGE = {
    volumes.CREATE: ("start",),
    volumes.EXTEND: ("stop", "start"),
    volumes.DELETE: ("end",),
    volumes.SNAPSHOT: ("start",),
    volumes.SNAPSHOT_DELETE: ("end",),
}


def _meter(session: Session, row: Any, action: str, event_id: str, gb: int, at: datetime) -> None:
    """Record a usage event of a volume's or snapshot's ``gb`` (``volume.gb``/``snapshot.gb``,
    default price). Source ``compute``, as the instances' events: volumes are compute's, and
    the ids are drawn from operation ids, so a retried step records nothing new."""
    kind = "snapshot" if isinstance(row, Snapshot) else "volume"
    billing.record(
        session,
        source="compute",
        event_id=event_id,
        tenant_id=row.tenant_id,
        resource_type=kind,
        resource_id=row.id,
        meter=f"{kind}.gb",
        action=action,
        quantity=Decimal(gb),
        occurred_at=at,
    )


def _succeeded(
    session: Session,
    operation_id: str,
    kind: str,
    row: Any,
    answer: dict,
    params: dict,
    instance_id: str | None,
) -> None:
    resting = params["resting"] if kind == volumes.EXTEND else SUCCEEDED[kind]
    at = now()
    for action in USAGE.get(kind, ()):
        gb = params["previous_gb"] if action == "stop" else row.size_gb
        _meter(session, row, action, f"{operation_id}:{action}", gb, at)
    if "external_id" in answer:
        row.external_id = answer["external_id"]
    if kind == volumes.ATTACH:
        row.instance_id, row.device = instance_id, answer["device"]
    if kind == volumes.DETACH:
        row.instance_id = row.device = None
    if resting == "deleted":
        quota.refund(session, row.id)
        row.deleted_at = at
    row.state = resting


# where a row rests when the provider refused (an extend: where it was)
FAILED = {
    volumes.CREATE: "error",
    volumes.ATTACH: "available",
    volumes.DETACH: "in-use",
    volumes.DELETE: "error",
    volumes.SNAPSHOT: "error",
    volumes.SNAPSHOT_DELETE: "error",
}


def _failed(session: Session, kind: str, row: Any, params: dict, error: str) -> None:
    row.error_reason = error[:2000]
    if kind in (volumes.CREATE, volumes.SNAPSHOT):
        quota.refund(session, row.id)
    if kind == volumes.EXTEND:  # back to the size it has, and its quota
        quota.refund(session, row.id)
        row.size_gb = params["previous_gb"]
        volumes.charge(session, row)
    row.state = params["resting"] if kind == volumes.EXTEND else FAILED[kind]


DONE = {"state": "succeeded", "step": "done", "progress": 100}


@step
def _settle(
    operation_id: str, kind: str, answer: dict[str, Any], instance_id: str | None, last: bool
) -> None:
    """Record the provider's answer on the row; the operation ends here when this is its
    ``last`` call or the call failed (a create with an attach goes on to the attach)."""
    operation = load(operation_id)
    with get_database().session() as session:
        row = _row(session, kind, operation.target_id)  # type: ignore[union-attr]
        if "error" in answer:
            _failed(session, kind, row, operation.params, answer["error"])  # type: ignore[union-attr]
            advance(operation_id, state="failed", error=answer["error"][:2000], session=session)
        else:
            _succeeded(session, operation_id, kind, row, answer, operation.params, instance_id)  # type: ignore[union-attr]
            progress = DONE if last else {"step": "attach", "progress": 50}
            advance(operation_id, session=session, **progress)
        row.operation_id = None


@step
def _resting(operation_id: str) -> str | None:
    """Between a create and the attach asked with it: the volume waits ``attaching``. A
    volume someone else took meanwhile is not attached: the create is done."""
    with get_database().session() as session:
        volume = _row(session, volumes.ATTACH, load(operation_id).target_id)  # type: ignore[union-attr]
        if volume.state != "available":
            advance(operation_id, session=session, **DONE)
            return None
        volume.state, volume.operation_id = "attaching", operation_id
        return volume.id


@DBOS.workflow()
def volume_work(operation_id: str) -> str:
    operation = load(operation_id)
    kind, params = operation.kind, operation.params  # type: ignore[union-attr]
    instance_id = params.get("instance_id") or params.get("attach")
    attach = kind == volumes.CREATE and bool(params.get("attach"))
    answer = _call(operation_id, kind, instance_id)
    _settle(operation_id, kind, answer, instance_id, not attach)
    if attach and "error" not in answer and _resting(operation_id) is not None:
        attached = _call(operation_id, volumes.ATTACH, instance_id)
        _settle(operation_id, volumes.ATTACH, attached, instance_id, True)
    return "failed" if "error" in answer else "done"


# --- what instance deletion needs ----------------------------------------------------------


@step
def detach_all(instance_id: str) -> str:
    """Detach every volume of an instance about to be deleted (they stay, ``available``);
    "" or why not. Provider calls run outside any transaction (the provider may be this
    database, as the simulator is)."""
    with get_database().session(write=False) as session:
        instance = session.get(Instance, instance_id)
        attached = [(v.id, v.external_id) for v in volumes.attached_to(session, instance_id)]
        if not attached or instance is None or instance.provider_id is None:
            return ""
        driver = registry.driver(session.get(Provider, instance.provider_id))  # type: ignore[arg-type]
    try:
        for _, external_id in attached:
            driver.detach_volume(_machine(instance), external_id)  # type: ignore[arg-type]
    except ProviderError as exc:
        if exc.transient:
            raise
        return f"cannot detach its volumes: {exc}"
    with get_database().session() as session:
        for volume_id, _ in attached:
            volume = compute.lock(session, volume_id, Volume)
            volume.state, volume.instance_id, volume.device = "available", None, None
    return ""


WORKFLOWS = dict.fromkeys(CALLS, volume_work)
