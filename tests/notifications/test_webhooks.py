"""Webhooks against a real HTTP receiver: who receives which events, signatures, retries
with backoff on the platform's clock, giving up, and two workers sending each call once."""

import json
import threading
from datetime import timedelta

from tests.notifications.conftest import (
    Clock,
    Receiver,
    free_port,
    outbox,
    tell,
    webhook,
)
from tests.support.api import Api
from yunguan.core.config import Settings
from yunguan.core.db import Database
from yunguan.notifications import channels, delivery
from yunguan.notifications import service as notifications
from yunguan.notifications.signing import sign, verify


def test_the_tenant_and_its_ancestors_receive_the_events_they_filter(
    db: Database, admin: Api, tree: dict
) -> None:
    url = "http://127.0.0.1:9/never-called"
    acme_admin = tree["acme_admin"]
    platform = webhook(admin, url)  # the root tenant's, every event
    acme = webhook(acme_admin, url, events=["order.*"])
    webhook(acme_admin, url, events=["order.*"], enabled=False)
    webhook(acme_admin, url, events=["subscription.expiring"])
    webhook(acme_admin, url, events=["order.approved.later"])
    webhook(tree["globex_admin"], url)  # another subtree

    tell(db, "order.approved", tree["team"])
    assert {d.webhook_id for d in outbox(db)} == {platform["id"], acme["id"]}
    assert {d.channel for d in outbox(db)} == {"webhook"}


def test_a_failing_receiver_is_retried_with_backoff_until_it_accepts(
    db: Database, settings: Settings, tree: dict, receiver: Receiver, frozen: Clock
) -> None:
    acme_admin = tree["acme_admin"]
    hook = webhook(acme_admin, receiver.url, events=["order.*"], description="fulfilment")
    data = {"order_id": "ord-1", "price": "12.50"}
    tell(db, "order.approved", tree["team"], subject="Order approved", data=data)
    (queued,) = outbox(db)
    start = frozen.now

    assert delivery.deliver_due(db, settings) == 0  # 500
    (after_one,) = outbox(db)
    assert (after_one.state, after_one.attempts) == ("pending", 1)
    assert after_one.last_error == "DeliveryFailed: HTTP 500"
    assert after_one.next_attempt_at == start + timedelta(seconds=30)

    frozen.advance(seconds=29)
    assert delivery.deliver_due(db, settings) == 0 and len(receiver.requests) == 1
    frozen.advance(seconds=1)
    assert delivery.deliver_due(db, settings) == 0 and len(receiver.requests) == 2  # 500
    (after_two,) = outbox(db)
    assert after_two.attempts == 2 and after_two.next_attempt_at == frozen.now + timedelta(
        minutes=1
    )
    frozen.advance(seconds=59)
    assert delivery.deliver_due(db, settings) == 0 and len(receiver.requests) == 2
    frozen.advance(seconds=1)
    assert delivery.deliver_due(db, settings) == 1 and len(receiver.requests) == 3

    deliveries = acme_admin.ok(acme_admin.get(f"/webhooks/{hook['id']}/deliveries"))["items"]
    assert [(d["id"], d["state"], d["attempts"]) for d in deliveries] == [(queued.id, "sent", 3)]
    assert deliveries[0]["last_error"] == "" and deliveries[0]["event"] == "order.approved"
    assert delivery.deliver_due(db, settings) == 0 and len(receiver.requests) == 3

    for call in receiver.requests:  # every attempt is the same delivery, signed anew
        headers, body = call.headers, call.body
        assert headers["X-Yunguan-Event"] == "order.approved"
        assert headers["X-Yunguan-Delivery"] == queued.id
        stamp, signature = headers["X-Yunguan-Timestamp"], headers["X-Yunguan-Signature"]
        assert verify(hook["secret"], stamp, body, signature)
        assert not verify("a-wrong-secret-of-some-length", stamp, body, signature)
        assert not verify(hook["secret"], stamp, body + b" ", signature)
    sent = json.loads(receiver.requests[-1].body)
    assert sent == {
        "id": queued.id,
        "event": "order.approved",
        "occurred_at": start.isoformat(),
        "tenant_id": tree["team"],
        "subject": "Order approved",
        "data": data,
    }


def test_signatures_expire(frozen: Clock) -> None:
    body = b'{"id": "dlv-1"}'
    stamp = str(int(frozen.now.timestamp()))
    signature = sign("secret", stamp, body)
    assert signature.startswith("sha256=") and len(signature) == len("sha256=") + 64
    assert verify("secret", stamp, body, signature)
    frozen.advance(minutes=6)
    assert not verify("secret", stamp, body, signature)  # a replay, too late
    assert verify("secret", stamp, body, signature, max_age_seconds=None)
    assert not verify("secret", "yesterday", body, signature)
    assert not verify("secret", stamp, body, "sha256=é")


