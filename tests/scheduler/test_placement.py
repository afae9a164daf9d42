"""Placement through the API: filters, strategies and policies, groups, bare metal, planning."""

from typing import Any

from tests.support import topology as topo
from tests.support.api import Api


def _claim(admin: Api, body: dict[str, Any]) -> dict:
    return admin.ok(admin.post("/placement/claims", body), 201)


def _filters(answer: dict) -> dict[str, tuple[int, int]]:
    return {f["filter"]: (f["before"], f["after"]) for f in answer["filters"]}


def test_no_valid_host_says_which_filter_removed_how_many(admin: Api, root_id: str) -> None:
    dc = topo.datacentre(admin, hosts=4)
    admin.ok(admin.patch(f"/hosts/{dc['hosts'][0]['id']}", {"state": "maintenance"}))
    admin.ok(admin.patch(f"/hosts/{dc['hosts'][1]['id']}", {"traits": ["ssd"]}))
    admin.ok(admin.patch(f"/hosts/{dc['hosts'][2]['id']}", {"traits": ["ssd"], "memory_mb": 2048}))

    answer = admin.ok(admin.post("/placement/dry-run", topo.vm(root_id, traits=["ssd"])))
    assert answer["fits"] and answer["host_id"] == dc["hosts"][1]["id"]
    assert _filters(answer) == {
        "state": (4, 3),
        "zone-visibility": (3, 3),
        "hypervisor": (3, 3),
        "traits": (3, 2),
        "capacity": (2, 1),
    }
    refused = admin.post("/placement/claims", topo.vm(root_id, memory_mb=70000))
    problem = refused.json()
    assert refused.status_code == 409 and problem["code"] == "no-valid-host"
    assert problem["detail"] == "no valid host: state removed 1, capacity removed 3"
    assert _filters(problem)["capacity"] == (3, 0)
    # a dry run claims nothing
    assert admin.ok(admin.get("/placement/claims"))["items"] == []


def test_pack_fills_one_host_spread_balances_and_policy_changes_apply_at_once(
    admin: Api, root_id: str
) -> None:
    dc = topo.datacentre(admin, hosts=3)
    zone_id = dc["zone"]["id"]
    spread = [_claim(admin, topo.vm(root_id))["host_id"] for _ in range(3)]
    assert len(set(spread)) == 3  # the default strategy is spread

    policy = admin.ok(
        admin.post(
            "/placement-policies", {"name": "dense", "strategy": "pack", "zone_id": zone_id}
        ),
        201,
    )
    packed = [_claim(admin, topo.vm(root_id, zone_id=zone_id))["host_id"] for _ in range(4)]
    assert len(set(packed)) == 1
    answer = admin.ok(admin.post("/placement/dry-run", topo.vm(root_id, zone_id=zone_id)))
    assert (answer["strategy"], answer["policy_id"]) == ("pack", policy["id"])

    admin.ok(admin.patch(f"/placement-policies/{policy['id']}", {"strategy": "spread"}))
    after = [_claim(admin, topo.vm(root_id, zone_id=zone_id))["host_id"] for _ in range(2)]
    assert packed[0] not in after and len(set(after)) == 2

    # a tenant's policy wins over the zone's
    tenant = admin.tenant(root_id, "Dense")
    admin.ok(
        admin.post(
            "/placement-policies", {"name": "t", "strategy": "pack", "tenant_id": tenant["id"]}
        ),
        201,
    )
    answer = admin.ok(admin.post("/placement/dry-run", topo.vm(tenant["id"], zone_id=zone_id)))
    assert answer["strategy"] == "pack" and answer["host_id"] == packed[0]


def test_private_zones_only_serve_their_tenants(admin: Api, root_id: str) -> None:
    region = topo.region(admin)
    a, b = admin.tenant(root_id, "A"), admin.tenant(root_id, "B")
    team = admin.tenant(a["id"], "team")
    zone = topo.zone(admin, region["id"], "private", visibility="private", tenant_ids=[a["id"]])
    cluster = topo.cluster(admin, zone["id"], "c")
    host = topo.host(admin, cluster["id"], "h")

    assert _claim(admin, topo.vm(team["id"]))["host_id"] == host["id"]
    refused = admin.post("/placement/claims", topo.vm(b["id"])).json()
    assert refused["detail"] == "no valid host: zone-visibility removed 1"


