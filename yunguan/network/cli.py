"""``yunguan vlan-pool|ip-pool|vpc|vxnet|port|security-group|eip|sdn …``: the network
commands."""

from typing import Annotated, Any

import typer

from yunguan.cli.client import Client
from yunguan.cli.output import Format, OutputOption, show
from yunguan.inventory.cli import given, noun_app
from yunguan.network.schemas import ranges_from_text

Opt = typer.Option
Name = Annotated[str, typer.Argument(help="name")]
Ranges = Annotated[list[str] | None, Opt(help="FIRST-LAST (repeatable)")]

COLUMNS = {
    "vlan-pool": ["id", "name", "zone_id", "network_type", "first_id", "last_id", "cidr", "label"],
    "ip-pool": ["id", "name", "vlan", "purpose", "cidr", "gateway", "total", "used", "free"],
    "address": ["pool_id", "address", "owner_id"],
    "vpc": ["id", "name", "tenant_id", "zone_id", "cidr", "routing_mode"],
    "vxnet": ["id", "name", "vpc_id", "cidr", "gateway_ip", "vni"],
    "port": ["id", "name", "vxnet_id", "ip", "mac", "host_id", "device_id"],
    "security-group": ["id", "name", "tenant_id", "rules"],
    "eip": ["id", "name", "address", "bandwidth_mbps", "port_id", "vpc_id"],
    "sdn-host": [
        "host_id",
        "version",
        "applied_version",
        "up_to_date",
        "routers",
        "entries",
        "errors",
        "reported_at",
        "stale",
    ],
}
COMMANDS = {
    "vlan-pool": noun_app(
        "/vlan-pools",
        COLUMNS["vlan-pool"],
        "VLAN pools: VLAN ids of classic networks, or a zone's VXLAN VNIs.",
        ("zone_id", "network_type"),
    ),
    "ip-pool": noun_app(
        "/ip-pools",
        COLUMNS["ip-pool"],
        "IP pools: guest addresses of a VLAN, or public addresses for EIPs.",
        ("vlan_pool_id", "zone_id", "purpose"),
    ),
    "vpc": noun_app("/vpcs", COLUMNS["vpc"], "VPCs: a tenant's own network.", ("zone_id",)),
    "vxnet": noun_app("/vxnets", COLUMNS["vxnet"], "Vxnets: the subnets of a VPC.", ("vpc_id",)),
    "port": noun_app(
        "/ports", COLUMNS["port"], "Ports: NICs on vxnets or guest VLANs.", ("vxnet_id", "host_id")
    ),
    "security-group": noun_app(
        "/security-groups", COLUMNS["security-group"], "Security groups and their rules."
    ),
    "eip": noun_app("/eips", COLUMNS["eip"], "Elastic IPs.", ("port_id", "vpc_id")),
}
sdn = typer.Typer(help="The SDN controller, as agents see it.", no_args_is_help=True)
COMMANDS["sdn"] = sdn


def _send(noun: str, method: str, path: str, body: dict[str, Any], output: Format) -> None:
    answer = getattr(Client.from_login(), method)(path, body)
    show(_flat(answer) if noun == "ip-pool" else answer, COLUMNS[noun], output)


def _flat(pool: dict[str, Any]) -> dict[str, Any]:
    """An IP pool with its usage figures as columns."""
    return {**pool, **pool.get("usage", {})}


@COMMANDS["vlan-pool"].command("create")
def vlan_pool_create(
    name: Name,
    zone_id: Annotated[str, Opt("--zone")],
    first_id: Annotated[int, Opt("--first")],
    last_id: Annotated[int, Opt("--last")],
    network_type: Annotated[str, Opt("--type", help="vlan or vxlan")] = "vlan",
    cidr: Annotated[str | None, Opt(help="classic networks: the subnet")] = None,
    gateway: Annotated[str | None, Opt()] = None,
    label: Annotated[str | None, Opt(help="e.g. the bridge carrying it")] = None,
    output: OutputOption = Format.table,
) -> None:
    body = given(name=name, zone_id=zone_id, network_type=network_type, first_id=first_id)
    body |= given(last_id=last_id, cidr=cidr, gateway=gateway, label=label)
    _send("vlan-pool", "post", "/vlan-pools", body, output)


