"""The inbox: notify() reaches its recipients and nobody else; each reads its own."""

import pytest

from tests.notifications.conftest import tell
from tests.support.api import Api
from yunguan.core.db import Database


def inbox(api: Api, **params: str) -> list[dict]:
    return api.ok(api.get("/notifications", params=params))["items"]


def unread(api: Api) -> int:
    return api.ok(api.get("/notifications/summary"))["unread"]


def test_recipients_see_it_and_nobody_else(db: Database, admin: Api, tree: dict) -> None:
    alice, bob = tree["alice"], tree["bob"]
    users = [alice.me["id"], alice.me["id"], bob.me["id"], "u-nobody"]
    tell(db, "order.approved", tree["team"], users, subject="Order approved", link="/orders/o-1")

    (mine,) = inbox(alice)
    assert mine["subject"] == "Order approved" and mine["event"] == "order.approved"
    assert mine["body"] == "details" and mine["link"] == "/orders/o-1"
    assert mine["tenant_id"] == tree["team"] and mine["read_at"] is None
    assert [n["subject"] for n in inbox(bob)] == ["Order approved"]
    for outsider in (tree["acme_admin"], tree["globex_admin"], admin):
        assert inbox(outsider) == [] and unread(outsider) == 0
    assert alice.get(f"/notifications/{inbox(bob)[0]['id']}").status_code == 404


def test_newest_first_one_page_at_a_time(db: Database, tree: dict) -> None:
    alice = tree["alice"]
    for n in range(3):
        tell(db, "subscription.expiring", tree["team"], [alice.me["id"]], subject=f"n{n}")
    first = alice.ok(alice.get("/notifications", params={"limit": 2}))
    assert [n["subject"] for n in first["items"]] == ["n2", "n1"]
    rest = alice.ok(alice.get("/notifications", params={"cursor": first["next_cursor"]}))
    assert [n["subject"] for n in rest["items"]] == ["n0"] and rest["next_cursor"] is None


def test_read_unread_and_read_all(db: Database, tree: dict) -> None:
    alice, bob = tree["alice"], tree["bob"]
    for subject in ("one", "two", "three"):
        tell(db, "order.approved", tree["team"], [alice.me["id"], bob.me["id"]], subject=subject)
    one = inbox(alice)[-1]
    assert one["subject"] == "one" and unread(alice) == 3

    path = f"/notifications/{one['id']}/actions"
    read = alice.ok(alice.post(path, {"action": "read"}))
    assert read["read_at"] is not None
    again = alice.ok(alice.post(path, {"action": "read"}))
    assert again["read_at"] == read["read_at"]  # the first reading counts
    assert unread(alice) == 2
    assert [n["subject"] for n in inbox(alice, unread="true")] == ["three", "two"]
    assert [n["subject"] for n in inbox(alice, unread="false")] == ["one"]
    assert alice.ok(alice.post(path, {"action": "unread"}))["read_at"] is None

    assert alice.ok(alice.post("/notifications/actions", {"action": "read-all"})) == {"marked": 3}
    assert unread(alice) == 0 and inbox(alice, unread="true") == []
    assert unread(bob) == 3  # someone else's reading changes nothing of bob's


def test_nobody_touches_anothers_notifications(db: Database, admin: Api, tree: dict) -> None:
    alice = tree["alice"]
    tell(db, "order.approved", tree["team"], [tree["bob"].me["id"]])
    bobs = inbox(tree["bob"])[0]["id"]
    for stranger in (alice, tree["acme_admin"], admin):
        answer = stranger.get(f"/notifications/{bobs}")
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        acted = stranger.post(f"/notifications/{bobs}/actions", {"action": "read"})
        assert acted.status_code == 404
    assert unread(tree["bob"]) == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [({"action": "delete"}, 422), ({}, 422), ({"action": "read", "extra": 1}, 422)],
)
def test_unknown_actions_are_refused(db: Database, tree: dict, body: dict, status: int) -> None:
    alice = tree["alice"]
    tell(db, "order.approved", tree["team"], [alice.me["id"]])
    path = f"/notifications/{inbox(alice)[0]['id']}/actions"
    assert alice.post(path, body).status_code == status
    assert alice.post("/notifications/actions", {"action": "read"}).status_code == 422


def test_links_are_portal_paths(db: Database, tree: dict) -> None:
    for link in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        with pytest.raises(ValueError, match="portal path"):
            tell(db, "order.approved", tree["team"], [tree["alice"].me["id"]], link=link)
    assert inbox(tree["alice"]) == []