def test_anti_affinity_and_affinity_groups(admin: Api, root_id: str) -> None:
    topo.datacentre(admin, hosts=3)
    tenant = admin.tenant(root_id, "Web")
    apart = admin.ok(
        admin.post(
            "/placement-groups",
            {"name": "web", "tenant_id": tenant["id"], "policy": "anti-affinity"},
        ),
        201,
    )
    together = admin.ok(
        admin.post(
            "/placement-groups", {"name": "db", "tenant_id": tenant["id"], "policy": "affinity"}
        ),
        201,
    )
    hosts = [
        _claim(admin, topo.vm(tenant["id"], group_id=apart["id"]))["host_id"] for _ in range(3)
    ]
    assert len(set(hosts)) == 3
    refused = admin.post("/placement/claims", topo.vm(tenant["id"], group_id=apart["id"])).json()
    assert refused["detail"] == "no valid host: anti-affinity removed 3"
    assert sorted(admin.ok(admin.get(f"/placement-groups/{apart['id']}"))["host_ids"]) == sorted(
        hosts
    )

    first = _claim(admin, topo.vm(tenant["id"], group_id=together["id"]))
    second = _claim(admin, topo.vm(tenant["id"], group_id=together["id"]))
    assert first["host_id"] == second["host_id"]

    other = admin.tenant(root_id, "Other")
    wrong = admin.post("/placement/claims", topo.vm(other["id"], group_id=apart["id"]))
    assert wrong.status_code == 409 and wrong.json()["code"] == "group-tenant"
    assert admin.delete(f"/placement-groups/{apart['id']}").status_code == 409


def test_bare_metal_needs_an_exact_free_node(admin: Api, root_id: str) -> None:
    region = topo.region(admin)
    zone = topo.zone(admin, region["id"], "metal")
    cluster = topo.cluster(admin, zone["id"], "bm", hypervisor="baremetal")
    profile = {"cpu_sockets": 2, "cpu_cores": 32, "cpu_mhz": 2600, "memory_mb": 262144}
    nodes = [
        topo.host(
            admin,
            cluster["id"],
            f"bm{n}",
            **profile,
            disk_count=2,
            disk_gb=2 * 960,
            bmc_address=f"10.0.0.{n}",
        )
        for n in range(2)
    ]
    topo.host(
        admin,
        cluster["id"],
        "bm-big",
        **{**profile, "memory_mb": 524288},
        disk_count=2,
        disk_gb=1920,
    )
    vm_zone = topo.cluster(admin, zone["id"], "kvm")
    topo.host(admin, vm_zone["id"], "kvm-1")
    spec = {
        "cpu_count": 2,
        "cpu_mhz": 2600,
        "disk_count": 2,
        "disk_size_gb": 960,
        "memory_mb": 262144,
    }
    request = {"tenant_id": root_id, "baremetal": spec}

    first = _claim(admin, request)
    second = _claim(admin, request)
    assert {first["host_id"], second["host_id"]} == {n["id"] for n in nodes}
    assert first["baremetal"] and first["vcpus"] == 32
    node = admin.ok(admin.get(f"/hosts/{first['host_id']}"))
    assert node["used_vcpus"] == node["vcpu_limit"] and node["claims"] == 1
    # every matching node is taken: the bigger one does not match, the kvm host is no metal
    refused = admin.post("/placement/claims", request).json()
    assert refused["code"] == "no-valid-host"
    assert refused["detail"].startswith("bare-metal resources insufficient")
    assert _filters(refused)["hypervisor"] == (4, 3) and _filters(refused)["baremetal"] == (3, 0)
    # a profile nobody has
    odd = admin.post(
        "/placement/dry-run", {"tenant_id": root_id, "baremetal": {**spec, "cpu_mhz": 3000}}
    )
    assert admin.ok(odd)["reason"].startswith("bare-metal resources insufficient")
    # releasing gives the whole node back
    admin.ok(admin.delete(f"/placement/claims/{first['id']}"), 204)
    assert admin.ok(admin.get(f"/hosts/{first['host_id']}"))["used_vcpus"] == 0
    assert _claim(admin, request)["host_id"] == first["host_id"]
    # virtual machines never land on bare metal
    assert admin.ok(admin.post("/placement/dry-run", topo.vm(root_id)))["host_name"] == "kvm-1"
    mixed = admin.post("/placement/claims", {**request, "vcpus": 2})
    assert mixed.status_code == 422


