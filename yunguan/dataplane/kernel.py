"""Netlink and nftables: reads a router namespace and changes only what differs from the
desired state, so a resync of a correct kernel touches nothing (no traffic lost).

Everything in a router namespace is the agent's; of the routes, neighbours, fdb entries and
rules it only manages its own kind (``PROTO`` routes, permanent neighbours, static fdb
entries, rules at its priorities) and leaves what the kernel learns alone.
"""

import hashlib
import json
import logging
import re
import subprocess
from typing import Any

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import ndmsg

from yunguan.dataplane import desired, names, nft
from yunguan.dataplane.desired import Fdb, Link, Neighbour, Route, Router, Rule

log = logging.getLogger(__name__)

PROTO = 44  # the routes the agent installs
VXLAN_PORT = 4789
NOPREFIXROUTE = 0x200
ONLINK = 4
NTF_SELF = 2
NTF_MASTER = 4
PERMANENT = ndmsg.states["permanent"]
NOARP = ndmsg.states["noarp"]
ROUTER_SYSCTLS = (
    "net.ipv4.ip_forward=1",
    "net.ipv4.conf.all.rp_filter=0",
    "net.ipv4.conf.default.rp_filter=0",
    "net.ipv6.conf.all.disable_ipv6=1",
    "net.ipv6.conf.default.disable_ipv6=1",
    "net.bridge.bridge-nf-call-iptables=1",
)
_COMMENT = re.compile(r'comment "sha:([0-9a-f]+)"')
_GONE = (2, 3, 19)  # ENOENT, ESRCH, ENODEV: already gone


