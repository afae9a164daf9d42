"""The examples of the quota issue (units: vCPU), through the API."""

from tests.support.api import Api
from tests.support.quotas import limit, node, reserve, set_limit


def test_guarantees_must_fit_in_their_parent(admin: Api, root_id: str) -> None:
    a = admin.tenant(root_id, "A")
    b, x = admin.tenant(a["id"], "B"), admin.tenant(a["id"], "X")
    c = admin.tenant(b["id"], "C")
    set_limit(admin, a["id"], guarantee=100)
    set_limit(admin, b["id"], guarantee=50)
    set_limit(admin, x["id"], guarantee=40)
    set_limit(admin, c["id"], guarantee=10)
    too_much = limit(admin, x["id"], guarantee=60)
    assert too_much.status_code == 409 and too_much.json()["code"] == "exceeds-parent"
    assert limit(admin, c["id"], guarantee=60).json()["code"] == "exceeds-parent"
    assert set_limit(admin, x["id"], guarantee=50)["guarantee"] == 50
    figures = node(admin, a["id"])
    assert (figures["allocated"], figures["free"]) == (100, 0)
    assert node(admin, b["id"])["free"] == 40
    # a parent cannot go below what its children were given
    shrink = limit(admin, b["id"], guarantee=5)
    assert shrink.status_code == 409 and shrink.json()["code"] == "guarantee-too-small"
    assert node(admin, a["id"])["guarantee"] == 100


def test_borrow_limits_decide_who_may_use_idle_guarantees(admin: Api, root_id: str) -> None:
    set_limit(admin, root_id, guarantee=20)
    research, prod = admin.tenant(root_id, "Research"), admin.tenant(root_id, "Prod")
    r1, p1 = admin.tenant(research["id"], "r1"), admin.tenant(prod["id"], "p1")
    set_limit(admin, research["id"], guarantee=10, borrow_limit=0)
    set_limit(admin, prod["id"], guarantee=10)
    set_limit(admin, r1["id"], guarantee=10)
    set_limit(admin, p1["id"], guarantee=10)
    # r1 asking 15 while Prod is idle gets 10: Research may not borrow
    refused = reserve(admin, r1["id"], 15)
    assert refused.status_code == 409 and refused.json()["code"] == "quota-exceeded"
    assert refused.json()["tenant_id"] == research["id"]
    for _ in range(2):
        admin.ok(reserve(admin, r1["id"], 5), 201)
    assert reserve(admin, r1["id"], 1).status_code == 409
    # p1 asking 15 while Research is idle... Research is not idle now: only 0 left at root
    assert reserve(admin, p1["id"], 15).status_code == 409
    for held in admin.ok(admin.get("/quotas/reservations", params={"tenant_id": r1["id"]}))[
        "items"
    ]:
        admin.ok(admin.post(f"/quotas/reservations/{held['id']}/actions", {"action": "release"}))
    # now Research is idle and Prod may borrow its guarantee
    admin.ok(reserve(admin, p1["id"], 15), 201)
    assert node(admin, prod["id"])["borrowed"] == 5
    assert node(admin, root_id)["slack"] == 5


def test_a_lender_that_lends_nothing_keeps_its_siblings_to_their_guarantee(
    admin: Api, root_id: str
) -> None:
    parent = admin.tenant(root_id, "Parent")
    t1, t2 = admin.tenant(parent["id"], "T1"), admin.tenant(parent["id"], "T2")
    set_limit(admin, parent["id"], guarantee=16, borrow_limit=0)
    set_limit(admin, t1["id"], guarantee=8)
    set_limit(admin, t2["id"], guarantee=8, lend_limit=0)
    admin.ok(reserve(admin, t1["id"], 4), 201)
    admin.ok(reserve(admin, t1["id"], 4), 201)
    assert reserve(admin, t1["id"], 4).status_code == 409  # stays pending
    # lending allowed: T1 borrows T2's idle 4
    set_limit(admin, t2["id"], lend_limit=None)
    admin.ok(reserve(admin, t1["id"], 4), 201)
    assert node(admin, t1["id"])["borrowed"] == 4
    assert (node(admin, t2["id"])["lent"], node(admin, t1["id"])["lent"]) == (4, 0)

    # T2 now gets only what is left: its idle 4 are lent (taking them back is reclaim)
    for amount, admitted in ((6, False), (4, True)):
        body = {"tenant_id": t2["id"], "amounts": {"vcpus": amount}}
        assert admin.ok(admin.post("/quotas/dry-run", body))["admitted"] is admitted


def test_lowering_a_limit_below_usage_needs_force_and_admits_nothing_new(
    admin: Api, root_id: str
) -> None:
    t1 = admin.tenant(root_id, "T1")
    set_limit(admin, t1["id"], guarantee=8)
    held = admin.ok(reserve(admin, t1["id"], 8), 201)
    admin.ok(admin.post(f"/quotas/reservations/{held['id']}/actions", {"action": "commit"}))
    refused = limit(admin, t1["id"], guarantee=4)
    assert refused.status_code == 409 and refused.json()["code"] == "below-usage"
    forced = set_limit(admin, t1["id"], guarantee=4, force=True)
    assert forced["over_quota"] and forced["used"] == 8
    blocked = reserve(admin, t1["id"], 1)
    assert blocked.status_code == 409 and "over quota" in blocked.json()["detail"]
    reservations = admin.ok(admin.get("/quotas/reservations", params={"tenant_id": t1["id"]}))
    assert [r["state"] for r in reservations["items"]] == ["committed"]  # nothing evicted
    admin.ok(admin.post(f"/quotas/reservations/{held['id']}/actions", {"action": "release"}))
    assert not node(admin, t1["id"])["over_quota"]
    admin.ok(reserve(admin, t1["id"], 4), 201)


def test_reservations_commit_expire_and_answer_dry_runs(admin: Api, root_id: str, db) -> None:
    from datetime import timedelta

    from yunguan.core import clock
    from yunguan.quota import service

    t1 = admin.tenant(root_id, "T1")
    set_limit(admin, t1["id"], guarantee=8, borrow_limit=0)
    check = admin.ok(
        admin.post("/quotas/dry-run", {"tenant_id": t1["id"], "amounts": {"vcpus": 9}})
    )
    assert not check["admitted"] and check["verdicts"][0]["refused_at"] == t1["id"]
    assert admin.ok(admin.get("/quotas/reservations"))["items"] == []  # dry run kept nothing
    held = admin.ok(reserve(admin, t1["id"], 6, ttl_seconds=60), 201)
    assert node(admin, t1["id"])["reserved"] == 6
    start = clock.now()
    clock.set_clock(lambda: start + timedelta(seconds=61))
    with db.session() as session:
        assert service.reconcile(session) == 0  # the caches were right; then the expiry
    assert node(admin, t1["id"])["reserved"] == 0
    gone = admin.post(f"/quotas/reservations/{held['id']}/actions", {"action": "commit"})
    assert gone.status_code == 404
    bad = admin.post("/quotas/reservations", {"tenant_id": t1["id"], "amounts": {"cpus": 1}})
    assert bad.status_code == 422
