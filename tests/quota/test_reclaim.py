"""Taking borrowed capacity back: the issue's reclaim and weighted-sharing examples."""

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.support.api import Api
from tests.support.quotas import node, reserve, set_limit
from yunguan.core import clock
from yunguan.core.ids import new_id
from yunguan.quota import reclaim, service
from yunguan.quota.models import QuotaReservation


def _ask(db, tenant_id: str, vcpus: int, **more: int):
    """Reserve and commit, reclaiming if need be: (reservation state, victims) or None."""
    try:
        with db.session() as session:
            wanted = {"vcpus": vcpus, **more}
            held, notices = service.reserve_or_reclaim(session, tenant_id, wanted)

            state = held.state
            if state == "reserved":
                service.commit(session, held.id)
            return state, [n.victim_id for n in notices]
    except service.QuotaExceeded:
        return None


def _after_grace(db) -> int:
    start = clock.now()
    clock.set_clock(lambda: start + reclaim.GRACE + timedelta(seconds=1))
    try:
        with db.session() as session:
            return service.run_due(session)
    finally:
        clock.set_clock(None)


def test_a_tenant_within_its_guarantee_takes_back_what_was_lent(
    admin: Api, root_id: str, db
) -> None:
    parent = admin.tenant(root_id, "Parent")
    t1, t2 = admin.tenant(parent["id"], "T1"), admin.tenant(parent["id"], "T2")
    set_limit(admin, parent["id"], guarantee=16, borrow_limit=0)
    set_limit(admin, t1["id"], guarantee=8)
    set_limit(admin, t2["id"], guarantee=8)
    first, second, third = (_ask(db, t1["id"], 4) for _ in range(3))
    assert [first, second, third] == [("reserved", [])] * 3  # T1 borrows 4 of T2's
    with db.session(write=False) as session:
        newest = max(session.scalars(select(QuotaReservation)), key=lambda r: r.created_at)
    state, victims = _ask(db, t2["id"], 6)
    assert state == "pending" and victims == [newest.id]  # T1's newest gets the notice
    notices = admin.ok(admin.get("/quotas/reclaims", params={"tenant_id": t1["id"]}))["items"]
    assert [(n["victim_id"], n["state"]) for n in notices] == [(newest.id, "notified")]
    assert (node(admin, t2["id"])["pending"], node(admin, t2["id"])["lent"]) == (6, 4)

    assert _after_grace(db) == 1
    assert node(admin, t1["id"])["subtree_usage"] == 8
    assert node(admin, t2["id"])["subtree_usage"] == 6
    # usage within a guarantee is never a victim: T1 asking more now simply waits
    assert _ask(db, t1["id"], 4) is None


def test_borrowers_share_a_pool_by_weight_and_never_evict_back_and_forth(
    admin: Api, root_id: str, db
) -> None:
    for weights, final in (((1, 1), (8, 8)), ((3, 1), (12, 4))):
        parent = admin.tenant(root_id, f"Pool {weights}")
        t1, t2 = admin.tenant(parent["id"], "T1"), admin.tenant(parent["id"], "T2")
        set_limit(admin, parent["id"], guarantee=16, borrow_limit=0)
        set_limit(admin, t1["id"], guarantee=0, weight=weights[0])
        set_limit(admin, t2["id"], guarantee=0, weight=weights[1])
        for _ in range(8):
            assert _ask(db, t1["id"], 2) == ("reserved", [])
        preempted = []
        while (answer := _ask(db, t2["id"], 2)) is not None:
            state, victims = answer
            assert state == "pending" and len(victims) == 1
            assert _after_grace(db) == 1
            preempted += victims
        assert len(preempted) == len(set(preempted))
        usage = (node(admin, t1["id"])["subtree_usage"], node(admin, t2["id"])["subtree_usage"])
        assert usage == final
        assert _ask(db, t1["id"], 2) is None  # and T1 cannot take it back either


def test_weighted_sharing_compares_dominant_shares_across_resources(
    admin: Api, root_id: str, db
) -> None:
    """A pool of 16 vCPU and 64 GiB: T1 runs CPU-heavy instances (2 vCPU, 4 GiB), T2 asks
    for memory-heavy ones (1 vCPU, 8 GiB). Evictions stop where their dominant shares meet:
    T1 at 10 of 16 vCPU, T2 at 40 of 64 GiB (both 5/8), not at 8:8 vCPU."""
    parent = admin.tenant(root_id, "Pool")
    t1, t2 = admin.tenant(parent["id"], "T1"), admin.tenant(parent["id"], "T2")
    for resource, size in (("vcpus", 16), ("memory_mb", 65536)):
        set_limit(admin, parent["id"], resource, guarantee=size, borrow_limit=0)
        for tenant in (t1, t2):
            set_limit(admin, tenant["id"], resource, guarantee=0)
    for _ in range(8):
        assert _ask(db, t1["id"], 2, memory_mb=4096) == ("reserved", [])
    preempted = []
    while (answer := _ask(db, t2["id"], 1, memory_mb=8192)) is not None:
        if answer[0] == "pending":
            assert len(answer[1]) == 1 and _after_grace(db) == 1
            preempted += answer[1]
    assert len(preempted) == len(set(preempted)) == 3
    usage = [
        node(admin, t["id"], r)["subtree_usage"] for t in (t1, t2) for r in ("vcpus", "memory_mb")
    ]
    assert usage == [10, 20480, 5, 40960]


