"""The topology through the API: regions → zones → pods → clusters → hosts, pools, capacity."""

from pathlib import Path

from tests.support import topology as topo
from tests.support.api import Api


def test_build_list_change_and_tear_down_a_data_centre(admin: Api) -> None:
    dc = topo.datacentre(admin, hosts=2)
    zone_id, cluster_id = dc["zone"]["id"], dc["cluster"]["id"]
    assert dc["zone"]["visibility"] == "public"
    host = dc["hosts"][0]
    assert host["zone_id"] == zone_id and host["region_id"] == dc["region"]["id"]
    assert (host["vcpu_limit"], host["memory_limit_mb"], host["used_vcpus"]) == (16, 65536, 0)

    listed = admin.ok(admin.get("/hosts", params={"cluster_id": cluster_id, "limit": 1}))
    assert len(listed["items"]) == 1 and listed["next_cursor"]
    assert admin.ok(admin.get("/hosts", params={"zone_id": "zone-none"}))["items"] == []

    # overcommit changes what every host of the cluster may hand out
    admin.ok(
        admin.patch(f"/clusters/{cluster_id}", {"cpu_overcommit": "4", "memory_overcommit": 1.5})
    )
    host = admin.ok(admin.get(f"/hosts/{host['id']}"))
    assert (host["vcpu_limit"], host["memory_limit_mb"]) == (64, 98304)

    renamed = admin.ok(
        admin.patch(f"/hosts/{host['id']}", {"name": "compute-1", "traits": ["ssd"]})
    )
    assert renamed["name"] == "compute-1" and renamed["traits"] == ["ssd"]

    # a parent with children cannot go; bottom-up it can
    answer = admin.delete(f"/zones/{zone_id}")
    assert answer.status_code == 409 and answer.json()["code"] == "in-use"
    for h in dc["hosts"]:
        admin.ok(admin.delete(f"/hosts/{h['id']}"), 204)
    admin.ok(admin.delete(f"/clusters/{cluster_id}"), 204)
    admin.ok(admin.delete(f"/pods/{dc['cluster']['pod_id']}"), 204)
    admin.ok(admin.delete(f"/zones/{zone_id}"), 204)
    admin.ok(admin.delete(f"/regions/{dc['region']['id']}"), 204)
    assert admin.get(f"/regions/{dc['region']['id']}").status_code == 404


