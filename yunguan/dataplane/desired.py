"""What the kernel of one host should hold for one VPC, computed from the host's document.

Each VPC a host serves gets a router namespace:

- per vxnet a bridge with the anycast gateway (the same IP and MAC on every host) and a
  VXLAN device (``nolearning``) whose bridge port suppresses ARP: the bridge answers from
  its permanent neighbours, so no ARP crosses the underlay;
- per local port its device on the bridge, a /32 route and a permanent neighbour;
- per remote port a /32 route, a permanent neighbour and static fdb entries (on the VXLAN
  device toward the port's VTEP, on the bridge toward the VXLAN port);
- a transit VXLAN device (the VPC's own segment between routers) with one permanent
  neighbour per remote router it uses: in ``ondemand`` the VPC's CIDR goes to a gateway
  host, and traffic leaving the VPC goes to the host holding the SNAT address;
- an uplink with the public addresses of local EIPs (and of the SNAT address, on its host);
  ports with an EIP leave through it by policy routing; NAT and security groups are one
  nftables table (``nft.py``).

Vxnet prefixes are never connected routes: every address is a /32, and the bridges answer
ARP for addresses routed elsewhere (proxy ARP). So a VM reaches an address its host does
not know yet through the gateway host, and directly once the entry is installed.
"""

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from yunguan.dataplane import names, nft

MAIN_TABLE = 254
RULE_MAIN_FIRST = 100  # priority of "main table, except its default route"
RULE_EIP = 200  # priority of "from a port with an EIP: the uplink table"


@dataclass(frozen=True)
class Link:
    name: str
    kind: str  # bridge | vxlan | port | uplink
    mac: str | None = None
    vni: int | None = None
    master: str | None = None


@dataclass(frozen=True)
class Route:
    dst: str  # a prefix: "10.0.0.5/32", "0.0.0.0/0"
    device: str
    via: str | None = None
    table: int = MAIN_TABLE


@dataclass(frozen=True)
class Neighbour:
    device: str
    ip: str
    mac: str


@dataclass(frozen=True)
class Fdb:
    device: str
    mac: str
    vtep: str | None  # None: the bridge's own entry, toward this VXLAN port


@dataclass(frozen=True)
class Rule:
    priority: int
    table: int
    source: str | None = None  # None: every source, the main table without its default route


@dataclass(frozen=True)
class LocalPort:
    port_id: str
    mac: str
    ip: str
    prefix: int
    gateway_ip: str
    device: str
    bridge: str


@dataclass
class Router:
    vpc_id: str
    netns: str
    links: dict[str, Link] = field(default_factory=dict)
    addresses: set[tuple[str, str]] = field(default_factory=set)  # (device, "ip/prefix")
    routes: set[Route] = field(default_factory=set)
    neighbours: set[Neighbour] = field(default_factory=set)
    fdb: set[Fdb] = field(default_factory=set)
    rules: set[Rule] = field(default_factory=set)
    ports: list[LocalPort] = field(default_factory=list)
    learning: bool = False  # reports destinations reached through a gateway
    ruleset: str = ""

    def add_link(self, link: Link) -> None:
        self.links[link.name] = link


def router(vpc: dict[str, Any], *, vtep: str, prefix: str, groups: dict[str, list]) -> Router:
    """The desired state of one VPC's router on the host whose VTEP is ``vtep``."""
    result = Router(vpc_id=vpc["vpc_id"], netns=names.router_netns(prefix, vpc["vpc_id"]))
    vxnets = {x["vni"]: x for x in vpc["vxnets"]}
    lengths = {vni: ipaddress.ip_network(x["cidr"]).prefixlen for vni, x in vxnets.items()}
    for vni, vxnet in vxnets.items():
        bridge, tunnel = names.bridge(vni), names.vxlan(vni)
        result.add_link(Link(bridge, "bridge", mac=vpc["router_mac"]))
        result.add_link(Link(tunnel, "vxlan", vni=vni, master=bridge))
        result.addresses.add((bridge, f"{vxnet['gateway_ip']}/{lengths[vni]}"))
    for port in vpc["local_ports"]:
        bridge, device = names.bridge(port["vni"]), names.port_device(port["port_id"])
        result.add_link(Link(device, "port", master=bridge))
        result.ports.append(
            LocalPort(
                port_id=port["port_id"],
                mac=port["mac"],
                ip=port["ip"],
                prefix=lengths[port["vni"]],
                gateway_ip=vxnets[port["vni"]]["gateway_ip"],
                device=device,
                bridge=bridge,
            )
        )
        _host_route(result, bridge, port["ip"], port["mac"])
    for entry in vpc["remote_ports"]:
        if entry["vni"] not in vxnets:
            continue
        bridge, tunnel = names.bridge(entry["vni"]), names.vxlan(entry["vni"])
        _host_route(result, bridge, entry["ip"], entry["mac"])
        result.fdb.add(Fdb(tunnel, entry["mac"], entry["vtep"]))
        result.fdb.add(Fdb(tunnel, entry["mac"], None))
    _transit(result, vpc, vtep)
    _uplink(result, vpc)
    result.learning = vpc["mode"] == "ondemand" and vpc["role"] == "member"
    result.ruleset = nft.ruleset(
        vpc,
        groups,
        transit=names.transit(vpc["transit_vni"]) if vpc.get("transit_vni") else None,
        learning=result.learning,
    )
    return result


def _host_route(router: Router, bridge: str, ip: str, mac: str) -> None:
    router.routes.add(Route(f"{ip}/32", bridge))
    router.neighbours.add(Neighbour(bridge, ip, mac))


def _transit(router: Router, vpc: dict[str, Any], vtep: str) -> None:
    if not vpc.get("transit_vni"):
        return
    device = names.transit(vpc["transit_vni"])
    router.add_link(Link(device, "vxlan", vni=vpc["transit_vni"], mac=names.transit_mac(vtep)))
    hops: list[str] = []
    for remote in [*vpc["gateways"], vpc.get("egress")]:
        if remote and remote not in hops:
            hops.append(remote)
    for index, remote in enumerate(hops):
        mac = names.transit_mac(remote)
        router.neighbours.add(Neighbour(device, names.transit_hop(index), mac))
        router.fdb.add(Fdb(device, mac, remote))
    if vpc["gateways"]:
        router.routes.add(Route(vpc["cidr"], device, names.transit_hop(0)))
    if vpc.get("egress"):
        router.routes.add(Route("0.0.0.0/0", device, names.transit_hop(hops.index(vpc["egress"]))))


def _uplink(router: Router, vpc: dict[str, Any]) -> None:
    nat = [(p["ip"], p["eip"]) for p in vpc["local_ports"] if p.get("eip")]
    snat = vpc.get("snat")
    if not nat and not snat:
        return
    router.add_link(Link(names.UPLINK, "uplink"))
    for _, eip in nat:
        router.addresses.add((names.UPLINK, f"{eip['address']}/32"))
    if snat:
        router.addresses.add((names.UPLINK, f"{snat['address']}/32"))
        router.routes.add(Route("0.0.0.0/0", names.UPLINK, snat["gateway"]))
    if nat:
        table = names.EIP_TABLE
        router.routes.add(Route("0.0.0.0/0", names.UPLINK, nat[0][1]["gateway"], table))
        router.rules.add(Rule(RULE_MAIN_FIRST, MAIN_TABLE))
        router.rules.update(Rule(RULE_EIP, table, ip) for ip, _ in nat)
