"""A VPC as one tree: its vxnets with their ports (and the instances on them), its EIPs."""

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunguan.identity.scope import Principal
from yunguan.network.models import Eip, Port, Vxnet
from yunguan.network.vpcs import get_vpc


def vpc_topology(session: Session, principal: Principal, vpc_id: str) -> dict[str, Any]:
    vpc = get_vpc(session, principal, vpc_id)
    ports: dict[str, list[Port]] = defaultdict(list)
    for port in session.scalars(select(Port).where(Port.vpc_id == vpc.id).order_by(Port.ip)):
        ports[port.vxnet_id].append(port)  # type: ignore[index]
    eips = list(session.scalars(select(Eip).where(Eip.tenant_id == vpc.tenant_id)))
    by_port = {e.port_id: e.address for e in eips if e.port_id}
    return {
        "id": vpc.id,
        "name": vpc.name,
        "cidr": vpc.cidr,
        "routing_mode": vpc.routing_mode,
        "snat_eip": next((e.address for e in eips if e.vpc_id == vpc.id), None),
        "vxnets": [
            {
                "id": x.id,
                "name": x.name,
                "cidr": x.cidr,
                "gateway_ip": x.gateway_ip,
                "vni": x.vni,
                "ports": [
                    {
                        "id": p.id,
                        "name": p.name,
                        "ip": p.ip,
                        "mac": p.mac,
                        "host_id": p.host_id,
                        "device_id": p.device_id,
                        "eip": by_port.get(p.id),
                    }
                    for p in ports[x.id]
                ],
            }
            for x in session.scalars(
                select(Vxnet).where(Vxnet.vpc_id == vpc.id).order_by(Vxnet.cidr)
            )
        ],
    }
