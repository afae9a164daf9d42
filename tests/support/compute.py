"""Compute for tests: a zone served by a simulator provider, a flavor and a public image,
built through the API as an operator would."""

from typing import Any

from tests.support import topology
from tests.support.api import Api
from tests.support.waiting import wait_operation


def provider(admin: Api, cluster_id: str, kind: str = "simulator", **fields: Any) -> dict:
    """Register a provider and wait for its first sync."""
    body = {"name": f"{kind}-{cluster_id[-6:]}", "kind": kind, "cluster_id": cluster_id, **fields}
    accepted = admin.ok(admin.post("/providers", body), 202)
    operation = wait_operation(admin, accepted["operation"]["id"])
    assert operation["state"] == "succeeded", operation
    return admin.ok(admin.get(f"/providers/{accepted['resource']['id']}"))


def simulated_zone(admin: Api, hosts: int = 4, **config: Any) -> dict[str, Any]:
    """A region and zone whose one cluster is a simulator's ``hosts`` hosts, a 2-vCPU flavor
    and a public image available in the zone."""
    reg = topology.region(admin)
    zone = topology.zone(admin, reg["id"], "zone-a")
    cluster = topology.cluster(admin, zone["id"], "sim-1")
    made = provider(admin, cluster["id"], config={"hosts": hosts, **config})
    vnis = {"name": "vni", "zone_id": zone["id"], "network_type": "vxlan"}
    admin.ok(admin.post("/vlan-pools", {**vnis, "first_id": 100, "last_id": 4000}), 201)
    flavor = admin.ok(
        admin.post("/flavors", {"name": "s2.small", "vcpus": 2, "memory_mb": 2048, "disk_gb": 20}),
        201,
    )
    image = admin.ok(
        admin.post(
            "/images",
            {"name": "debian-12", "visibility": "public", "locations": {zone["id"]: ""}},
        ),
        201,
    )
    return {"zone": zone, "cluster": cluster, "provider": made, "flavor": flavor, "image": image}


def create(api: Api, place: dict[str, Any], name: str = "web", **fields: Any) -> dict:
    body = {"name": name, "flavor_id": place["flavor"]["id"], "image_id": place["image"]["id"]}
    return api.ok(api.post("/instances", {**body, **fields}), 202)


def created(api: Api, place: dict[str, Any], name: str = "web", **fields: Any) -> dict:
    """Create one instance and wait for its provisioning to end."""
    accepted = create(api, place, name, **fields)
    wait_operation(api, accepted["operation"]["id"])
    return api.ok(api.get(f"/instances/{accepted['resource']['id']}"))


def act(api: Api, instance_id: str, action: str) -> dict:
    accepted = api.ok(api.post(f"/instances/{instance_id}/actions", {"action": action}), 202)
    return wait_operation(api, accepted["operation"]["id"])
