"""Approval chains per tenant subtree and order cost: approve, reject, comment, delegate,
escalation on the injectable clock, and exactly one fulfilment under racing approvals."""

import threading
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.orders.conftest import Clock, decide, fulfilled, order
from tests.support.api import ADMIN_PASSWORD, Api
from yunguan.workflows.orders import service_lifecycle

pytestmark = pytest.mark.usefixtures("workflows")


def chain(admin: Api, tenant_id: str, *stages: dict[str, Any], status: int = 201) -> Any:
    body = {"tenant_id": tenant_id, "name": "engineering", "stages": list(stages)}
    return admin.ok(admin.post("/approval-policies", body), status)


def inbox(api: Api) -> list[dict]:
    return api.ok(api.get("/approval-tasks", params={"state": "pending"}))["items"]


def subjects(api: Api) -> list[str]:
    return [n["subject"] for n in api.ok(api.get("/notifications"))["items"]]


@pytest.fixture
def lead_then_head(admin: Api, team: dict, lead: Api, head: Api) -> dict:
    """The team's chain: its lead, then the department head for orders of 1,000 or more."""
    return chain(
        admin,
        team["id"],
        {"name": "team lead", "approvers": [lead.me["id"]]},
        {"name": "department head", "approvers": [head.me["id"]], "min_cost": "1000"},
    )


@pytest.mark.usefixtures("lead_then_head")
def test_a_cheap_order_needs_the_lead_and_a_dear_one_the_head_too(
    member: Api, lead: Api, head: Api, item: dict
) -> None:
    cheap = order(member, item)  # 300 for one month
    assert cheap["state"] == "pending-approval"
    assert [s["name"] for s in cheap["plan"]] == ["team lead"]
    assert [t["order_id"] for t in inbox(lead)] == [cheap["id"]] and inbox(head) == []
    assert "Order “web” awaits your approval (team lead)" in subjects(lead)
    approved = decide(lead, cheap["id"], "approve", comment="fine")
    assert approved["state"] == "fulfilling" and fulfilled(member, approved)["state"] == "completed"

    dear = order(member, item, name="db", term_months=4)  # 1,200
    assert [s["name"] for s in dear["plan"]] == ["team lead", "department head"]
    decide(lead, dear["id"], "approve")
    assert [t["order_id"] for t in inbox(head)] == [dear["id"]]
    assert decide(lead, dear["id"], "approve", 403)["code"] == "not-an-approver"
    done = decide(head, dear["id"], "approve", comment="budget ok")
    assert done["state"] == "fulfilling"
    kinds = [e["kind"] for e in done["events"]]
    assert kinds == ["placed", "approved", "approved", "fulfilling"]
    assert [t["state"] for t in done["tasks"]] == ["approved", "approved"]


@pytest.mark.usefixtures("lead_then_head")
def test_a_rejection_ends_the_order_and_tells_the_requester(
    member: Api, lead: Api, head: Api, item: dict
) -> None:
    placed = order(member, item)
    assert decide(member, placed["id"], "approve", 403)["code"] == "self-approval"
    assert decide(head, placed["id"], "approve", 403)["code"] == "not-an-approver"
    decide(head, placed["id"], "comment", comment="why two?")
    rejected = decide(lead, placed["id"], "reject", comment="use the shared one")
    assert rejected["state"] == "rejected" and rejected["operation_id"] is None
    assert rejected["events"][-1]["message"] == "team lead: use the shared one"
    assert [e["kind"] for e in rejected["events"]] == ["placed", "comment", "rejected"]
    assert decide(lead, placed["id"], "approve", 409)["code"] == "order-decided"
    assert "Order “web” was rejected" in subjects(member)


@pytest.mark.usefixtures("lead_then_head")
def test_a_delegated_approval_is_decided_by_the_delegate(
    admin: Api, member: Api, lead: Api, team: dict, root_id: str, item: dict
) -> None:
    deputy = admin.as_user(team["id"], "deputy", ["approver"])
    outsider = admin.as_user(admin.tenant(root_id, "Other")["id"], "outsider", ["approver"])
    placed = order(member, item)
    refused = decide(lead, placed["id"], "delegate", 422, user_id=outsider.me["id"])
    assert refused["code"] == "unknown-approver"
    handed = decide(lead, placed["id"], "delegate", user_id=deputy.me["id"], comment="on leave")
    assert [t["state"] for t in handed["tasks"]] == ["delegated", "pending"]
    assert inbox(lead) == [] and [t["order_id"] for t in inbox(deputy)] == [placed["id"]]
    assert decide(lead, placed["id"], "approve", 403)["code"] == "not-an-approver"
    assert decide(deputy, placed["id"], "approve")["state"] == "fulfilling"


def test_a_late_approval_escalates_when_its_time_is_up(
    admin: Api, team: dict, member: Api, lead: Api, head: Api, item: dict, frozen: Clock
) -> None:
    stage = {"name": "lead", "approvers": [lead.me["id"]], "timeout_hours": 24}
    chain(admin, team["id"], stage | {"escalate_to": [head.me["id"]]})
    placed = order(member, item)
    frozen.advance(hours=23)
    service_lifecycle(datetime.now(UTC), None)
    assert inbox(head.login("head")) == []
    frozen.advance(hours=2)
    service_lifecycle(datetime.now(UTC), None)
    head = head.login("head")  # tokens live on the same clock
    assert [t["order_id"] for t in inbox(head)] == [placed["id"]]
    escalated = decide(head, placed["id"], "approve")
    assert [t["state"] for t in escalated["tasks"]] == ["escalated", "approved"]
    assert [e["kind"] for e in escalated["events"]][:3] == ["placed", "escalated", "approved"]