def run(netns_name: str | None, *command: str, stdin: str | None = None) -> str:
    """A command in a namespace (iproute2's ``ip netns exec``), its output."""
    prefix = ("ip", "netns", "exec", netns_name) if netns_name else ()
    done = subprocess.run(
        [*prefix, *command], input=stdin, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


def sysctl(netns_name: str, *settings: str) -> None:
    run(netns_name, "sysctl", "-q", "-w", *settings)


class Namespaces:
    """Open netlink sockets, one per namespace (opening one costs milliseconds)."""

    def __init__(self) -> None:
        self._open: dict[str | None, IPRoute] = {}

    def __call__(self, name: str | None) -> IPRoute:
        ipr = self._open.get(name)
        if ipr is None:
            ipr = self._open[name] = IPRoute(netns=name) if name else IPRoute()
        return ipr

    def ensure(self, name: str) -> bool:
        """Create the namespace if missing; True when it was created."""
        if name in netns.listnetns():
            return False
        netns.create(name)
        return True

    def remove(self, name: str) -> None:
        self.forget(name)
        if name in netns.listnetns():
            netns.remove(name)

    def forget(self, name: str) -> None:
        ipr = self._open.pop(name, None)
        if ipr is not None:
            ipr.close()

    def close(self) -> None:
        for name in list(self._open):
            self.forget(name)


def index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def _ignore_gone(call: Any, *args: Any, **kwargs: Any) -> None:
    try:
        call(*args, **kwargs)
    except NetlinkError as exc:
        if exc.code not in _GONE:
            raise


class Observed:
    """What a router namespace holds now, in the desired state's terms."""

    def __init__(self, ipr: IPRoute) -> None:
        self.links: dict[str, dict[str, Any]] = {}
        names: dict[int, str] = {}
        for msg in ipr.link("dump"):
            name = msg.get("IFLA_IFNAME")
            names[msg["index"]] = name
            info = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")
            self.links[name] = {
                "index": msg["index"],
                "kind": msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND"),
                "mac": msg.get("IFLA_ADDRESS"),
                "master": msg.get("IFLA_MASTER"),
                "vni": info.get("IFLA_VXLAN_ID") if info is not None else None,
                "up": bool(msg["flags"] & 1),
            }
        for link in self.links.values():
            link["master"] = names.get(link["master"])
        self.addresses = {
            (names[m["index"]], f"{m.get('IFA_ADDRESS')}/{m['prefixlen']}")
            for m in ipr.addr("dump", family=2)
            if names.get(m["index"]) != "lo"
        }
        self.routes = {
            Route(
                f"{m.get('RTA_DST') or '0.0.0.0'}/{m['dst_len']}",
                names.get(m.get("RTA_OIF"), ""),
                m.get("RTA_GATEWAY"),
                m.get("RTA_TABLE"),
            )
            for m in ipr.route("dump", family=2, proto=PROTO)
        }
        self.neighbours = {
            Neighbour(names[m["ifindex"]], m.get("NDA_DST"), m.get("NDA_LLADDR"))
            for m in ipr.neigh("dump", family=2)
            if m["state"] & PERMANENT and m["ifindex"] in names
        }
        self.fdb = set()
        for m in ipr.fdb("dump"):
            device = names.get(m["ifindex"])
            if m["flags"] & NTF_SELF and m.get("NDA_DST"):  # a VXLAN device's own table
                self.fdb.add(Fdb(device, m.get("NDA_LLADDR"), m.get("NDA_DST")))
            elif m.get("NDA_MASTER") and m["state"] == NOARP:  # a static bridge entry
                self.fdb.add(Fdb(device, m.get("NDA_LLADDR"), None))
        self.rules = {
            Rule(m.get("FRA_PRIORITY"), m.get("FRA_TABLE") or m["table"], m.get("FRA_SRC"))
            for m in ipr.rule("dump", family=2)
            if m.get("FRA_PRIORITY") in (desired.RULE_MAIN_FIRST, desired.RULE_EIP)
        }

    def entry_count(self) -> int:
        """Forwarding entries: routes, neighbours and fdb entries."""
        return len(self.routes) + len(self.neighbours) + len(self.fdb)


class Kernel:
    """The host's kernel as the agent sees it: the host namespace (``host_netns``, None for
    the agent's own) with the underlay, and the router namespaces named with ``prefix``."""

    def __init__(self, *, host_netns: str | None, prefix: str, uplink_bridge: str | None) -> None:
        self.host_netns = host_netns
        self.prefix = prefix
        self.uplink_bridge = uplink_bridge
        self.ns = Namespaces()
        self.rulesets: dict[str, str] = {}  # router namespace -> digest of its nft table

    def routers(self) -> set[str]:
        start = self.prefix + "r-"
        return {name for name in netns.listnetns() if name.startswith(start)}

    def held(self) -> tuple[int, int]:
        """The router namespaces and the forwarding entries in them (reads every router)."""
        routers = self.routers()
        entries = 0
        for name in routers:
            try:
                entries += Observed(self.ns(name)).entry_count()
            except Exception:  # unreadable: its reconcile fails too, and says why
                log.warning("router %s not counted", name, exc_info=True)
        return len(routers), entries

    def remove_router(self, name: str) -> None:
        self.rulesets.pop(name, None)
        self.ns.remove(name)

    def apply(self, router: Router, vtep: str, plug: Any) -> int:
        """Bring one router namespace to the desired state; the number of changes made."""
        if self.ns.ensure(router.netns):
            sysctl(router.netns, *ROUTER_SYSCTLS)
            self.ns(router.netns).link("set", index=1, state="up")
        ipr = self.ns(router.netns)
        seen = Observed(ipr)
        changes = self._remove_links(ipr, router, seen)
        changes += self._links(ipr, router, seen, vtep, plug, ports=False)
        if changes:
            seen = Observed(ipr)
        for kind, apply, add in (
            ("addresses", _address, "add"),
            ("neighbours", _neighbour, "replace"),
            ("fdb", _fdb, "replace"),
            ("routes", _route, "replace"),
            ("rules", _rule, "add"),
        ):
            changes += _diff(getattr(seen, kind), getattr(router, kind), ipr, apply, add)
        changes += self._ruleset(router)
        # Ports last: a guest's NIC comes up once its ARP answers, routes and security
        # groups are in place (its first ARP would otherwise wait a second for a retry).
        return changes + self._links(ipr, router, seen, vtep, plug, ports=True)

    # --- links -------------------------------------------------------------------------

    def _remove_links(self, ipr: IPRoute, router: Router, seen: Observed) -> int:
        extra = [link for name, link in seen.links.items() if name not in (*router.links, "lo")]
        for link in extra:
            _ignore_gone(ipr.link, "del", index=link["index"])
        return len(extra)

    def _links(
        self, ipr: IPRoute, router: Router, seen: Observed, vtep: str, plug: Any, *, ports: bool
    ) -> int:
        """The router's own links (bridges first), or its ports."""
        changes = 0
        wanted = [link for link in router.links.values() if (link.kind == "port") == ports]
        for link in sorted(wanted, key=lambda each: each.kind != "bridge"):
            have = seen.links.get(link.name)
            if have is not None and not _same(have, link):
                _ignore_gone(ipr.link, "del", index=have["index"])
                have = None
            if have is None:
                if not self._create(ipr, router, link, vtep, plug):
                    continue  # a port whose device is not there yet
                changes += 1
            changes += self._attach(ipr, link, have)
        return changes

    def _create(self, ipr: IPRoute, router: Router, link: Link, vtep: str, plug: Any) -> bool:
        if link.kind == "bridge":
            ipr.link("add", ifname=link.name, kind="bridge", address=link.mac, br_stp_state=0)
            sysctl(
                router.netns,
                f"net.ipv4.conf.{link.name}.proxy_arp=1",
                f"net.ipv4.neigh.{link.name}.proxy_delay=0",
            )
        elif link.kind == "vxlan":
            self._vxlan(router.netns, link, vtep)
        elif link.kind == "uplink":
            self._uplink(router)
        else:
            port = next(p for p in router.ports if p.device == link.name)
            return plug.plug(ipr, router.netns, port)
        return True

    def _vxlan(self, router_netns: str, link: Link, vtep: str) -> None:
        """Created in the host namespace, where its UDP socket stays, then moved."""
        host = self.ns(self.host_netns)
        stale = index(host, link.name)
        if stale is not None:  # left by an interrupted run
            host.link("del", index=stale)
        options = {"address": link.mac} if link.mac else {}
        host.link(
            "add",
            ifname=link.name,
            kind="vxlan",
            vxlan_id=link.vni,
            vxlan_local=vtep,
            vxlan_port=VXLAN_PORT,
            vxlan_learning=0,
            **options,
        )
        host.link("set", index=index(host, link.name), net_ns_fd=router_netns)

    def _uplink(self, router: Router) -> None:
        """A veth from the router to the host's external bridge."""
        if self.uplink_bridge is None:
            raise RuntimeError(
                "a VPC here has public addresses: start the agent with an uplink bridge"
            )
        host = self.ns(self.host_netns)
        peer = names.uplink_peer(router.vpc_id)
        stale = index(host, peer)
        if stale is not None:
            host.link("del", index=stale)
        host.link(
            "add",
            ifname=peer,
            kind="veth",
            peer={"ifname": names.UPLINK, "net_ns_fd": router.netns},
        )
        host.link(
            "set", index=index(host, peer), master=index(host, self.uplink_bridge), state="up"
        )

    def _attach(self, ipr: IPRoute, link: Link, have: dict[str, Any] | None) -> int:
        """Master, bridge-port flags and state: set when they differ."""
        if have is not None and have["master"] == link.master and have["up"]:
            return 0
        at = index(ipr, link.name)
        if at is None:
            return 0
        options: dict[str, Any] = {"state": "up"}
        if link.master:
            options["master"] = index(ipr, link.master)
        ipr.link("set", index=at, **options)
        if link.kind == "vxlan" and link.master:
            ipr.brport("set", index=at, neigh_suppress=1, learning=0)
        return 1

    # --- nftables ----------------------------------------------------------------------

    def _ruleset(self, router: Router) -> int:
        """Replace the table when its digest differs; the kernel's copy is read only the
        first time (after a restart), later passes compare with what was applied."""
        digest = hashlib.sha256(router.ruleset.encode()).hexdigest()[:16]
        if router.netns not in self.rulesets:
            try:
                listing = run(router.netns, "nft", "-t", "list", "table", "ip", nft.TABLE)
            except RuntimeError:
                listing = ""
            found = _COMMENT.search(listing)
            self.rulesets[router.netns] = found.group(1) if found else ""
        if self.rulesets[router.netns] == digest:
            return 0
        script = router.ruleset.replace(
            f"table ip {nft.TABLE} {{\n", f'table ip {nft.TABLE} {{\n  comment "sha:{digest}"\n', 1
        )
        run(router.netns, "nft", "-f", "-", stdin=script)
        self.rulesets[router.netns] = digest
        return 1

    def set_members(self, router_netns: str, name: str) -> list[str]:
        """The addresses in one of a router's dynamic sets."""
        listing = json.loads(run(router_netns, "nft", "-j", "list", "set", "ip", nft.TABLE, name))
        for item in listing["nftables"]:
            if "set" in item:
                return [
                    e["elem"]["val"] if isinstance(e, dict) else e
                    for e in item["set"].get("elem", [])
                ]
        return []


def _same(have: dict[str, Any], link: Link) -> bool:
    kind = {"port": have["kind"], "uplink": "veth"}.get(link.kind, link.kind)
    if have["kind"] != kind:
        return False
    if link.vni is not None and have["vni"] != link.vni:
        return False
    return link.mac is None or have["mac"] == link.mac


def _diff(have: set, want: set, ipr: IPRoute, apply: Any, add: str) -> int:
    """Add what is missing, then remove what is extra (a replacement never leaves a gap)."""
    for item in sorted(want - have, key=repr):
        apply(ipr, add, item)
    for item in sorted(have - want, key=repr):
        apply(ipr, "del", item)
    return len(want - have) + len(have - want)


def _address(ipr: IPRoute, command: str, address: tuple[str, str]) -> None:
    device, cidr = address
    at = index(ipr, device)
    if at is None:
        return
    address, length = cidr.split("/")
    flags = {"flags": NOPREFIXROUTE} if command == "add" else {}
    _ignore_gone(ipr.addr, command, index=at, address=address, prefixlen=int(length), **flags)


def _neighbour(ipr: IPRoute, command: str, entry: Neighbour) -> None:
    at = index(ipr, entry.device)
    if at is not None:
        _ignore_gone(
            ipr.neigh, command, dst=entry.ip, lladdr=entry.mac, ifindex=at, state=PERMANENT
        )


def _fdb(ipr: IPRoute, command: str, entry: Fdb) -> None:
    at = index(ipr, entry.device)
    if at is None:
        return
    if entry.vtep is not None:  # the VXLAN device's own table: where the MAC lives
        options = {"dst": entry.vtep, "flags": NTF_SELF, "state": PERMANENT | NOARP}
    else:  # the bridge's static entry: the MAC is behind this port
        options = {"flags": NTF_MASTER, "state": NOARP}
    _ignore_gone(ipr.fdb, command, ifindex=at, lladdr=entry.mac, **options)


def _route(ipr: IPRoute, command: str, route: Route) -> None:
    at = index(ipr, route.device)
    if at is None:
        return
    options: dict[str, Any] = {"dst": route.dst, "oif": at, "table": route.table, "proto": PROTO}
    if route.via:
        options.update(gateway=route.via, flags=ONLINK)
    _ignore_gone(ipr.route, command, **options)


def _rule(ipr: IPRoute, command: str, rule: Rule) -> None:
    options: dict[str, Any] = {"table": rule.table, "priority": rule.priority, "family": 2}
    if rule.source:
        options.update(src=rule.source, src_len=32)
    else:
        options["suppress_prefixlength"] = 0
    _ignore_gone(ipr.rule, command, **options)
