"""Bare metal over Redfish (sushy): each Redfish System is a node, handed out whole.

Provisioning a node is a network boot: it is set to boot from PXE once and powered on, and
the installer it boots does the rest. Deleting powers it off and sets it to boot from disk.
The instance a node serves is written in the System's ``AssetTag`` as ``yunguan:<instance
id>``, so a fresh driver reads it back after a crash; the tag is cleared on delete. A node
must keep a written AssetTag (Redfish makes it writable); a BMC that refuses it cannot be
provisioned. A tag that is not ours (an operator's asset number) is overwritten on create.
"""

import contextlib
import functools
from collections.abc import Callable
from typing import Annotated, ClassVar, TypeVar
from urllib.parse import quote, urljoin

import sushy
from pydantic import AnyHttpUrl, Field
from sushy import auth as sushy_auth
from sushy import connector as sushy_connector
from sushy import exceptions as sushy_errors
from sushy import utils as sushy_utils
from sushy.resources.system.processor import Processor
from sushy.resources.system.system import System

from yunguan.core.types import Input, Name, Password
from yunguan.providers.base import (
    PENDING,
    RUNNING,
    STOPPED,
    UNKNOWN,
    Capability,
    Collected,
    HostFacts,
    InstanceSpec,
    Machine,
    MachineNotFound,
    ProviderError,
    Unsupported,
    capabilities,
)

HYPERVISOR = "baremetal"
TAG_PREFIX = "yunguan:"
GB = 10**9  # disks are sold, and sized here, in decimal gigabytes
# A BMC that does not answer fails a call in seconds; the workflow step retries it later.
RETRIES, RETRY_DELAY_S, CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 2, 1, 10, 60

_STATES = {
    sushy.PowerState.ON: RUNNING,
    sushy.PowerState.OFF: STOPPED,
    sushy.PowerState.POWERING_ON: PENDING,
    sushy.PowerState.POWERING_OFF: PENDING,
}
_ON = frozenset({sushy.PowerState.ON, sushy.PowerState.POWERING_ON})
POWER_ACTIONS = {
    "on": sushy.ResetType.ON,
    "off": sushy.ResetType.FORCE_OFF,
    "soft_off": sushy.ResetType.GRACEFUL_SHUTDOWN,
    "reset": sushy.ResetType.FORCE_RESTART,
    "soft_reset": sushy.ResetType.GRACEFUL_RESTART,
}
BOOT_DEVICES = {"pxe": sushy.BootSource.PXE, "disk": sushy.BootSource.HDD}
# Where the BMC does not offer a resource (no link, or a link to nothing).
_ABSENT = (sushy_errors.MissingAttributeError, sushy_errors.ResourceNotFoundError)
_NO_CONSOLE = "Redfish offers no console log; a node's console is its BMC's serial-over-LAN"

Result = TypeVar("Result")


class Config(Input):
    endpoint: AnyHttpUrl = Field(description="the Redfish service, e.g. https://bmc.example.net")
    verify_tls: bool = True
    system_ids: list[Name] | None = Field(
        None, min_length=1, description="manage only these systems (all of them when unset)"
    )


class Secret(Input):
    username: Annotated[str, Field(min_length=1, max_length=256)]
    password: Password


def normalized(power: sushy.PowerState | None) -> str:
    """Our state for a Redfish PowerState: On is running, Off stopped, on the way pending."""
    return _STATES.get(power, UNKNOWN)


def _translated(method: Callable[..., Result]) -> Callable[..., Result]:
    """Raise sushy's errors as :class:`ProviderError` with a message saying what went wrong."""

    @functools.wraps(method)
    def call(self: "RedfishDriver", *args: object, **kwargs: object) -> Result:
        try:
            return method(self, *args, **kwargs)
        except sushy_errors.SushyError as exc:
            raise self._error(exc) from exc

    return call


