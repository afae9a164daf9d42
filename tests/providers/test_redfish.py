"""The redfish driver against sushy-tools' emulator (tests/support/redfish_emulator.py): the
driver contract, and what the emulated BMC shows after each call."""

import dataclasses
import secrets
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import sushy
from pydantic import ValidationError

from tests.providers.contract import DriverContract
from tests.support import redfish_emulator as emulator_support
from tests.support.redfish_emulator import NODES, Emulator, Node
from yunguan.providers.base import (
    PENDING,
    RUNNING,
    STOPPED,
    UNKNOWN,
    HostFacts,
    ImageRef,
    InstanceSpec,
    MachineNotFound,
    ProviderError,
)
from yunguan.providers.redfish import Config, RedfishDriver, Secret
from yunguan.providers.redfish.driver import normalized

SMALL, LARGE, LEGACY, STOCK = NODES  # the contract boots SMALL; the tests below the others
redfish_emulator = emulator_support.redfish_emulator  # the fixture, for this module


def build(emulator: Emulator, **config: Any) -> RedfishDriver:
    return RedfishDriver(
        Config(endpoint=emulator.url, **config),
        Secret(username=emulator.username, password=emulator.password),
    )


def spec_for(node: Node) -> InstanceSpec:
    return InstanceSpec(
        instance_id=f"i-{secrets.token_hex(4)}",
        name=f"on-{node.name}",
        vcpus=node.sockets * node.cores,
        memory_mb=node.memory_gib * 1024,
        disk_gb=sum(node.disks_gb),
        image=ImageRef(id="img-netinstall", name="network install", format="raw"),
        host=node.uuid,
    )


@pytest.fixture
def driver(redfish_emulator: Emulator) -> Iterator[RedfishDriver]:
    built = build(redfish_emulator)
    yield built
    built.close()


@pytest.fixture
def spec() -> InstanceSpec:
    return spec_for(SMALL)


class TestRedfishContract(DriverContract):
    pass


def test_create_claims_the_node_and_boots_it_from_pxe(
    driver: RedfishDriver, redfish_emulator: Emulator
) -> None:
    driver.ex_power(LARGE.uuid, "on")  # a node left on is restarted into the network boot
    redfish_emulator.wait_power(LARGE, "On")
    spec = spec_for(LARGE)
    made = driver.create_instance(spec)
    try:
        system = redfish_emulator.get(LARGE.path)
        assert system["PowerState"] == "PoweringOn"  # restarting
        assert system["Boot"]["BootSourceOverrideTarget"] == "Pxe"
        assert system["AssetTag"] == f"yunguan:{spec.instance_id}"
        redfish_emulator.wait_power(LARGE, "On")

        after_a_crash = build(redfish_emulator)  # only the BMC remembers the claim
        found = after_a_crash.find_instance(spec.instance_id)
        after_a_crash.close()
        assert found is not None and found.external_id == made.external_id == LARGE.uuid
        assert (found.state, found.host, found.memory_mb) == (RUNNING, LARGE.uuid, 256 * 1024)
        with pytest.raises(ProviderError, match=f"already serves instance {spec.instance_id}"):
            driver.create_instance(spec_for(LARGE))
    finally:
        driver.delete_instance(made.external_id)
    redfish_emulator.wait_power(LARGE, "Off")
    system = redfish_emulator.get(LARGE.path)
    assert system["Boot"]["BootSourceOverrideTarget"] == "Hdd"
    assert system["AssetTag"] == ""


def test_a_bmc_that_refuses_the_asset_tag_is_not_provisioned(
    driver: RedfishDriver, redfish_emulator: Emulator
) -> None:
    with pytest.raises(ProviderError, match=f"{STOCK.uuid} refused an AssetTag") as raised:
        driver.create_instance(spec_for(STOCK))
    assert "returned code 400" in str(raised.value)
    system = redfish_emulator.get(STOCK.path)
    assert (system["PowerState"], system["Boot"]["BootSourceOverrideTarget"]) == ("Off", "Hdd")


def test_create_needs_the_node_placement_chose(driver: RedfishDriver) -> None:
    with pytest.raises(ProviderError, match="needs the node placement chose"):
        driver.create_instance(dataclasses.replace(spec_for(SMALL), host=None))


