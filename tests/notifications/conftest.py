"""A small tenant tree with users, a clock the tests move, a real HTTP receiver for
webhooks, and helpers to notify and to read the outbox."""

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.api import PASSWORD, Api
from tests.support.clock import Clock
from tests.support.webhooks import Receiver
from yunguan.core.db import Database
from yunguan.notifications.models import Delivery
from yunguan.notifications.service import notify


@pytest.fixture
def tree(admin: Api, root_id: str) -> dict[str, Any]:
    """acme (with team below it) and globex; an administrator and members in each."""
    acme = admin.tenant(root_id, "acme")["id"]
    team = admin.tenant(acme, "team")["id"]
    globex = admin.tenant(root_id, "globex")["id"]
    return {
        "acme": acme,
        "team": team,
        "globex": globex,
        "acme_admin": admin.as_user(acme, "acme-admin", ["tenant-admin"]),
        "alice": admin.as_user(team, "alice", ["member"]),
        "bob": admin.as_user(team, "bob", ["member"]),
        "globex_admin": admin.as_user(globex, "globex-admin", ["tenant-admin"]),
    }


def user_with_email(admin: Api, tenant_id: str, username: str, email: str) -> dict:
    body = {"username": username, "password": PASSWORD, "tenant_id": tenant_id, "email": email}
    return admin.ok(admin.post("/users", body), 201)


def tell(db: Database, event: str, tenant_id: str, user_ids=(), **fields: Any) -> None:
    """``notify`` in a transaction of its own, as a domain's request would."""
    message = {"subject": f"{event} happened", "body": "details", "data": {}} | fields
    with db.session() as session:
        notify(session, event=event, tenant_id=tenant_id, user_ids=list(user_ids), **message)


def outbox(db: Database) -> list[Delivery]:
    with db.session(write=False) as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


@pytest.fixture
def frozen(app) -> Clock:
    return Clock()  # the app fixture restores the real clock


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """Fails the first two calls with 500, then accepts."""
    endpoint = Receiver([500, 500])
    yield endpoint
    endpoint.close()


@pytest.fixture
def accepting() -> Iterator[Receiver]:
    """Accepts every call."""
    endpoint = Receiver([])
    yield endpoint
    endpoint.close()


def free_port() -> int:
    """A port nothing listens on (bound and released at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def webhook(api: Api, url: str, **fields: Any) -> dict:
    return api.ok(api.post("/webhooks", {"url": url, **fields}), 201)
