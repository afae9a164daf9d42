"""The libvirt driver: real machines on one libvirt host through libvirt-python.

A machine is a persistent domain named after our instance id, with our metadata in it (see
:mod:`.domain`); its ``external_id`` is the domain's UUID. Its root disk is a qcow2 volume in
a directory storage pool the driver defines when absent, its NICs sit on a Linux bridge, and
virtlogd appends its serial console to a file under ``console_dir``, which
:meth:`LibvirtDriver.console_log` reads: the driver runs on the libvirt host itself.
"""

import functools
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal, ParamSpec, TypeVar
from urllib.parse import urlsplit

import libvirt
from pydantic import Field

from yunguan.core.types import Input
from yunguan.providers.base import (
    ERROR,
    PENDING,
    RUNNING,
    STOPPED,
    UNKNOWN,
    Collected,
    HostFacts,
    InstanceSpec,
    Machine,
    MachineNotFound,
    ProviderError,
    capabilities,
)
from yunguan.providers.libvirt import domain
from yunguan.providers.libvirt.domain import Placement

STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: PENDING,
    libvirt.VIR_DOMAIN_RUNNING: RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: RUNNING,  # running, waiting on I/O
    libvirt.VIR_DOMAIN_SHUTDOWN: RUNNING,  # still running while it shuts down
    libvirt.VIR_DOMAIN_PAUSED: STOPPED,  # start resumes it
    libvirt.VIR_DOMAIN_PMSUSPENDED: STOPPED,  # start wakes it
    libvirt.VIR_DOMAIN_SHUTOFF: STOPPED,
    libvirt.VIR_DOMAIN_CRASHED: ERROR,
}
UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
)
GIB = 1024**3


def _silent(_context: object, _error: object) -> None:
    """libvirt prints every error to stderr by default; ours arrive as exceptions."""


libvirt.registerErrorHandler(_silent, None)


class Config(Input):
    uri: str = "qemu:///system"
    storage_pool: str = "yunguan"
    pool_path: str = "/var/lib/libvirt/yunguan/images"
    bridge: str = "virbr0"
    domain_type: Literal["qemu", "kvm"] = "qemu"
    console_dir: str = "/var/log/libvirt/yunguan"
    # how long stop waits for an ACPI shutdown before it powers the machine off
    stop_grace_seconds: Annotated[float, Field(ge=0, le=600)] = 30


class Secret(Input):
    """Nothing: a local socket needs no credentials, and remote URIs authenticate with
    libvirt's own means (SSH keys, TLS certificates)."""


P = ParamSpec("P")
R = TypeVar("R")