class RedfishDriver:
    kind: ClassVar[str] = "redfish"
    capabilities: ClassVar[dict[str, Capability]] = capabilities(
        supported=("create", "start", "stop", "reboot", "delete", "collect", "boot_device"),
        unsupported={
            "console_log": _NO_CONSOLE,
            "resize": "a physical server's hardware is fixed",
            "volumes": "a physical server's disks are its own; attach storage over the network",
            "snapshots": "a physical server's disks are its own; Redfish takes no snapshots",
            "migrate": "a physical server is its own host; it cannot move to another",
            "live_migrate": "a physical server is its own host; it cannot move to another",
        },
    )

    def __init__(self, config: Config, secret: Secret) -> None:
        self._endpoint = str(config.endpoint)
        self._username = secret.username
        self._system_ids = None if config.system_ids is None else frozenset(config.system_ids)
        self._conn = sushy_connector.Connector(
            self._endpoint,
            verify=config.verify_tls,
            server_side_retries=RETRIES,
            server_side_retries_delay=RETRY_DELAY_S,
            default_request_timeout=READ_TIMEOUT_S,
            connect_timeout=CONNECT_TIMEOUT_S,
        )
        self._auth = sushy_auth.SessionOrBasicAuth(
            username=secret.username, password=secret.password
        )

    # --- the service -----------------------------------------------------------------------

    @functools.cached_property
    def _root(self) -> sushy.Sushy:
        """The service root, connected (and logged in) on first use."""
        return sushy.Sushy(self._endpoint, auth=self._auth, connector=self._conn)

    @functools.cached_property
    def _systems_path(self) -> str:
        return sushy_utils.get_sub_resource_path_by(self._root, "Systems").rstrip("/")

    def _error(self, exc: sushy_errors.SushyError) -> ProviderError:
        if isinstance(exc, sushy_errors.AccessError):
            refused = "rejected the password" if exc.status_code == 401 else "refused a request"
            return ProviderError(
                f"redfish: {self._endpoint} {refused} of user {self._username!r} "
                f"(HTTP {exc.status_code}); check the provider's credentials"
            )
        transient = isinstance(exc, sushy_errors.ConnectionError | sushy_errors.ServerSideError)
        return ProviderError(f"redfish: {exc}", transient=transient)

    def _manages(self, identity: str) -> bool:
        return self._system_ids is None or identity in self._system_ids

    def _systems(self) -> list[System]:
        systems = self._root.get_system_collection().get_members()
        return [system for system in systems if self._manages(system.identity)]

    def _system(self, identity: str) -> System:
        if not self._manages(identity):
            raise MachineNotFound(f"redfish: system {identity!r} is not one this provider manages")
        try:
            return self._root.get_system(f"{self._systems_path}/{quote(identity, safe='')}")
        except sushy_errors.ResourceNotFoundError:
            raise MachineNotFound(f"redfish: no system {identity!r} at {self._endpoint}")

    def _write_tag(self, system: System, tag: str) -> None:
        """Store ``tag`` in the system's AssetTag and check that the BMC kept it."""
        needed = "Yunguan records the instance a node serves in its AssetTag"
        etag = self._conn.get(system.path).headers.get("ETag")
        try:
            self._conn.patch(system.path, data={"AssetTag": tag}, etag=etag)
        except sushy_errors.BadRequestError as exc:
            raise ProviderError(f"redfish: {system.identity} refused an AssetTag ({needed}): {exc}")
        system.refresh()
        if (system.asset_tag or "") != tag:
            raise ProviderError(f"redfish: {system.identity} did not keep its AssetTag ({needed})")

    def _host(self, system: System) -> HostFacts:
        cpus = _processors(system)
        disks = _disk_sizes(system)
        return HostFacts(
            external_id=system.identity,
            name=system.name or system.identity,
            hypervisor=HYPERVISOR,
            cpu_cores=sum(cpu.total_cores or 0 for cpu in cpus) or _summary_cores(system),
            cpu_mhz=max((cpu.max_speed_mhz or 0 for cpu in cpus), default=0),
            cpu_sockets=len(cpus) or 1,
            memory_mb=_memory_mb(system),
            disk_count=len(disks),
            disk_gb=sum(disks) // GB,
            power_state="on" if system.power_state in _ON else "off",
            bmc_address=urljoin(self._endpoint, system.path),
        )

    # --- the driver protocol ---------------------------------------------------------------

    @_translated
    def create_instance(self, spec: InstanceSpec) -> Machine:
        """Claim the node placement chose (``spec.host``) and boot it from the network. A
        retry finds the node claimed already and powers it on only if it is still off."""
        if spec.host is None:
            raise ProviderError("redfish: a bare-metal instance needs the node placement chose")
        system = self._system(spec.host)
        owner = _instance_of(system)
        if owner not in (None, spec.instance_id):
            raise ProviderError(f"redfish: node {spec.host} already serves instance {owner}")
        if owner is None:
            self._write_tag(system, TAG_PREFIX + spec.instance_id)
        if owner is None or system.power_state not in _ON:
            _boot_from_network(system)
        system.refresh()
        return _machine(system)

    @_translated
    def find_instance(self, instance_id: str) -> Machine | None:
        for system in self._systems():
            if _instance_of(system) == instance_id:
                return _machine(system)
        return None

    @_translated
    def get_instance(self, external_id: str) -> Machine:
        return _machine(self._system(external_id))

    @_translated
    def start_instance(self, external_id: str) -> None:
        system = self._system(external_id)
        if system.power_state not in _ON:
            system.reset_system(sushy.ResetType.ON)

    @_translated
    def stop_instance(self, external_id: str) -> None:
        system = self._system(external_id)
        if system.power_state is not sushy.PowerState.OFF:
            system.reset_system(sushy.ResetType.FORCE_OFF)

    @_translated
    def reboot_instance(self, external_id: str) -> None:
        self._system(external_id).reset_system(sushy.ResetType.FORCE_RESTART)

    @_translated
    def delete_instance(self, external_id: str) -> None:
        """Power off, boot from disk again and release the node (its tag is cleared last, so
        a retry redoes it all). A node released already, or gone, is left alone."""
        try:
            system = self._system(external_id)
        except MachineNotFound:
            return
        if _instance_of(system) is None:
            return
        if system.power_state is not sushy.PowerState.OFF:
            system.reset_system(sushy.ResetType.FORCE_OFF)
        _set_boot(system, "disk", once=False)
        self._write_tag(system, "")

    def console_log(self, external_id: str) -> str:
        raise Unsupported(f"{self.kind}: {_NO_CONSOLE}")

    @_translated
    def collect(self) -> Collected:
        systems = self._systems()
        return Collected(
            hosts=[self._host(system) for system in systems],
            machines=[_machine(system) for system in systems],
        )

    def close(self) -> None:
        """Log out (when a session was opened) and close the HTTP connections."""
        with contextlib.suppress(sushy_errors.SushyError):  # an unclosed session expires
            self._auth.close()
        self._conn.close()

    # --- Redfish extras --------------------------------------------------------------------

    @_translated
    def ex_set_boot_device(self, external_id: str, device: str, once: bool = True) -> None:
        """Boot from ``device`` ('pxe' or 'disk') at the next boot only, or from now on."""
        _set_boot(self._system(external_id), device, once)

    @_translated
    def ex_power(self, external_id: str, action: str) -> None:
        """'on', 'off', 'soft_off' (ask the OS), 'reset' or 'soft_reset' (ask the OS)."""
        if action not in POWER_ACTIONS:
            raise ValueError(f"power action {action!r} is not one of {sorted(POWER_ACTIONS)}")
        self._system(external_id).reset_system(POWER_ACTIONS[action])


