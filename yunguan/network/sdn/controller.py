"""Desired forwarding state per host, computed from the model.

For each VPC a host serves (it has ports of it, or is one of its gateways) the document
holds the VPC's routing domain (router MAC, vxnets with VNI, CIDR and anycast gateway IP),
the host's local ports, and entries for remote ports (IP, MAC, VNI, the remote VTEP):

- ``full``: every remote port of the VPC;
- ``ondemand``: only the entries the host learned (it reported traffic to them through a
  gateway), plus the gateways' VTEPs for the default route; gateways hold the full table.

Documents are built from a ``Snapshot`` of the rows they need: one host's (what an agent
fetches) or every host's (a full resync), by the same code.
"""

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunguan.core.errors import NotFound
from yunguan.inventory.models import Host
from yunguan.network.models import (
    Eip,
    Gateway,
    IpPool,
    LearnedRoute,
    Port,
    SdnHost,
    SecurityGroup,
    Vpc,
    Vxnet,
)
from yunguan.network.sdn import tables
from yunguan.network.sdn.tables import REMOTE_COLUMNS

# what a local port needs besides what a remote entry needs
PORT_COLUMNS = (*REMOTE_COLUMNS, Port.tenant_id, Port.security_group_ids, Port.ip_pool_id)


def versions(session: Session, host_ids: Collection[str]) -> dict[str, int]:
    """Each host's document version: the largest of its own and of what it shows."""
    own = dict(
        session.execute(
            select(SdnHost.host_id, SdnHost.version).where(SdnHost.host_id.in_(host_ids))
        ).all()
    )
    served = _served(session, host_ids)
    vpc_ids = {vpc for pairs in served.values() for vpc, _ in pairs}
    vpcs = {
        v.id: v
        for v in session.execute(
            select(Vpc.id, Vpc.routing_mode, Vpc.layout_version, Vpc.ports_version).where(
                Vpc.id.in_(vpc_ids)
            )
        )
    }
    result = {}
    for host in host_ids:
        version = own.get(host, 0)
        for vpc_id, gateway in served.get(host, ()):
            vpc = vpcs[vpc_id]
            version = max(version, vpc.layout_version)
            if gateway or vpc.routing_mode == "full":
                version = max(version, vpc.ports_version)
        result[host] = version
    return result


def _served(session: Session, host_ids: Collection[str] | None) -> dict[str, set[tuple[str, bool]]]:
    """host -> {(vpc, is a gateway of it)} for the VPCs the host serves."""
    local = select(Port.host_id, Port.vpc_id).where(Port.vpc_id.is_not(None)).distinct()
    gateways = select(Gateway.host_id, Gateway.vpc_id)
    if host_ids is not None:
        local = local.where(Port.host_id.in_(host_ids))
        gateways = gateways.where(Gateway.host_id.in_(host_ids))
    else:
        local = local.where(Port.host_id.is_not(None))
    served: dict[str, set[tuple[str, bool]]] = defaultdict(set)
    gateway_pairs = set(session.execute(gateways).tuples())
    for host, vpc in gateway_pairs:
        served[host].add((vpc, True))
    for host, vpc in session.execute(local).tuples():
        if (host, vpc) not in gateway_pairs:
            served[host].add((vpc, False))
    return served


