"""The simulator: a provider whose machines live in a table and whose hosts are made up.

Deterministic and fast (a create is one insert), it scales to 100k hosts, and it can be
slowed (``latency_ms`` per call, ``boot_seconds`` to boot) or made to fail: ``failures``
gives each operation a probability, drawn from a hash of (seed, operation, machine) so the
same run fails the same way every time. For demos, scale benchmarks and fault tests.
"""

import hashlib
import time
from datetime import timedelta
from ipaddress import IPv4Network
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from yunguan.core.clock import now
from yunguan.core.db import get_database
from yunguan.core.types import Input
from yunguan.providers.base import (
    OPERATIONS,
    PENDING,
    RUNNING,
    STOPPED,
    Capability,
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
from yunguan.providers.models import SimulatedDisk, SimulatedMachine

Operation = Literal[OPERATIONS]  # type: ignore[valid-type]
Realm = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]


class Config(Input):
    realm: Realm = Field("sim", description="names its hosts (realm-00001) and machines")
    hosts: Annotated[int, Field(ge=1, le=100_000)] = 4
    hypervisor: Literal["kvm", "baremetal", "public-cloud"] = "kvm"
    cpu_cores: Annotated[int, Field(ge=1, le=4096)] = 32
    cpu_mhz: Annotated[int, Field(ge=0, le=10_000)] = 2400
    memory_mb: Annotated[int, Field(ge=1, le=16 * 1024 * 1024)] = 131072
    disk_gb: Annotated[int, Field(ge=1, le=1024 * 1024)] = 2000
    latency_ms: Annotated[int, Field(ge=0, le=60_000)] = 0
    boot_seconds: Annotated[float, Field(ge=0, le=3600)] = 0
    failures: dict[Operation, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict)
    seed: int = 0
    underlay: IPv4Network | None = Field(
        None,
        description="its hosts' addresses (VTEPs): host n has the n-th address, so agents "
        "with --plug netns back its machines with netns VMs",
    )

    @model_validator(mode="after")
    def _underlay_fits(self) -> "Config":
        if self.underlay is not None and self.underlay.num_addresses - 2 < self.hosts:
            raise ValueError(f"underlay {self.underlay} is too small for {self.hosts} hosts")
        return self


class Secret(Input):
    token: Annotated[str, Field(max_length=256)] = ""