def test_an_unreachable_endpoint_fails_after_the_last_attempt(
    db: Database, settings: Settings, admin: Api, tree: dict, frozen: Clock
) -> None:
    webhook(tree["acme_admin"], f"http://127.0.0.1:{free_port()}/gone")
    tell(db, "order.approved", tree["acme"])
    waits = []
    for _attempt in range(delivery.MAX_ATTEMPTS):
        assert delivery.deliver_due(db, settings) == 0
        (row,) = outbox(db)
        waits.append(row.next_attempt_at - frozen.now)
        frozen.now = row.next_attempt_at
    assert waits[:-1] == [timedelta(seconds=30 * 2**n) for n in range(7)]
    (row,) = outbox(db)
    assert (row.state, row.attempts) == ("failed", delivery.MAX_ATTEMPTS)
    assert row.last_error.startswith("ConnectError")
    frozen.advance(days=1)
    assert delivery.deliver_due(db, settings) == 0
    assert outbox(db)[0].attempts == delivery.MAX_ATTEMPTS


def test_backoff_is_capped() -> None:
    assert delivery.backoff(1) == timedelta(seconds=30)
    assert delivery.backoff(20) == delivery.LONGEST_RETRY


def test_two_workers_send_each_delivery_once(
    db: Database, settings: Settings, tree: dict, accepting: Receiver
) -> None:
    webhook(tree["acme_admin"], accepting.url)
    for n in range(20):
        tell(db, "order.approved", tree["team"], subject=f"order {n}")
    start, counts = threading.Barrier(2), []

    def worker() -> None:
        start.wait()
        counts.append(delivery.deliver_due(db, settings))

    workers = [threading.Thread(target=worker) for _ in range(2)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(60)
    sent = [call.headers["X-Yunguan-Delivery"] for call in accepting.requests]
    assert sorted(sent) == sorted(d.id for d in outbox(db))
    assert len(sent) == 20 and sum(counts) == 20
    assert {(d.state, d.attempts) for d in outbox(db)} == {("sent", 1)}


def test_a_disabled_webhooks_deliveries_wait_for_it(
    db: Database, settings: Settings, tree: dict, accepting: Receiver
) -> None:
    acme_admin = tree["acme_admin"]
    hook = webhook(acme_admin, accepting.url)
    tell(db, "order.approved", tree["team"])
    acme_admin.ok(acme_admin.patch(f"/webhooks/{hook['id']}", {"enabled": False}))
    tell(db, "order.approved", tree["team"])  # a disabled webhook is not queued anything new
    assert delivery.deliver_due(db, settings) == 0 and accepting.requests == []
    acme_admin.ok(acme_admin.patch(f"/webhooks/{hook['id']}", {"enabled": True}))
    assert delivery.deliver_due(db, settings) == 1 and len(accepting.requests) == 1


def test_private_targets_are_refused_unless_the_platform_allows_them(
    db: Database, settings: Settings, tree: dict, accepting: Receiver
) -> None:
    """A tenant must not make the platform call into the platform's own network: a
    private or loopback host is refused when the webhook is saved, and a name that
    resolves to one at each delivery (DNS may change after the check)."""
    acme_admin = tree["acme_admin"]
    hook = webhook(acme_admin, accepting.url, events=["order.*"])  # allowed in these tests
    public_only = settings.model_copy(update={"webhook_private_targets": False})
    notifications.configure(public_only)
    try:
        for url in (
            "http://127.0.0.1:80/",
            "https://10.1.2.3/",
            "http://[::1]/",
            "http://localhost/",
            "http://[::ffff:127.0.0.1]/",  # IPv6 forms that carry a private IPv4 address
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:a9fe:a9fe::1]/",
            "http://[::ffff:0:7f00:1]/",
        ):
            refused = acme_admin.post("/webhooks", {"url": url})
            assert refused.status_code == 422 and refused.json()["code"] == "private-target", url
        changed = acme_admin.patch(f"/webhooks/{hook['id']}", {"url": "http://169.254.169.254/"})
        assert changed.status_code == 422
        tell(db, "order.approved", tree["team"])
        assert delivery.deliver_due(db, public_only) == 0
    finally:
        notifications.configure(settings)
    (held,) = outbox(db)
    assert "resolves to a non-public address (127.0.0.1)" in held.last_error
    assert accepting.requests == []
    assert delivery.deliver_due(db, settings) == 0  # due again only after the backoff


def test_a_public_target_is_reached_at_the_address_that_was_checked() -> None:
    """The connection goes to the address the check resolved (no second lookup), with the
    name kept for the Host header and for TLS (SNI and certificate)."""
    url = "https://[2001:4860:4860::8888]:8443/hooks?x=1"
    assert channels.pinned(url) == (
        url,
        {"Host": "[2001:4860:4860::8888]:8443"},
        {"sni_hostname": "2001:4860:4860::8888"},
    )
    assert channels.pinned("http://8.8.8.8/in") == ("http://8.8.8.8/in", {"Host": "8.8.8.8"}, {})
    with_user = "http://hook:pw@8.8.8.8:8080/in"  # the credentials stay in the URL only
    assert channels.pinned(with_user) == (with_user, {"Host": "8.8.8.8:8080"}, {})