# --- reading and driving one system ---------------------------------------------------------


def _instance_of(system: System) -> str | None:
    """Our instance id from the system's AssetTag; None for any other tag."""
    tag = system.asset_tag or ""
    if not tag.startswith(TAG_PREFIX):
        return None
    return tag.removeprefix(TAG_PREFIX) or None


def _machine(system: System) -> Machine:
    return Machine(
        external_id=system.identity,
        name=system.name or system.identity,
        state=normalized(system.power_state),
        instance_id=_instance_of(system),
        host=system.identity,
        vcpus=_summary_cores(system),
        memory_mb=_memory_mb(system),
    )


def _summary_cores(system: System) -> int:
    """Cores as ProcessorSummary counts them: CoreCount where the BMC has it, else Count."""
    summary = system.json.get("ProcessorSummary") or {}
    return summary.get("CoreCount") or summary.get("Count") or 0


def _memory_mb(system: System) -> int:
    """From MemorySummary, read unrounded (sushy truncates 15.5 GiB to 15)."""
    summary = system.json.get("MemorySummary") or {}
    return round((summary.get("TotalSystemMemoryGiB") or 0) * 1024)


def _offered(read: Callable[[], list[Result]]) -> list[Result]:
    """What ``read`` returns, or nothing when the BMC does not offer that resource."""
    try:
        return read()
    except _ABSENT:
        return []


def _processors(system: System) -> list[Processor]:
    """The system's CPUs (not its GPUs), when the BMC lists them."""
    members = _offered(lambda: system.processors.get_members())
    return [p for p in members if p.processor_type in (None, sushy.ProcessorType.CPU)]


def _disk_sizes(system: System) -> list[int]:
    """Sizes in bytes of the system's drives (Storage), else of its SimpleStorage devices."""
    return _offered(lambda: system.storage.drives_sizes_bytes) or _offered(
        lambda: system.simple_storage.disks_sizes_bytes
    )


def _set_boot(system: System, device: str, once: bool) -> None:
    if device not in BOOT_DEVICES:
        raise ValueError(f"boot device {device!r} is not one of {sorted(BOOT_DEVICES)}")
    enabled = (
        sushy.BootSourceOverrideEnabled.ONCE if once else sushy.BootSourceOverrideEnabled.CONTINUOUS
    )
    system.set_system_boot_options(BOOT_DEVICES[device], enabled=enabled)


def _boot_from_network(system: System) -> None:
    """Boot from PXE once: power on, or restart when the node is on already."""
    _set_boot(system, "pxe", once=True)
    on = system.power_state in _ON
    system.reset_system(sushy.ResetType.FORCE_RESTART if on else sushy.ResetType.ON)
