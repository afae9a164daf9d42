"""The simulator driver: the contract, plus its latency and deterministic failures."""

import time

import pytest

from tests.providers.contract import DriverContract
from yunguan.core.db import Database
from yunguan.providers.base import ImageRef, InstanceSpec, ProviderError
from yunguan.providers.simulator import Config, Secret, SimulatorDriver


def build(**config) -> SimulatorDriver:
    return SimulatorDriver(Config(**{"realm": "contract", "hosts": 3, **config}), Secret())


@pytest.fixture
def driver(db: Database) -> SimulatorDriver:
    return build(boot_seconds=0.3)


@pytest.fixture
def spec() -> InstanceSpec:
    return InstanceSpec(
        instance_id="i-sim0001",
        name="sim-vm",
        vcpus=1,
        memory_mb=512,
        disk_gb=1,
        image=ImageRef(id="img-1", name="any"),
        host="contract-00002",
    )


class TestSimulatorContract(DriverContract):
    pass


def test_failures_are_drawn_the_same_way_every_time(db: Database, spec: InstanceSpec) -> None:
    def outcomes() -> list[bool]:
        driver = build(failures={"create": 0.5}, seed=7)
        failed = []
        for n in range(40):
            try:
                driver.create_instance(InstanceSpec(**{**spec.__dict__, "instance_id": f"i-{n}"}))
                failed.append(False)
            except ProviderError:
                failed.append(True)
        for machine in driver.collect().machines:
            driver.delete_instance(machine.external_id)
        return failed

    first = outcomes()
    assert first == outcomes() and 10 < sum(first) < 30


def test_latency_is_added_to_every_call(db: Database) -> None:
    driver = build(latency_ms=50)
    started = time.monotonic()
    driver.collect()
    assert time.monotonic() - started >= 0.05


def test_a_hundred_thousand_hosts(db: Database) -> None:
    hosts = build(hosts=100_000).collect().hosts
    assert len(hosts) == 100_000 and hosts[-1].name == "contract-100000"
