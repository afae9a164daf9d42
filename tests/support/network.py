"""Networks for tests, built through the API as an operator and a tenant would."""

from typing import Any

from tests.support import topology
from tests.support.api import Api


def sdn_zone(admin: Api, hosts: int = 4, gateways: int = 1, vnis: tuple[int, int] = (100, 4000)):
    """A zone with ``hosts`` hosts (the first ``gateways`` carry the gateway trait, each host
    an underlay address 10.0.0.n) and a VXLAN pool."""
    reg = topology.region(admin)
    zone = topology.zone(admin, reg["id"], "zone-a")
    cluster = topology.cluster(admin, zone["id"], "kvm-1")
    made = [
        topology.host(
            admin,
            cluster["id"],
            f"h{n:02d}",
            address=f"10.0.0.{n + 1}",
            traits=["sdn-gateway"] if n < gateways else [],
        )
        for n in range(hosts)
    ]
    body = {"name": "vni", "zone_id": zone["id"], "network_type": "vxlan"}
    admin.ok(admin.post("/vlan-pools", {**body, "first_id": vnis[0], "last_id": vnis[1]}), 201)
    return {"zone": zone, "hosts": made, "cluster": cluster}


def vpc(api: Api, zone_id: str, cidr: str = "192.168.0.0/16", **fields: Any) -> dict:
    body = {"name": fields.pop("name", f"vpc-{cidr}"), "zone_id": zone_id, "cidr": cidr}
    return api.ok(api.post("/vpcs", {**body, **fields}), 201)


def vxnet(api: Api, vpc_id: str, cidr: str, **fields: Any) -> dict:
    body = {"name": fields.pop("name", cidr), "vpc_id": vpc_id, "cidr": cidr, **fields}
    return api.ok(api.post("/vxnets", body), 201)


def port(api: Api, vxnet_id: str, host_id: str | None = None, **fields: Any) -> dict:
    return api.ok(api.post("/ports", {"vxnet_id": vxnet_id, "host_id": host_id, **fields}), 201)


def public_pool(admin: Api, zone_id: str, cidr: str = "203.0.113.0/28", **fields: Any) -> dict:
    vlan = {"name": f"public-{cidr}", "zone_id": zone_id, "first_id": 10, "last_id": 10}
    vlan_pool = admin.ok(admin.post("/vlan-pools", {**vlan, "cidr": cidr}), 201)
    body = {"name": f"eip-{cidr}", "vlan_pool_id": vlan_pool["id"], "purpose": "public"}
    return admin.ok(admin.post("/ip-pools", {**body, **fields}), 201)


def document(admin: Api, host_id: str, **params: Any) -> dict:
    return admin.ok(admin.get(f"/sdn/hosts/{host_id}/document", params=params))
