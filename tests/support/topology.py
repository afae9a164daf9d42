"""Build data centres through the API, as an operator would."""

from typing import Any

from tests.support.api import Api


def region(admin: Api, name: str = "cn-north") -> dict:
    return admin.ok(admin.post("/regions", {"name": name}), 201)


def zone(admin: Api, region_id: str, name: str, **fields: Any) -> dict:
    return admin.ok(admin.post("/zones", {"name": name, "region_id": region_id, **fields}), 201)


def cluster(admin: Api, zone_id: str, name: str, **fields: Any) -> dict:
    pod = admin.ok(admin.post("/pods", {"name": f"{name}-pod", "zone_id": zone_id}), 201)
    body = {"name": name, "pod_id": pod["id"], "hypervisor": "kvm", **fields}
    return admin.ok(admin.post("/clusters", body), 201)


def host(admin: Api, cluster_id: str, name: str, **fields: Any) -> dict:
    body = {"name": name, "cluster_id": cluster_id, "cpu_cores": 16, "memory_mb": 65536}
    body.update({"disk_gb": 1000, **fields})

    return admin.ok(admin.post("/hosts", body), 201)


def datacentre(admin: Api, hosts: int = 3, **cluster_fields: Any) -> dict[str, Any]:
    """One region, one public zone, one pod and cluster with ``hosts`` identical hosts."""
    reg = region(admin)
    zon = zone(admin, reg["id"], "zone-a")
    clu = cluster(admin, zon["id"], "kvm-1", **cluster_fields)
    made = [host(admin, clu["id"], f"h{n:02d}") for n in range(hosts)]
    return {"region": reg, "zone": zon, "cluster": clu, "hosts": made}


def vm(tenant_id: str, vcpus: int = 2, memory_mb: int = 4096, **fields: Any) -> dict:
    return {"tenant_id": tenant_id, "vcpus": vcpus, "memory_mb": memory_mb, **fields}
