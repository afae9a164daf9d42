"""/webhooks: validation, tenant isolation, and a secret shown only once."""

import pytest
from sqlalchemy import select

from tests.notifications.conftest import outbox, tell, webhook
from tests.support.api import Api
from yunguan.core.db import Database
from yunguan.notifications.models import Webhook

URL = "https://hooks.acme.test/yunguan"


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://hooks.acme.test/"},
        {"url": "javascript:alert(1)"},
        {"url": "not a url"},
        {"url": "http://"},
        {"url": URL, "events": ["order.**"]},
        {"url": URL, "events": ["Order Approved"]},
        {"url": URL, "secret": "short"},
        {"url": URL, "secret": "has spaces in the secret"},
        {"url": URL, "unknown": True},
        {"events": ["order.*"]},
    ],
)
def test_bad_input_is_a_422_problem(tree: dict, body: dict) -> None:
    answer = tree["acme_admin"].post("/webhooks", body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "validation-error"


def test_the_secret_is_shown_once_and_stored_sealed(db: Database, tree: dict) -> None:
    acme_admin = tree["acme_admin"]
    made = webhook(acme_admin, URL, events=["order.*", "order.*", "subscription.expiring"])
    secret = made["secret"]
    assert len(secret) >= 32 and made["tenant_id"] == tree["acme"]
    assert made["events"] == ["order.*", "subscription.expiring"]
    path = f"/webhooks/{made['id']}"
    for answer in (
        acme_admin.get(path),
        acme_admin.get("/webhooks"),
        acme_admin.patch(path, {"description": "fulfilment", "events": []}),
    ):
        assert answer.status_code == 200 and secret not in answer.text
        assert "secret" not in answer.text
    assert acme_admin.ok(acme_admin.get(path))["events"] == []
    with db.session(write=False) as session:
        stored = session.scalars(select(Webhook.secret)).one()
    assert secret not in stored

    chosen = webhook(acme_admin, URL, secret="a-secret-of-my-own!")
    assert chosen["secret"] == "a-secret-of-my-own!"


def test_tenant_admins_see_and_change_their_subtrees_webhooks_only(
    db: Database, admin: Api, tree: dict
) -> None:
    acme_admin, globex_admin = tree["acme_admin"], tree["globex_admin"]
    team_hook = webhook(acme_admin, URL, tenant_id=tree["team"])
    path = f"/webhooks/{team_hook['id']}"

    assert globex_admin.ok(globex_admin.get("/webhooks"))["items"] == []
    for answer in (
        globex_admin.get(path),
        globex_admin.patch(path, {"enabled": False}),
        globex_admin.delete(path),
        globex_admin.get(f"{path}/deliveries"),
    ):
        assert answer.status_code == 404 and answer.json()["code"] == "not-found"
    assert (
        globex_admin.post("/webhooks", {"url": URL, "tenant_id": tree["acme"]}).status_code == 404
    )
    assert (
        acme_admin.post("/webhooks", {"url": URL, "tenant_id": tree["globex"]}).status_code == 404
    )

    alice = tree["alice"]  # a member: webhooks are its administrators' business
    assert alice.ok(alice.get("/webhooks"))["items"] == []
    assert alice.get(path).status_code == 404
    assert alice.post("/webhooks", {"url": URL}).status_code == 403

    listed = admin.ok(admin.get("/webhooks", params={"tenant_id": tree["team"]}))["items"]
    assert [w["id"] for w in listed] == [team_hook["id"]]
    assert acme_admin.ok(acme_admin.patch(path, {"enabled": False}))["enabled"] is False

    acme_admin.ok(acme_admin.patch(path, {"enabled": True}))
    tell(db, "order.approved", tree["team"])
    assert len(outbox(db)) == 1
    assert acme_admin.delete(path).status_code == 204
    assert acme_admin.get(path).status_code == 404
    assert outbox(db) == []  # its deliveries went with it


def test_null_and_bad_updates_are_refused(tree: dict) -> None:
    acme_admin = tree["acme_admin"]
    path = f"/webhooks/{webhook(acme_admin, URL)['id']}"
    assert acme_admin.patch(path, {"url": "gopher://x"}).status_code == 422
    assert acme_admin.patch(path, {"secret": "x" * 20}).status_code == 422
    refused = acme_admin.patch(path, {"url": None})
    assert refused.status_code == 400 and refused.json()["code"] == "invalid-field"
