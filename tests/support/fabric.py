"""A data centre in network namespaces, for the data plane's tests.

An underlay namespace holds two bridges: the underlay (VTEPs 10.0.0.n, as
``tests.support.network.sdn_zone`` registers the hosts) and the public network
(203.0.113.0/24, its gateway .1 in an "internet" namespace). Each host is a namespace with
a veth on each: its VTEP address, and an external bridge for the routers' uplinks. Agents
run in threads of the test process (``agent``) or as ``yunguan agent`` processes
(``agent_process``). Nothing touches the root namespace's interfaces or firewall.
"""

import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from pyroute2 import netns

from tests.support.api import ADMIN_PASSWORD
from yunguan.dataplane import names
from yunguan.dataplane.agent import Agent, Controller
from yunguan.dataplane.kernel import Kernel, Observed
from yunguan.dataplane.ports import NetnsVms, Taps

PUBLIC_GATEWAY = "203.0.113.1"
REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .* icmp_seq=(\d+)", re.MULTILINE)
NO_IPV6 = ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")


def sh(*command: str, check: bool = True) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


def in_ns(name: str, *command: str, check: bool = True) -> str:
    return sh("ip", "netns", "exec", name, *command, check=check)


def _underlay_mac(n: int) -> str:
    return f"02:00:0a:00:00:{n + 1:02x}"


class Capture:
    """Frames seen on a device while the block ran, counted by tcpdump filters."""

    def __init__(self, path: str) -> None:
        self.path = path

    def count(self, expression: str) -> int:
        output = sh("tcpdump", "-n", "-r", self.path, expression, check=False)
        return len(output.splitlines())


