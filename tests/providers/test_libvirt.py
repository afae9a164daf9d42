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
from yunguan.dataplane import names
from yunguan.providers.base import (
    RUNNING,
    STOPPED,
    Disk,
    ImageRef,
    InstanceSpec,
    Machine,
    MachineNotFound,
    Nic,
    ProviderError,
    VolumeSpec,
)
from yunguan.providers.libvirt import Config, LibvirtDriver, Secret
from yunguan.providers.libvirt.domain import (
    Placement,
    backup_xml,
    data_disk_xml,
    domain_xml,
    free_target,
)

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


def test_in_the_data_plane_a_port_is_a_tap_named_for_it(spec: InstanceSpec) -> None:
    nics = (Nic(mac="52:54:00:00:00:01", port_id="port-a"), Nic(mac="52:54:00:00:00:02"))
    placement = Placement(
        domain_type="qemu", disk="/d.qcow2", bridge="br0", console="/c.log", network="dataplane"
    )
    xml = ET.fromstring(domain_xml(dataclasses.replace(spec, nics=nics), placement))
    tap, bridged = xml.iterfind("devices/interface")
    assert tap.get("type") == "ethernet" and tap.find("source") is None
    assert tap.find("target").attrib == {"dev": names.port_device("port-a"), "managed": "yes"}
    assert bridged.get("type") == "bridge" and bridged.find("source").get("bridge") == "br0"


def test_a_directly_booted_guest_gets_its_address_on_the_command_line(
    spec: InstanceSpec,
) -> None:
    nic = Nic(mac="52:54:00:00:00:01", ip="10.2.1.5", prefix=24, gateway="10.2.1.1")
    placement = Placement(domain_type="qemu", disk="/d.qcow2", bridge="br0", console="/c.log")
    xml = ET.fromstring(domain_xml(dataclasses.replace(spec, nics=(nic,)), placement))
    cmdline = xml.find("os/cmdline").text
    assert cmdline == f"{spec.image.ex_cmdline} ip=10.2.1.5::10.2.1.1:255.255.255.0::eth0:off"
    unaddressed = dataclasses.replace(spec, nics=(Nic(mac="52:54:00:00:00:01"),))
    assert ET.fromstring(domain_xml(unaddressed, placement)).find("os/cmdline").text == (
        spec.image.ex_cmdline
    )


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


# --- volumes and snapshots ---------------------------------------------------------------

GIB = 2**30
VIRTIO_BLK = "[1af4:1001]"  # how the guest's kernel logs a virtio disk's PCI function


@pytest.fixture
def volume(driver: LibvirtDriver, conn: libvirt.virConnect) -> Iterator[Disk]:
    """A 1 GiB data volume; it and every snapshot of it a test leaves are deleted (behind the
    driver's back, attached or not)."""
    token = secrets.token_hex(4)
    yield driver.create_volume(VolumeSpec(volume_id=f"vol-{token}", name="data", size_gb=1))
    pool = conn.storagePoolLookupByName(POOL)
    pool.refresh()
    for name in pool.listVolumes():
        if token in name:
            pool.storageVolLookupByName(name).delete()


def snapshot_id(volume: Disk) -> str:
    return f"snap-{volume.volume_id.removeprefix('vol-')}"


def pool_volume(conn: libvirt.virConnect, name: str) -> libvirt.virStorageVol | None:
    pool = conn.storagePoolLookupByName(POOL)
    pool.refresh()
    return pool.storageVolLookupByName(name) if name in pool.listVolumes() else None


def block_list(conn: libvirt.virConnect, external_id: str, inactive: bool = False) -> dict:
    """``virsh domblklist``: target device → source file, of the running domain or (with
    ``inactive``) of its definition."""
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
    xml = ET.fromstring(conn.lookupByUUIDString(external_id).XMLDesc(flags))
    return {
        disk.find("target").get("dev"): disk.find("source").get("file")
        for disk in xml.iterfind("devices/disk")
    }


def live_disk(conn: libvirt.virConnect, external_id: str, device: str) -> ET.Element:
    xml = ET.fromstring(conn.lookupByUUIDString(external_id).XMLDesc())
    (disk,) = [d for d in xml.iterfind("devices/disk") if d.find("target").get("dev") == device]
    return disk