def test_bad_input_is_a_clear_4xx(admin: Api) -> None:
    dc = topo.datacentre(admin, hosts=1)
    pod_id = dc["cluster"]["pod_id"]
    cases = [
        ("/clusters", {"name": "x", "pod_id": pod_id, "hypervisor": "hyperv"}, 422),
        (
            "/clusters",
            {"name": "x", "pod_id": pod_id, "hypervisor": "kvm", "cpu_overcommit": 0},
            422,
        ),
        ("/clusters", {"name": "x", "pod_id": "pod-missing", "hypervisor": "kvm"}, 404),
        (
            "/hosts",
            {"name": "h", "cluster_id": dc["cluster"]["id"], "cpu_cores": 0, "memory_mb": 1},
            422,
        ),
        (
            "/hosts",
            {"name": "h00", "cluster_id": dc["cluster"]["id"], "cpu_cores": 1, "memory_mb": 1},
            409,
        ),
        ("/zones", {"name": "zone-a", "region_id": dc["region"]["id"]}, 409),
        ("/zones", {"name": "z", "region_id": dc["region"]["id"], "visibility": "secret"}, 422),
    ]
    for path, body, status in cases:
        answer = admin.post(path, body)
        assert answer.status_code == status, (path, body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    answer = admin.patch(f"/hosts/{dc['hosts'][0]['id']}", {"name": None})
    assert answer.status_code == 400 and answer.json()["code"] == "invalid-field"
    assert admin.ok(admin.get(f"/hosts/{dc['hosts'][0]['id']}"))["name"] == "h00"


def test_tenants_see_public_zones_and_private_ones_granted_to_them(
    admin: Api, root_id: str
) -> None:
    region = topo.region(admin)
    a, b = admin.tenant(root_id, "A"), admin.tenant(root_id, "B")
    team = admin.tenant(a["id"], "team")
    public = topo.zone(admin, region["id"], "public-1")
    private = topo.zone(
        admin, region["id"], "private-a", visibility="private", tenant_ids=[a["id"]]
    )
    assert private["tenant_ids"] == [a["id"]]

    member_of_team = admin.as_user(team["id"], "team-member")
    member_of_b = admin.as_user(b["id"], "b-member")
    seen = {z["id"] for z in member_of_team.ok(member_of_team.get("/zones"))["items"]}
    assert seen == {public["id"], private["id"]}
    assert {z["id"] for z in member_of_b.ok(member_of_b.get("/zones"))["items"]} == {public["id"]}
    answer = member_of_b.get(f"/zones/{private['id']}")
    assert answer.status_code == 404
    # infrastructure beyond zones is for platform administrators
    assert member_of_team.get("/hosts").status_code == 403
    assert member_of_team.post("/regions", {"name": "mine"}).status_code == 403
    assert member_of_team.get(f"/zones/{public['id']}/capacity").status_code == 403
    # granting the zone to B's subtree changes what B sees
    admin.ok(admin.patch(f"/zones/{private['id']}", {"tenant_ids": [a["id"], b["id"]]}))
    assert member_of_b.get(f"/zones/{private['id']}").status_code == 200


def test_capacity_rolls_up_from_hosts_to_region(admin: Api, root_id: str) -> None:
    region = topo.region(admin)
    zones = [topo.zone(admin, region["id"], f"z{n}") for n in range(2)]
    clusters = [
        topo.cluster(admin, z["id"], f"c{n}", cpu_overcommit=2) for n, z in enumerate(zones)
    ]
    hosts = [
        topo.host(admin, c["id"], f"h{n}{m}") for n, c in enumerate(clusters) for m in range(2)
    ]
    admin.ok(
        admin.post(
            "/placement/claims", topo.vm(root_id, vcpus=3, memory_mb=1000, zone_id=zones[0]["id"])
        ),
        201,
    )
    admin.ok(admin.patch(f"/hosts/{hosts[3]['id']}", {"state": "maintenance"}))

    view = admin.ok(admin.get(f"/regions/{region['id']}/capacity"))
    assert view["hosts"] == 4 and view["hosts_enabled"] == 3
    assert view["vcpus"] == {"total": 64, "limit": 128, "allocated": 3, "free": 128 - 3 - 32}
    assert view["memory_mb"]["allocated"] == 1000
    by_zone = {c["name"]: c for c in view["children"]}
    assert by_zone["z0"]["vcpus"]["allocated"] == 3 and by_zone["z1"]["vcpus"]["free"] == 32
    cluster_view = admin.ok(admin.get(f"/clusters/{clusters[0]['id']}/capacity"))
    assert sorted(c["vcpus"]["allocated"] for c in cluster_view["children"]) == [0, 3]
    host_view = admin.ok(admin.get(f"/hosts/{hosts[3]['id']}/capacity"))
    assert host_view["hosts_enabled"] == 0 and host_view["vcpus"]["free"] == 0


def test_a_primary_pool_takes_the_disks_of_its_cluster(
    admin: Api, root_id: str, tmp_path: Path
) -> None:
    dc = topo.datacentre(admin, hosts=2)
    pool = admin.ok(
        admin.post(
            "/storage-pools",
            {
                "name": "ceph-1",
                "kind": "primary",
                "zone_id": dc["zone"]["id"],
                "cluster_id": dc["cluster"]["id"],
                "total_gb": 100,
                "overprovisioning": 2,
            },
        ),
        201,
    )
    assert pool["limit_gb"] == 200
    admin.ok(admin.patch(f"/clusters/{dc['cluster']['id']}", {"primary_pool_id": pool["id"]}))
    claim = admin.ok(admin.post("/placement/claims", topo.vm(root_id, disk_gb=150)), 201)
    assert claim["pool_id"] == pool["id"]
    assert admin.ok(admin.get(f"/hosts/{claim['host_id']}"))["used_disk_gb"] == 0
    assert admin.ok(admin.get(f"/storage-pools/{pool['id']}"))["allocated_gb"] == 150
    full = admin.post("/placement/claims", topo.vm(root_id, disk_gb=60))
    assert full.status_code == 409 and full.json()["code"] == "no-valid-host"
    admin.ok(admin.delete(f"/placement/claims/{claim['id']}"), 204)
    assert admin.ok(admin.get(f"/storage-pools/{pool['id']}"))["allocated_gb"] == 0

    # a pool on a directory is measured on refresh
    admin.ok(admin.patch(f"/storage-pools/{pool['id']}", {"source": tmp_path.as_uri()}))
    refreshed = admin.ok(admin.post(f"/storage-pools/{pool['id']}/actions", {"action": "refresh"}))
    assert refreshed["total_gb"] > 0 and refreshed["refreshed_at"]
    assert refreshed["limit_gb"] == refreshed["total_gb"] * 2
    # a pool in use by a cluster cannot be deleted
    assert admin.delete(f"/storage-pools/{pool['id']}").status_code == 409


def test_pool_refresh_recounts_allocations_and_runs_on_a_schedule(
    admin: Api, root_id: str, db
) -> None:
    from sqlalchemy import update

    from yunguan.core.config import Settings
    from yunguan.inventory.models import StoragePool
    from yunguan.scheduler import service as scheduler

    dc = topo.datacentre(admin, hosts=1)
    body = {"name": "p", "kind": "primary", "zone_id": dc["zone"]["id"], "total_gb": 500}
    pool = admin.ok(admin.post("/storage-pools", body), 201)
    admin.ok(admin.patch(f"/clusters/{dc['cluster']['id']}", {"primary_pool_id": pool["id"]}))
    admin.ok(admin.post("/placement/claims", topo.vm(root_id, disk_gb=40)), 201)
    with db.session() as session:  # drift, as if a crash had lost an update
        session.execute(update(StoragePool).values(allocated_gb=7))

    assert scheduler.refresh_pools(db) == 1
    assert admin.ok(admin.get(f"/storage-pools/{pool['id']}"))["allocated_gb"] == 40
    assert Settings(storage_refresh_minutes=10).storage_refresh_cron == "*/10 * * * *"
    assert Settings(storage_refresh_minutes=120).storage_refresh_cron == "0 */2 * * *"


def test_a_tenant_holding_placements_cannot_be_deleted(admin: Api, root_id: str) -> None:
    topo.datacentre(admin, hosts=1)
    tenant = admin.tenant(root_id, "Holder")
    claim = admin.ok(admin.post("/placement/claims", topo.vm(tenant["id"])), 201)
    answer = admin.delete(f"/tenants/{tenant['id']}")
    assert answer.status_code == 409 and answer.json()["code"] == "tenant-not-empty"
    assert admin.ok(admin.get(f"/tenants/{tenant['id']}"))["state"] == "active"
    admin.ok(admin.delete(f"/placement/claims/{claim['id']}"), 204)