def test_reclaim_through_the_api(admin: Api, root_id: str) -> None:
    parent = admin.tenant(root_id, "Parent")
    t1, t2 = admin.tenant(parent["id"], "T1"), admin.tenant(parent["id"], "T2")
    set_limit(admin, parent["id"], guarantee=8, borrow_limit=0)
    set_limit(admin, t1["id"], guarantee=4)
    set_limit(admin, t2["id"], guarantee=4)
    borrower = admin.ok(reserve(admin, t1["id"], 8), 201)  # all of T2's idle 4 too
    body = {"tenant_id": t2["id"], "amounts": {"vcpus": 2}}
    check = admin.ok(admin.post("/quotas/dry-run", body))
    assert not check["admitted"] and check["reclaim"] == [borrower["id"]]
    plain = admin.post("/quotas/reservations", body)
    assert plain.status_code == 409
    pending = admin.post("/quotas/reservations", {**body, "reclaim": True})
    assert pending.status_code == 202 and pending.json()["state"] == "pending"
    commit = admin.post(
        f"/quotas/reservations/{pending.json()['id']}/actions", {"action": "commit"}
    )
    assert commit.status_code == 409 and commit.json()["code"] == "pending"
    assert admin.ok(admin.post("/quotas/reclaims/run"))["admitted"] == 0  # grace not over
    notices = admin.ok(admin.get("/quotas/reclaims", params={"claim_id": pending.json()["id"]}))
    assert [n["victim_id"] for n in notices["items"]] == [borrower["id"]]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    weights=st.lists(st.integers(1, 4), min_size=2, max_size=3),
    asks=st.lists(st.tuples(st.integers(0, 2), st.sampled_from([1, 2, 3])), max_size=30),
)
def test_borrowers_never_evict_each_other_back_and_forth(
    admin: Api, root_id: str, db, weights, asks
) -> None:
    """Two or three borrowers of one pool ask at random. No workload is ever evicted twice,
    and no eviction is answered by a reverse one: right after A evicts a workload of B, B
    asking for it again never evicts A (the requester's weighted share after admission is
    at most the victim's after eviction). Later, once other admissions moved the shares, a
    reverse eviction can be fair and is allowed."""
    parent = admin.tenant(root_id, new_id("pool"))
    set_limit(admin, parent["id"], guarantee=12, borrow_limit=0)
    tenants = [admin.tenant(parent["id"], f"T{n}")["id"] for n in range(len(weights))]
    for tenant_id, weight in zip(tenants, weights, strict=True):
        set_limit(admin, tenant_id, guarantee=0, weight=weight)
    victims: list[str] = []

    def ask(tenant_id: str, amount: int) -> list[QuotaReservation]:
        """The workloads the ask evicted (after the grace period)."""
        answer = _ask(db, tenant_id, amount)
        if not answer or answer[0] != "pending":
            return []
        with db.session(write=False) as session:
            evicted = session.scalars(
                select(QuotaReservation).where(QuotaReservation.id.in_(answer[1]))
            ).all()
        _after_grace(db)
        victims.extend(answer[1])
        return list(evicted)

    for index, amount in asks:
        requester = tenants[index % len(tenants)]
        for victim in ask(requester, amount):
            back = ask(victim.tenant_id, victim.amounts["vcpus"])
            assert requester not in {v.tenant_id for v in back}
    assert len(victims) == len(set(victims))


def test_volumes_are_never_evicted_the_lender_stops_lending(admin: Api, root_id: str, db) -> None:
    parent = admin.tenant(root_id, "Storage")
    t1, t2 = admin.tenant(parent["id"], "T1"), admin.tenant(parent["id"], "T2")
    set_limit(admin, parent["id"], "volume_gb", guarantee=16, borrow_limit=0)
    for tenant_id in (t1["id"], t2["id"]):
        set_limit(admin, tenant_id, "volume_gb", guarantee=8)
    with db.session() as session:
        borrowed = [service.reserve(session, t1["id"], {"volume_gb": 6}).id for _ in range(2)]
    # T2 asks for 6: fits its guarantee, but T1 borrows 4 of it and volumes are not evicted
    with db.session() as session:
        pending, notices = service.reserve_or_reclaim(session, t2["id"], {"volume_gb": 6})
    assert pending.state == "pending" and notices == []
    assert node(admin, t2["id"], "volume_gb")["lending_closed"]
    with db.session() as session:  # T1 gets no new loan meanwhile
        refused = None
        try:
            service.reserve(session, t1["id"], {"volume_gb": 1})
        except service.QuotaExceeded as exc:
            refused = exc
    assert refused is not None
    with db.session() as session:
        assert service.run_due(session) == 0  # nothing came back yet
        service.release(session, borrowed[0])  # T1 deletes a volume
    with db.session() as session:
        assert service.run_due(session) == 1
    assert node(admin, t2["id"], "volume_gb")["subtree_usage"] == 6
    assert not node(admin, t2["id"], "volume_gb")["lending_closed"]
    assert node(admin, t1["id"], "volume_gb")["subtree_usage"] == 6
