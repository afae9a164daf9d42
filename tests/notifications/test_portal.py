"""The inbox page and the unread badge in the top bar."""

from tests.network.test_portal import Portal
from tests.notifications.conftest import tell
from yunguan.core.db import Database

BADGE = 'data-testid="unread"'


def badge(page: str) -> str | None:
    """The unread count shown beside the inbox link, if any."""
    if BADGE not in page:
        return None
    return page.split(BADGE)[1].split(">")[1].split("<")[0]


def test_a_user_reads_its_inbox_and_the_badge_follows(app, db: Database, tree: dict) -> None:
    alice, bob = tree["alice"].me["id"], tree["bob"].me["id"]
    tell(db, "order.approved", tree["team"], [alice], subject="Order approved", link="/orders/o1")
    tell(db, "subscription.expiring", tree["team"], [alice], subject="Lease ends Friday")
    tell(db, "order.rejected", tree["team"], [bob], subject="Bob's order rejected")
    portal = Portal(app, "alice")

    assert badge(portal.get("/")) == "2" and 'href="/inbox"' in portal.get("/")
    page = portal.get("/inbox")
    assert badge(page) == "2"
    assert page.index("Lease ends Friday") < page.index("Order approved")  # newest first
    assert '<a href="/orders/o1">Open</a>' in page and "Bob&#39;s order" not in page
    first = page.split('data-notification="')[2].split('"')[0]  # the older one

    marked = portal.post(f"/inbox/{first}/actions", action="read")
    assert "Marked read." in marked and 'hx-swap-oob="true"' in marked and badge(marked) == "1"
    assert f'data-notification="{first}" data-read="yes"' in marked
    assert badge(portal.get("/")) == "1"
    everything = portal.post("/inbox/read-all")
    assert "Marked 1 read." in everything and badge(everything) is None
    assert badge(portal.get("/inbox")) is None

    bobs = tree["bob"].ok(tree["bob"].get("/notifications"))["items"][0]["id"]
    assert "not found" in portal.post(f"/inbox/{bobs}/actions", 404, action="read")
    assert "Input should be" in portal.post(f"/inbox/{first}/actions", 422, action="delete")
    assert tree["bob"].ok(tree["bob"].get("/notifications/summary"))["unread"] == 1


def test_an_empty_inbox(app, tree: dict) -> None:
    page = Portal(app, "globex-admin").get("/inbox")
    assert "No notifications." in page and badge(page) is None and "Mark all read" not in page