class SimulatorDriver:
    kind: ClassVar[str] = "simulator"
    capabilities: ClassVar[dict[str, Capability]] = capabilities(
        supported=(
            "create",
            "start",
            "stop",
            "reboot",
            "delete",
            "console_log",
            "collect",
            "volumes",
            "snapshots",
            "resize",
            "migrate",
            "live_migrate",
        ),
        unsupported={"boot_device": "simulated machines have no firmware"},
    )

    def __init__(self, config: Config, secret: Secret) -> None:
        self.config = config

    # --- faults and latency ----------------------------------------------------------------

    def _call(self, operation: str, key: str) -> None:
        if self.config.latency_ms:
            time.sleep(self.config.latency_ms / 1000)
        rate = self.config.failures.get(operation, 0.0)
        if rate and self._draw(operation, key) < rate:
            raise ProviderError(f"simulated failure of {operation} on {key}")

    def _draw(self, operation: str, key: str) -> float:
        digest = hashlib.sha256(f"{self.config.seed}:{operation}:{key}".encode()).digest()
        return int.from_bytes(digest[:8]) / 2**64

    # --- machines --------------------------------------------------------------------------

    def _machine(self, row: SimulatedMachine) -> Machine:
        booted = RUNNING if now() >= row.running_at else PENDING
        state = STOPPED if row.power == "off" else booted
        return Machine(
            external_id=row.external_id,
            name=row.name,
            state=state,
            instance_id=row.instance_id,
            host=row.host,
            vcpus=row.vcpus,
            memory_mb=row.memory_mb,
        )

    def _boot_done(self) -> object:
        return now() + timedelta(seconds=self.config.boot_seconds)

    def create_instance(self, spec: InstanceSpec) -> Machine:
        self._call("create", spec.instance_id)
        found = self.find_instance(spec.instance_id)
        if found is not None:
            return found
        row = SimulatedMachine(
            external_id=f"{self.config.realm}-{spec.instance_id}",
            realm=self.config.realm,
            instance_id=spec.instance_id,
            name=spec.name,
            host=spec.host,
            vcpus=spec.vcpus,
            memory_mb=spec.memory_mb,
            running_at=self._boot_done(),
            console=f"[    0.000000] booting {spec.name} on {spec.host}\n",
        )
        with get_database().session() as session:
            session.add(row)
            session.flush()
            return self._machine(row)

    def _find(self, *where: object) -> Machine | None:
        stmt = select(SimulatedMachine).where(SimulatedMachine.realm == self.config.realm, *where)
        with get_database().session(write=False) as session:
            row = session.scalars(stmt).one_or_none()
            return None if row is None else self._machine(row)

    def find_instance(self, instance_id: str) -> Machine | None:
        return self._find(SimulatedMachine.instance_id == instance_id)

    def get_instance(self, external_id: str) -> Machine:
        self._call("get", external_id)
        found = self._find(SimulatedMachine.external_id == external_id)
        if found is None:
            raise MachineNotFound(f"no simulated machine {external_id}")
        return found

    def _set(self, operation: str, external_id: str, **values: object) -> None:
        self._call(operation, external_id)
        stmt = (
            update(SimulatedMachine)
            .where(
                SimulatedMachine.realm == self.config.realm,
                SimulatedMachine.external_id == external_id,
            )
            .values(**values)
        )
        with get_database().session() as session:
            if session.execute(stmt).rowcount != 1:  # type: ignore[attr-defined]
                raise MachineNotFound(f"no simulated machine {external_id}")

    def start_instance(self, external_id: str) -> None:
        self._set("start", external_id, power="on", running_at=self._boot_done())

    def stop_instance(self, external_id: str) -> None:
        self._set("stop", external_id, power="off")

    def reboot_instance(self, external_id: str) -> None:
        self._set("reboot", external_id, power="on", running_at=self._boot_done())

    def resize_instance(self, external_id: str, vcpus: int, memory_mb: int, disk_gb: int) -> None:
        if self.get_instance(external_id).state != STOPPED:
            raise ProviderError(f"{external_id} is running; stop it to resize")
        self._set("resize", external_id, vcpus=vcpus, memory_mb=memory_mb)

    def migrate_instance(self, external_id: str, host: str, live: bool) -> None:
        state = self.get_instance(external_id).state
        if live != (state == RUNNING):
            raise ProviderError(
                f"{external_id} is {state}: {'live' if live else 'cold'} "
                "migration needs it " + ("running" if live else "stopped")
            )
        self._set("live_migrate" if live else "migrate", external_id, host=host)

    def delete_instance(self, external_id: str) -> None:
        self._call("delete", external_id)
        stmt = delete(SimulatedMachine).where(
            SimulatedMachine.realm == self.config.realm,
            SimulatedMachine.external_id == external_id,
        )
        with get_database().session() as session:
            session.execute(stmt)

    def console_log(self, external_id: str) -> str:
        self._call("console_log", external_id)
        machine = self.get_instance(external_id)
        with get_database().session(write=False) as session:
            text = session.get(SimulatedMachine, external_id).console  # type: ignore[union-attr]
        return text + (f"{machine.name} login:\n" if machine.state == RUNNING else "")

    # --- volumes and snapshots ------------------------------------------------------------

    def _disk(self, row: SimulatedDisk) -> Disk:
        return Disk(
            external_id=row.external_id,
            size_gb=row.size_gb,
            volume_id=row.our_id,
            attached_to=row.attached_to,
            device=row.device,
        )

    def _disk_row(self, session: Session, external_id: str, kind: str = "volume") -> SimulatedDisk:
        row = session.get(SimulatedDisk, external_id)
        if row is None or row.realm != self.config.realm or row.kind != kind:
            raise MachineNotFound(f"no simulated {kind} {external_id}")
        return row

    def _new_disk(self, operation: str, our_id: str, **values: Any) -> SimulatedDisk:
        """Insert once per ``our_id``: a retried call finds the first one's row."""
        self._call(operation, our_id)
        external_id = f"{self.config.realm}-{our_id}"
        with get_database().session() as session:
            row = session.get(SimulatedDisk, external_id)
            if row is None:
                row = SimulatedDisk(
                    external_id=external_id, realm=self.config.realm, our_id=our_id, **values
                )
                session.add(row)
                session.flush()
            session.expunge(row)
            return row

    def create_volume(self, spec: VolumeSpec) -> Disk:
        return self._disk(self._new_disk("volumes", spec.volume_id, size_gb=spec.size_gb))

    def get_volume(self, external_id: str) -> Disk:
        with get_database().session(write=False) as session:
            return self._disk(self._disk_row(session, external_id))

    def attach_volume(self, machine_id: str, volume_id: str) -> str:
        self._call("volumes", volume_id)
        self.get_instance(machine_id)
        with get_database().session() as session:
            row = self._disk_row(session, volume_id)
            if row.attached_to not in (None, machine_id):
                raise ProviderError(f"{volume_id} is attached to {row.attached_to}")
            if row.attached_to is None:
                taken = set(
                    session.scalars(
                        select(SimulatedDisk.device).where(SimulatedDisk.attached_to == machine_id)
                    )
                )
                row.device = next(f"vd{c}" for c in "bcdefghijklmnop" if f"vd{c}" not in taken)
                row.attached_to = machine_id
            return row.device  # type: ignore[return-value]

    def detach_volume(self, machine_id: str, volume_id: str) -> None:
        self._call("volumes", volume_id)
        with get_database().session() as session:
            row = self._disk_row(session, volume_id)
            if row.attached_to == machine_id:
                row.attached_to = row.device = None

    def extend_volume(self, volume_id: str, size_gb: int) -> None:
        self._call("volumes", volume_id)
        with get_database().session() as session:
            row = self._disk_row(session, volume_id)
            row.size_gb = max(row.size_gb, size_gb)

    def delete_volume(self, volume_id: str) -> None:
        self._call("volumes", volume_id)
        with get_database().session() as session:
            row = session.get(SimulatedDisk, volume_id)
            if row is not None and row.attached_to is not None:
                raise ProviderError(f"{volume_id} is attached to {row.attached_to}")
            if row is not None:
                session.delete(row)

    def create_snapshot(self, volume_id: str, snapshot_id: str) -> str:
        with get_database().session(write=False) as session:
            size = self._disk_row(session, volume_id).size_gb
        made = self._new_disk("snapshots", snapshot_id, kind="snapshot", size_gb=size)
        return made.external_id

    def delete_snapshot(self, external_id: str) -> None:
        self._call("snapshots", external_id)
        with get_database().session() as session:
            session.execute(
                delete(SimulatedDisk).where(
                    SimulatedDisk.external_id == external_id, SimulatedDisk.kind == "snapshot"
                )
            )

    # --- inventory -------------------------------------------------------------------------

    def host_name(self, number: int) -> str:
        return f"{self.config.realm}-{number:05d}"

    def collect(self) -> Collected:
        self._call("collect", self.config.realm)
        stmt = select(SimulatedMachine).where(SimulatedMachine.realm == self.config.realm)
        with get_database().session(write=False) as session:
            machines = [self._machine(row) for row in session.scalars(stmt)]
        return Collected(hosts=self.hosts(), machines=machines)

    def hosts(self) -> list[HostFacts]:
        c = self.config
        return [
            HostFacts(
                external_id=self.host_name(n),
                name=self.host_name(n),
                hypervisor=c.hypervisor,
                cpu_cores=c.cpu_cores,
                cpu_mhz=c.cpu_mhz,
                memory_mb=c.memory_mb,
                disk_gb=c.disk_gb,
                address=str(c.underlay[n]) if c.underlay else "",
            )
            for n in range(1, c.hosts + 1)
        ]

    def close(self) -> None:
        """Nothing to close: every call opens its own transaction."""