@dataclass
class Snapshot:
    """The rows that the documents of some hosts (or all hosts) are built from."""

    served: dict[str, set[tuple[str, bool]]]
    vteps: dict[str, str] = field(default_factory=dict)
    vpcs: dict[str, Any] = field(default_factory=dict)
    gateways: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    vxnets: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    vnis: dict[str, int] = field(default_factory=dict)
    vlans: dict[str, int | None] = field(default_factory=dict)
    local: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    full_tables: dict[str, list[tables.Entry]] = field(default_factory=dict)
    learned: dict[tuple[str, str], list[Any]] = field(default_factory=lambda: defaultdict(list))
    nat: dict[str, dict] = field(default_factory=dict)  # port id -> its EIP
    snat: dict[str, dict] = field(default_factory=dict)  # vpc id -> its SNAT EIP
    groups: dict[str, list[dict]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, host_ids: Collection[str] | None = None) -> "Snapshot":
        """``host_ids`` None: every host."""
        snap = cls(served=_served(session, host_ids))
        vpc_ids = {vpc for pairs in snap.served.values() for vpc, _ in pairs}
        for vpc in session.execute(select(Vpc).where(Vpc.id.in_(vpc_ids))).scalars():
            snap.vpcs[vpc.id] = vpc
        for vpc_id, host_id in session.execute(
            select(Gateway.vpc_id, Gateway.host_id)
            .where(Gateway.vpc_id.in_(vpc_ids))
            .order_by(Gateway.host_id)
        ):
            snap.gateways[vpc_id].append(host_id)
        for vxnet in session.execute(select(Vxnet).where(Vxnet.vpc_id.in_(vpc_ids))).scalars():
            snap.vxnets[vxnet.vpc_id].append(vxnet)
            snap.vnis[vxnet.id] = vxnet.vni
        local = select(*PORT_COLUMNS).where(Port.host_id.is_not(None))
        if host_ids is not None:
            local = local.where(Port.host_id.in_(host_ids))
        ports = list(session.execute(local))
        tabled = {  # VPCs whose full table some loaded host shows
            vpc
            for pairs in snap.served.values()
            for vpc, gateway in pairs
            if gateway or snap.vpcs[vpc].routing_mode == "full"
        }
        for vpc in tabled:
            snap.full_tables[vpc] = tables.table(session, vpc, snap.vpcs[vpc].ports_version)
        for port in ports:
            snap.local[port.host_id].append(port)
        snap._load_learned(session, host_ids, {p.id: p for p in ports})
        snap._load_hosts(session, ports)
        snap._load_nat(session, vpc_ids)
        snap._load_groups(session, host_ids)
        return snap

    def _load_learned(
        self, session: Session, host_ids: Collection[str] | None, known: dict[str, Any]
    ) -> None:
        """Learned entries as (learner, port) pairs; ports not loaded yet are fetched by id."""
        # shown until the expiry pass removes them, which raises the hosts' versions
        stmt = select(LearnedRoute.host_id, LearnedRoute.port_id)
        if host_ids is not None:
            stmt = stmt.where(LearnedRoute.host_id.in_(host_ids))
        pairs = session.execute(stmt).all()
        missing = list({port_id for _, port_id in pairs} - known.keys())
        for start in range(0, len(missing), 5000):
            lean = select(*REMOTE_COLUMNS).where(Port.id.in_(missing[start : start + 5000]))
            known.update((p.id, p) for p in session.execute(lean))
        for learner, port_id in pairs:
            port = known.get(port_id)
            if port is not None and port.host_id not in (None, learner):
                self.learned[(learner, port.vpc_id)].append(port)
        pools = {p.ip_pool_id for ports in self.local.values() for p in ports}
        for pool_id, vlan in session.execute(
            select(IpPool.id, IpPool.vlan).where(IpPool.id.in_(pools), IpPool.vlan.is_not(None))
        ):
            self.vlans[pool_id] = vlan

    def _load_hosts(self, session: Session, ports: list) -> None:
        hosts = {p.host_id for p in ports} | set(self.served)
        hosts |= {h for gateways in self.gateways.values() for h in gateways}
        hosts |= {row.host_id for rows in self.learned.values() for row in rows}
        for host_id, address in session.execute(
            select(Host.id, Host.address).where(Host.id.in_(hosts))
        ):
            self.vteps[host_id] = address

    def _load_nat(self, session: Session, vpc_ids: set[str]) -> None:
        rows = session.execute(
            select(Eip.port_id, Eip.vpc_id, Eip.address, IpPool.cidr, IpPool.gateway)
            .join(IpPool, IpPool.id == Eip.ip_pool_id)
            .where((Eip.port_id.is_not(None)) | Eip.vpc_id.in_(vpc_ids))
        )
        for port_id, vpc_id, address, cidr, gateway in rows:
            # what a router needs to hold the address on its public side
            public = {"address": address, "prefix": int(cidr.split("/")[1]), "gateway": gateway}
            if port_id is not None:
                self.nat[port_id] = public
            else:
                self.snat[vpc_id] = public

    def _load_groups(self, session: Session, host_ids: Collection[str] | None) -> None:
        used = {g for ports in self.local.values() for p in ports for g in p.security_group_ids}
        if not used:
            return
        groups = session.scalars(select(SecurityGroup).where(SecurityGroup.id.in_(used))).all()
        remote = {r["remote_group_id"] for g in groups for r in g.rules if r.get("remote_group_id")}
        for group in groups:
            self.groups[group.id] = group.rules
        tenants = {g.tenant_id for g in groups}
        if remote:
            members = select(Port.ip, Port.security_group_ids).where(Port.tenant_id.in_(tenants))
            for ip, group_ids in session.execute(members):
                for group_id in set(group_ids) & remote:
                    self.members[group_id].append(ip)

    # --- documents -------------------------------------------------------------------------

    def hosts(self) -> list[str]:
        return sorted(set(self.served) | set(self.local))

    def document(self, host_id: str, version: int) -> dict[str, Any]:
        vpcs = [
            self._vpc(host_id, vpc, gateway)
            for vpc, gateway in sorted(self.served.get(host_id, ()))
        ]
        classic = [
            {
                "port_id": p.id,
                "mac": p.mac,
                "ip": p.ip,
                "vlan": self.vlans.get(p.ip_pool_id),
                "eip": self.nat.get(p.id),
            }
            for p in self.local.get(host_id, ())
            if p.vpc_id is None
        ]
        used = {g for p in self.local.get(host_id, ()) for g in p.security_group_ids}
        return {
            "host_id": host_id,
            "version": version,
            "vtep": self.vteps.get(host_id, ""),
            "vpcs": vpcs,
            "classic_ports": classic,
            "security_groups": {g: self._rules(g) for g in sorted(used) if g in self.groups},
        }

    def _vpc(self, host_id: str, vpc_id: str, gateway: bool) -> dict[str, Any]:
        vpc = self.vpcs[vpc_id]
        local = [p for p in self.local.get(host_id, ()) if p.vpc_id == vpc_id]
        gateways = self.gateways.get(vpc_id, [])
        snat_host, snat_vtep = self._snat_host(vpc_id)
        snat = self.snat.get(vpc_id)
        return {
            "vpc_id": vpc_id,
            "cidr": vpc.cidr,
            "mode": vpc.routing_mode,
            "role": "gateway" if gateway else "member",
            "router_mac": vpc.router_mac,
            "transit_vni": vpc.transit_vni,
            "vxnets": [
                {"vxnet_id": x.id, "vni": x.vni, "cidr": x.cidr, "gateway_ip": x.gateway_ip}
                for x in sorted(self.vxnets.get(vpc_id, []), key=lambda x: x.vni)
            ],
            "gateways": [self.vteps.get(h, "") for h in gateways]
            if not gateway and vpc.routing_mode == "ondemand"
            else [],
            "local_ports": [
                {
                    "port_id": p.id,
                    "mac": p.mac,
                    "ip": p.ip,
                    "vni": self.vnis[p.vxnet_id],
                    "security_group_ids": p.security_group_ids,
                    "eip": self.nat.get(p.id),
                }
                for p in local
            ],
            "remote_ports": self.remote(host_id, vpc_id, gateway),
            "snat": snat if snat_host == host_id else None,
            # where traffic leaving the VPC goes when this host does not hold its SNAT
            "egress": snat_vtep if snat and snat_host != host_id else None,
        }

    def _snat_host(self, vpc_id: str) -> tuple[str | None, str]:
        """The host holding the VPC's SNAT address, and its VTEP: its first gateway, else
        (``full`` mode) the lowest host with its ports."""
        gateways = self.gateways.get(vpc_id, [])
        if gateways:
            return gateways[0], self.vteps.get(gateways[0], "")
        host, entry = min(self.full_tables[vpc_id], default=(None, {"vtep": ""}), key=_host_of)
        return host, entry["vtep"]

    def remote(self, host_id: str, vpc_id: str, gateway: bool) -> list[dict[str, Any]]:
        """The entries of a host for the remote ports of one VPC."""
        if self._full_table(vpc_id, gateway):
            return [entry for host, entry in self.full_tables[vpc_id] if host != host_id]
        return [self._entry(p) for p in self.learned.get((host_id, vpc_id), ())]

    def _entry(self, port: Any) -> dict[str, Any]:
        """One remote port's entry, built once per snapshot: many hosts show the same."""
        entry = self.entries.get(port.id)
        if entry is None:
            entry = self.entries[port.id] = self._new_entry(port)
        return entry

    def _new_entry(self, port: Any) -> dict[str, Any]:
        return {
            "ip": port.ip,
            "mac": port.mac,
            "vni": self.vnis[port.vxnet_id],
            "vtep": self.vteps.get(port.host_id, ""),
        }

    def _rules(self, group_id: str) -> list[dict[str, Any]]:
        return [
            {**rule, "remote_ips": sorted(self.members.get(rule["remote_group_id"], []))}
            if rule.get("remote_group_id")
            else rule
            for rule in self.groups[group_id]
        ]

    def entry_count(self, host_id: str) -> int:
        """Local plus remote entries of the host's document, without building it."""
        local = self.local.get(host_id, ())
        count = len(local)
        for vpc_id, gateway in self.served.get(host_id, ()):
            if self._full_table(vpc_id, gateway):  # the table less the host's own ports
                count += len(self.full_tables[vpc_id]) - sum(1 for p in local if p.vpc_id == vpc_id)
            else:
                count += len(self.learned.get((host_id, vpc_id), ()))
        return count

    def _full_table(self, vpc_id: str, gateway: bool) -> bool:
        return gateway or self.vpcs[vpc_id].routing_mode == "full"


def _host_of(entry: tables.Entry) -> str:
    return entry[0]


def one_snapshot(session: Session) -> None:
    """Make the session's reads see one snapshot (PostgreSQL's READ COMMITTED would let a
    document mix rows from before and after a change; SQLite's reads are one snapshot)."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def require_host(session: Session, host_id: str) -> None:
    """404 for a host that does not exist."""
    if session.get(Host, host_id) is None:
        raise NotFound(f"host {host_id} not found")


def host_version(session: Session, host_id: str) -> int:
    """One host's document version; 404 for a host that does not exist."""
    require_host(session, host_id)
    return versions(session, [host_id])[host_id]


def document(session: Session, host_id: str, version: int | None = None) -> dict[str, Any]:
    """The desired state of one host, as its agent fetches it (``version``: when the caller
    has just read it)."""
    if version is None:
        version = host_version(session, host_id)
    return Snapshot.load(session, [host_id]).document(host_id, version)