class Fabric:
    def __init__(self, hosts: int, url: str) -> None:
        self.tag = "yt" + secrets.token_hex(2)
        self.url = url
        self.underlay = f"{self.tag}u"
        self.internet = f"{self.tag}i"
        self.hosts = [f"{self.tag}h{n}" for n in range(hosts)]
        self.agents: dict[int, tuple[threading.Event, threading.Thread]] = {}
        self.processes: dict[int, subprocess.Popen] = {}
        self.vms: set[str] = set()
        self.served: set[str] = set()  # the hosts its agents served
        self._build()

    def _namespace(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        in_ns(name, "sysctl", "-q", "-w", *NO_IPV6)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def _build(self) -> None:
        self._namespace(self.underlay)
        for bridge in ("under", "public"):
            sh("ip", "-n", self.underlay, "link", "add", bridge, "type", "bridge")
            sh("ip", "-n", self.underlay, "link", "set", bridge, "up")
        self._namespace(self.internet)
        self._wire(self.internet, "eth0", "public", "i")
        sh("ip", "-n", self.internet, "addr", "add", f"{PUBLIC_GATEWAY}/24", "dev", "eth0")
        for n, host in enumerate(self.hosts):
            self._namespace(host)
            self._wire(host, "under", "under", f"u{n}")
            sh("ip", "-n", host, "addr", "add", f"10.0.0.{n + 1}/24", "dev", "under")
            sh("ip", "-n", host, "link", "set", "under", "address", _underlay_mac(n))
            sh("ip", "-n", host, "link", "add", "brext", "type", "bridge")
            sh("ip", "-n", host, "link", "set", "brext", "up")
            self._wire(host, "ext", "public", f"p{n}")
            sh("ip", "-n", host, "link", "set", "ext", "master", "brext")
        for n, host in enumerate(self.hosts):  # a static underlay: VTEPs never ARP
            for other in range(len(self.hosts)):
                if other != n:
                    sh(
                        "ip", "-n", host, "neigh", "replace", f"10.0.0.{other + 1}",
                        "lladdr", _underlay_mac(other), "dev", "under", "nud", "permanent",
                    )  # fmt: skip

    def _wire(self, host: str, device: str, bridge: str, side: str) -> None:
        """A veth from ``host`` (``device``) to a bridge of the underlay namespace."""
        peer = f"{self.tag}{side}"
        sh(
            "ip", "-n", self.underlay, "link", "add", peer, "type", "veth",
            "peer", "name", device, "netns", host,
        )  # fmt: skip
        sh("ip", "-n", self.underlay, "link", "set", peer, "master", bridge, "up")
        sh("ip", "-n", host, "link", "set", device, "up")

    # --- agents ------------------------------------------------------------------------

    def prefix(self, n: int) -> str:
        return f"{self.hosts[n]}-"

    def kernel(self, n: int, uplink_bridge: str | None = "brext") -> Kernel:
        return Kernel(host_netns=self.hosts[n], prefix=self.prefix(n), uplink_bridge=uplink_bridge)

    def agent(
        self,
        n: int,
        host_id: str,
        plug: str = "netns",
        tap_netns: str | None = None,
        uplink_bridge: str | None = "brext",
    ) -> None:
        """An agent thread for host ``n``: it plugs netns VMs, or (``plug="tap"``) the taps
        a hypervisor makes in ``tap_netns``."""
        controller = Controller(self.url, "admin", ADMIN_PASSWORD)
        kernel = self.kernel(n, uplink_bridge)
        plugger = NetnsVms(kernel.ns) if plug == "netns" else Taps(kernel.ns, tap_netns)
        runner = Agent(host_id, controller, kernel, plugger)
        stop = threading.Event()
        thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
        thread.start()
        self.agents[n] = (stop, thread)
        self.served.add(host_id)

    def stop_agent(self, n: int) -> None:
        stop, thread = self.agents.pop(n)
        stop.set()
        thread.join(10)

    def agent_process(self, n: int, host_id: str) -> subprocess.Popen:
        """``yunguan agent`` as its own process, as on a real host."""
        env = {
            **os.environ,
            "YUNGUAN_AGENT_URL": self.url,
            "YUNGUAN_AGENT_USERNAME": "admin",
            "YUNGUAN_AGENT_PASSWORD": ADMIN_PASSWORD,
        }
        command = [sys.executable, "-m", "yunguan", "agent", "--host-id", host_id]
        command += ["--plug", "netns", "--host-netns", self.hosts[n], "--prefix", self.prefix(n)]
        command += ["--uplink-bridge", "brext"]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.processes[n] = process
        self.served.add(host_id)
        return process

    def close(self) -> None:
        self.vms.update(self._local_vms())
        for n in list(self.agents):
            self.stop_agent(n)
        for process in self.processes.values():
            process.kill()
            process.wait()
        mine = [ns for ns in netns.listnetns() if ns.startswith(self.tag)]
        for name in [*mine, *self.vms]:
            sh("ip", "netns", "del", name, check=False)

    def _local_vms(self) -> set[str]:
        """The netns VMs of the ports the documents place on its hosts (a test names only
        some of them through ``vm``)."""
        controller = Controller(self.url, "admin", ADMIN_PASSWORD)
        try:
            documents = [controller.document(host_id, None) for host_id in self.served]
        except httpx.HTTPError:  # the controller is gone: only the VMs named are known
            return set()
        return {
            names.vm_netns(port["port_id"])
            for document in documents
            for vpc in document["vpcs"]  # type: ignore[index]
            for port in vpc["local_ports"]
        }

    # --- VMs ---------------------------------------------------------------------------

    def vm(self, port: dict) -> str:
        """The namespace of the netns VM of a port (its agent creates it)."""
        name = names.vm_netns(port["id"])
        self.vms.add(name)
        return name

    def ping(self, port: dict, address: str, count: int = 1, interval: float = 0.2) -> int:
        """Replies received by ``count`` pings from the port's VM."""
        output = in_ns(
            self.vm(port),
            "ping",
            "-n",
            "-q",
            "-c",
            str(count),
            "-i",
            str(interval),
            "-W",
            "1",
            address,
            check=False,
        )
        found = re.search(r"(\d+) received", output)
        return int(found.group(1)) if found else 0

    def wait_ping(self, port: dict, address: str, timeout: float = 15) -> float:
        """Seconds until a ping from the port's VM is answered."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.vm(port) in netns.listnetns() and self.ping(port, address) == 1:
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(
            f"{address} not reachable from {port['ip']} in {timeout} s\n{self.describe()}"
        )

    def wait_ping_from(self, namespace: str, address: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while "1 received" not in in_ns(
            namespace, "ping", "-n", "-c", "1", "-W", "1", address, check=False
        ):
            if time.monotonic() > deadline:
                raise AssertionError(f"{address} not reachable from {namespace}\n{self.describe()}")
            time.sleep(0.05)

    def ping_ttl(self, port: dict, address: str) -> int:
        output = in_ns(self.vm(port), "ping", "-n", "-c", "1", "-W", "1", address, check=False)
        return int(re.search(r"ttl=(\d+)", output).group(1))  # type: ignore[union-attr]

    def namespaces(self) -> list[str]:
        return netns.listnetns()

    def entries(self, n: int, vpc_id: str) -> int:
        """Routes, permanent neighbours and static fdb entries in host ``n``'s router of the
        VPC (which must exist: opening a namespace creates it)."""
        kernel = self.kernel(n)
        try:
            router = kernel.ns(names.router_netns(self.prefix(n), vpc_id))
            return Observed(router).entry_count()
        finally:
            kernel.ns.close()

    def wait_entry(
        self, n: int, vpc_id: str, mac: str, timeout: float = 15, present: bool = True
    ) -> None:
        """Until host ``n``'s router of the VPC has (or, not ``present``, no longer has) a
        VXLAN fdb entry for ``mac``."""
        router = names.router_netns(self.prefix(n), vpc_id)
        deadline = time.monotonic() + timeout
        while (f"{mac} dev vx" in in_ns(router, "bridge", "fdb", "show", check=False)) != present:
            if time.monotonic() > deadline:
                state = "an" if present else "still an"
                raise AssertionError(f"{state} entry for {mac} on host {n}\n{self.describe()}")
            time.sleep(0.1)

    @contextmanager
    def capture(self, namespace: str, device: str) -> Iterator[Capture]:
        path = f"/tmp/{self.tag}-{device}-{secrets.token_hex(3)}.pcap"
        command = [
            "ip",
            "netns",
            "exec",
            namespace,
            "tcpdump",
            "-n",
            "-U",
            "--immediate-mode",
            "-i",
            device,
        ]
        process = subprocess.Popen(
            [*command, "-w", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        process.stderr.readline()  # type: ignore[union-attr]  # "listening on ...": it runs
        try:
            yield Capture(path)
        finally:
            time.sleep(0.3)
            process.send_signal(2)
            process.wait(10)

    @contextmanager
    def controller(self, app) -> Iterator:
        """The agents' controller on a port of its own, and a way to restart it."""
        from tests.conftest import LiveServer

        server, served_by = LiveServer(app), self.url
        self.url = server.__enter__()
        port = int(self.url.rsplit(":", 1)[1])

        def restart(down_seconds: float) -> None:
            nonlocal server
            server.__exit__(None, None, None)
            time.sleep(down_seconds)
            server = LiveServer(app, port)
            server.__enter__()

        try:
            yield restart
        finally:
            server.__exit__(None, None, None)
            self.url = served_by  # for close

    def describe(self) -> str:
        """The routers' kernel state, for a failure's message."""
        lines = []
        for name in sorted(n for n in netns.listnetns() if n.startswith(self.tag) or n in self.vms):
            lines.append(f"== {name}")
            for command in (
                ("ip", "-br", "link"), ("ip", "-br", "addr"),
                ("ip", "route", "show", "table", "all"), ("ip", "neigh"), ("bridge", "fdb"),
                ("ip", "rule"),
            ):  # fmt: skip
                lines.append(in_ns(name, *command, check=False))
        return "\n".join(lines)


class Pinger:
    """A ping every 10 ms from a VM in the background (about 60 Hz is what the 2-core test
    machine gives); counts what was lost and, in ``replies`` after ``stop``, when each
    answer came (its sequence number to epoch seconds)."""

    def __init__(self, dc: Fabric, port: dict, address: str) -> None:
        # a file, not a pipe: nobody reads while it runs, and a full pipe would stall ping
        self.path = Path(f"/tmp/{dc.tag}-ping-{secrets.token_hex(3)}.txt")
        command = ["ip", "netns", "exec", dc.vm(port), "ping", "-n", "-D", "-i", "0.01", "-W", "1"]
        with self.path.open("w") as output:
            self.process = subprocess.Popen([*command, address], stdout=output)
        self.replies: dict[int, float] = {}

    def stop(self) -> tuple[int, int]:
        """(sent, received)."""
        self.process.send_signal(2)
        self.process.wait(10)
        output = self.path.read_text()
        self.path.unlink()
        self.replies = {int(seq): float(at) for at, seq in REPLY.findall(output)}
        summary = next(line for line in output.splitlines() if "transmitted" in line)
        sent, received = (int(part.split()[0]) for part in summary.split(",")[:2])
        return sent, received


@contextmanager
def fabric(hosts: int, url: str) -> Iterator[Fabric]:
    built = Fabric(hosts, url)
    try:
        yield built
    finally:
        built.close()
