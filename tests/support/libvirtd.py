"""A libvirt daemon for the libvirt driver's tests, and the bridge their NICs use.

:func:`daemon` uses the daemon at ``qemu:///system`` when it answers. Otherwise it starts
virtlogd and libvirtd (no systemd needed) inside the network namespace ``yg-libvirt``, so
every bridge and tap device they make stays there and the root namespace is untouched; the
daemon keeps running for later runs. Inside the daemon's own mount namespace (``ip netns
exec`` makes one) two files are covered:

* ``/dev/kvm``, by an empty root-only file: KVM is not usable here (nested KVM hangs), and a
  root-only ``/dev/kvm`` made libvirt re-probe QEMU on every call (its probe, run as root,
  found KVM; its check, as the qemu user, did not), some 50 seconds per domain start.
* ``/etc/libvirt/qemu.conf``, by ours with ``namespaces = []``: libvirt cannot move the file
  mounted over ``/dev/kvm`` into a domain's private ``/dev``.

A lock file makes concurrent pytest-xdist workers start one daemon between them.
"""

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt

URI = "qemu:///system"
NETNS = "yg-libvirt"
NETWORK, BRIDGE = "yunguan-test", "ygbr0"
STATE = Path("/run/yunguan-libvirt")
SOCKETS = Path("/run/libvirt")
NEEDED = ("ip", "libvirtd", "virtlogd", "qemu-system-x86_64", "qemu-img")
# An isolated libvirt network: just a bridge, no addresses, no DHCP, no forwarding.
NETWORK_XML = f"<network><name>{NETWORK}</name><bridge name='{BRIDGE}' stp='off'/></network>"


class Unavailable(Exception):
    """libvirt cannot run VMs on this machine; the message says why."""


@dataclass(frozen=True)
class Daemon:
    uri: str
    bridge: str
    netns: str | None  # where its devices live, when known


@contextlib.contextmanager
def exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``lock`` (made if absent)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


def daemon() -> Daemon:
    """A daemon that answers at :data:`URI`, with the test bridge; raises
    :class:`Unavailable` when this machine cannot run one."""
    if os.geteuid() != 0:
        raise Unavailable("the libvirt tests start libvirtd and a network namespace: run as root")
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        raise Unavailable(f"missing {', '.join(missing)}: run 'scripts/system-deps.sh test'")
    with exclusive(STATE / "lock"):
        if not _answers(SOCKETS / "libvirt-sock"):
            _start()
        _ensure_bridge()
    return Daemon(URI, BRIDGE, _netns_of_daemon())


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def _start() -> None:
    log = STATE / "libvirtd.log"
    (STATE / "libvirtd.conf").write_text(f'log_outputs = "3:file:{log}"\n')
    (STATE / "qemu.conf").write_text("namespaces = []\n")
    steps = [f"mount --bind {STATE / 'qemu.conf'} /etc/libvirt/qemu.conf"]
    if os.path.exists("/dev/kvm"):
        (STATE / "no-kvm").touch(mode=0o600)
        steps.append(f"mount --bind {STATE / 'no-kvm'} /dev/kvm")
    if not _answers(SOCKETS / "virtlogd-sock"):
        steps.append("virtlogd -d")
    steps.append(f"libvirtd -d --config {STATE / 'libvirtd.conf'}")
    if not Path("/run/netns", NETNS).exists():
        _run(["ip", "netns", "add", NETNS])
    _run(["ip", "netns", "exec", NETNS, "sh", "-ec", "\n".join(steps)])
    deadline = time.monotonic() + 30
    while not _answers(SOCKETS / "libvirt-sock"):
        if time.monotonic() > deadline:
            tail = log.read_text()[-2000:] if log.exists() else "(no log)"
            raise Unavailable(f"libvirtd did not answer within 30 s; its log ends:\n{tail}")
        time.sleep(0.1)


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise Unavailable(f"{' '.join(command)} failed: {done.stderr.strip()}")


def _ensure_bridge() -> None:
    import libvirt

    conn = libvirt.open(URI)
    try:
        if NETWORK not in conn.listNetworks():  # the active ones
            conn.networkCreateXML(NETWORK_XML)
    finally:
        conn.close()


def _netns_of_daemon() -> str | None:
    """The named network namespace libvirtd runs in (None for the root one or unknown)."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(Path("/run/libvirtd.pid").read_text())
        named = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True)
        return named.stdout.decode().strip() or None
    return None


@contextlib.contextmanager
def removed_afterwards(uri: str, domain: str) -> Iterator[None]:
    """Remove the domain when the block ends, if it is still there (a test that failed
    before deleting its instance would leave a TCG guest keeping a core busy)."""
    try:
        yield
    finally:
        conn = libvirt.open(uri)
        try:
            dom = conn.lookupByName(domain)
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        except libvirt.libvirtError:
            pass  # deleted by the test, as it should be
        finally:
            conn.close()