def race(approvers: list[Api], order_id: str) -> list[int]:
    """Every approver approves the order at the same moment; their answers' statuses."""
    start, statuses = threading.Barrier(len(approvers)), []

    def approve(api: Api) -> None:
        start.wait()
        statuses.append(api.post(f"/orders/{order_id}/actions", {"action": "approve"}).status_code)

    threads = [threading.Thread(target=approve, args=(a,)) for a in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_racing_approvals_fulfil_an_order_once(
    admin: Api, team: dict, item: dict, live_url: str
) -> None:
    """Three approvers of one stage approve each of five orders at the same moment."""
    with httpx.Client(base_url=live_url, timeout=30) as http:
        operator = Api(http).login("admin", ADMIN_PASSWORD)
        member = operator.as_user(team["id"], "dev2")
        approvers = [operator.as_user(team["id"], f"approver-{n}", ["approver"]) for n in range(3)]
        chain(admin, team["id"], {"name": "any", "approvers": [a.me["id"] for a in approvers]})
        placed = [order(member, item, name=f"web-{n}") for n in range(5)]
        statuses = [status for each in placed for status in race(approvers, each["id"])]
        assert sorted(statuses) == [200] * 5 + [409] * 10
        for each in placed:
            operations = admin.ok(admin.get("/operations", params={"target_id": each["id"]}))
            assert len(operations["items"]) == 1
            done = fulfilled(admin, admin.ok(admin.get(f"/orders/{each['id']}")))
            assert [t["state"] for t in done["tasks"]].count("approved") == 1
        services = admin.ok(admin.get("/service-instances", params={"item_id": item["id"]}))
        assert len(services["items"]) == 5


def test_policies_name_only_people_who_see_the_subtree(
    admin: Api, department: dict, team: dict, lead: Api, root_id: str
) -> None:
    stranger = admin.as_user(admin.tenant(root_id, "Other")["id"], "stranger", ["approver"])
    bad = chain(
        admin,
        team["id"],
        {"name": "x", "approvers": [stranger.me["id"], "u-nobody"]},
        status=422,
    )
    assert bad["code"] == "unknown-approver" and len(bad["errors"]) == 2
    no_timeout = chain(
        admin,
        team["id"],
        {"name": "x", "approvers": [lead.me["id"]], "escalate_to": [lead.me["id"]]},
        status=422,
    )
    assert "timeout_hours" in no_timeout["detail"]
    chain(admin, team["id"], {"name": "lead", "approvers": [lead.me["id"]]})
    again = chain(admin, team["id"], {"name": "lead", "approvers": [lead.me["id"]]}, status=409)
    assert again["code"] == "duplicate-policy"
    boss = admin.as_user(department["id"], "boss", ["tenant-admin"])
    sibling = admin.tenant(root_id, "Sibling")
    outside = boss.post(
        "/approval-policies",
        {
            "tenant_id": sibling["id"],
            "name": "x",
            "stages": [{"name": "x", "approvers": [lead.me["id"]]}],
        },
    )
    assert outside.status_code == 404
    assert [p["tenant_id"] for p in boss.ok(boss.get("/approval-policies"))["items"]] == [
        team["id"]
    ]
    assert lead.post(
        "/approval-policies", {"tenant_id": team["id"], "name": "y", "stages": []}
    ).status_code in (403, 422)


@pytest.mark.usefixtures("lead_then_head")
def test_an_auditor_reads_orders_but_does_not_comment(
    admin: Api, member: Api, team: dict, item: dict
) -> None:
    auditor = admin.as_user(team["id"], "auditor", ["auditor"])
    placed = order(member, item)
    assert auditor.ok(auditor.get(f"/orders/{placed['id']}"))["events"][0]["message"] == (
        "Linux VM, cost 300.00"
    )
    assert decide(auditor, placed["id"], "comment", 403, comment="hm")["code"] == "forbidden"


def test_a_tenants_own_administrators_do_not_set_its_chain(
    admin: Api, team: dict, department: dict, lead: Api, member: Api, item: dict
) -> None:
    team_admin = admin.as_user(team["id"], "team-admin", ["tenant-admin"])
    stages = [{"name": "me", "approvers": [team_admin.me["id"]]}]
    own = team_admin.post(
        "/approval-policies", {"tenant_id": team["id"], "name": "x", "stages": stages}
    )
    assert own.status_code == 403
    head_admin = admin.as_user(department["id"], "dept-admin", ["tenant-admin"])
    made = head_admin.ok(
        head_admin.post(
            "/approval-policies", {"tenant_id": team["id"], "name": "t", "stages": stages}
        ),
        201,
    )
    assert team_admin.delete(f"/approval-policies/{made['id']}").status_code == 403
    placed = order(team_admin, item)
    assert decide(team_admin, placed["id"], "approve", 403)["code"] == "self-approval"
    handed = decide(team_admin, placed["id"], "delegate", 422, user_id=team_admin.me["id"])
    assert handed["code"] == "self-approval"
