import pytest

from tests.support.api import Api


def test_create_nested_tenants_records_path_and_depth(admin: Api, root_id: str) -> None:
    org = admin.tenant(root_id, "Acme")
    dept = admin.tenant(org["id"], "Engineering")
    team = admin.tenant(dept["id"], "研发一组")
    assert team["depth"] == 3
    assert team["path"] == f"{dept['path']}{team['id']}/"
    listed = admin.ok(admin.get("/tenants", params={"subtree_of": org["id"]}))
    assert [t["id"] for t in listed["items"]] == [org["id"], dept["id"], team["id"]]


def test_sibling_names_are_unique_but_cousins_may_share(admin: Api, root_id: str) -> None:
    a, b = admin.tenant(root_id, "A"), admin.tenant(root_id, "B")
    admin.tenant(a["id"], "ops")
    admin.tenant(b["id"], "ops")
    duplicate = admin.post("/tenants", {"name": "ops", "parent_id": a["id"]})
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "duplicate-name"
    assert duplicate.headers["content-type"] == "application/problem+json"


def test_rename_and_conflicting_rename(admin: Api, root_id: str) -> None:
    a, b = admin.tenant(root_id, "A"), admin.tenant(root_id, "B")
    renamed = admin.ok(admin.patch(f"/tenants/{a['id']}", {"name": "Alpha"}))
    assert renamed["name"] == "Alpha"
    clash = admin.patch(f"/tenants/{b['id']}", {"name": "Alpha"})
    assert clash.status_code == 409


def test_move_rewrites_the_whole_subtree(admin: Api, root_id: str) -> None:
    a, b = admin.tenant(root_id, "A"), admin.tenant(root_id, "B")
    child = admin.tenant(a["id"], "child")
    grandchild = admin.tenant(child["id"], "grandchild")
    moved = admin.ok(
        admin.post(f"/tenants/{child['id']}/actions", {"action": "move", "parent_id": b["id"]})
    )
    assert moved["parent_id"] == b["id"]
    assert moved["path"] == f"{b['path']}{child['id']}/"
    again = admin.ok(admin.get(f"/tenants/{grandchild['id']}"))
    assert again["path"] == f"{b['path']}{child['id']}/{grandchild['id']}/"
    assert again["depth"] == 3


def test_move_below_itself_is_refused(admin: Api, root_id: str) -> None:
    a = admin.tenant(root_id, "A")
    child = admin.tenant(a["id"], "child")
    answer = admin.post(f"/tenants/{a['id']}/actions", {"action": "move", "parent_id": child["id"]})
    assert answer.status_code == 409
    assert answer.json()["code"] == "tenant-cycle"
    root_move = admin.post(f"/tenants/{root_id}/actions", {"action": "move", "parent_id": a["id"]})
    assert root_move.status_code == 400


def test_tenant_with_children_cannot_be_deleted(admin: Api, root_id: str) -> None:
    a = admin.tenant(root_id, "A")
    admin.tenant(a["id"], "child")
    answer = admin.delete(f"/tenants/{a['id']}")
    assert answer.status_code == 409
    assert answer.json()["code"] == "tenant-not-empty"


@pytest.mark.usefixtures("workflows")
def test_delete_runs_the_workflow_to_the_end(admin: Api, root_id: str, db) -> None:
    from tests.support.waiting import wait_operation

    a = admin.tenant(root_id, "Doomed")
    member = admin.as_user(a["id"], "doomed-user")
    accepted = admin.delete(f"/tenants/{a['id']}")
    assert accepted.status_code == 202
    body = accepted.json()
    assert body["resource"]["state"] == "deleting"
    assert accepted.headers["location"] == f"/api/v1/operations/{body['operation']['id']}"
    # no new children while it is being deleted
    blocked = admin.post("/tenants", {"name": "late", "parent_id": a["id"]})
    assert blocked.status_code == 409
    operation = wait_operation(admin, body["operation"]["id"])
    assert operation["state"] == "succeeded"
    assert admin.get(f"/tenants/{a['id']}").status_code == 404
    assert member.get("/me").status_code == 401  # its token went with it
    events = admin.ok(admin.get("/audit-events", params={"action": "tenant.deleted"}))["items"]
    assert [e["target_id"] for e in events] == [a["id"]]


def test_depth_is_bounded(admin: Api, root_id: str) -> None:
    from yunguan.identity.service import MAX_TENANT_DEPTH

    parent = root_id
    for level in range(MAX_TENANT_DEPTH):
        parent = admin.tenant(parent, f"level-{level}")["id"]
    too_deep = admin.post("/tenants", {"name": "one-more", "parent_id": parent})
    assert too_deep.status_code == 400
    assert too_deep.json()["code"] == "too-deep"


def test_pagination_walks_every_tenant_once(admin: Api, root_id: str) -> None:
    created = {admin.tenant(root_id, f"t{i:02d}")["id"] for i in range(23)}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 5, "parent_id": root_id, **({"cursor": cursor} if cursor else {})}
        page = admin.ok(admin.get("/tenants", params=params))
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 23
    assert set(seen) == created
    bad = admin.get("/tenants", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid-cursor"


@pytest.mark.usefixtures("workflows")
def test_deletion_is_visible_to_the_parents_auditors(admin: Api, root_id: str) -> None:
    from tests.support.waiting import wait_operation

    parent = admin.tenant(root_id, "Parent")
    child = admin.tenant(parent["id"], "Child")
    boss = admin.as_user(parent["id"], "parent-admin", ["tenant-admin", "auditor"])
    accepted = boss.ok(boss.delete(f"/tenants/{child['id']}"), 202)
    assert wait_operation(boss, accepted["operation"]["id"])["state"] == "succeeded"
    actions = {
        e["action"]: e
        for e in boss.ok(boss.get("/audit-events", params={"target_id": child["id"]}))["items"]
    }
    assert {"tenant.create", "tenant.delete", "tenant.deleted"} <= set(actions)
    assert actions["tenant.deleted"]["actor_id"] == boss.me["id"]
    assert actions["tenant.deleted"]["tenant_id"] == parent["id"]


@pytest.mark.usefixtures("workflows")
def test_a_failing_deletion_fails_the_operation_and_gives_the_tenant_back(
    admin: Api, root_id: str, monkeypatch
) -> None:
    from tests.support.waiting import wait_operation
    from yunguan.core.config import get_settings

    tenant = admin.tenant(root_id, "Stubborn")
    monkeypatch.setenv("YUNGUAN_FAULT_POINTS", "tenant-delete.after-revoke=error")
    get_settings.cache_clear()
    try:
        accepted = admin.ok(admin.delete(f"/tenants/{tenant['id']}"), 202)
        operation = wait_operation(admin, accepted["operation"]["id"])
    finally:
        monkeypatch.delenv("YUNGUAN_FAULT_POINTS")
        get_settings.cache_clear()
    assert operation["state"] == "failed"
    assert "InjectedFault" in operation["error"]
    # its tokens were already revoked: it takes nothing new until deleted again
    assert admin.ok(admin.get(f"/tenants/{tenant['id']}"))["state"] == "delete-failed"
    assert admin.post("/groups", {"name": "g", "tenant_id": tenant["id"]}).status_code == 409
    retry = admin.ok(admin.delete(f"/tenants/{tenant['id']}"), 202)
    assert wait_operation(admin, retry["operation"]["id"])["state"] == "succeeded"