def _translated(method: Callable[P, R]) -> Callable[P, R]:
    """libvirt's errors as ours: no such domain is :class:`MachineNotFound`; a lost
    connection or a busy domain is worth retrying."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except libvirt.libvirtError as exc:
            message = f"libvirt: {exc.get_error_message()}"
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise MachineNotFound(message) from exc
            transient = (
                exc.get_error_domain() == libvirt.VIR_FROM_RPC
                or exc.get_error_code() == libvirt.VIR_ERR_OPERATION_TIMEOUT
            )
            raise ProviderError(message, transient=transient) from exc

    return call


def _or_none(code: int, call: Callable[..., R], *args: object) -> R | None:
    """``call(*args)``, or None when libvirt answers with error ``code`` (no such thing)."""
    try:
        return call(*args)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == code:
            return None
        raise


class LibvirtDriver:
    kind = "libvirt"
    capabilities = capabilities(
        supported=["create", "start", "stop", "reboot", "delete", "console_log", "collect"],
        unsupported={
            "resize": "resizing a libvirt machine is not implemented yet",
            "migrate": "moving a libvirt machine between hosts is not implemented yet",
            "live_migrate": "live migration needs two libvirt hosts; a libvirt provider is one",
            "boot_device": "choosing a boot device is not implemented yet; machines boot "
            "their image's kernel, else their disk",
        },
    )

    def __init__(self, config: Config, secret: Secret) -> None:
        self.config = config
        self._conn: libvirt.virConnect | None = None
        self._conn_lock = threading.Lock()

    # --- the protocol ------------------------------------------------------------------

    @_translated
    def create_instance(self, spec: InstanceSpec) -> Machine:
        dom = self._own_domain(spec.instance_id) or self._define(spec)
        if not dom.isActive():
            dom.create()
        return self._machine(dom)

    @_translated
    def find_instance(self, instance_id: str) -> Machine | None:
        dom = self._own_domain(instance_id)
        return None if dom is None else self._machine(dom)

    @_translated
    def get_instance(self, external_id: str) -> Machine:
        return self._machine(self._domain(external_id))

    @_translated
    def start_instance(self, external_id: str) -> None:
        dom = self._domain(external_id)
        state = dom.info()[0]
        if state == libvirt.VIR_DOMAIN_PAUSED:
            dom.resume()
        elif state == libvirt.VIR_DOMAIN_PMSUSPENDED:
            dom.pMWakeup()
        elif not dom.isActive():
            dom.create()

    @_translated
    def stop_instance(self, external_id: str) -> None:
        """An ACPI shutdown, then a hard power off once ``stop_grace_seconds`` have passed:
        guests that ignore the power button (a busybox init) would never stop otherwise."""
        dom = self._domain(external_id)
        if not dom.isActive():
            return
        if self.config.stop_grace_seconds:
            _or_none(libvirt.VIR_ERR_OPERATION_INVALID, dom.shutdown)  # it may have stopped
            deadline = time.monotonic() + self.config.stop_grace_seconds
            while dom.isActive() and time.monotonic() < deadline:
                time.sleep(0.2)
        _power_off(dom)

    @_translated
    def reboot_instance(self, external_id: str) -> None:
        """A hard reset (no guest cooperation needed); a stopped machine is started."""
        dom = self._domain(external_id)
        if dom.isActive():
            dom.reset()
        else:
            dom.create()

    @_translated
    def delete_instance(self, external_id: str) -> None:
        dom = self._find_domain(external_id)
        if dom is None:
            return
        xml = dom.XMLDesc()
        _power_off(dom)
        if dom.isPersistent():
            dom.undefineFlags(UNDEFINE_FLAGS)
        for path in domain.disk_paths(xml):
            self._delete_volume(path)
        for path in domain.console_paths(xml):
            Path(path).unlink(missing_ok=True)

    @_translated
    def console_log(self, external_id: str) -> str:
        """What the machine wrote to its serial console ("" when it logs none)."""
        paths = domain.console_paths(self._domain(external_id).XMLDesc())
        return "".join(_read_log(path) for path in paths)

    @_translated
    def collect(self) -> Collected:
        return Collected(hosts=[self._host_facts()], machines=self._machines())

    def close(self) -> None:
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # --- connection and lookups ------------------------------------------------------------

    def _connect(self) -> libvirt.virConnect:
        """The connection, opened on first use and again after it was lost."""
        with self._conn_lock:
            if self._conn is None or not self._conn.isAlive():
                self._conn = libvirt.open(self.config.uri)
            return self._conn

    @functools.cached_property
    def _hostname(self) -> str:
        return self._connect().getHostname()

    def _domain(self, external_id: str) -> libvirt.virDomain:
        dom = self._find_domain(external_id)
        if dom is None:
            raise MachineNotFound(f"libvirt: no domain with UUID {external_id!r}")
        return dom

    def _find_domain(self, external_id: str) -> libvirt.virDomain | None:
        try:
            uuid.UUID(external_id)
        except ValueError:
            return None
        conn = self._connect()
        return _or_none(libvirt.VIR_ERR_NO_DOMAIN, conn.lookupByUUIDString, external_id)

    def _own_domain(self, instance_id: str) -> libvirt.virDomain | None:
        """The domain we made for ``instance_id``: named after it and carrying our mark."""
        dom = _or_none(libvirt.VIR_ERR_NO_DOMAIN, self._connect().lookupByName, instance_id)
        ours = None if dom is None else _metadata(dom)
        return dom if ours is not None and ours[0] == instance_id else None

    def _machine(self, dom: libvirt.virDomain) -> Machine:
        state, max_memory_kib, _memory, vcpus, _cpu_time = dom.info()
        ours = _metadata(dom)
        return Machine(
            external_id=dom.UUIDString(),
            name=dom.name() if ours is None else ours[1],
            state=STATES.get(state, UNKNOWN),
            instance_id=None if ours is None else ours[0],
            host=self._hostname,
            vcpus=vcpus,
            memory_mb=max_memory_kib // 1024,
        )

    def _machines(self) -> list[Machine]:
        """Every domain, skipping those undefined while we looked."""
        domains = self._connect().listAllDomains()
        machines = [_or_none(libvirt.VIR_ERR_NO_DOMAIN, self._machine, dom) for dom in domains]
        return [machine for machine in machines if machine is not None]

    def _host_facts(self) -> HostFacts:
        _arch, memory_mb, cpus, mhz, nodes, sockets, _cores, _threads = self._connect().getInfo()
        _state, capacity, _allocation, _available = self._pool().info()
        return HostFacts(
            external_id=self._hostname,
            name=self._hostname,
            hypervisor="kvm",
            cpu_cores=cpus,
            memory_mb=memory_mb,
            disk_gb=capacity // GIB,
            cpu_mhz=mhz,
            cpu_sockets=nodes * sockets,
            address=urlsplit(self.config.uri).hostname or "",
        )

    # --- making a machine ------------------------------------------------------------------

    def _define(self, spec: InstanceSpec) -> libvirt.virDomain:
        if spec.host is not None and spec.host != self._hostname:
            raise ProviderError(f"libvirt: this provider is host {self._hostname}, not {spec.host}")
        os.makedirs(self.config.console_dir, exist_ok=True)
        placement = Placement(
            domain_type=self.config.domain_type,
            disk=self._volume(spec).path(),
            bridge=self.config.bridge,
            console=os.path.join(self.config.console_dir, f"{spec.instance_id}.log"),
        )
        return self._connect().defineXML(domain.domain_xml(spec, placement))

    def _volume(self, spec: InstanceSpec) -> libvirt.virStorageVol:
        """The root disk; one an earlier attempt made is reused."""
        image = spec.image
        if image.location and image.format not in domain.BACKING_FORMATS:
            raise ProviderError(f"libvirt: a {image.format} image cannot back a qcow2 disk")
        pool, name = self._pool(), f"{spec.instance_id}.qcow2"
        made = _or_none(libvirt.VIR_ERR_NO_STORAGE_VOL, pool.storageVolLookupByName, name)
        if made is not None:
            return made
        return pool.createXML(domain.volume_xml(name, spec.disk_gb, image))

    def _pool(self) -> libvirt.virStoragePool:
        """The storage pool, defined (and set to autostart) and started when needed."""
        conn, name = self._connect(), self.config.storage_pool
        pool = _or_none(libvirt.VIR_ERR_NO_STORAGE_POOL, conn.storagePoolLookupByName, name)
        if pool is None:
            pool = conn.storagePoolDefineXML(domain.pool_xml(name, self.config.pool_path))
            pool.build()
            pool.setAutostart(True)
        if not pool.isActive():
            pool.create()
        return pool

    def _delete_volume(self, path: str) -> None:
        """Delete the disk if it is a volume of some storage pool (a file libvirt does not
        manage is left alone)."""
        conn = self._connect()
        volume = _or_none(libvirt.VIR_ERR_NO_STORAGE_VOL, conn.storageVolLookupByPath, path)
        if volume is not None:
            volume.delete()


def _metadata(dom: libvirt.virDomain) -> tuple[str, str] | None:
    """(instance id, name) when we made the domain, else None."""
    xml = _or_none(
        libvirt.VIR_ERR_NO_DOMAIN_METADATA,
        dom.metadata,
        libvirt.VIR_DOMAIN_METADATA_ELEMENT,
        domain.NAMESPACE,
    )
    return None if xml is None else domain.instance_metadata(xml)


def _power_off(dom: libvirt.virDomain) -> None:
    """Destroy the domain; one that stopped meanwhile is fine."""
    _or_none(libvirt.VIR_ERR_OPERATION_INVALID, dom.destroy)


def _read_log(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return ""  # the machine never ran
    except OSError as exc:
        raise ProviderError(f"libvirt: cannot read the console log {path}: {exc}") from exc