def test_power_actions_change_the_power_state(
    driver: RedfishDriver, redfish_emulator: Emulator
) -> None:
    driver.ex_power(LEGACY.uuid, "on")
    redfish_emulator.wait_power(LEGACY, "On")
    assert driver.get_instance(LEGACY.uuid).state == RUNNING
    driver.ex_power(LEGACY.uuid, "reset")
    assert redfish_emulator.get(LEGACY.path)["PowerState"] == "PoweringOn"  # restarting
    assert driver.get_instance(LEGACY.uuid).state == PENDING
    redfish_emulator.wait_power(LEGACY, "On")
    driver.ex_power(LEGACY.uuid, "off")
    redfish_emulator.wait_power(LEGACY, "Off")
    assert driver.get_instance(LEGACY.uuid).state == STOPPED
    with pytest.raises(ValueError, match="power action 'hibernate'"):
        driver.ex_power(LEGACY.uuid, "hibernate")


def test_boot_device_pxe_once_then_disk(driver: RedfishDriver, redfish_emulator: Emulator) -> None:
    driver.ex_set_boot_device(LEGACY.uuid, "pxe")
    assert redfish_emulator.get(LEGACY.path)["Boot"]["BootSourceOverrideTarget"] == "Pxe"
    driver.ex_set_boot_device(LEGACY.uuid, "disk", once=False)
    assert redfish_emulator.get(LEGACY.path)["Boot"]["BootSourceOverrideTarget"] == "Hdd"
    with pytest.raises(ValueError, match="boot device 'floppy'"):
        driver.ex_set_boot_device(LEGACY.uuid, "floppy")


def expected_host(node: Node, emulator: Emulator) -> HostFacts:
    return HostFacts(
        external_id=node.uuid,
        name=node.name,
        hypervisor="baremetal",
        cpu_cores=node.sockets * node.cores,
        cpu_mhz=node.mhz,
        cpu_sockets=node.sockets,
        memory_mb=node.memory_gib * 1024,
        disk_count=len(node.disks_gb),
        disk_gb=sum(node.disks_gb),
        power_state="on",
        bmc_address=f"{emulator.url}{node.path}",
    )


def test_collect_reports_each_node_as_its_bmc_describes_it(
    driver: RedfishDriver, redfish_emulator: Emulator
) -> None:
    collected = driver.collect()
    hosts = {host.external_id: host for host in collected.hosts}
    assert set(hosts) == {node.uuid for node in NODES}
    for node in NODES:
        host = hosts[node.uuid]
        system = redfish_emulator.get(node.path)
        assert host.power_state in ("on", "off")  # the contract may have left one powering off
        assert dataclasses.replace(host, power_state="on") == expected_host(node, redfish_emulator)
        assert host.memory_mb == system["MemorySummary"]["TotalSystemMemoryGiB"] * 1024
        assert host.cpu_cores == system["ProcessorSummary"]["Count"]
    assert {m.external_id for m in collected.machines} == set(hosts)


def test_system_ids_limit_what_the_driver_manages(redfish_emulator: Emulator) -> None:
    only_small = build(redfish_emulator, system_ids=[SMALL.uuid])
    assert [host.external_id for host in only_small.collect().hosts] == [SMALL.uuid]
    with pytest.raises(MachineNotFound, match="not one this provider manages"):
        only_small.get_instance(LARGE.uuid)
    only_small.close()


def test_wrong_credentials_are_a_clear_error(redfish_emulator: Emulator) -> None:
    wrong = RedfishDriver(
        Config(endpoint=redfish_emulator.url),
        Secret(username=redfish_emulator.username, password="not-the-password"),
    )
    with pytest.raises(ProviderError, match="rejected the password of user 'yunguan'") as raised:
        wrong.collect()
    assert not raised.value.transient
    wrong.close()


def test_an_unreachable_bmc_is_a_transient_error() -> None:
    with socket.socket() as unused:  # bound, never listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{unused.getsockname()[1]}"
        driver = RedfishDriver(Config(endpoint=endpoint), Secret(username="u", password="p"))
        with pytest.raises(ProviderError, match="Unable to connect") as raised:
            driver.get_instance(SMALL.uuid)
    assert raised.value.transient
    driver.close()


@pytest.mark.parametrize(
    ("power", "state"),
    [
        (sushy.PowerState.ON, RUNNING),
        (sushy.PowerState.OFF, STOPPED),
        (sushy.PowerState.POWERING_ON, PENDING),
        (sushy.PowerState.POWERING_OFF, PENDING),
        (sushy.PowerState.PAUSED, UNKNOWN),
        (None, UNKNOWN),
    ],
)
def test_power_states_are_normalized(power: sushy.PowerState | None, state: str) -> None:
    assert normalized(power) == state


def test_config_is_checked() -> None:
    assert Config(endpoint="https://bmc.example.net").verify_tls
    for wrong in ({"endpoint": "ftp://bmc"}, {"endpoint": "https://b", "port": 1}):
        with pytest.raises(ValidationError):
            Config.model_validate(wrong)
    with pytest.raises(ValidationError):
        Secret(username="", password="p")