def test_gpus_and_hypervisor_types(admin: Api, root_id: str) -> None:
    dc = topo.datacentre(admin, hosts=1)
    gpu_host = topo.host(admin, dc["cluster"]["id"], "gpu", gpus=2)
    plain = admin.ok(admin.post("/placement/dry-run", topo.vm(root_id)))
    assert plain["host_id"] == dc["hosts"][0]["id"]  # GPU hosts are kept for GPU requests
    assert _claim(admin, topo.vm(root_id, gpus=2))["host_id"] == gpu_host["id"]
    assert admin.post("/placement/claims", topo.vm(root_id, gpus=1)).status_code == 409
    vmware = admin.ok(admin.post("/placement/dry-run", topo.vm(root_id, hypervisor="vmware")))
    assert vmware["reason"] == "no valid host: hypervisor removed 2"


def test_claims_are_idempotent_per_consumer_and_release_is_idempotent(
    admin: Api, root_id: str
) -> None:
    dc = topo.datacentre(admin, hosts=1)
    first = _claim(admin, topo.vm(root_id, consumer_id="i-abc"))
    again = _claim(admin, topo.vm(root_id, consumer_id="i-abc"))
    assert again["id"] == first["id"]
    assert admin.ok(admin.get(f"/hosts/{dc['hosts'][0]['id']}"))["used_vcpus"] == 2
    listed = admin.ok(admin.get("/placement/claims", params={"consumer_id": "i-abc"}))["items"]
    assert [c["id"] for c in listed] == [first["id"]]
    admin.ok(admin.delete(f"/placement/claims/{first['id']}"), 204)
    admin.ok(admin.delete(f"/placement/claims/{first['id']}"), 204)  # already released
    assert admin.ok(admin.get(f"/hosts/{dc['hosts'][0]['id']}"))["used_vcpus"] == 0
    # a host holding placements cannot be deleted
    _claim(admin, topo.vm(root_id))
    assert admin.delete(f"/hosts/{dc['hosts'][0]['id']}").status_code == 409


def test_evacuation_plan_and_rebalancing_report(admin: Api, root_id: str) -> None:
    dc = topo.datacentre(admin, hosts=3)
    busy, second, third = (h["id"] for h in dc["hosts"])
    for host_id in (second, third):  # fill the others to keep them out of the first claims
        admin.ok(admin.patch(f"/hosts/{host_id}", {"state": "disabled"}))
    claims = [_claim(admin, topo.vm(root_id, vcpus=4, memory_mb=16384)) for _ in range(3)]
    assert {c["host_id"] for c in claims} == {busy}
    for host_id in (second, third):
        admin.ok(admin.patch(f"/hosts/{host_id}", {"state": "enabled"}))

    plan = admin.ok(admin.get(f"/hosts/{busy}/evacuation-plan"))
    assert plan["complete"] and len(plan["moves"]) == 3
    assert {m["to_host_id"] for m in plan["moves"]} <= {second, third}
    assert all(m["from_host_id"] == busy for m in plan["moves"])

    report = admin.ok(admin.get("/placement/rebalance-report", params={"threshold": 0.5}))
    assert report["overloaded"] == [{"host_id": busy, "utilisation": 0.75}]
    assert len(report["moves"]) == 1 and report["moves"][0]["to_host_id"] in (second, third)
    # planning moved nothing
    assert admin.ok(admin.get(f"/hosts/{busy}"))["used_memory_mb"] == 3 * 16384

    # a host in maintenance takes nothing new
    admin.ok(admin.patch(f"/hosts/{second}", {"state": "maintenance"}))
    admin.ok(admin.patch(f"/hosts/{third}", {"state": "maintenance"}))
    stuck = admin.ok(admin.get(f"/hosts/{busy}/evacuation-plan"))
    assert not stuck["complete"]
    assert stuck["moves"][0]["reason"] == "no valid host: state removed 2, excluded removed 1"