@COMMANDS["ip-pool"].command("create")
def ip_pool_create(
    name: Name,
    vlan_pool_id: Annotated[str, Opt("--vlan-pool")],
    vlan: Annotated[int | None, Opt(help="default: the VLAN pool's first id")] = None,
    purpose: Annotated[str, Opt(help="guest or public")] = "guest",
    cidr: Annotated[str | None, Opt(help="default: the VLAN pool's")] = None,
    gateway: Annotated[str | None, Opt()] = None,
    range_: Annotated[list[str] | None, Opt("--range", help="FIRST-LAST (repeatable)")] = None,
    reserved: Ranges = None,
    cooldown: Annotated[int | None, Opt(help="seconds before a released address returns")] = None,
    output: OutputOption = Format.table,
) -> None:
    body = given(name=name, vlan_pool_id=vlan_pool_id, vlan=vlan, purpose=purpose, cidr=cidr)
    body |= given(gateway=gateway, cooldown_seconds=cooldown)
    body |= {
        "ranges": ranges_from_text(range_ or []),
        "reserved": ranges_from_text(reserved or []),
    }
    _send("ip-pool", "post", "/ip-pools", body, output)


@COMMANDS["ip-pool"].command("allocate")
def ip_pool_allocate(
    pool_id: str,
    owner: Annotated[str, Opt(help="the instance or server id")],
    address: Annotated[str | None, Opt(help="a specific free address")] = None,
    output: OutputOption = Format.table,
) -> None:
    body = given(owner_id=owner, address=address)
    _send("address", "post", f"/ip-pools/{pool_id}/addresses", body, output)


@COMMANDS["ip-pool"].command("release")
def ip_pool_release(pool_id: str, address: str) -> None:
    Client.from_login().delete(f"/ip-pools/{pool_id}/addresses/{address}")
    typer.echo(f"released {address}")


@COMMANDS["vpc"].command("create")
def vpc_create(
    name: Name,
    zone_id: Annotated[str, Opt("--zone")],
    cidr: Annotated[str, Opt(help="a private IPv4 network, /16 to /28")],
    mode: Annotated[str | None, Opt(help="full or ondemand (default: by the zone)")] = None,
    tenant: Annotated[str | None, Opt(help="default: yours")] = None,
    output: OutputOption = Format.table,
) -> None:
    body = given(name=name, zone_id=zone_id, cidr=cidr, routing_mode=mode, tenant_id=tenant)
    _send("vpc", "post", "/vpcs", body, output)


@COMMANDS["vpc"].command("topology")
def vpc_topology(vpc_id: str, output: OutputOption = Format.table) -> None:
    """The VPC, its vxnets and their ports, with EIPs."""
    tree = Client.from_login().get(f"/vpcs/{vpc_id}/topology")
    if output is Format.json:
        show(tree, [], output)
        return
    snat = f", SNAT via {tree['snat_eip']}" if tree["snat_eip"] else ""
    typer.echo(f"{tree['name']} {tree['cidr']} ({tree['routing_mode']}{snat})")
    for vxnet in tree["vxnets"]:
        typer.echo(f"  {vxnet['name']} {vxnet['cidr']} vni {vxnet['vni']}")
        for nic in vxnet["ports"]:
            eip = f" eip {nic['eip']}" if nic["eip"] else ""
            where = nic["device_id"] or nic["id"]
            typer.echo(f"    {nic['ip']} {nic['mac']} {where} on {nic['host_id'] or '-'}{eip}")


@COMMANDS["vxnet"].command("create")
def vxnet_create(
    name: Name,
    vpc_id: Annotated[str, Opt("--vpc")],
    cidr: Annotated[str, Opt(help="inside the VPC's CIDR, at least /29")],
    output: OutputOption = Format.table,
) -> None:
    _send("vxnet", "post", "/vxnets", {"name": name, "vpc_id": vpc_id, "cidr": cidr}, output)


@COMMANDS["port"].command("create")
def port_create(
    vxnet_id: Annotated[str | None, Opt("--vxnet")] = None,
    ip_pool_id: Annotated[str | None, Opt("--ip-pool", help="a classic guest VLAN")] = None,
    ip: Annotated[str | None, Opt(help="a specific free address")] = None,
    host: Annotated[str | None, Opt(help="bind to this host (administrators)")] = None,
    device: Annotated[str | None, Opt(help="the instance it belongs to")] = None,
    security_group: Annotated[list[str] | None, Opt(help="repeatable")] = None,
    output: OutputOption = Format.table,
) -> None:
    body = given(vxnet_id=vxnet_id, ip_pool_id=ip_pool_id, ip=ip, host_id=host, device_id=device)
    body |= given(security_group_ids=security_group)
    _send("port", "post", "/ports", body, output)


