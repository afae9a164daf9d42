"""Instance workflows: provisioning, power actions and deletion.

Provisioning is a saga: quota reserve -> placement claim -> port (IP) -> provider create ->
wait until running -> port bound to the host (network ready) -> quota commit and the first
usage event. Each step records what it took on the instance in the same transaction, and
is idempotent: a step re-run after a crash finds what it made (the reservation and claim
by consumer, the port by device, the machine by instance id). A step that fails for good
makes the workflow compensate: the machine, port, claim and reservation are given back and
the instance rests in ``error`` with the reason. DBOS resumes an interrupted workflow after
a restart, so a crash at any point ends either running or compensated, with nothing leaked.
"""

import contextlib
import ipaddress
from datetime import timedelta
from typing import Any

from dbos import DBOS
from sqlalchemy.orm import Session

from yunguan.compute import service as compute
from yunguan.compute.models import Flavor, Image, Instance
from yunguan.core.clock import now
from yunguan.core.config import get_settings
from yunguan.core.db import get_database
from yunguan.core.errors import NotFound, Problem
from yunguan.core.faults import fault_point
from yunguan.identity.scope import SYSTEM
from yunguan.inventory import service as inventory
from yunguan.inventory.models import Host
from yunguan.network import ports
from yunguan.network.models import IpPool, Port
from yunguan.network.schemas import PortCreate, PortUpdate
from yunguan.providers import registry
from yunguan.providers.base import (
    ERROR,
    RUNNING,
    STOPPED,
    ImageRef,
    InstanceSpec,
    Machine,
    MachineNotFound,
    Nic,
    ProviderError,
)
from yunguan.providers.models import Provider
from yunguan.quota import service as quota
from yunguan.scheduler import service as scheduler
from yunguan.scheduler.schemas import BareMetalSpec, ClaimCreate
from yunguan.workflows import volumes as volume_work
from yunguan.workflows.service import advance, load

step = DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0.5)


class Refused(Exception):
    """The workflow cannot succeed: a step answered with a reason (quota, capacity, a
    provider's refusal). Steps return reasons rather than raise them, since DBOS retries a
    step that raises."""


def _go_on(refusal: str | None) -> None:
    if refusal:
        raise Refused(refusal)


def _session() -> Any:
    return get_database().session()


def _driver(session: Session, instance: Instance) -> Any:
    return registry.driver(session.get(Provider, instance.provider_id))  # type: ignore[arg-type]


# --- provisioning steps --------------------------------------------------------------------


@step
def _reserve_quota(operation_id: str, instance_id: str) -> str | None:
    with _session() as session:
        advance(operation_id, state="running", step="quota", progress=10, session=session)
        instance = compute.lock(session, instance_id)
        if instance.reservation_id and quota.locked_reservation(session, instance.reservation_id):
            return None
        flavor = session.get(Flavor, instance.flavor_id)
        ttl = timedelta(seconds=2 * get_settings().provision_timeout_seconds + 600)
        try:
            held = quota.reserve(
                session,
                instance.tenant_id,
                compute.demand(flavor),
                consumer_id=instance.id,
                ttl=ttl,
            )
        except quota.QuotaExceeded as exc:
            return f"quota: {exc.detail}"
        instance.reservation_id = held.id
    return None


def _claim_request(instance: Instance, flavor: Flavor) -> ClaimCreate:
    if flavor.baremetal:
        return ClaimCreate(
            tenant_id=instance.tenant_id,
            zone_id=instance.zone_id,
            hypervisor="baremetal",
            baremetal=BareMetalSpec(**flavor.baremetal),
            traits=[inventory.MANAGED_TRAIT],
            consumer_id=instance.id,
        )
    return ClaimCreate(
        tenant_id=instance.tenant_id,
        zone_id=instance.zone_id,
        vcpus=instance.vcpus,
        memory_mb=instance.memory_mb,
        disk_gb=instance.disk_gb,
        gpus=flavor.gpus,
        traits=[inventory.MANAGED_TRAIT],
        consumer_id=instance.id,
    )


@step
def _claim_host(operation_id: str, instance_id: str) -> str | None:
    with _session() as session:
        advance(operation_id, step="placement", progress=25, session=session)
        instance = compute.lock(session, instance_id)
        flavor = session.get(Flavor, instance.flavor_id)
        try:
            claim = scheduler.claim(session, SYSTEM, _claim_request(instance, flavor))  # type: ignore[arg-type]
        except scheduler.NoValidHost as exc:  # decided before anything was written
            return f"placement: {exc.detail}"
        host = session.get(Host, claim.host_id)
        instance.claim_id, instance.host_id = claim.id, claim.host_id
        instance.provider_id = host.provider_id  # type: ignore[union-attr]
    return None


