"""The libvirt driver against a real libvirtd running tiny TCG guests (Debian's kernel and a
busybox initramfs): see tests/support/libvirtd.py and tests/support/guest_image.py."""

import dataclasses
import json
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import libvirt
import pytest

from tests.providers.contract import DriverContract, wait_state
from tests.support import guest_image, libvirtd
from yunguan.providers.base import (
    RUNNING,
    STOPPED,
    ImageRef,
    InstanceSpec,
    Machine,
    MachineNotFound,
    Nic,
    ProviderError,
)
from yunguan.providers.libvirt import Config, LibvirtDriver, Secret
from yunguan.providers.libvirt.domain import Placement, domain_xml

pytestmark = pytest.mark.slow

WORKDIR = Path("/var/lib/libvirt/yunguan-test")
POOL = "yunguan-test"


@pytest.fixture(scope="session")
def daemon() -> libvirtd.Daemon:
    try:
        return libvirtd.daemon()
    except libvirtd.Unavailable as exc:
        pytest.skip(f"libvirt cannot run VMs here: {exc}")


@pytest.fixture(scope="session")
def guest() -> guest_image.Guest:
    try:
        return guest_image.guest()
    except libvirtd.Unavailable as exc:
        pytest.skip(f"no guest to boot: {exc}")


@pytest.fixture(scope="session")
def config(daemon: libvirtd.Daemon) -> Config:
    config = Config(
        uri=daemon.uri,
        storage_pool=POOL,
        pool_path=str(WORKDIR / "pool"),
        bridge=daemon.bridge,
        console_dir=str(WORKDIR / "console"),
        stop_grace_seconds=1,  # busybox ignores the power button: stop powers it off
    )
    # The first call defines the pool; under the lock, so xdist workers do not race to.
    with libvirtd.exclusive(libvirtd.STATE / "lock"):
        first = LibvirtDriver(config, Secret())
        first.collect()
        first.close()
    return config


@pytest.fixture
def driver(config: Config) -> Iterator[LibvirtDriver]:
    driver = LibvirtDriver(config, Secret())
    yield driver
    driver.close()


@pytest.fixture
def conn(daemon: libvirtd.Daemon) -> Iterator[libvirt.virConnect]:
    """A connection of the test's own, to look behind the driver's back."""
    conn = libvirt.open(daemon.uri)
    yield conn
    conn.close()


@pytest.fixture
def spec(driver: LibvirtDriver, guest: guest_image.Guest) -> Iterator[InstanceSpec]:
    """A small machine booting the guest; whatever a test leaves of it is deleted."""
    image = ImageRef(
        id="img-busybox",
        name="busybox",
        ex_kernel=str(guest.kernel),
        ex_initrd=str(guest.initrd),
        ex_cmdline=guest.cmdline,
    )
    spec = InstanceSpec(
        instance_id=f"i-{secrets.token_hex(6)}",
        name="busybox",
        vcpus=1,
        memory_mb=128,
        disk_gb=1,
        image=image,
        host=driver.collect().hosts[0].external_id,
        nics=(Nic(mac="52:54:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))),),
    )
    yield spec
    left = driver.find_instance(spec.instance_id)
    if left is not None:
        driver.delete_instance(left.external_id)


@pytest.fixture
def made(driver: LibvirtDriver, spec: InstanceSpec) -> Machine:
    return driver.create_instance(spec)


class TestLibvirtContract(DriverContract):
    pass


def wait_boots(driver: LibvirtDriver, external_id: str, boots: int, timeout: float = 120) -> None:
    """Until the console shows the guest's marker ``boots`` times."""
    deadline = time.monotonic() + timeout
    while (log := driver.console_log(external_id)).count(guest_image.MARKER) < boots:
        if time.monotonic() > deadline:
            raise AssertionError(f"not {boots} boot(s) on the console, which ends:\n{log[-2000:]}")
        time.sleep(0.5)


def test_console_log_shows_every_boot(driver: LibvirtDriver, made: Machine) -> None:
    wait_boots(driver, made.external_id, 1)
    driver.reboot_instance(made.external_id)
    wait_boots(driver, made.external_id, 2)
    driver.stop_instance(made.external_id)
    assert driver.get_instance(made.external_id).state == STOPPED
    driver.start_instance(made.external_id)
    wait_boots(driver, made.external_id, 3)  # the log outlives a power cycle


def test_collect_reports_the_hosts_capacity(
    driver: LibvirtDriver, conn: libvirt.virConnect, config: Config
) -> None:
    (host,) = driver.collect().hosts
    _arch, memory_mb, cpus, mhz, *_topology = conn.getInfo()
    assert (host.cpu_cores, host.memory_mb, host.cpu_mhz) == (cpus, memory_mb, mhz)
    assert host.cpu_cores == os.cpu_count()
    assert (host.external_id, host.hypervisor) == (conn.getHostname(), "kvm")
    disk = os.statvfs(config.pool_path)
    assert host.disk_gb == disk.f_blocks * disk.f_frsize // 2**30


def test_a_domain_made_elsewhere_is_importable(
    driver: LibvirtDriver, conn: libvirt.virConnect
) -> None:
    name = f"i-{secrets.token_hex(6)}"  # named like one of ours, but without our metadata
    dom = conn.defineXML(
        f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>"
        "<vcpu>2</vcpu><os><type>hvm</type></os></domain>"
    )
    try:
        listed = {m.external_id: m for m in driver.collect().machines}
        machine = listed[dom.UUIDString()]
        assert machine.instance_id is None
        assert (machine.name, machine.state, machine.vcpus, machine.memory_mb) == (
            name,
            STOPPED,
            2,
            64,
        )
        assert driver.find_instance(name) is None
    finally:
        dom.undefine()


def disk_image(path: str) -> dict:
    shown = subprocess.run(
        ["qemu-img", "info", "--force-share", "--output=json", path],
        capture_output=True,
        check=True,
    )
    return json.loads(shown.stdout)


def test_root_disk_is_a_volume_of_the_pool(
    driver: LibvirtDriver, conn: libvirt.virConnect, spec: InstanceSpec, made: Machine
) -> None:
    volume = conn.storagePoolLookupByName(POOL).storageVolLookupByName(f"{spec.instance_id}.qcow2")
    path = volume.path()
    assert Path(path).parent == WORKDIR / "pool"
    image = disk_image(path)
    assert (image["format"], image["virtual-size"]) == ("qcow2", spec.disk_gb * 2**30)
    assert "backing-filename" not in image
    xml = ET.fromstring(conn.lookupByUUIDString(made.external_id).XMLDesc())
    assert [s.get("file") for s in xml.iterfind("devices/disk/source")] == [path]

    driver.delete_instance(made.external_id)
    assert not os.path.exists(path)
    assert spec.instance_id + ".qcow2" not in conn.storagePoolLookupByName(POOL).listVolumes()


def test_a_qcow2_image_backs_the_disk(
    driver: LibvirtDriver, conn: libvirt.virConnect, spec: InstanceSpec
) -> None:
    base = WORKDIR / f"base-{secrets.token_hex(4)}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", base, "64M"], check=True)
    image = dataclasses.replace(spec.image, format="qcow2", location=str(base))
    try:
        made = driver.create_instance(dataclasses.replace(spec, image=image))
        pool = conn.storagePoolLookupByName(POOL)
        disk = disk_image(pool.storageVolLookupByName(f"{spec.instance_id}.qcow2").path())
        assert (disk["backing-filename"], disk["backing-filename-format"]) == (str(base), "qcow2")
        assert disk["virtual-size"] == spec.disk_gb * 2**30
        driver.delete_instance(made.external_id)
        assert base.exists()  # the image outlives the machine
    finally:
        base.unlink()