@COMMANDS["port"].command("bind")
def port_bind(
    port_id: str,
    host: Annotated[str, Opt(help="the host it now runs on")],
    output: OutputOption = Format.table,
) -> None:
    """Place the port on a host (a move if it was elsewhere)."""
    _send("port", "patch", f"/ports/{port_id}", {"host_id": host}, output)


def _rule(text: str) -> dict[str, Any]:
    """``ingress tcp 80[-90] [CIDR|sg-…]``, ``egress any``, ``ingress icmp 10.0.0.0/8``."""
    direction, protocol, *rest = text.split()
    rule: dict[str, Any] = {"direction": direction, "protocol": protocol}
    if rest and protocol in ("tcp", "udp"):
        low, _, high = rest.pop(0).partition("-")
        rule |= {"port_min": int(low), "port_max": int(high or low)}
    if rest:
        remote = rest[0]
        rule["remote_group_id" if remote.startswith("sg-") else "remote_cidr"] = remote
    return rule


@COMMANDS["security-group"].command("create")
def security_group_create(
    name: Name,
    rule: Annotated[list[str] | None, Opt(help="'ingress tcp 22 10.0.0.0/8' (repeatable)")] = None,
    output: OutputOption = Format.table,
) -> None:
    body = {"name": name, "rules": [_rule(r) for r in rule or []]}
    _send("security-group", "post", "/security-groups", body, output)


@COMMANDS["eip"].command("create")
def eip_create(
    pool: Annotated[str | None, Opt(help="public ip pool id")] = None,
    zone: Annotated[str | None, Opt()] = None,
    address: Annotated[str | None, Opt(help="a specific free address of --pool")] = None,
    bandwidth: Annotated[int | None, Opt(help="Mbit/s")] = None,
    output: OutputOption = Format.table,
) -> None:
    body = given(ip_pool_id=pool, zone_id=zone, address=address, bandwidth_mbps=bandwidth)
    _send("eip", "post", "/eips", body, output)


@COMMANDS["eip"].command("bind")
def eip_bind(
    eip_id: str,
    port: Annotated[str | None, Opt(help="1:1 NAT to this port")] = None,
    vpc: Annotated[str | None, Opt(help="SNAT for this VPC")] = None,
    output: OutputOption = Format.table,
) -> None:
    body = {"action": "bind", **given(port_id=port, vpc_id=vpc)}
    _send("eip", "post", f"/eips/{eip_id}/actions", body, output)


@COMMANDS["eip"].command("unbind")
def eip_unbind(eip_id: str, output: OutputOption = Format.table) -> None:
    _send("eip", "post", f"/eips/{eip_id}/actions", {"action": "unbind"}, output)


@sdn.command("document")
def sdn_document(
    host_id: str,
    since: Annotated[int | None, Opt(help="wait for a version newer than this")] = None,
    wait: Annotated[float, Opt(help="seconds to wait with --since")] = 0,
) -> None:
    """A host's desired forwarding state (JSON)."""
    params = given(since=since, wait=wait if since is not None else None)
    document = Client.from_login().get(f"/sdn/hosts/{host_id}/document", **params)
    if document is None:  # 304
        typer.echo(f"no change since version {since}")
        return
    show(document, [], Format.json)


@sdn.command("host")
def sdn_host(host_id: str, output: OutputOption = Format.table) -> None:
    """A host's document version and what its agent last reported."""
    state = Client.from_login().get(f"/sdn/hosts/{host_id}")
    show(state if output is Format.json else _agent_row(state), COLUMNS["sdn-host"], output)


def _agent_row(state: dict[str, Any]) -> dict[str, Any]:
    """The host's state with its agent's report as columns."""
    agent = state["agent"] or {"applied_version": "never reported"}
    errors = "; ".join(f"{vpc}: {why}" for vpc, why in agent.get("errors", {}).items())
    return {**state, **agent, "errors": errors or None}
