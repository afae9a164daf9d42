"""The provider driver contract: what every driver (simulator, libvirt, ec2, redfish …) does,
in normalized terms the rest of Yunguan understands.

A driver is built from a provider's ``config`` (plain settings) and ``secret`` (credentials,
decrypted only to build the driver). Every call is synchronous and may block; workflows call
drivers from their steps, never from a request. Provider-specific options use an ``ex_``
prefix (libcloud's habit). Calls are idempotent where a retried workflow step needs it:
``create_instance`` with the same ``instance_id`` finds what an earlier attempt made, and
``delete_instance`` of something already gone succeeds.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

# Normalized states of a machine as the provider sees it.
PENDING, RUNNING, STOPPED, REBOOTING, ERROR, UNKNOWN = (
    "pending",
    "running",
    "stopped",
    "rebooting",
    "error",
    "unknown",
)
STATES = (PENDING, RUNNING, STOPPED, REBOOTING, ERROR, UNKNOWN)

# What a driver may be asked to do; each driver declares which it supports.
OPERATIONS = (
    "create",
    "start",
    "stop",
    "reboot",
    "delete",
    "console_log",
    "collect",
    "resize",
    "migrate",
    "live_migrate",
    "boot_device",
    "volumes",
    "snapshots",
)


class ProviderError(Exception):
    """A provider call failed. ``transient`` errors are worth retrying."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class Unsupported(ProviderError):
    """The driver cannot do this at all; the message says why."""


class MachineNotFound(ProviderError):
    """The provider has no machine by that id (it may have been deleted out of band)."""


@dataclass(frozen=True)
class Capability:
    supported: bool
    unsupported_reason: str = ""


def capabilities(supported: Iterable[str], unsupported: Mapping[str, str]) -> dict[str, Capability]:
    """A full declaration: every operation is either supported or comes with its reason."""
    declared = {op: Capability(True) for op in supported}
    declared |= {op: Capability(False, reason) for op, reason in unsupported.items()}
    missing = set(OPERATIONS) - set(declared)
    if missing:
        raise ValueError(f"undeclared operations: {sorted(missing)}")
    return declared


@dataclass(frozen=True)
class ImageRef:
    """What a driver needs to know of an image. ``location`` is the driver's own handle: a
    file path (libvirt), an AMI id (ec2), nothing (redfish boots from the network)."""

    id: str
    name: str
    format: str = "qcow2"
    location: str = ""
    min_disk_gb: int = 0
    ex_kernel: str = ""
    ex_initrd: str = ""
    ex_cmdline: str = ""


@dataclass(frozen=True)
class Nic:
    """A guest NIC; ``ip``/``prefix``/``gateway`` are its port's static configuration."""

    mac: str
    ip: str | None = None
    prefix: int | None = None
    gateway: str | None = None
    port_id: str | None = None
    ex_bridge: str | None = None


@dataclass(frozen=True)
class InstanceSpec:
    """One machine to create. ``host`` is the provider's own id of the host placement chose
    (None where the provider places by itself, as public clouds do)."""

    instance_id: str
    name: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    image: ImageRef
    host: str | None = None
    nics: tuple[Nic, ...] = ()
    ex: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Machine:
    """A machine as the provider reports it. ``instance_id`` is ours when we made it (read
    back from a name or tag), None for machines made elsewhere (importable)."""

    external_id: str
    name: str
    state: str
    instance_id: str | None = None
    host: str | None = None
    vcpus: int = 0
    memory_mb: int = 0
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostFacts:
    """A host the provider offers capacity on (a hypervisor, a bare-metal node, a public
    cloud's zone seen as one very large host)."""

    external_id: str
    name: str
    hypervisor: str
    cpu_cores: int
    memory_mb: int
    disk_gb: int
    cpu_mhz: int = 0
    cpu_sockets: int = 1
    disk_count: int = 1
    gpus: int = 0
    nics: int = 1
    power_state: str = "on"
    address: str = ""
    bmc_address: str = ""
    traits: tuple[str, ...] = ()


@dataclass(frozen=True)
class VolumeSpec:
    """A data volume to create. ``host`` is where it must be attachable (the provider's id of
    a host; None where the provider decides)."""

    volume_id: str
    name: str
    size_gb: int
    host: str | None = None
    ex: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Disk:
    """A volume as the provider reports it; ``attached_to`` is a machine's external id."""

    external_id: str
    size_gb: int
    volume_id: str | None = None
    attached_to: str | None = None
    device: str | None = None


@dataclass(frozen=True)
class Collected:
    hosts: list[HostFacts]
    machines: list[Machine]


class Driver(Protocol):
    kind: ClassVar[str]
    capabilities: ClassVar[dict[str, Capability]]

    def create_instance(self, spec: InstanceSpec) -> Machine:
        """Create (or find, when an earlier attempt made it) and power on."""
        ...

    def find_instance(self, instance_id: str) -> Machine | None:
        """The machine made for our ``instance_id``, if any."""
        ...

    def get_instance(self, external_id: str) -> Machine:
        """Raises :class:`MachineNotFound` when it is gone."""
        ...

    def start_instance(self, external_id: str) -> None: ...

    def stop_instance(self, external_id: str) -> None: ...

    def reboot_instance(self, external_id: str) -> None: ...

    def delete_instance(self, external_id: str) -> None:
        """Power off and remove, with its disks. Gone already is fine."""
        ...

    def console_log(self, external_id: str) -> str: ...

    def resize_instance(self, external_id: str, vcpus: int, memory_mb: int, disk_gb: int) -> None:
        """A stopped machine takes the new size (capability ``resize``)."""
        ...

    def migrate_instance(self, external_id: str, host: str, live: bool) -> None:
        """Move the machine to the provider's host ``host``: stopped, or running when ``live``
        (capabilities ``migrate`` and ``live_migrate``)."""
        ...

    def collect(self) -> Collected:
        """Hosts with their capacity and every machine the provider has."""
        ...

    # volumes and snapshots (capabilities ``volumes`` and ``snapshots``)

    def create_volume(self, spec: VolumeSpec) -> Disk:
        """Create (or find, when an earlier attempt made it) an empty volume."""
        ...

    def get_volume(self, external_id: str) -> Disk:
        """Raises :class:`MachineNotFound` when it is gone."""
        ...

    def attach_volume(self, machine_id: str, volume_id: str) -> str:
        """Attach (a no-op when attached already); the device name the machine sees."""
        ...

    def detach_volume(self, machine_id: str, volume_id: str) -> None:
        """Detach; a volume not attached to it is fine."""
        ...

    def extend_volume(self, volume_id: str, size_gb: int) -> None:
        """Grow to ``size_gb`` (never shrinks)."""
        ...

    def delete_volume(self, volume_id: str) -> None:
        """Remove a detached volume; gone already is fine."""
        ...

    def create_snapshot(self, volume_id: str, snapshot_id: str) -> str:
        """A point-in-time copy of the volume, named by our ``snapshot_id`` (idempotent on
        it); its external id."""
        ...

    def delete_snapshot(self, external_id: str) -> None:
        """Gone already is fine."""
        ...

    def close(self) -> None: ...


def require(driver: Driver, operation: str) -> None:
    """Raise :class:`Unsupported` with the driver's reason unless it supports ``operation``."""
    declared = driver.capabilities[operation]
    if not declared.supported:
        raise Unsupported(f"{driver.kind}: {declared.unsupported_reason}")
