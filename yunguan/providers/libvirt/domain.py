"""The XML libvirt takes and gives back: domains, disk volumes, the storage pool.

Our domains carry ``<metadata><yunguan:instance id=… name=…/></metadata>``; a domain
without it was made elsewhere.
"""

from dataclasses import dataclass
from xml.etree import ElementTree as ET

from yunguan.providers.base import ImageRef, InstanceSpec

NAMESPACE = "https://yunguan.dev/xmlns/libvirt/instance/1"
ET.register_namespace("yunguan", NAMESPACE)

# Image formats a qcow2 disk can use as its backing file.
BACKING_FORMATS = ("qcow2", "raw")


@dataclass(frozen=True)
class Placement:
    """Where a domain's parts live on the host."""

    domain_type: str
    disk: str
    bridge: str
    console: str


def domain_xml(spec: InstanceSpec, at: Placement) -> str:
    root = ET.Element("domain", type=at.domain_type)
    _text(root, "name", spec.instance_id)
    metadata = ET.SubElement(root, "metadata")
    ET.SubElement(metadata, f"{{{NAMESPACE}}}instance", id=spec.instance_id, name=spec.name)
    _text(root, "memory", str(spec.memory_mb), unit="MiB")
    _text(root, "vcpu", str(spec.vcpus))
    root.append(_os(spec.image))
    ET.SubElement(ET.SubElement(root, "features"), "acpi")
    devices = ET.SubElement(root, "devices")
    devices.append(_disk(at.disk))
    for nic in spec.nics:
        devices.append(_interface(nic.mac, nic.ex_bridge or at.bridge))
    devices.append(_serial(at.console))
    return ET.tostring(root, encoding="unicode")


def _os(image: ImageRef) -> ET.Element:
    """Direct kernel boot when the image names a kernel, else boot from the disk."""
    os_ = ET.Element("os")
    _text(os_, "type", "hvm")
    if not image.ex_kernel:
        ET.SubElement(os_, "boot", dev="hd")
        return os_
    _text(os_, "kernel", image.ex_kernel)
    if image.ex_initrd:
        _text(os_, "initrd", image.ex_initrd)
    if image.ex_cmdline:
        _text(os_, "cmdline", image.ex_cmdline)
    return os_


def _disk(path: str) -> ET.Element:
    disk = ET.Element("disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="qcow2")
    ET.SubElement(disk, "source", file=path)
    ET.SubElement(disk, "target", dev="vda", bus="virtio")
    return disk


def _interface(mac: str, bridge: str) -> ET.Element:
    interface = ET.Element("interface", type="bridge")
    ET.SubElement(interface, "mac", address=mac)
    ET.SubElement(interface, "source", bridge=bridge)
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


def console_paths(xml: str) -> list[str]:
    return [log.attrib["file"] for log in ET.fromstring(xml).iterfind("devices/serial/log")]


def _text(parent: ET.Element, tag: str, text: str, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    element.text = text
    return element
