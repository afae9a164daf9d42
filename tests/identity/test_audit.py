from tests.support.api import PASSWORD, Api


def _events(api: Api, **params) -> list[dict]:
    return api.ok(api.get("/audit-events", params={"limit": 1000, **params}))["items"]


def test_every_mutating_call_is_audited_with_its_request_id(admin: Api, root_id: str) -> None:
    calls = []

    def call(method: str, path: str, body=None):
        answer = admin.call(method, path, json=body)
        calls.append((answer.headers["x-request-id"], answer.status_code))
        return answer

    tenant = call("POST", "/tenants", {"name": "Audited", "parent_id": root_id}).json()
    call("PATCH", f"/tenants/{tenant['id']}", {"description": "changed"})
    call("POST", "/tenants", {"name": "Audited", "parent_id": root_id})  # 409
    user = call(
        "POST", "/users", {"username": "aud", "password": PASSWORD, "tenant_id": tenant["id"]}
    ).json()
    call("POST", f"/users/{user['id']}/actions", {"action": "disable"})
    group = call("POST", "/groups", {"name": "g", "tenant_id": tenant["id"]}).json()
    call("DELETE", f"/groups/{group['id']}")
    call("DELETE", f"/users/{user['id']}")
    events = {e["request_id"]: e for e in _events(admin)}
    for request_id, status in calls:
        event = events[request_id]
        assert event["status_code"] == status
        assert event["result"] == ("success" if status < 400 else "failure")
        assert event["actor_id"] == admin.me["id"] and event["actor_name"] == "admin"
        assert event["source_ip"]
    assert events[calls[0][0]]["action"] == "tenant.create"
    assert events[calls[0][0]]["target_id"] == tenant["id"]
    assert events[calls[4][0]]["action"] == "user.disable"


def test_logins_are_audited(admin: Api, client, root_id: str) -> None:
    client.post("/api/v1/auth/token", json={"username": "admin", "password": "nope-nope"})
    client.post("/api/v1/auth/token", json={"username": "ghost", "password": "nope-nope"})
    logins = _events(admin, action="auth.login")
    assert [(e["actor_name"], e["result"]) for e in logins[:3]] == [
        ("ghost", "failure"),
        ("admin", "failure"),
        ("admin", "success"),
    ]
    assert logins[0]["actor_id"] is None
    failures = _events(admin, action="auth.login", result="failure")
    assert len(failures) == 2


def test_audit_events_cannot_be_changed(admin: Api) -> None:
    admin.post("/tenants", {"name": "x", "parent_id": "t-missing"})
    event = _events(admin)[0]
    for method in ("PATCH", "PUT", "DELETE"):
        assert admin.call(method, f"/audit-events/{event['id']}", json={}).status_code == 405
    assert admin.post("/audit-events", {}).status_code == 405
    assert admin.ok(admin.get(f"/audit-events/{event['id']}")) == event


def test_auditors_see_their_subtree_only(admin: Api, root_id: str) -> None:
    a, b = admin.tenant(root_id, "A"), admin.tenant(root_id, "B")
    admin.tenant(a["id"], "a-child")
    admin.tenant(b["id"], "b-child")
    auditor = admin.as_user(a["id"], "a-auditor", ["auditor"])
    seen = {e["tenant_id"] for e in _events(auditor)}
    assert b["id"] not in seen and a["id"] in seen
    member = admin.as_user(a["id"], "a-member")
    assert _events(member) == []


def test_filters(admin: Api, root_id: str) -> None:
    tenant = admin.tenant(root_id, "Filtered")
    by_target = _events(admin, target_id=tenant["id"])
    assert [e["action"] for e in by_target] == ["tenant.create"]
    assert _events(admin, since="2999-01-01T00:00:00Z") == []