@step
def _plug_port(operation_id: str, instance_id: str) -> str | None:
    with _session() as session:
        advance(operation_id, step="network", progress=40, session=session)
        instance = compute.lock(session, instance_id)
        if instance.vxnet_id is None or instance.port_id is not None:
            return None
        try:
            port = ports.create_port(
                session,
                SYSTEM,
                PortCreate(vxnet_id=instance.vxnet_id, name=instance.name, device_id=instance.id),
            )
        except Problem as exc:  # the vxnet went away, its pool is exhausted …
            session.rollback()  # an address may be half-taken
            return f"network: {exc.detail}"
        instance.port_id, instance.ip, instance.mac = port.id, port.ip, port.mac
    return None


def _spec(session: Session, instance: Instance) -> InstanceSpec:
    image = session.get(Image, instance.image_id)
    host = session.get(Host, instance.host_id)
    nics = (_nic(session, instance.port_id),) if instance.port_id else ()
    return InstanceSpec(
        instance_id=instance.id,
        name=instance.name,
        vcpus=instance.vcpus,
        memory_mb=instance.memory_mb,
        disk_gb=instance.disk_gb,
        image=ImageRef(
            id=image.id,  # type: ignore[union-attr]
            name=image.name,  # type: ignore[union-attr]
            format=image.format,  # type: ignore[union-attr]
            location=image.locations.get(instance.zone_id, ""),  # type: ignore[union-attr]
            min_disk_gb=image.min_disk_gb,  # type: ignore[union-attr]
            ex_kernel=image.properties.get("kernel", ""),  # type: ignore[union-attr]
            ex_initrd=image.properties.get("initrd", ""),  # type: ignore[union-attr]
            ex_cmdline=image.properties.get("cmdline", ""),  # type: ignore[union-attr]
        ),
        host=host.external_id if host else None,
        nics=nics,
    )


def _nic(session: Session, port_id: str) -> Nic:
    port = session.get(Port, port_id)
    pool = session.get(IpPool, port.ip_pool_id)  # type: ignore[union-attr]
    return Nic(
        mac=port.mac,  # type: ignore[union-attr]
        ip=port.ip,  # type: ignore[union-attr]
        prefix=ipaddress.ip_network(pool.cidr).prefixlen,  # type: ignore[union-attr]
        gateway=pool.gateway,  # type: ignore[union-attr]
        port_id=port_id,
    )


@step
def _create_machine(operation_id: str, instance_id: str) -> str | None:
    with _session() as session:
        advance(operation_id, step="provider-create", progress=55, session=session)
        instance = session.get(Instance, instance_id)
        driver, spec = _driver(session, instance), _spec(session, instance)  # type: ignore[arg-type]
    try:
        machine: Machine = driver.create_instance(spec)
    except ProviderError as exc:
        if exc.transient:
            raise  # retried
        return f"provider: {exc}"
    with _session() as session:
        compute.lock(session, instance_id).external_id = machine.external_id
    return None


@step
def _machine_state(instance_id: str) -> str:
    """The machine's normalized state; ``gone`` when the provider has no such machine."""
    with _session() as session:
        instance = session.get(Instance, instance_id)
        driver = _driver(session, instance)  # type: ignore[arg-type]
    try:
        return driver.get_instance(instance.external_id).state  # type: ignore[union-attr]
    except MachineNotFound:
        return "gone"
    except ProviderError as exc:
        if exc.transient:
            raise
        return ERROR


@step
def _waiting(operation_id: str, wanted: str, progress: int) -> float:
    """Record the wait; its deadline (a checkpointed value, so a replay sees the same)."""
    advance(operation_id, step=f"wait-{wanted}", progress=progress)
    return now().timestamp() + get_settings().provision_timeout_seconds


@step
def _past(deadline: float) -> bool:
    return now().timestamp() > deadline


