"""What a review found once: each case here failed before its fix."""

import time

import pytest
from sqlalchemy import update

from tests.support import topology as topo
from tests.support.api import Api
from yunguan.identity.models import Tenant
from yunguan.inventory.models import Host, StoragePool


def test_inventory_renames_into_a_taken_name_are_409(admin: Api) -> None:
    dc = topo.datacentre(admin, hosts=2)
    other_region = topo.region(admin, "west")
    pool = {"name": "p1", "kind": "secondary", "zone_id": dc["zone"]["id"]}
    admin.ok(admin.post("/storage-pools", pool), 201)
    second = admin.ok(admin.post("/storage-pools", {**pool, "name": "p2"}), 201)
    cases = [
        (f"/regions/{other_region['id']}", "cn-north"),
        (f"/hosts/{dc['hosts'][1]['id']}", "h00"),
        (f"/storage-pools/{second['id']}", "p1"),
    ]
    for path, name in cases:
        answer = admin.patch(path, {"name": name})
        assert answer.status_code == 409, (path, answer.text)
        assert answer.json()["code"] == "duplicate"
    missing_pool = admin.patch(f"/clusters/{dc['cluster']['id']}", {"primary_pool_id": "sp-nope"})
    assert missing_pool.status_code == 404
    secondary = admin.patch(f"/clusters/{dc['cluster']['id']}", {"primary_pool_id": second["id"]})
    assert secondary.status_code == 400 and secondary.json()["code"] == "bad-pool"


def test_a_virtual_machine_never_takes_a_bare_metal_node(admin: Api, root_id: str) -> None:
    region = topo.region(admin)
    zone = topo.zone(admin, region["id"], "metal")
    cluster = topo.cluster(admin, zone["id"], "bm", hypervisor="baremetal")
    topo.host(admin, cluster["id"], "bm0")
    sneaky = admin.post("/placement/claims", topo.vm(root_id, hypervisor="baremetal"))
    assert sneaky.status_code == 422
    plain = admin.post("/placement/claims", topo.vm(root_id)).json()
    assert plain["detail"] == "no valid host: hypervisor removed 1"


def test_a_consumer_id_is_not_a_key_to_someone_elses_claim(admin: Api, root_id: str) -> None:
    topo.datacentre(admin, hosts=1)
    other = admin.tenant(root_id, "Other")
    admin.ok(admin.post("/placement/claims", topo.vm(root_id, vcpus=1, consumer_id="i-1")), 201)
    stolen = admin.post("/placement/claims", topo.vm(other["id"], vcpus=1, consumer_id="i-1"))
    assert stolen.status_code == 409 and stolen.json()["code"] == "consumer-mismatch"
    bigger = admin.post("/placement/claims", topo.vm(root_id, vcpus=2, consumer_id="i-1"))
    assert bigger.status_code == 409


def test_a_tenant_being_deleted_gets_no_new_placements(admin: Api, root_id: str, db) -> None:
    topo.datacentre(admin, hosts=1)
    tenant = admin.tenant(root_id, "Leaving")
    with db.session() as session:
        session.execute(update(Tenant).where(Tenant.id == tenant["id"]).values(state="deleting"))
    answer = admin.post("/placement/claims", topo.vm(tenant["id"]))
    assert answer.status_code == 409 and answer.json()["code"] == "tenant-not-active"
    group = {"name": "g", "tenant_id": tenant["id"], "policy": "affinity"}
    assert admin.post("/placement-groups", group).status_code == 409


@pytest.mark.usefixtures("workflows")
def test_a_tenant_with_placement_groups_and_policies_can_be_deleted(
    admin: Api, root_id: str
) -> None:
    from tests.support.waiting import wait_operation

    tenant = admin.tenant(root_id, "Grouped")
    body = {"name": "g", "tenant_id": tenant["id"], "policy": "anti-affinity"}
    group = admin.ok(admin.post("/placement-groups", body), 201)
    policy = {"name": "p", "strategy": "pack", "tenant_id": tenant["id"]}
    policy = admin.ok(admin.post("/placement-policies", policy), 201)
    accepted = admin.ok(admin.delete(f"/tenants/{tenant['id']}"), 202)
    assert wait_operation(admin, accepted["operation"]["id"])["state"] == "succeeded"
    assert admin.get(f"/placement-groups/{group['id']}").status_code == 404
    assert admin.get(f"/placement-policies/{policy['id']}").status_code == 404


def test_capacity_freed_by_another_process_is_seen_before_refusing(
    admin: Api, root_id: str, db
) -> None:
    dc = topo.datacentre(admin, hosts=2)
    full, other = (h["id"] for h in dc["hosts"])
    admin.ok(admin.patch(f"/hosts/{other}", {"memory_mb": 8192}))
    admin.ok(admin.post("/placement/claims", topo.vm(root_id, vcpus=16, memory_mb=1024)), 201)
    # another process releases everything on the full host, straight in the database
    with db.session() as session:
        session.execute(update(Host).where(Host.id == full).values(used_vcpus=0, claims=0))
    # this process keeps placing elsewhere: single-host writes must not count as a re-read
    for _ in range(2):
        admin.ok(admin.post("/placement/claims", topo.vm(root_id, vcpus=1, memory_mb=1024)), 201)
        time.sleep(0.3)
    big = admin.post("/placement/claims", topo.vm(root_id, vcpus=16, memory_mb=1024))
    assert big.status_code == 201 and big.json()["host_id"] == full


def test_a_pool_refusal_does_not_poison_the_picture(admin: Api, root_id: str, db) -> None:
    dc = topo.datacentre(admin, hosts=1)
    body = {"name": "p", "kind": "primary", "zone_id": dc["zone"]["id"], "total_gb": 100}
    pool = admin.ok(admin.post("/storage-pools", body), 201)
    admin.ok(admin.patch(f"/clusters/{dc['cluster']['id']}", {"primary_pool_id": pool["id"]}))
    admin.ok(admin.post("/placement/dry-run", topo.vm(root_id, disk_gb=10)))  # load the picture
    with db.session() as session:  # another process fills the pool
        session.execute(update(StoragePool).values(allocated_gb=95))
    refused = admin.post("/placement/claims", topo.vm(root_id, disk_gb=50))
    assert refused.status_code == 409 and refused.json()["code"] == "no-valid-host"
    with db.session() as session:  # and empties it again
        session.execute(update(StoragePool).values(allocated_gb=0))
    time.sleep(0.6)
    admin.ok(admin.post("/placement/claims", topo.vm(root_id, disk_gb=10)), 201)


def test_refresh_schedules_stay_evenly_spaced() -> None:
    from pydantic import ValidationError

    from yunguan.core.config import Settings

    for minutes in (7, 90, 300):
        with pytest.raises(ValidationError):
            Settings(storage_refresh_minutes=minutes)
    assert Settings(storage_refresh_minutes=360).storage_refresh_cron == "0 */6 * * *"
