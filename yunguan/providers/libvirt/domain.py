"""The XML libvirt takes and gives back: domains, disk volumes, the storage pool, backups.

Our domains carry ``<metadata><yunguan:instance id=… name=…/></metadata>``; a domain
without it was made elsewhere.
"""

import ipaddress
from dataclasses import dataclass
from typing import Literal
from xml.etree import ElementTree as ET

from yunguan.dataplane import names
from yunguan.providers.base import ImageRef, InstanceSpec, Nic

NAMESPACE = "https://yunguan.dev/xmlns/libvirt/instance/1"
ET.register_namespace("yunguan", NAMESPACE)

# Image formats a qcow2 disk can use as its backing file.
BACKING_FORMATS = ("qcow2", "raw")
# Where data volumes go: virtio disks after the root disk ``vda``.
DATA_TARGETS = tuple(f"vd{letter}" for letter in "bcdefghijklmnopqrstuvwxyz")
# virtio-blk passes at most 20 bytes of serial number to the guest.
SERIAL_LENGTH = 20


@dataclass(frozen=True)
class Placement:
    """Where a domain's parts live on the host."""

    domain_type: str
    disk: str
    bridge: str
    console: str
    # bridge: NICs are ports of ``bridge``; dataplane: a NIC with a port is a tap named
    # for it, which the host's ``yunguan agent --plug tap`` wires into the VPC's router
    network: Literal["bridge", "dataplane"] = "bridge"


def domain_xml(spec: InstanceSpec, at: Placement) -> str:
    root = ET.Element("domain", type=at.domain_type)
    _text(root, "name", spec.instance_id)
    metadata = ET.SubElement(root, "metadata")
    ET.SubElement(metadata, f"{{{NAMESPACE}}}instance", id=spec.instance_id, name=spec.name)
    _text(root, "memory", str(spec.memory_mb), unit="MiB")
    _text(root, "vcpu", str(spec.vcpus))
    root.append(_os(spec.image, spec.nics))
    ET.SubElement(ET.SubElement(root, "features"), "acpi")
    devices = ET.SubElement(root, "devices")
    devices.append(_disk(at.disk))
    for nic in spec.nics:
        devices.append(_interface(nic, at))
    devices.append(_serial(at.console))
    return ET.tostring(root, encoding="unicode")


def _os(image: ImageRef, nics: tuple[Nic, ...]) -> ET.Element:
    """Direct kernel boot when the image names a kernel, else boot from the disk."""
    os_ = ET.Element("os")
    _text(os_, "type", "hvm")
    if not image.ex_kernel:
        ET.SubElement(os_, "boot", dev="hd")
        return os_
    _text(os_, "kernel", image.ex_kernel)
    if image.ex_initrd:
        _text(os_, "initrd", image.ex_initrd)
    cmdline = " ".join(filter(None, (image.ex_cmdline, *(_ip_parameter(nics)))))
    if cmdline:
        _text(os_, "cmdline", cmdline)
    return os_


def _ip_parameter(nics: tuple[Nic, ...]) -> list[str]:
    """The first NIC's static address as the kernel's ``ip=`` parameter
    (``client::gateway:netmask::device:off``), which initramfs-tools, dracut and our test
    guest read: a directly booted guest needs no DHCP server."""
    if not nics or nics[0].ip is None or nics[0].prefix is None:
        return []
    nic = nics[0]
    netmask = ipaddress.IPv4Network(f"0.0.0.0/{nic.prefix}").netmask
    return [f"ip={nic.ip}::{nic.gateway or ''}:{netmask}::eth0:off"]