def _wait_for(operation_id: str, instance_id: str, wanted: str, progress: int) -> None:
    """Poll the provider (a durable sleep between polls) until the machine is ``wanted``."""
    deadline = _waiting(operation_id, wanted, progress)
    pause = 0.1
    while True:
        state = _machine_state(instance_id)
        if state == wanted:
            return
        if state in (ERROR, "gone"):
            raise Refused(f"the machine is {state} at the provider")
        if _past(deadline):
            raise Refused(f"the machine did not become {wanted} in time (it is {state})")
        DBOS.sleep(pause)
        pause = min(pause * 2, 2.0)


@step
def _network_ready(operation_id: str, instance_id: str) -> None:
    """Bind the port to the host: the SDN controller now serves it to the host's agent."""
    with _session() as session:
        advance(operation_id, step="network-ready", progress=85, session=session)
        instance = compute.lock(session, instance_id)
        if instance.port_id is not None:
            port = ports.get_port(session, SYSTEM, instance.port_id)
            if port.host_id != instance.host_id:
                ports.update_port(session, SYSTEM, port.id, PortUpdate(host_id=instance.host_id))


@step
def _commit(operation_id: str, instance_id: str) -> None:
    with _session() as session:
        instance = compute.lock(session, instance_id)
        quota.commit(session, instance.reservation_id)  # type: ignore[arg-type]
        compute.settle(session, instance, "running", "running", power_state="on", launched_at=now())
        compute.meter(session, instance, "start", f"{operation_id}:start")
        advance(operation_id, state="succeeded", step="done", progress=100, session=session)


@step
def _delete_machine(instance_id: str) -> str:
    """Remove the provider's machine, found by its id or by ours. Returns what went wrong
    (empty when it is gone)."""
    with _session() as session:
        instance = session.get(Instance, instance_id)
        if instance is None or instance.provider_id is None:
            return ""
        driver = _driver(session, instance)
        external_id = instance.external_id
    try:
        if external_id is None:
            found = driver.find_instance(instance_id)
            external_id = found and found.external_id
        if external_id is not None:
            driver.delete_instance(external_id)
    except ProviderError as exc:
        if exc.transient:
            raise
        return f"the provider's machine {external_id} may remain: {exc}"
    return ""


def _give_back(session: Session, instance: Instance) -> None:
    """Return the port (and its address), the placement claim and the quota; each may be
    gone already (a re-run, or an operator's hand)."""
    if instance.port_id is not None:
        with contextlib.suppress(NotFound):
            ports.delete_port(session, SYSTEM, instance.port_id)
    if instance.claim_id is not None:
        scheduler.release(session, instance.claim_id)
    if instance.reservation_id is not None:
        quota.release(session, instance.reservation_id)
    instance.port_id = instance.claim_id = instance.reservation_id = None


@step
def _fail(operation_id: str, instance_id: str, reason: str, give_back: bool = True) -> None:
    """Rest in ``error``: with everything given back, or (``give_back`` false, when the
    machine may still run) holding its claim, port and quota until a delete removes it."""
    with _session() as session:
        instance = compute.lock(session, instance_id)
        if give_back:
            _give_back(session, instance)
        compute.settle(session, instance, "error", reason, error_reason=reason[:2000])
        advance(operation_id, state="failed", error=reason[:2000], session=session)


def _remove_machine(instance_id: str) -> str:
    """The provider's machine removed: "" or why it may remain."""
    try:
        return _delete_machine(instance_id)
    except Exception as exc:  # the provider keeps failing
        return f"the provider's machine may remain: {type(exc).__name__}: {exc}"


def _detach_volumes(instance_id: str) -> str:
    """Its volumes detached (they outlive it): "" or why not."""
    try:
        return volume_work.detach_all(instance_id)
    except Exception as exc:  # the provider keeps failing
        return f"cannot detach its volumes: {type(exc).__name__}: {exc}"


def _compensate(operation_id: str, instance_id: str, reason: str) -> None:
    """Undo a failed provisioning: the machine first, then what the database holds."""
    leftover = _remove_machine(instance_id)
    why = f"{reason}; {leftover}; delete the instance to retry" if leftover else reason
    _fail(operation_id, instance_id, why, give_back=not leftover)


