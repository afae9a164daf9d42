"""Compute for tests: a zone served by a simulator provider, a flavor and a public image,
built through the API as an operator would."""

import time
from typing import Any

from tests.support import guest_image, topology
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


def libvirt_zone(admin: Api, config: Any, guest: Any) -> dict[str, Any]:
    """A zone whose one cluster is the libvirt provider of ``config`` (its one host), a VNI
    pool, a tiny flavor and the test guest as a public image (``guest_image.Guest``)."""
    zone = topology.zone(admin, topology.region(admin)["id"], "kvm-zone")
    cluster = topology.cluster(admin, zone["id"], "kvm-1")
    made = provider(admin, cluster["id"], "libvirt", config=config.model_dump(mode="json"))
    hosts = admin.ok(admin.get("/hosts", params={"cluster_id": cluster["id"]}))["items"]
    vnis = {"name": "vni", "zone_id": zone["id"], "network_type": "vxlan"}
    admin.ok(admin.post("/vlan-pools", {**vnis, "first_id": 100, "last_id": 200}), 201)
    flavor = admin.ok(
        admin.post("/flavors", {"name": "t1", "vcpus": 1, "memory_mb": 128, "disk_gb": 1}), 201
    )
    boot = {"kernel": str(guest.kernel), "initrd": str(guest.initrd), "cmdline": guest.cmdline}
    image = admin.ok(
        admin.post(
            "/images",
            {
                "name": "busybox",
                "visibility": "public",
                "locations": {zone["id"]: ""},
                "properties": boot,
            },
        ),
        201,
    )
    return {"zone": zone, "cluster": cluster, "provider": made, "hosts": hosts,
            "flavor": flavor, "image": image}  # fmt: skip


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


def wait_console(api: Api, instance_id: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while guest_image.MARKER not in (
        out := api.ok(api.get(f"/instances/{instance_id}/console"))["output"]
    ):
        if time.monotonic() > deadline:
            raise AssertionError(f"the guest did not boot; console ends:\n{out[-2000:]}")
        time.sleep(0.5)
    return out
