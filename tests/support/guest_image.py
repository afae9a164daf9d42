"""The tiny guest the libvirt tests boot: Debian's kernel and a busybox initramfs whose
``/init`` prints :data:`MARKER` to the serial console and then idles.

The kernel comes from the ``linux-image-*-amd64`` package ``linux-image-amd64`` depends on,
fetched with ``apt-get download`` (never installed). Both files are cached under
:data:`CACHE`, in a directory named after the kernel package and version; the initramfs's
name carries a digest of what goes in it. A later run only asks apt-cache for the version.
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
INIT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "{MARKER}"
while :; do sleep 3600; done
"""


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
    initramfs = _initramfs()
    digest = hashlib.sha256(initramfs).hexdigest()[:12]
    found = Guest(directory / "vmlinuz", directory / f"initrd-{digest}.gz")
    with exclusive(CACHE / "lock"):
        if not found.kernel.exists():
            _write(found.kernel, _download_kernel(package, version))
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


def _download_kernel(package: str, version: str) -> bytes:
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
        return _vmlinuz(deb)


def _vmlinuz(deb: Path) -> bytes:
    """The kernel out of the package, streamed from ``dpkg-deb --fsys-tarfile`` (so the
    modules, some 400 MB, are never written out)."""
    command = ["dpkg-deb", "--fsys-tarfile", str(deb)]
    with (
        subprocess.Popen(command, stdout=subprocess.PIPE) as dpkg,
        tarfile.open(fileobj=dpkg.stdout, mode="r|") as tar,
    ):
        for member in tar:
            if member.name.startswith("./boot/vmlinuz-"):
                kernel = tar.extractfile(member).read()
                dpkg.kill()  # the modules that follow are not needed
                return kernel
    raise Unavailable(f"{deb.name} holds no /boot/vmlinuz-*")


def _initramfs() -> bytes:
    """An uncompressed newc cpio archive: busybox, /init and the console device."""
    entries = [
        ("dev", 0o040755, b"", (0, 0)),
        ("dev/console", 0o020600, b"", (5, 1)),
        ("bin", 0o040755, b"", (0, 0)),
        ("bin/busybox", 0o100755, BUSYBOX.read_bytes(), (0, 0)),
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
