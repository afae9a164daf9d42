"""After any interleaving of claims and releases no host or pool is over capacity, and every
host's books equal the claims on it."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import placement, topology
from tests.support.api import Api

CLAIM = st.tuples(
    st.just("claim"),
    st.integers(1, 12),  # vcpus
    st.sampled_from([512, 2048, 8192, 30000]),  # memory
    st.integers(0, 400),  # disk
    st.sampled_from([None, "group"]),
)
RELEASE = st.tuples(st.just("release"), st.integers(0, 63))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(st.one_of(CLAIM, RELEASE), min_size=1, max_size=40))
def test_no_interleaving_overfills_a_host(admin: Api, root_id: str, db, operations) -> None:
    if not admin.ok(admin.get("/hosts"))["items"]:
        dc = topology.datacentre(admin, hosts=3, cpu_overcommit=2)
        pool = {"name": "p", "kind": "primary", "zone_id": dc["zone"]["id"], "total_gb": 900}
        pool = admin.ok(admin.post("/storage-pools", pool), 201)
        topology.host(
            admin,
            topology.cluster(admin, dc["zone"]["id"], "pooled", primary_pool_id=pool["id"])["id"],
            "p1",
        )
        admin.ok(
            admin.post(
                "/placement-groups", {"name": "g", "tenant_id": root_id, "policy": "anti-affinity"}
            ),
            201,
        )
    group_id = admin.ok(admin.get("/placement-groups"))["items"][0]["id"]
    principal = placement.operator(root_id)
    held: list[str] = []
    for operation in operations:
        if operation[0] == "claim":
            _, vcpus, memory, disk, group = operation
            request = {"tenant_id": root_id, "vcpus": vcpus, "memory_mb": memory, "disk_gb": disk}
            claim_id = placement.claim(db, principal, **request, group_id=group and group_id)
            if claim_id:
                held.append(claim_id)
        elif held:
            placement.release(db, held.pop(operation[1] % len(held)))
        assert placement.overfull(db) == []
        assert placement.anti_affinity_broken(db, group_id) == []
    for claim_id in held:
        placement.release(db, claim_id)
    assert placement.overfull(db) == []