def wait_console(driver: LibvirtDriver, external_id: str, text: str, count: int) -> None:
    """Until ``text`` shows ``count`` times on the machine's console."""
    deadline = time.monotonic() + 60
    while (log := driver.console_log(external_id)).count(text) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not {count} times on the console:\n{log[-2000:]}")
        time.sleep(0.5)


PATTERN = "-P 0xab 0 1M"  # 1 MiB of 0xab at the start: something for copies to copy


def write_pattern(path: str) -> None:
    subprocess.run(["qemu-io", "-c", f"write {PATTERN}", path], capture_output=True, check=True)


def holds_pattern(path: str) -> bool:
    read = subprocess.run(
        ["qemu-io", "-r", "-U", "-c", f"read {PATTERN}", path], capture_output=True
    )
    return read.returncode == 0


def same_contents(one: str, other: str) -> bool:
    compared = subprocess.run(["qemu-img", "compare", "-U", one, other], capture_output=True)
    return compared.returncode == 0


def test_a_volume_is_a_qcow2_volume_of_the_pool(
    driver: LibvirtDriver, conn: libvirt.virConnect, volume: Disk
) -> None:
    assert volume.external_id == f"volume-{volume.volume_id}.qcow2"
    assert (volume.size_gb, volume.attached_to, volume.device) == (1, None, None)
    path = pool_volume(conn, volume.external_id).path()
    assert Path(path).parent == WORKDIR / "pool"
    image = disk_image(path)
    assert (image["format"], image["virtual-size"]) == ("qcow2", GIB)
    assert image["format-specific"]["data"]["compat"] == "1.1"
    assert "backing-filename" not in image
    assert not holds_pattern(path)  # empty


def test_only_data_volumes_are_volumes(
    driver: LibvirtDriver, conn: libvirt.virConnect, spec: InstanceSpec, made: Machine
) -> None:
    root = f"{spec.instance_id}.qcow2"
    for name in (root, "volume-nosuch.qcow2", "../images/x.qcow2", "volume-.qcow2"):
        with pytest.raises(MachineNotFound):
            driver.get_volume(name)
        driver.delete_volume(name)  # gone (or never ours): fine
    driver.delete_snapshot(root)  # not a snapshot: left alone
    assert pool_volume(conn, root) is not None


def test_attach_hotplugs_a_virtio_disk_the_guest_sees(
    driver: LibvirtDriver, conn: libvirt.virConnect, made: Machine, volume: Disk
) -> None:
    wait_boots(driver, made.external_id, 1)  # the guest handles ACPI hotplug once up
    path = pool_volume(conn, volume.external_id).path()
    assert driver.console_log(made.external_id).count(VIRTIO_BLK) == 1  # its root disk

    device = driver.attach_volume(made.external_id, volume.external_id)
    assert device == "vdb"
    assert block_list(conn, made.external_id)["vdb"] == path
    assert block_list(conn, made.external_id, inactive=True)["vdb"] == path  # survives a stop
    disk = live_disk(conn, made.external_id, "vdb")
    assert (disk.find("target").get("bus"), disk.find("serial").text) == (
        "virtio",
        volume.volume_id,
    )
    capacity, _allocation, _physical = conn.lookupByUUIDString(made.external_id).blockInfo("vdb")
    assert capacity == GIB  # QEMU has the volume open
    wait_console(driver, made.external_id, VIRTIO_BLK, 2)  # the guest's kernel found it
    found = driver.get_volume(volume.external_id)
    assert (found.attached_to, found.device) == (made.external_id, "vdb")

    driver.detach_volume(made.external_id, volume.external_id)
    assert "vdb" not in block_list(conn, made.external_id)
    assert "vdb" not in block_list(conn, made.external_id, inactive=True)
    assert driver.get_volume(volume.external_id).attached_to is None