def _disk(path: str, target: str = "vda", serial: str = "") -> ET.Element:
    disk = ET.Element("disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="qcow2")
    ET.SubElement(disk, "source", file=path)
    ET.SubElement(disk, "target", dev=target, bus="virtio")
    if serial:
        _text(disk, "serial", serial)
    return disk


def data_disk_xml(path: str, target: str, serial: str = "") -> str:
    """A data volume as a virtio disk, for ``attachDeviceFlags`` and ``detachDeviceFlags``.
    The guest finds it by ``serial`` (``/dev/disk/by-id/virtio-<serial>``): the device name
    it gives the disk need not be ``target``."""
    return ET.tostring(_disk(path, target, serial[:SERIAL_LENGTH]), encoding="unicode")


def _interface(nic: Nic, at: Placement) -> ET.Element:
    if at.network == "dataplane" and nic.port_id and not nic.ex_bridge:
        interface = ET.Element("interface", type="ethernet")
        ET.SubElement(interface, "mac", address=nic.mac)
        ET.SubElement(interface, "target", dev=names.port_device(nic.port_id), managed="yes")
    else:
        interface = ET.Element("interface", type="bridge")
        ET.SubElement(interface, "mac", address=nic.mac)
        ET.SubElement(interface, "source", bridge=nic.ex_bridge or at.bridge)
    ET.SubElement(interface, "model", type="virtio")
    return interface


def _serial(console: str) -> ET.Element:
    """A pty serial port (``virsh console`` works) whose output virtlogd also appends to
    ``console``, across power cycles."""
    serial = ET.Element("serial", type="pty")
    ET.SubElement(serial, "log", file=console, append="on")
    return serial


def volume_xml(name: str, capacity_gb: int, image: ImageRef) -> str:
    """A qcow2 volume; backed by the image's file when it has one."""
    volume = ET.Element("volume")
    _text(volume, "name", name)
    _text(volume, "capacity", str(capacity_gb), unit="GiB")
    ET.SubElement(ET.SubElement(volume, "target"), "format", type="qcow2")
    if image.location:
        backing = ET.SubElement(volume, "backingStore")
        _text(backing, "path", image.location)
        ET.SubElement(backing, "format", type=image.format)
    return ET.tostring(volume, encoding="unicode")


def data_volume_xml(name: str, capacity_gb: int = 0) -> str:
    """An empty qcow2 (v3) volume; with ``pool.createXMLFrom`` a copy of its source, whose
    capacity it takes when ``capacity_gb`` is 0."""
    volume = ET.Element("volume")
    _text(volume, "name", name)
    _text(volume, "capacity", str(capacity_gb), unit="GiB")
    target = ET.SubElement(volume, "target")
    ET.SubElement(target, "format", type="qcow2")
    _text(target, "compat", "1.1")  # libvirt's default is qemu 0.10's qcow2 (v2)
    return ET.tostring(volume, encoding="unicode")


def backup_xml(domain: str, target: str, file: str) -> str:
    """A push backup of the disk at ``target`` alone (by default libvirt backs up every
    disk) into a new qcow2 ``file``: a point-in-time copy of a disk the domain is using."""
    backup = ET.Element("domainbackup", mode="push")
    disks = ET.SubElement(backup, "disks")
    for dev in disk_targets(domain):
        if dev != target:
            ET.SubElement(disks, "disk", name=dev, backup="no")
    disk = ET.SubElement(disks, "disk", name=target, backup="yes", type="file")
    ET.SubElement(disk, "driver", type="qcow2")
    ET.SubElement(disk, "target", file=file)
    return ET.tostring(backup, encoding="unicode")


def pool_xml(name: str, path: str) -> str:
    pool = ET.Element("pool", type="dir")
    _text(pool, "name", name)
    _text(ET.SubElement(pool, "target"), "path", path)
    return ET.tostring(pool, encoding="unicode")


def instance_metadata(xml: str) -> tuple[str, str]:
    """(instance id, name) from our metadata element as ``virDomainGetMetadata`` returns it."""
    element = ET.fromstring(xml)
    return element.attrib["id"], element.attrib["name"]


def disk_paths(xml: str) -> list[str]:
    """The files of a domain's disks (not its CD-ROMs, not their backing files)."""
    devices = ET.fromstring(xml).iterfind("devices/disk[@device='disk']/source[@file]")
    return [source.attrib["file"] for source in devices]


def disk_targets(xml: str) -> list[str]:
    """The target devices of a domain's disks, CD-ROMs included (they share the names)."""
    return [target.attrib["dev"] for target in ET.fromstring(xml).iterfind("devices/disk/target")]


def disk_target(xml: str, path: str) -> str | None:
    """The target device of the domain's disk whose file is ``path``, if it has one."""
    for disk in ET.fromstring(xml).iterfind("devices/disk"):
        source, target = disk.find("source"), disk.find("target")
        if source is not None and source.get("file") == path and target is not None:
            return target.attrib["dev"]
    return None


def free_target(taken: set[str]) -> str | None:
    """The first data-volume target not in ``taken`` (None when all are)."""
    return next((dev for dev in DATA_TARGETS if dev not in taken), None)


def console_paths(xml: str) -> list[str]:
    return [log.attrib["file"] for log in ET.fromstring(xml).iterfind("devices/serial/log")]


def _text(parent: ET.Element, tag: str, text: str, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    element.text = text
    return element
