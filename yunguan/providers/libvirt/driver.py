"""The libvirt driver: real machines on one libvirt host through libvirt-python.

A machine is a persistent domain named after our instance id, with our metadata in it (see
:mod:`.domain`); its ``external_id`` is the domain's UUID. Its root disk is a qcow2 volume in
a directory storage pool the driver defines when absent, its NICs sit on a Linux bridge, and
virtlogd appends its serial console to a file under ``console_dir``, which
:meth:`LibvirtDriver.console_log` reads: the driver runs on the libvirt host itself.

A data volume is a qcow2 volume of the same pool named ``volume-<volume id>.qcow2`` (that
name is its ``external_id``); it is attached to at most one domain, as a virtio disk
(``vdb``, ``vdc`` …), and outlives the machines it was attached to. A snapshot is a full
copy of a volume, the volume ``snapshot-<snapshot id>.qcow2``: unlike a qcow2 internal
snapshot it survives the deletion of its volume, and it can be read without it.
"""

import functools
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, ParamSpec, TypeVar
from urllib.parse import urlsplit

import libvirt
from pydantic import Field, IPvAnyAddress

from yunguan.core.types import Input
from yunguan.providers.base import (
    ERROR,
    PENDING,
    RUNNING,
    STOPPED,
    UNKNOWN,
    Collected,
    Disk,
    HostFacts,
    InstanceSpec,
    Machine,
    MachineNotFound,
    ProviderError,
    VolumeSpec,
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
CONFIG, LIVE = libvirt.VIR_DOMAIN_AFFECT_CONFIG, libvirt.VIR_DOMAIN_AFFECT_LIVE
VOLUME_PREFIX, SNAPSHOT_PREFIX, SUFFIX = "volume-", "snapshot-", ".qcow2"


def _silent(_context: object, _error: object) -> None:
    """libvirt prints every error to stderr by default; ours arrive as exceptions."""


libvirt.registerErrorHandler(_silent, None)


class Config(Input):
    uri: str = "qemu:///system"
    storage_pool: str = "yunguan"
    pool_path: str = "/var/lib/libvirt/yunguan/images"
    bridge: str = "virbr0"
    network: Literal["bridge", "dataplane"] = "bridge"  # see domain.Placement
    # the host's address (its VTEP in the data plane); default: the host of ``uri``
    address: IPvAnyAddress | None = None
    domain_type: Literal["qemu", "kvm"] = "qemu"
    console_dir: str = "/var/log/libvirt/yunguan"
    # how long stop waits for an ACPI shutdown before it powers the machine off
    stop_grace_seconds: Annotated[float, Field(ge=0, le=600)] = 30
    # how long a detach waits for a running guest to release the disk
    detach_grace_seconds: Annotated[float, Field(ge=0, le=600)] = 30


class Secret(Input):
    """Nothing: a local socket needs no credentials, and remote URIs authenticate with
    libvirt's own means (SSH keys, TLS certificates)."""


P = ParamSpec("P")
R = TypeVar("R")


def _translated(method: Callable[P, R]) -> Callable[P, R]:
    """libvirt's errors as ours: no such domain or volume is :class:`MachineNotFound`; a lost
    connection or a busy domain is worth retrying."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except libvirt.libvirtError as exc:
            message = f"libvirt: {exc.get_error_message()}"
            if exc.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_STORAGE_VOL):
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


@dataclass(frozen=True)
class Attachment:
    """A disk file attached to ``dom`` at ``device``; ``affects`` says where: the
    definition (``CONFIG``), the running domain (``LIVE``) or both."""

    dom: libvirt.virDomain
    device: str
    affects: int


class LibvirtDriver:
    kind = "libvirt"
    capabilities = capabilities(
        supported=[
            "create",
            "start",
            "stop",
            "reboot",
            "delete",
            "console_log",
            "collect",
            "volumes",
            "snapshots",
        ],
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
        """Power off and undefine, deleting the root disk; data volumes attached to the
        machine are left, detached with it."""
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

    @_translated
    def create_volume(self, spec: VolumeSpec) -> Disk:
        self._check_host(spec.host)
        pool, name = self._pool(), volume_name(spec.volume_id)
        made = _or_none(libvirt.VIR_ERR_NO_STORAGE_VOL, pool.storageVolLookupByName, name)
        if made is None:
            made = pool.createXML(domain.data_volume_xml(name, spec.size_gb))
        return self._disk(made)

    @_translated
    def get_volume(self, external_id: str) -> Disk:
        return self._disk(self._data_volume(external_id))

    @_translated
    def attach_volume(self, machine_id: str, volume_id: str) -> str:
        """Attach as a virtio disk to the domain's definition and, when it runs, to the
        running domain too (the guest's kernel picks the disk up through ACPI PCI hotplug)."""
        dom, path = self._domain(machine_id), self._data_volume(volume_id).path()
        held = self._attachment(path)
        if held is not None and held.dom.UUIDString() != dom.UUIDString():
            raise ProviderError(
                f"libvirt: volume {volume_id} is attached to {held.dom.UUIDString()}"
            )
        device = held.device if held is not None else self._free_target(dom)
        missing = _affected(dom) & ~(held.affects if held is not None else 0)
        if missing:
            serial = volume_id_of(volume_id) or ""
            dom.attachDeviceFlags(domain.data_disk_xml(path, device, serial), missing)
        return device

    @_translated
    def detach_volume(self, machine_id: str, volume_id: str) -> None:
        """Detach from the domain's definition, then from the running domain. The latter is a
        request the guest's kernel answers (ACPI PCI hot-unplug): the disk is resent the
        request until it is released or ``detach_grace_seconds`` pass, when a transient
        :class:`ProviderError` says so. A guest still booting misses the request; one whose
        kernel handles no ACPI hotplug never releases the disk, which then stays attached
        until the machine is powered off (it is detached from the definition already)."""
        dom = self._find_domain(machine_id)
        volume = self._find_data_volume(volume_id)
        if dom is None or volume is None:
            return  # either gone: not attached
        held = self._attachment_to(dom, volume.path())
        if held is None:
            return
        disk = domain.data_disk_xml(volume.path(), held.device)
        if held.affects & CONFIG:
            dom.detachDeviceFlags(disk, CONFIG)
        if held.affects & LIVE:
            self._detach_live(dom, disk, volume.path())

    @_translated
    def extend_volume(self, volume_id: str, size_gb: int) -> None:
        """Grow the volume (a size it has already is a no-op; it never shrinks). QEMU holds
        a running domain's disks locked, so one in use grows through the domain
        (``blockResize``), which also tells the guest of the new size."""
        volume, size = self._data_volume(volume_id), size_gb * GIB
        if size <= volume.info()[1]:
            return
        held = self._attachment(volume.path())
        if held is not None and held.affects & LIVE:
            held.dom.blockResize(held.device, size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
        else:
            volume.resize(size)

    @_translated
    def delete_volume(self, volume_id: str) -> None:
        volume = self._find_data_volume(volume_id)
        if volume is None:
            return
        held = self._attachment(volume.path())
        if held is not None:  # libvirt would delete the file under the domain's feet
            raise ProviderError(
                f"libvirt: volume {volume_id} is attached to {held.dom.UUIDString()}"
            )
        volume.delete()

    @_translated
    def create_snapshot(self, volume_id: str, snapshot_id: str) -> str:
        """A full copy of the volume into the pool (the snapshot volume's name is the
        external id). A volume a running domain uses is locked by QEMU, so its copy is a push
        backup through the domain (crash-consistent, as at a power cut); any other is cloned
        by libvirt (``qemu-img convert``)."""
        source, name = self._data_volume(volume_id), snapshot_name(snapshot_id)
        held = self._attachment(source.path())
        if held is not None and held.affects & LIVE:
            return self._backup(held, source, name).name()
        pool = self._pool()
        made = _or_none(libvirt.VIR_ERR_NO_STORAGE_VOL, pool.storageVolLookupByName, name)
        if made is None:
            made = pool.createXMLFrom(domain.data_volume_xml(name), source, 0)
        return made.name()

    @_translated
    def delete_snapshot(self, external_id: str) -> None:
        """Delete the snapshot volume; a name that is not a snapshot's is left alone."""
        if not is_snapshot_name(external_id):
            return
        pool = self._pool()
        made = _or_none(libvirt.VIR_ERR_NO_STORAGE_VOL, pool.storageVolLookupByName, external_id)
        if made is not None:
            made.delete()

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
            address=self._address(),
        )

    def _address(self) -> str:
        if self.config.address is not None:
            return str(self.config.address)
        return urlsplit(self.config.uri).hostname or ""

    def _check_host(self, host: str | None) -> None:
        if host is not None and host != self._hostname:
            raise ProviderError(f"libvirt: this provider is host {self._hostname}, not {host}")

    # --- making a machine ------------------------------------------------------------------

    def _define(self, spec: InstanceSpec) -> libvirt.virDomain:
        self._check_host(spec.host)
        os.makedirs(self.config.console_dir, exist_ok=True)
        placement = Placement(
            domain_type=self.config.domain_type,
            disk=self._volume(spec).path(),
            bridge=self.config.bridge,
            network=self.config.network,
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
        """Delete the disk if it is a volume of some storage pool, but not a data volume (a
        file libvirt does not manage is left alone too)."""
        conn = self._connect()
        volume = _or_none(libvirt.VIR_ERR_NO_STORAGE_VOL, conn.storageVolLookupByPath, path)
        if volume is not None and volume_id_of(volume.name()) is None:
            volume.delete()

    # --- volumes ---------------------------------------------------------------------------

    def _data_volume(self, external_id: str) -> libvirt.virStorageVol:
        volume = self._find_data_volume(external_id)
        if volume is None:
            raise MachineNotFound(f"libvirt: no volume {external_id!r}")
        return volume

    def _find_data_volume(self, external_id: str) -> libvirt.virStorageVol | None:
        """The data volume of that name in our pool (None for any other name)."""
        if volume_id_of(external_id) is None:
            return None
        pool = self._pool()
        return _or_none(libvirt.VIR_ERR_NO_STORAGE_VOL, pool.storageVolLookupByName, external_id)

    def _disk(self, volume: libvirt.virStorageVol) -> Disk:
        held = self._attachment(volume.path())
        return Disk(
            external_id=volume.name(),
            size_gb=volume.info()[1] // GIB,
            volume_id=volume_id_of(volume.name()),
            attached_to=None if held is None else held.dom.UUIDString(),
            device=None if held is None else held.device,
        )

    def _attachment(self, path: str) -> Attachment | None:
        """Where the disk file ``path`` is attached, looking through every domain (ours or
        not, running or only defined)."""
        for dom in self._connect().listAllDomains():
            held = _or_none(libvirt.VIR_ERR_NO_DOMAIN, self._attachment_to, dom, path)
            if held is not None:
                return held
        return None

    @staticmethod
    def _attachment_to(dom: libvirt.virDomain, path: str) -> Attachment | None:
        live = domain.disk_target(dom.XMLDesc(), path) if dom.isActive() else None
        defined = None
        if dom.isPersistent():
            defined = domain.disk_target(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), path)
        device = live or defined
        if device is None:
            return None
        return Attachment(dom, device, (CONFIG if defined else 0) | (LIVE if live else 0))

    @staticmethod
    def _free_target(dom: libvirt.virDomain) -> str:
        """The first data-volume target neither the definition nor the running domain uses."""
        taken = set(domain.disk_targets(dom.XMLDesc()))
        if dom.isPersistent():
            taken |= set(domain.disk_targets(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))
        device = domain.free_target(taken)
        if device is None:
            raise ProviderError(f"libvirt: domain {dom.UUIDString()} has no free disk target")
        return device

    def _detach_live(self, dom: libvirt.virDomain, disk: str, path: str) -> None:
        """Ask the running domain to release the disk (libvirt waits up to 5 s for QEMU to
        report it gone) until it has or ``detach_grace_seconds`` pass."""
        deadline = time.monotonic() + self.config.detach_grace_seconds
        while True:
            if _released(dom, path):
                return
            _or_none(libvirt.VIR_ERR_DEVICE_MISSING, dom.detachDeviceFlags, disk, LIVE)
            if _released(dom, path, within=min(1.0, max(0.0, deadline - time.monotonic()))):
                return
            if time.monotonic() >= deadline:
                raise ProviderError(
                    f"libvirt: the guest of domain {dom.UUIDString()} did not release {path} "
                    f"within {self.config.detach_grace_seconds:g} s (it may still be booting, "
                    "or ignore hot-unplug requests); it is detached once the machine stops",
                    transient=True,
                )

    def _backup(
        self, held: Attachment, source: libvirt.virStorageVol, name: str
    ) -> libvirt.virStorageVol:
        """A copy of the disk the running domain ``held.dom`` uses, by a push backup into a
        file of the pool named ``name``; one an earlier attempt made (or is making) is found."""
        pool = self._pool()
        _wait_for_backup(held.dom)  # an earlier attempt's may still be copying
        pool.refresh()  # the pool learns of files libvirt's backups made only on a refresh
        made = _or_none(libvirt.VIR_ERR_NO_STORAGE_VOL, pool.storageVolLookupByName, name)
        if made is not None:
            return made
        file = os.path.join(os.path.dirname(source.path()), name)
        held.dom.backupBegin(domain.backup_xml(held.dom.XMLDesc(), held.device, file), None, 0)
        _wait_for_backup(held.dom)
        done = held.dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        if not done.get("success"):
            raise ProviderError(f"libvirt: copying {source.name()} failed: {done.get('errmsg')}")
        pool.refresh()
        return pool.storageVolLookupByName(name)


def volume_name(volume_id: str) -> str:
    return f"{VOLUME_PREFIX}{volume_id}{SUFFIX}"


def snapshot_name(snapshot_id: str) -> str:
    return f"{SNAPSHOT_PREFIX}{snapshot_id}{SUFFIX}"


def volume_id_of(name: str) -> str | None:
    """Our volume id, when ``name`` is a data volume's."""
    if name.startswith(VOLUME_PREFIX) and name.endswith(SUFFIX):
        return name[len(VOLUME_PREFIX) : -len(SUFFIX)] or None
    return None


def is_snapshot_name(name: str) -> bool:
    return name.startswith(SNAPSHOT_PREFIX) and name.endswith(SUFFIX)


def _affected(dom: libvirt.virDomain) -> int:
    """Where a device change must go: the definition (if any) and the running domain (if
    it runs)."""
    return (CONFIG if dom.isPersistent() else 0) | (LIVE if dom.isActive() else 0)


def _released(dom: libvirt.virDomain, path: str, within: float = 0) -> bool:
    """Whether the running domain (if it still runs) has no disk ``path``, polling for up to
    ``within`` seconds."""
    deadline = time.monotonic() + within
    while dom.isActive() and domain.disk_target(dom.XMLDesc(), path) is not None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def _wait_for_backup(dom: libvirt.virDomain) -> None:
    """Until the domain runs no backup job."""
    while dom.jobStats().get("operation") == libvirt.VIR_DOMAIN_JOB_OPERATION_BACKUP:
        time.sleep(0.2)


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
