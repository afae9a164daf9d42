from datetime import timedelta

from tests.support.api import PASSWORD, Api
from yunguan.core import clock


def test_create_user_and_me(admin: Api, root_id: str) -> None:
    acme = admin.tenant(root_id, "Acme")
    alice = admin.as_user(acme["id"], "alice", ["tenant-admin"])
    assert alice.me["username"] == "alice"
    assert alice.me["tenant_id"] == acme["id"]
    assert alice.me["roles"] == ["tenant-admin"]
    assert "user:write" in alice.me["permissions"]


def test_password_policy(admin: Api, root_id: str) -> None:
    for weak in ("short1A!", "alllowercaseletters", "bob-Passw0rd-bob"):
        answer = admin.post("/users", {"username": "bob", "password": weak, "tenant_id": root_id})
        assert answer.status_code == 400, weak
        assert answer.json()["code"] == "weak-password"


def test_usernames_are_unique(admin: Api, root_id: str) -> None:
    admin.user(root_id, "carol")
    again = admin.post("/users", {"username": "carol", "password": PASSWORD, "tenant_id": root_id})
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate-username"


def test_lockout_after_repeated_failures_then_expiry(admin: Api, root_id: str) -> None:
    admin.user(root_id, "dave")
    start = clock.now()
    clock.set_clock(lambda: start)
    for _ in range(5):
        bad = admin.post("/auth/token", {"username": "dave", "password": "wrong-password"})
        assert bad.status_code == 401
    locked = admin.post("/auth/token", {"username": "dave", "password": PASSWORD})
    assert locked.status_code == 423
    assert locked.json()["code"] == "account-locked"
    clock.set_clock(lambda: start + timedelta(minutes=16))
    assert admin.post("/auth/token", {"username": "dave", "password": PASSWORD}).status_code == 200


def test_admin_unlocks_a_locked_user(admin: Api, root_id: str) -> None:
    user = admin.user(root_id, "erin")
    for _ in range(5):
        admin.post("/auth/token", {"username": "erin", "password": "wrong-password"})
    assert admin.post("/auth/token", {"username": "erin", "password": PASSWORD}).status_code == 423
    admin.ok(admin.post(f"/users/{user['id']}/actions", {"action": "unlock"}))
    assert admin.post("/auth/token", {"username": "erin", "password": PASSWORD}).status_code == 200


def test_logout_revokes_the_token(admin: Api, root_id: str) -> None:
    frank = admin.as_user(root_id, "frank")
    assert frank.get("/me").status_code == 200
    assert frank.post("/auth/logout").status_code == 204
    answer = frank.get("/me")
    assert answer.status_code == 401
    assert answer.json()["code"] == "invalid-token"


def test_password_change_revokes_every_token(admin: Api, root_id: str) -> None:
    grace = admin.as_user(root_id, "grace")
    other_session = grace.login("grace")
    wrong = grace.post(
        f"/users/{grace.me['id']}/actions", {"action": "set-password", "password": "N3w-Password!!"}
    )
    assert wrong.status_code == 403  # own password needs the current one
    changed = grace.post(
        f"/users/{grace.me['id']}/actions",
        {"action": "set-password", "password": "N3w-Password!!", "current_password": PASSWORD},
    )
    assert changed.status_code == 200
    assert grace.get("/me").status_code == 401
    assert other_session.get("/me").status_code == 401
    assert grace.login("grace", "N3w-Password!!").get("/me").status_code == 200


def test_token_expires(admin: Api, root_id: str) -> None:
    henry = admin.as_user(root_id, "henry")
    later = clock.now() + timedelta(hours=2)
    clock.set_clock(lambda: later)
    assert henry.get("/me").status_code == 401


def test_a_token_issued_on_the_platform_clock_is_valid(admin: Api, root_id: str) -> None:
    """Issue time and expiry follow the injectable clock, even where it is ahead of the
    wall clock (a test's, or a controller whose time was set forward)."""
    later = clock.now() + timedelta(minutes=10)
    clock.set_clock(lambda: later)
    assert admin.as_user(root_id, "judy").get("/me").status_code == 200


def test_disabled_user_cannot_log_in(admin: Api, root_id: str) -> None:
    user = admin.user(root_id, "ivan")
    admin.ok(admin.post(f"/users/{user['id']}/actions", {"action": "disable"}))
    assert admin.post("/auth/token", {"username": "ivan", "password": PASSWORD}).status_code == 401


