"""Email through a real SMTP server (aiosmtpd on 127.0.0.1): one message per recipient with
an address, sent after the transaction, and none queued while SMTP is not configured."""

from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from tests.notifications.conftest import free_port, outbox, tell, user_with_email
from tests.support.api import Api
from yunguan.core.config import Settings
from yunguan.core.db import Database
from yunguan.notifications import delivery
from yunguan.notifications import service as notifications


class Mailbox:
    """The SMTP server's handler: keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((envelope.rcpt_tos, message))
        return "250 Message accepted"


@pytest.fixture
def mailbox(settings: Settings, app) -> Iterator[tuple[Mailbox, Settings]]:
    """A running SMTP server, and the app's settings with email on and pointing at it."""
    handler, port = Mailbox(), free_port()
    server = Controller(handler, hostname="127.0.0.1", port=port)
    server.start()
    with_email = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_from": "cloud@yunguan.test",
            "public_url": "https://cloud.example.com",
        }
    )
    notifications.configure(with_email)
    yield handler, with_email
    notifications.configure(settings)
    server.stop()


def test_each_recipient_with_an_address_gets_one_message(
    db: Database, admin: Api, tree: dict, mailbox: tuple[Mailbox, Settings]
) -> None:
    received, settings = mailbox
    carol = user_with_email(admin, tree["team"], "carol", "carol@acme.test")
    users = [carol["id"], tree["alice"].me["id"]]  # alice has no address: inbox only
    tell(
        db,
        "order.approved",
        tree["team"],
        users,
        subject="Order ord-1 approved",
        body="Your order is on its way.",
        link="/orders/ord-1",
    )
    assert received.messages == []  # nothing is sent by notify itself

    assert delivery.deliver_due(db, settings) == 1
    ((recipients, message),) = received.messages
    assert recipients == ["carol@acme.test"]
    assert message["To"] == "carol@acme.test" and message["From"] == "cloud@yunguan.test"
    assert message["Subject"] == "Order ord-1 approved"
    text = message.get_content()
    assert "Your order is on its way." in text
    assert "https://cloud.example.com/orders/ord-1" in text
    (sent,) = outbox(db)
    assert (sent.channel, sent.state, sent.attempts) == ("email", "sent", 1)
    assert message["Message-ID"] == f"<{sent.id}@yunguan>"
    assert delivery.deliver_due(db, settings) == 0 and len(received.messages) == 1

    listed = admin.ok(admin.get("/notification-deliveries", params={"channel": "email"}))
    assert [(d["recipient"], d["state"]) for d in listed["items"]] == [("carol@acme.test", "sent")]
    refused = tree["acme_admin"].get("/notification-deliveries")
    assert refused.status_code == 403


def test_a_rolled_back_transaction_sends_nothing(
    db: Database, admin: Api, tree: dict, mailbox: tuple[Mailbox, Settings]
) -> None:
    received, settings = mailbox
    dave = user_with_email(admin, tree["team"], "dave", "dave@acme.test")
    with pytest.raises(RuntimeError), db.session() as session:
        notifications.notify(
            session,
            event="order.approved",
            tenant_id=tree["team"],
            user_ids=[dave["id"]],
            subject="never",
            body="",
        )
        raise RuntimeError("the caller's transaction fails")
    assert outbox(db) == []
    assert delivery.deliver_due(db, settings) == 0 and received.messages == []


def test_without_smtp_no_email_is_queued(db: Database, admin: Api, tree: dict) -> None:
    erin = user_with_email(admin, tree["team"], "erin", "erin@acme.test")
    tell(db, "order.approved", tree["team"], [erin["id"]])
    assert outbox(db) == []
    assert admin.ok(admin.get("/notification-deliveries"))["items"] == []
