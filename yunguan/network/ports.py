"""Ports (NICs on vxnets or on classic guest VLANs) and security groups: tenant resources.

Binding a port to a host (``host_id``) is what places it in the SDN: only the platform
(compute, or an administrator) may do it. Every change tells the controller which host
documents changed.
"""

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from yunguan.core import audit
from yunguan.core.db import flush_or_conflict
from yunguan.core.errors import BadRequest, Conflict, NotFound
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams
from yunguan.identity import service as identity
from yunguan.identity.scope import (
    SYSTEM,
    Principal,
    get_visible,
    get_writable,
    list_visible,
    require,
)
from yunguan.inventory import service as inventory
from yunguan.inventory.models import Host
from yunguan.network import eip_usage, ipam
from yunguan.network.models import Eip, IpPool, LearnedRoute, Port, SecurityGroup, Vpc, Vxnet
from yunguan.network.schemas import (
    PortCreate,
    PortUpdate,
    Rule,
    SecurityGroupCreate,
    SecurityGroupUpdate,
)
from yunguan.network.sdn import versions
from yunguan.network.vpcs import READ, WRITE, random_mac, tenant_id_for

BIND = "inventory:write"


# --- security groups -----------------------------------------------------------------------


def list_security_groups(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_visible(session, principal, SecurityGroup, READ, page, **filters)


def get_security_group(session: Session, principal: Principal, group_id: str) -> SecurityGroup:
    return get_visible(session, SecurityGroup, group_id, principal, READ)


def _rules(
    session: Session, principal: Principal, tenant_id: str, rules: list[Rule]
) -> list[dict[str, Any]]:
    checked = []
    for rule in rules:
        if rule.remote_cidr is not None and rule.remote_group_id is not None:
            raise BadRequest(
                "a rule has a remote CIDR or a remote group, not both", code="bad-rule"
            )
        if rule.remote_cidr is not None:
            ipam.network(rule.remote_cidr)
        if rule.remote_group_id is not None:
            _groups(session, principal, tenant_id, [rule.remote_group_id])
        ports = (rule.port_min, rule.port_max)
        if rule.protocol in ("tcp", "udp"):
            if (ports[0] is None) != (ports[1] is None) or (
                None not in ports and ports[0] > ports[1]
            ):  # type: ignore[operator]
                raise BadRequest("give port_min <= port_max, or neither", code="bad-rule")
        elif ports != (None, None):
            raise BadRequest("ports are for tcp and udp rules only", code="bad-rule")
        checked.append({"id": new_id("sgr"), **rule.model_dump()})
    return checked


def _groups(
    session: Session, principal: Principal, tenant_id: str, group_ids: list[str]
) -> list[str]:
    """Security groups a resource of ``tenant_id`` may use: the tenant's own."""
    for group_id in group_ids:
        group = get_security_group(session, principal, group_id)
        if group.tenant_id != tenant_id:
            raise BadRequest(
                f"security group {group_id} belongs to another tenant", code="bad-group"
            )
    return list(dict.fromkeys(group_ids))


def create_security_group(
    session: Session, principal: Principal, data: SecurityGroupCreate
) -> SecurityGroup:
    tenant = identity.tenant_for_new_resource(
        session, principal, tenant_id_for(principal, data.tenant_id)
    )
    require(principal, WRITE)
    group = SecurityGroup(
        id=new_id("sg"),
        tenant_id=tenant.id,
        name=data.name,
        description=data.description,
        rules=_rules(session, principal, tenant.id, data.rules),
    )
    session.add(group)
    session.flush()
    audit.note(target_type="security-group", target_id=group.id, tenant_id=tenant.id)
    return group


def _hosts_of_groups(session: Session, tenant_id: str, group_ids: set[str]) -> set[str | None]:
    """Hosts whose documents show these groups: ports in them, or in groups whose rules
    name them as the remote group."""
    groups = session.scalars(select(SecurityGroup).where(SecurityGroup.tenant_id == tenant_id))
    affected = set(group_ids) | {
        g.id for g in groups if any(r.get("remote_group_id") in group_ids for r in g.rules)
    }
    ports = session.execute(
        select(Port.host_id, Port.security_group_ids).where(
            Port.tenant_id == tenant_id, Port.host_id.is_not(None)
        )
    )
    return {host for host, groups_of in ports if affected & set(groups_of)}


def update_security_group(
    session: Session, principal: Principal, group_id: str, data: SecurityGroupUpdate
) -> SecurityGroup:
    group = get_writable(session, SecurityGroup, group_id, principal, "resource")
    if data.name is not None:
        group.name = data.name
    if data.description is not None:
        group.description = data.description
    if data.rules is not None:
        group.rules = _rules(session, principal, group.tenant_id, data.rules)
        versions.bump_hosts(session, _hosts_of_groups(session, group.tenant_id, {group.id}))
    audit.note(target_type="security-group", target_id=group.id, tenant_id=group.tenant_id)
    return group


def delete_security_group(session: Session, principal: Principal, group_id: str) -> None:
    group = get_writable(session, SecurityGroup, group_id, principal, "resource")
    members = select(Port.security_group_ids).where(Port.tenant_id == group.tenant_id)
    if any(group.id in ids for ids in session.scalars(members)):
        raise Conflict(f"security group {group.id} is still used by ports", code="in-use")
    others = select(SecurityGroup).where(SecurityGroup.tenant_id == group.tenant_id)
    others = others.where(SecurityGroup.id != group.id)  # its own rules go with it
    if any(r.get("remote_group_id") == group.id for g in session.scalars(others) for r in g.rules):
        raise Conflict(f"rules of other groups refer to {group.id}", code="in-use")
    session.delete(group)
    audit.note(target_type="security-group", target_id=group.id, tenant_id=group.tenant_id)


# --- ports ---------------------------------------------------------------------------------


def list_ports(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_visible(session, principal, Port, READ, page, **filters)


def get_port(session: Session, principal: Principal, port_id: str) -> Port:
    return get_visible(session, Port, port_id, principal, READ)


def _host(session: Session, principal: Principal, host_id: str, zone_id: str) -> str:
    require(principal, BIND)
    host = session.get(Host, host_id)
    if host is None:
        raise NotFound(f"host {host_id} not found")
    if host.zone_id != zone_id:
        raise BadRequest(f"host {host_id} is in another zone than the port", code="bad-host")
    return host.id


def _guest_pool(session: Session, principal: Principal, pool_id: str) -> IpPool:
    """A classic guest pool the principal may put ports on (its zone is usable)."""
    pool = session.get(IpPool, pool_id)
    if pool is None or pool.vlan_pool_id is None or pool.purpose != "guest":
        raise NotFound(f"guest ip pool {pool_id} not found")
    inventory.get_zone(session, principal, pool.zone_id)
    return pool


def create_port(session: Session, principal: Principal, data: PortCreate) -> Port:
    if (data.vxnet_id is None) == (data.ip_pool_id is None):
        raise BadRequest(
            "give a vxnet_id (VPC) or an ip_pool_id (classic VLAN)", code="invalid-field"
        )
    if data.vxnet_id is not None:
        vxnet = get_writable(session, Vxnet, data.vxnet_id, principal, "resource")
        tenant_id, vpc_id, pool_id = vxnet.tenant_id, vxnet.vpc_id, vxnet.ip_pool_id
        identity.tenant_for_new_resource(session, principal, tenant_id)
    else:
        require(principal, WRITE)
        tenant_id = identity.tenant_for_new_resource(
            session, principal, tenant_id_for(principal, data.tenant_id)
        ).id
        vpc_id, pool_id = None, _guest_pool(session, principal, data.ip_pool_id).id  # type: ignore[arg-type]
    pool = session.get(IpPool, pool_id)
    host_id = (
        None if data.host_id is None else _host(session, principal, data.host_id, pool.zone_id)
    )  # type: ignore[union-attr]
    if data.mac is not None and int(data.mac[:2], 16) & 1:
        raise BadRequest(f"{data.mac} is a multicast address", code="bad-mac")
    port = Port(
        id=new_id("port"),
        tenant_id=tenant_id,
        name=data.name,
        vxnet_id=data.vxnet_id,
        vpc_id=vpc_id,
        ip_pool_id=pool_id,
        mac=data.mac or random_mac(),
        host_id=host_id,
        device_id=data.device_id,
        security_group_ids=_groups(session, principal, tenant_id, data.security_group_ids),
    )
    port.ip = ipam.allocate(session, pool_id, port.id, data.ip)
    session.add(port)
    flush_or_conflict(session, f"MAC {port.mac} is taken", "duplicate-mac")
    _placed(session, port.id, port.vpc_id, [port.host_id])
    _members_changed(session, port)
    audit.note(target_type="port", target_id=port.id, tenant_id=tenant_id)
    return port


def _members_changed(session: Session, port: Port) -> None:
    """A port joined or left its groups: hosts whose rules name them as remote groups see
    other addresses."""
    if port.security_group_ids:
        hosts = _hosts_of_groups(session, port.tenant_id, set(port.security_group_ids))
        versions.bump_hosts(session, hosts)


def _placed(session: Session, port_id: str, vpc_id: str | None, hosts: list[str | None]) -> None:
    """Tell the controller: the port appeared on, left, or moved between ``hosts``."""
    if not any(hosts):
        return
    forget_learned(session, port_id)  # learned rows before the sequence row, as learn does
    if vpc_id is not None:
        versions.bump_port(session, vpc_id, port_id)
    versions.bump_hosts(session, hosts)


def forget_learned(session: Session, port_id: str) -> None:
    """Learned entries that lead to the port are stale once it moves or goes."""
    hosts = session.scalars(
        delete(LearnedRoute).where(LearnedRoute.port_id == port_id).returning(LearnedRoute.host_id)
    ).all()
    versions.bump_hosts(session, hosts)


def update_port(session: Session, principal: Principal, port_id: str, data: PortUpdate) -> Port:
    port = get_writable(session, Port, port_id, principal, "resource")
    changes = data.model_dump(exclude_unset=True)
    old_host = port.host_id
    if "host_id" in changes:
        require(principal, BIND)  # placing, moving and unplacing are the platform's
        pool = session.get(IpPool, port.ip_pool_id)
        new_host = changes["host_id"]
        port.host_id = (
            None if new_host is None else _host(session, principal, new_host, pool.zone_id)
        )  # type: ignore[union-attr]
    if data.security_group_ids is not None:
        before = set(port.security_group_ids)
        port.security_group_ids = _groups(
            session, principal, port.tenant_id, data.security_group_ids
        )
        touched = before | set(port.security_group_ids)
        hosts = _hosts_of_groups(session, port.tenant_id, touched) | {port.host_id}
        versions.bump_hosts(session, hosts)
    if data.name is not None:
        port.name = data.name
    if "device_id" in changes:
        port.device_id = data.device_id
    if port.host_id != old_host:
        _placed(session, port.id, port.vpc_id, [old_host, port.host_id])
    audit.note(target_type="port", target_id=port.id, tenant_id=port.tenant_id)
    return port


INSTANCE_PREFIX = "i-"


def delete_port(session: Session, principal: Principal, port_id: str) -> None:
    port = get_writable(session, Port, port_id, principal, "resource")
    if (port.device_id or "").startswith(INSTANCE_PREFIX) and principal is not SYSTEM:
        raise Conflict(
            f"port {port.id} is the NIC of instance {port.device_id}; delete the instance",
            code="in-use",
        )
    eip = session.scalars(select(Eip).where(Eip.port_id == port.id)).one_or_none()
    if eip is not None:
        eip_usage.unbound(session, eip)
    ipam.release(session, port.id)
    session.flush()
    session.delete(port)
    _placed(session, port.id, port.vpc_id, [port.host_id])
    _members_changed(session, port)
    audit.note(target_type="port", target_id=port.id, tenant_id=port.tenant_id)


def count_tenant_resources(session: Session, tenant_id: str) -> int:
    """Network resources a tenant still owns (a deleted tenant may own none)."""
    models = (Port, SecurityGroup, Eip, Vxnet, Vpc)
    return sum(
        session.scalar(select(func.count()).where(m.tenant_id == tenant_id)) or 0 for m in models
    )