def test_only_platform_admins_grant_platform_admin(admin: Api, root_id: str) -> None:
    acme = admin.tenant(root_id, "Acme")
    boss = admin.as_user(acme["id"], "boss", ["tenant-admin"])
    grab = boss.post(
        "/users",
        {
            "username": "mallory",
            "password": PASSWORD,
            "tenant_id": acme["id"],
            "roles": ["platform-admin"],
        },
    )
    assert grab.status_code == 403
    outside_root = admin.post(
        "/users",
        {
            "username": "mallory",
            "password": PASSWORD,
            "tenant_id": acme["id"],
            "roles": ["platform-admin"],
        },
    )
    assert outside_root.status_code == 400
    self_promote = boss.patch(f"/users/{boss.me['id']}", {"roles": ["tenant-admin", "auditor"]})
    assert self_promote.status_code == 403


def test_members_read_but_do_not_manage(admin: Api, root_id: str) -> None:
    acme = admin.tenant(root_id, "Acme")
    member = admin.as_user(acme["id"], "judy")
    assert member.get(f"/tenants/{acme['id']}").status_code == 200
    create = member.post("/tenants", {"name": "x", "parent_id": acme["id"]})
    assert create.status_code == 403
    assert (
        member.post(
            "/users", {"username": "kim", "password": PASSWORD, "tenant_id": acme["id"]}
        ).status_code
        == 403
    )
    assert member.get("/audit-events").json()["items"] == []


def test_group_roles_apply_to_members(admin: Api, root_id: str) -> None:
    acme = admin.tenant(root_id, "Acme")
    user = admin.user(acme["id"], "liam")
    group = admin.ok(
        admin.post("/groups", {"name": "auditors", "tenant_id": acme["id"], "roles": ["auditor"]}),
        201,
    )
    joined = admin.ok(
        admin.post(
            f"/groups/{group['id']}/actions", {"action": "add-member", "user_id": user["id"]}
        )
    )
    assert joined["member_ids"] == [user["id"]]
    liam = admin.login("liam")
    assert set(liam.me["roles"]) == {"member", "auditor"}
    assert liam.get("/audit-events").status_code == 200
    outsider_tenant = admin.tenant(root_id, "Other")
    outsider = admin.user(outsider_tenant["id"], "nora")
    refused = admin.post(
        f"/groups/{group['id']}/actions", {"action": "add-member", "user_id": outsider["id"]}
    )
    assert refused.status_code == 400


def test_roles_are_listed(admin: Api) -> None:
    names = [r["name"] for r in admin.ok(admin.get("/roles"))["items"]]
    assert names == ["platform-admin", "tenant-admin", "approver", "member", "auditor"]
    assert admin.get("/roles/no-such-role").status_code == 404


def test_groups_never_grant_platform_admin(admin: Api, root_id: str) -> None:
    body = {"name": "admins", "tenant_id": root_id, "roles": ["platform-admin"]}
    assert admin.post("/groups", body).status_code == 422
    group = admin.ok(admin.post("/groups", {"name": "ok", "tenant_id": root_id}), 201)
    patched = admin.patch(f"/groups/{group['id']}", {"roles": ["platform-admin"]})
    assert patched.status_code == 422


def test_users_of_a_tenant_being_deleted_cannot_log_in(admin: Api, root_id: str, db) -> None:
    from yunguan.identity.models import Tenant

    doomed = admin.tenant(root_id, "Doomed")
    admin.user(doomed["id"], "leaving")
    with db.session() as session:
        session.get(Tenant, doomed["id"]).state = "deleting"
    answer = admin.post("/auth/token", {"username": "leaving", "password": PASSWORD})
    assert answer.status_code == 401
    group = admin.post("/groups", {"name": "late", "tenant_id": doomed["id"]})
    assert group.status_code == 409


def test_parallel_bad_passwords_all_count(admin: Api, root_id: str, live_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    admin.user(root_id, "target")

    def guess(_: int) -> int:
        with httpx.Client(base_url=live_url) as http:
            body = {"username": "target", "password": "wrong-guess-1"}
            return http.post("/api/v1/auth/token", json=body).status_code

    with ThreadPoolExecutor(5) as pool:
        assert sorted(pool.map(guess, range(5))) == [401] * 5
    answer = admin.post("/auth/token", {"username": "target", "password": PASSWORD})
    assert answer.status_code == 423


def test_parallel_guesses_cannot_outrun_the_lock(admin: Api, root_id: str, live_url: str) -> None:
    """Twenty wrong guesses and the right one at once: at most five attempts are judged."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    admin.user(root_id, "victim")
    guesses = ["wrong-guess-1"] * 20 + [PASSWORD]

    def guess(password: str) -> int:
        with httpx.Client(base_url=live_url, timeout=60) as http:
            body = {"username": "victim", "password": password}
            return http.post("/api/v1/auth/token", json=body).status_code

    with ThreadPoolExecutor(21) as pool:
        statuses = list(pool.map(guess, guesses))
    judged = [s for s in statuses if s in (200, 401)]
    assert len(judged) <= 5
    assert statuses.count(423) >= 16