def test_a_second_volume_takes_the_next_free_device(
    driver: LibvirtDriver, conn: libvirt.virConnect, made: Machine, volume: Disk
) -> None:
    other = driver.create_volume(
        VolumeSpec(volume_id=f"{volume.volume_id}-2", name="more", size_gb=1)
    )
    assert driver.attach_volume(made.external_id, volume.external_id) == "vdb"
    assert driver.attach_volume(made.external_id, other.external_id) == "vdc"
    assert driver.attach_volume(made.external_id, volume.external_id) == "vdb"  # no-op
    assert sorted(block_list(conn, made.external_id)) == ["vda", "vdb", "vdc"]


def test_a_volume_attached_to_a_stopped_machine_is_there_when_it_starts(
    driver: LibvirtDriver, conn: libvirt.virConnect, made: Machine, volume: Disk
) -> None:
    driver.stop_instance(made.external_id)
    device = driver.attach_volume(made.external_id, volume.external_id)
    path = pool_volume(conn, volume.external_id).path()
    assert block_list(conn, made.external_id)[device] == path  # the definition: not running
    driver.start_instance(made.external_id)
    wait_state(driver, made.external_id, RUNNING)
    assert block_list(conn, made.external_id)[device] == path
    wait_console(driver, made.external_id, VIRTIO_BLK, 2)  # found at boot, with the root disk


def test_a_volume_is_attached_to_one_machine_at_a_time(
    driver: LibvirtDriver, conn: libvirt.virConnect, made: Machine, volume: Disk
) -> None:
    driver.attach_volume(made.external_id, volume.external_id)
    name = f"i-{secrets.token_hex(6)}"
    other = conn.defineXML(
        f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>"
        "<vcpu>1</vcpu><os><type>hvm</type></os></domain>"
    )
    try:
        with pytest.raises(ProviderError, match="is attached to"):
            driver.attach_volume(other.UUIDString(), volume.external_id)
        driver.detach_volume(other.UUIDString(), volume.external_id)  # not attached there: fine
        assert driver.get_volume(volume.external_id).attached_to == made.external_id
    finally:
        other.undefine()


def test_detach_reports_a_guest_that_does_not_release_the_disk(
    config: Config, conn: libvirt.virConnect, made: Machine, volume: Disk
) -> None:
    """A paused guest cannot answer the hot-unplug request: the disk leaves the definition
    at once, the running domain once the guest releases it (a retry after it resumed)."""
    impatient = LibvirtDriver(config.model_copy(update={"detach_grace_seconds": 1}), Secret())
    try:
        wait_boots(impatient, made.external_id, 1)
        impatient.attach_volume(made.external_id, volume.external_id)
        wait_console(impatient, made.external_id, VIRTIO_BLK, 2)
        dom = conn.lookupByUUIDString(made.external_id)
        dom.suspend()
        with pytest.raises(ProviderError, match="did not release") as raised:
            impatient.detach_volume(made.external_id, volume.external_id)
        assert raised.value.transient
        assert "vdb" not in block_list(conn, made.external_id, inactive=True)
        assert "vdb" in block_list(conn, made.external_id)
        assert impatient.get_volume(volume.external_id).attached_to == made.external_id
        with pytest.raises(ProviderError, match="is attached to"):
            impatient.delete_volume(volume.external_id)

        dom.resume()
        impatient.detach_volume(made.external_id, volume.external_id)
        assert "vdb" not in block_list(conn, made.external_id)
        assert impatient.get_volume(volume.external_id).attached_to is None
    finally:
        impatient.close()


def test_extend_grows_a_volume_in_use_and_one_that_is_not(
    driver: LibvirtDriver, conn: libvirt.virConnect, made: Machine, volume: Disk
) -> None:
    path = pool_volume(conn, volume.external_id).path()
    device = driver.attach_volume(made.external_id, volume.external_id)
    driver.extend_volume(volume.external_id, 2)  # QEMU holds the image: through the domain
    assert pool_volume(conn, volume.external_id).info()[1] == 2 * GIB
    assert disk_image(path)["virtual-size"] == 2 * GIB
    dom = conn.lookupByUUIDString(made.external_id)
    assert dom.blockInfo(device)[0] == 2 * GIB  # what the guest is told

    driver.detach_volume(made.external_id, volume.external_id)
    driver.extend_volume(volume.external_id, 3)  # the volume itself
    assert disk_image(path)["virtual-size"] == 3 * GIB
    driver.extend_volume(volume.external_id, 1)  # never shrinks
    assert driver.get_volume(volume.external_id).size_gb == 3
    assert disk_image(path)["virtual-size"] == 3 * GIB