@DBOS.workflow()
def create_instance(operation_id: str) -> str:
    instance_id = load(operation_id).target_id  # type: ignore[union-attr]
    try:
        _go_on(_reserve_quota(operation_id, instance_id))
        fault_point("provision.after-quota")
        _go_on(_claim_host(operation_id, instance_id))
        fault_point("provision.after-claim")
        _go_on(_plug_port(operation_id, instance_id))
        fault_point("provision.after-port")
        _go_on(_create_machine(operation_id, instance_id))
        fault_point("provision.after-create")
        _wait_for(operation_id, instance_id, RUNNING, 70)
        _network_ready(operation_id, instance_id)
        fault_point("provision.after-network")
        _commit(operation_id, instance_id)
    except Exception as exc:  # refused, or retries exhausted: undo everything, fail visibly
        reason = str(exc) if isinstance(exc, Refused) else f"{type(exc).__name__}: {exc}"
        _compensate(operation_id, instance_id, reason)
        return "failed"
    return "running"


# --- power actions -------------------------------------------------------------------------

# action -> (the driver call, the state it leads to, the usage interval it opens or closes)
POWER_ACTIONS = {
    "start": ("start_instance", RUNNING, "start"),
    "stop": ("stop_instance", STOPPED, "stop"),
    "reboot": ("reboot_instance", RUNNING, None),
}


@step
def _power(operation_id: str, instance_id: str, action: str) -> str | None:
    with _session() as session:
        advance(operation_id, state="running", step=action, progress=30, session=session)
        instance = session.get(Instance, instance_id)
        driver, external_id = _driver(session, instance), instance.external_id  # type: ignore[arg-type,union-attr]
    try:
        getattr(driver, POWER_ACTIONS[action][0])(external_id)
    except ProviderError as exc:
        if exc.transient:
            raise
        return f"provider: {exc}"
    return None


@step
def _powered(operation_id: str, instance_id: str, action: str) -> None:
    _, state, usage = POWER_ACTIONS[action]
    resting = "running" if state == RUNNING else "stopped"
    with _session() as session:
        instance = compute.lock(session, instance_id)
        compute.settle(
            session, instance, resting, action, power_state="on" if state == RUNNING else "off"
        )
        if usage is not None:
            compute.meter(session, instance, usage, f"{operation_id}:{usage}", power=True)
        advance(operation_id, state="succeeded", step="done", progress=100, session=session)


@step
def _power_failed(operation_id: str, instance_id: str, action: str, reason: str) -> None:
    """The machine did not change: the instance rests where it was, the reason recorded."""
    before = {"start": "stopped", "stop": "running", "reboot": "running"}[action]
    with _session() as session:
        instance = compute.lock(session, instance_id)
        compute.settle(session, instance, before, f"{action} failed: {reason}")
        advance(operation_id, state="failed", error=reason[:2000], session=session)


@DBOS.workflow()
def power_instance(operation_id: str) -> str:
    operation = load(operation_id)
    instance_id, action = operation.target_id, operation.params["action"]  # type: ignore[union-attr]
    try:
        _go_on(_power(operation_id, instance_id, action))
        _wait_for(operation_id, instance_id, POWER_ACTIONS[action][1], 60)
        _powered(operation_id, instance_id, action)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, Refused) else f"{type(exc).__name__}: {exc}"
        _power_failed(operation_id, instance_id, action, reason)
        return "failed"
    return action


# --- deletion ------------------------------------------------------------------------------


@step
def _deleted(operation_id: str, instance_id: str) -> None:
    with _session() as session:
        instance = compute.lock(session, instance_id)
        compute.meter(session, instance, "end", f"{operation_id}:end")
        _give_back(session, instance)
        compute.settle(session, instance, "deleted", "deleted", deleted_at=now())
        advance(operation_id, state="succeeded", step="done", progress=100, session=session)


@step
def _deleting(operation_id: str) -> None:
    advance(operation_id, state="running", step="provider-delete", progress=30)


@DBOS.workflow()
def delete_instance(operation_id: str) -> str:
    """Remove the machine, then give back the port, claim and quota. A provider that keeps
    failing fails the operation and leaves the instance in ``error``, still holding them
    (delete it again)."""
    instance_id = load(operation_id).target_id  # type: ignore[union-attr]
    _deleting(operation_id)
    leftover = _detach_volumes(instance_id) or _remove_machine(instance_id)
    if not leftover:
        fault_point("delete.after-provider")
        try:
            _deleted(operation_id, instance_id)
            return "deleted"
        except Exception as exc:  # never left in deleting
            leftover = f"{type(exc).__name__}: {exc}"
    _fail(operation_id, instance_id, f"delete failed: {leftover}", give_back=False)
    return "failed"


# --- resize and migration --------------------------------------------------------------------


