"""The contract every provider driver passes. A driver's test module subclasses
:class:`DriverContract` and provides the fixtures ``driver`` (a built driver) and ``spec``
(an :class:`InstanceSpec` for a small machine on a host the driver offers)."""

import time

import pytest

from yunguan.providers.base import (
    OPERATIONS,
    RUNNING,
    STATES,
    STOPPED,
    Driver,
    InstanceSpec,
    Machine,
    MachineNotFound,
    Unsupported,
    VolumeSpec,
    require,
)


def wait_state(driver: Driver, external_id: str, state: str, timeout: float = 120) -> Machine:
    deadline = time.monotonic() + timeout
    while True:
        machine = driver.get_instance(external_id)
        if machine.state == state:
            return machine
        if time.monotonic() > deadline:
            raise AssertionError(f"{external_id} is {machine.state}, not {state}")
        time.sleep(0.2)


class DriverContract:
    def test_declares_every_operation(self, driver: Driver) -> None:
        assert set(driver.capabilities) == set(OPERATIONS)
        for operation, declared in driver.capabilities.items():
            assert declared.supported or declared.unsupported_reason, operation
            if not declared.supported:
                with pytest.raises(Unsupported, match=declared.unsupported_reason[:20]):
                    require(driver, operation)

    def test_collect_reports_hosts(self, driver: Driver, spec: InstanceSpec) -> None:
        collected = driver.collect()
        assert collected.hosts, "a provider offers capacity somewhere"
        for host in collected.hosts:
            assert host.cpu_cores > 0 and host.memory_mb > 0, host
        if spec.host is not None:
            assert spec.host in {h.external_id for h in collected.hosts}

    def test_unknown_machine_is_not_found(self, driver: Driver) -> None:
        with pytest.raises(MachineNotFound):
            driver.get_instance("no-such-machine-0000")
        assert driver.find_instance("i-nosuchinstance") is None

    def test_lifecycle(self, driver: Driver, spec: InstanceSpec) -> None:
        made = driver.create_instance(spec)
        try:
            assert made.instance_id == spec.instance_id
            assert driver.create_instance(spec).external_id == made.external_id  # idempotent
            running = wait_state(driver, made.external_id, RUNNING)
            assert running.state in STATES
            found = driver.find_instance(spec.instance_id)
            assert found is not None and found.external_id == made.external_id
            listed = {m.external_id: m for m in driver.collect().machines}
            assert listed[made.external_id].instance_id == spec.instance_id

            driver.stop_instance(made.external_id)
            wait_state(driver, made.external_id, STOPPED)
            driver.start_instance(made.external_id)
            wait_state(driver, made.external_id, RUNNING)
            driver.reboot_instance(made.external_id)
            wait_state(driver, made.external_id, RUNNING)
            if driver.capabilities["console_log"].supported:
                assert isinstance(driver.console_log(made.external_id), str)
        finally:
            driver.delete_instance(made.external_id)
        assert driver.find_instance(spec.instance_id) is None
        driver.delete_instance(made.external_id)  # gone already: still fine

    def test_volumes_and_snapshots(self, driver: Driver, spec: InstanceSpec) -> None:
        if not driver.capabilities["volumes"].supported:
            return  # declared unsupported, with its reason (checked above)
        volume_spec = VolumeSpec(volume_id="vol-contract1", name="data", size_gb=1, host=spec.host)
        disk = driver.create_volume(volume_spec)
        assert driver.create_volume(volume_spec).external_id == disk.external_id  # idempotent
        assert disk.volume_id == "vol-contract1" and disk.size_gb == 1
        made = driver.create_instance(spec)
        try:
            wait_state(driver, made.external_id, RUNNING)
            device = driver.attach_volume(made.external_id, disk.external_id)
            assert device and driver.attach_volume(made.external_id, disk.external_id) == device
            assert driver.get_volume(disk.external_id).attached_to == made.external_id
            driver.detach_volume(made.external_id, disk.external_id)
            driver.detach_volume(made.external_id, disk.external_id)  # not attached: fine
            assert driver.get_volume(disk.external_id).attached_to is None
            driver.extend_volume(disk.external_id, 2)
            assert driver.get_volume(disk.external_id).size_gb == 2
            if driver.capabilities["snapshots"].supported:
                snap = driver.create_snapshot(disk.external_id, "snap-contract1")
                assert driver.create_snapshot(disk.external_id, "snap-contract1") == snap
                driver.delete_snapshot(snap)
                driver.delete_snapshot(snap)
        finally:
            driver.delete_instance(made.external_id)
            driver.delete_volume(disk.external_id)
        with pytest.raises(MachineNotFound):
            driver.get_volume(disk.external_id)
        driver.delete_volume(disk.external_id)