def test_a_snapshot_is_a_full_copy_that_outlives_its_volume(
    driver: LibvirtDriver, conn: libvirt.virConnect, volume: Disk
) -> None:
    source = pool_volume(conn, volume.external_id).path()
    write_pattern(source)
    snap = driver.create_snapshot(volume.external_id, snapshot_id(volume))
    assert snap == f"snapshot-{snapshot_id(volume)}.qcow2"
    assert driver.create_snapshot(volume.external_id, snapshot_id(volume)) == snap
    copy = pool_volume(conn, snap)
    assert copy is not None and copy.info()[1] == GIB
    path = copy.path()
    image = disk_image(path)
    assert (image["format"], image["virtual-size"]) == ("qcow2", GIB)
    assert "backing-filename" not in image  # a copy, not an overlay
    assert same_contents(source, path) and holds_pattern(path)

    driver.delete_volume(volume.external_id)
    assert not os.path.exists(source)
    assert pool_volume(conn, snap) is not None and holds_pattern(path)
    driver.delete_snapshot(snap)
    assert pool_volume(conn, snap) is None and not os.path.exists(path)
    driver.delete_snapshot(snap)  # gone already: fine


def test_a_snapshot_of_a_volume_in_use_is_copied_through_the_domain(
    driver: LibvirtDriver, conn: libvirt.virConnect, made: Machine, volume: Disk
) -> None:
    source = pool_volume(conn, volume.external_id).path()
    write_pattern(source)
    driver.attach_volume(made.external_id, volume.external_id)
    driver.extend_volume(volume.external_id, 2)
    snap = driver.create_snapshot(volume.external_id, snapshot_id(volume))
    assert driver.create_snapshot(volume.external_id, snapshot_id(volume)) == snap
    copy = pool_volume(conn, snap)
    assert copy is not None and copy.info()[1] == 2 * GIB
    image = disk_image(copy.path())
    assert (image["format"], image["virtual-size"]) == ("qcow2", 2 * GIB)
    assert "backing-filename" not in image
    assert same_contents(source, copy.path()) and holds_pattern(copy.path())
    assert "vdb" in block_list(conn, made.external_id)  # the domain still uses the volume
    driver.delete_snapshot(snap)
    assert pool_volume(conn, snap) is None


def test_deleting_a_machine_keeps_its_volumes(
    driver: LibvirtDriver, conn: libvirt.virConnect, spec: InstanceSpec, made: Machine, volume: Disk
) -> None:
    driver.attach_volume(made.external_id, volume.external_id)
    driver.delete_instance(made.external_id)
    assert pool_volume(conn, f"{spec.instance_id}.qcow2") is None  # the root disk went
    kept = driver.get_volume(volume.external_id)
    assert (kept.size_gb, kept.attached_to, kept.device) == (1, None, None)
    assert os.path.exists(pool_volume(conn, volume.external_id).path())


def test_volume_xml_helpers() -> None:
    assert free_target({"vda", "vdb", "hdc"}) == "vdc"
    assert free_target({f"vd{c}" for c in "abcdefghijklmnopqrstuvwxyz"}) is None
    disk = ET.fromstring(data_disk_xml("/p/v.qcow2", "vdc", "vol-" + "x" * 30))
    assert len(disk.find("serial").text) == 20  # what virtio-blk passes on
    domain = "<domain><devices><disk><target dev='vda'/></disk><disk><target dev='vdb'/></disk>"
    backup = ET.fromstring(backup_xml(domain + "</devices></domain>", "vdb", "/p/s.qcow2"))
    chosen = {d.get("name"): d.get("backup") for d in backup.iterfind("disks/disk")}
    assert chosen == {"vda": "no", "vdb": "yes"}
    assert backup.find("disks/disk[@name='vdb']/target").get("file") == "/p/s.qcow2"