@step
def _target(operation_id: str, instance_id: str) -> dict[str, Any]:
    """A migration's new host: a claim of the same size anywhere but where it runs."""
    with _session() as session:
        advance(operation_id, state="running", step="placement", progress=20, session=session)
        instance = session.get(Instance, instance_id)
        flavor = session.get(Flavor, instance.flavor_id)  # type: ignore[union-attr]
        wanted = _claim_request(instance, flavor).model_copy(update={"consumer_id": operation_id})  # type: ignore[arg-type]
        try:
            claim = scheduler.claim(session, SYSTEM, wanted, exclude=[instance.host_id])  # type: ignore[list-item]
        except scheduler.NoValidHost as exc:
            return {"error": f"placement: {exc.detail}"}
        host = session.get(Host, claim.host_id)
        return {"claim_id": claim.id, "host_id": claim.host_id, "host": host.external_id}  # type: ignore[union-attr]


@step
def _change(operation_id: str, instance_id: str, params: dict, target: dict) -> str | None:
    """The provider's part: resize the stopped machine, or move it."""
    with _session() as session:
        advance(operation_id, state="running", step=params["action"], progress=50, session=session)
        instance = session.get(Instance, instance_id)
        driver, external_id = _driver(session, instance), instance.external_id  # type: ignore[arg-type,union-attr]
        flavor = session.get(Flavor, params.get("flavor_id") or instance.flavor_id)  # type: ignore[union-attr]
    try:
        if params["action"] == "resize":
            driver.resize_instance(external_id, flavor.vcpus, flavor.memory_mb, params["disk_gb"])  # type: ignore[union-attr]
        else:
            driver.migrate_instance(external_id, target["host"], params["action"] == "live-migrate")
    except ProviderError as exc:
        if exc.transient:
            raise
        return f"provider: {exc}"
    return None


@step
def _changed(operation_id: str, instance_id: str, params: dict, target: dict) -> None:
    with _session() as session:
        instance = compute.lock(session, instance_id)
        if params["action"] == "resize":
            flavor = session.get(Flavor, params["flavor_id"])
            instance.flavor_id, instance.disk_gb = flavor.id, params["disk_gb"]  # type: ignore[union-attr]
            instance.vcpus, instance.memory_mb = flavor.vcpus, flavor.memory_mb  # type: ignore[union-attr]
            done = f"resized to {flavor.name}"  # type: ignore[union-attr]
        else:
            scheduler.release(session, instance.claim_id)  # type: ignore[arg-type]
            instance.claim_id, instance.host_id = target["claim_id"], target["host_id"]
            if instance.port_id is not None:  # the SDN controller moves its entries
                ports.update_port(
                    session, SYSTEM, instance.port_id, PortUpdate(host_id=target["host_id"])
                )
            done = f"moved to host {target['host_id']}"
        compute.settle(session, instance, params["resting"], done)
        advance(operation_id, state="succeeded", step="done", progress=100, session=session)


@step
def _unchanged(
    operation_id: str, instance_id: str, params: dict, target: dict, reason: str
) -> None:
    """The provider refused: the size (quota, claim) or the new host's claim is given back."""
    with _session() as session:
        instance = compute.lock(session, instance_id)
        if params["action"] == "resize":
            before = params["before"]
            size = {"vcpus": before["vcpus"], "memory_mb": before["memory_mb"]}
            compute.hold(session, instance, size, before["disk_gb"])
        elif "claim_id" in target:
            scheduler.release(session, target["claim_id"])
        compute.settle(session, instance, params["resting"], f"{params['action']} failed: {reason}")
        advance(operation_id, state="failed", error=reason[:2000], session=session)


@DBOS.workflow()
def change_instance(operation_id: str) -> str:
    operation = load(operation_id)
    instance_id, params = operation.target_id, operation.params  # type: ignore[union-attr]
    target: dict[str, Any] = {}
    try:
        if params["action"] != "resize":
            target = _target(operation_id, instance_id)
            _go_on(target.get("error"))
        _go_on(_change(operation_id, instance_id, params, target))
        _changed(operation_id, instance_id, params, target)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, Refused) else f"{type(exc).__name__}: {exc}"
        _unchanged(operation_id, instance_id, params, target, reason)
        return "failed"
    return params["action"]


WORKFLOWS = {
    compute.CREATE: create_instance,
    compute.POWER: power_instance,
    compute.DELETE: delete_instance,
    compute.CHANGE: change_instance,
}
