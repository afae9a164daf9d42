"""The tiny guest the libvirt tests boot: Debian's kernel and a busybox initramfs whose
``/init`` loads the virtio NIC driver, configures the address the kernel's ``ip=``
parameter gives (the libvirt driver passes the port's), prints :data:`MARKER` to the serial
console and then idles.

The kernel and the NIC's modules come from the ``linux-image-*-amd64`` package
``linux-image-amd64`` depends on, fetched with ``apt-get download`` (never installed). They
are cached under :data:`CACHE`, in a directory named after the kernel package and version;
the initramfs's name carries a digest of what goes in it. A later run only asks apt-cache
for the version.
"""

import gzip
import hashlib
import os
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.libvirtd import Unavailable, exclusive

CACHE = Path("/var/cache/yunguan-test-guest")
MARKER = "yunguan-guest up"
BUSYBOX = Path("/bin/busybox")  # busybox-static's: the initramfs has no libraries
# virtio-net and what it needs, in load order (Debian builds them as modules)
NIC_MODULES = (
    "virtio_ring",
    "virtio",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "failover",
    "net_failover",
    "virtio_net",
)
INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
for module in MODULES; do insmod /lib/modules/$module.ko; done
ip link set lo up
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    ip=*)  # client::gateway:netmask::device:off
        IFS=: read -r client server gateway netmask name device autoconf <<EOF
${arg#ip=}
EOF
        ifconfig "${device:-eth0}" "$client" netmask "$netmask" up
        [ -n "$gateway" ] && route add default gw "$gateway"
        ;;
    esac
done
echo "MARKER"
while :; do sleep 3600; done
""".replace("MODULES", " ".join(NIC_MODULES)).replace("MARKER", MARKER)


@dataclass(frozen=True)
class Guest:
    kernel: Path
    initrd: Path
    cmdline: str = "console=ttyS0 panic=-1"


def guest() -> Guest:
    """The cached guest, built first if needed; raises :class:`Unavailable` without apt's
    package lists or busybox-static."""
    if not BUSYBOX.exists():
        raise Unavailable(f"{BUSYBOX} missing: install busybox-static")
    package, version = _kernel_package()
    directory = CACHE / f"{package}_{version}"
    modules = [directory / "modules" / f"{name}.ko" for name in NIC_MODULES]
    with exclusive(CACHE / "lock"):
        if not all(path.exists() for path in [directory / "vmlinuz", *modules]):
            for name, data in _download_kernel(package, version).items():
                _write(directory / name, data)
        initramfs = _initramfs(modules)
        found = Guest(
            directory / "vmlinuz",
            directory / f"initrd-{hashlib.sha256(initramfs).hexdigest()[:12]}.gz",
        )
        if not found.initrd.exists():
            _write(found.initrd, gzip.compress(initramfs))
    return found


def _kernel_package() -> tuple[str, str]:
    """(package, version) of the kernel ``linux-image-amd64`` stands for."""
    done = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", "linux-image-amd64"],
        capture_output=True,
        text=True,
    )
    found = re.search(r"^Depends: (linux-image-\S+) \(= (\S+)\)", done.stdout, re.MULTILINE)
    if found is None:
        raise Unavailable(f"apt-cache knows no linux-image-amd64 (apt-get update?): {done.stderr}")
    return found[1], found[2]


def _download_kernel(package: str, version: str) -> dict[str, bytes]:
    """``vmlinuz`` and ``modules/<name>.ko`` of the package."""
    with tempfile.TemporaryDirectory(dir=CACHE) as workdir:
        fetched = subprocess.run(
            ["apt-get", "download", f"{package}={version}"],
            cwd=workdir,
            capture_output=True,
            text=True,
        )
        if fetched.returncode != 0:
            raise Unavailable(f"apt-get download {package}: {fetched.stderr.strip()}")
        (deb,) = Path(workdir).glob("*.deb")
        return _unpack(deb)


def _unpack(deb: Path) -> dict[str, bytes]:
    """The kernel and the NIC's modules, streamed from ``dpkg-deb --fsys-tarfile`` (the
    other modules, some 400 MB, are never written out)."""
    wanted = {"vmlinuz", *(f"modules/{name}.ko" for name in NIC_MODULES)}
    found: dict[str, bytes] = {}
    command = ["dpkg-deb", "--fsys-tarfile", str(deb)]
    with (
        subprocess.Popen(command, stdout=subprocess.PIPE) as dpkg,
        tarfile.open(fileobj=dpkg.stdout, mode="r|") as tar,
    ):
        for member in tar:
            base = member.name.rsplit("/", 1)[-1]
            if member.name.startswith("./boot/vmlinuz-"):
                found["vmlinuz"] = tar.extractfile(member).read()
            elif "/kernel/" in member.name and f"modules/{base}" in wanted:
                found[f"modules/{base}"] = tar.extractfile(member).read()
            if len(found) == len(wanted):
                dpkg.kill()  # what follows is not needed
                return found
    raise Unavailable(f"{deb.name} lacks {sorted(wanted - set(found))}")


def _initramfs(modules: list[Path]) -> bytes:
    """An uncompressed newc cpio archive: busybox, the NIC's modules, /init and the console
    device."""
    entries = [
        ("dev", 0o040755, b"", (0, 0)),
        ("dev/console", 0o020600, b"", (5, 1)),
        ("bin", 0o040755, b"", (0, 0)),
        ("bin/busybox", 0o100755, BUSYBOX.read_bytes(), (0, 0)),
        ("lib", 0o040755, b"", (0, 0)),
        ("lib/modules", 0o040755, b"", (0, 0)),
        *((f"lib/modules/{path.name}", 0o100644, path.read_bytes(), (0, 0)) for path in modules),
        ("proc", 0o040755, b"", (0, 0)),
        ("sys", 0o040755, b"", (0, 0)),
        ("init", 0o100755, INIT.encode(), (0, 0)),
        ("TRAILER!!!", 0, b"", (0, 0)),
    ]
    return b"".join(
        _cpio_entry(inode, name, mode, data, device)
        for inode, (name, mode, data, device) in enumerate(entries, 1)
    )


def _cpio_entry(inode: int, name: str, mode: int, data: bytes, device: tuple[int, int]) -> bytes:
    """One newc record: a hex header (inode, mode, uid, gid, nlink, mtime, size, devmajor,
    devminor, rdevmajor, rdevminor, namesize, check), name and data padded to 4 bytes."""
    path = name.encode() + b"\0"
    fields = (inode, mode, 0, 0, 1, 0, len(data), 0, 0, *device, len(path), 0)
    header = b"070701" + b"".join(b"%08X" % field for field in fields) + path
    return _padded(header) + _padded(data)


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by the qemu user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.chmod(temporary, 0o644)
    temporary.replace(path)