def test_nic_is_on_the_bridge_with_the_specs_mac(
    driver: LibvirtDriver,
    conn: libvirt.virConnect,
    daemon: libvirtd.Daemon,
    spec: InstanceSpec,
    made: Machine,
) -> None:
    wait_state(driver, made.external_id, RUNNING)
    xml = ET.fromstring(conn.lookupByUUIDString(made.external_id).XMLDesc())
    (nic,) = xml.iterfind("devices/interface")
    assert nic.find("mac").get("address") == spec.nics[0].mac
    assert nic.find("source").get("bridge") == daemon.bridge
    if daemon.netns:  # the tap device libvirt made is a port of that bridge
        tap = nic.find("target").get("dev")
        shown = subprocess.run(
            ["ip", "-n", daemon.netns, "-j", "link", "show", "dev", tap],
            capture_output=True,
            check=True,
        )
        assert json.loads(shown.stdout)[0]["master"] == daemon.bridge


def test_a_nic_may_name_its_own_bridge(spec: InstanceSpec) -> None:
    nics = (Nic(mac="52:54:00:00:00:01"), Nic(mac="52:54:00:00:00:02", ex_bridge="br-other"))
    placement = Placement(domain_type="qemu", disk="/d.qcow2", bridge="br0", console="/c.log")
    xml = ET.fromstring(domain_xml(dataclasses.replace(spec, nics=nics), placement))
    bridges = [source.get("bridge") for source in xml.iterfind("devices/interface/source")]
    assert bridges == ["br0", "br-other"]


def test_an_unknown_uuid_is_not_found(driver: LibvirtDriver) -> None:
    gone = str(uuid.uuid4())
    with pytest.raises(MachineNotFound):
        driver.get_instance(gone)
    driver.delete_instance(gone)


def test_a_failed_start_is_a_provider_error_and_a_retry_finds_the_domain(
    driver: LibvirtDriver, spec: InstanceSpec
) -> None:
    broken = dataclasses.replace(spec.image, ex_kernel="/nonexistent/vmlinuz")
    with pytest.raises(ProviderError) as raised:
        driver.create_instance(dataclasses.replace(spec, image=broken))
    assert not isinstance(raised.value, MachineNotFound), raised.value
    found = driver.find_instance(spec.instance_id)
    assert found is not None and found.state == STOPPED
    driver.delete_instance(found.external_id)
    assert driver.find_instance(spec.instance_id) is None
