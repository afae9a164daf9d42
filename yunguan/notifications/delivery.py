"""Sending the outbox. Each due delivery is claimed in a short transaction of its own — one
conditional UPDATE moves it to ``sending`` and pushes ``next_attempt_at`` to the end of a
lease, so of two workers only one gets it — then sent outside any transaction, then its
outcome recorded. A failure is retried with exponential backoff until ``MAX_ATTEMPTS``; a
worker that dies while sending leaves the delivery due again when its lease ends (so a
receiver may, rarely, see a delivery twice: ``X-Yunguan-Delivery`` tells)."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import or_, select, update

from yunguan.core import secrets
from yunguan.core.clock import now
from yunguan.core.config import Settings
from yunguan.core.db import Database
from yunguan.core.errors import Problem
from yunguan.core.ids import new_id
from yunguan.notifications import channels
from yunguan.notifications.models import Delivery, Webhook

MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
LEASE = timedelta(minutes=5)
"""How long a claimed delivery is its worker's; far longer than a send may take."""
ACTIVE = ("pending", "sending")
log = structlog.get_logger("yunguan.notifications")
FAILURES = (OSError, httpx.HTTPError, channels.DeliveryFailed, Problem)
"""What a send may fail with: network and protocol errors (smtplib's are OSErrors), a
refusal, a webhook secret that cannot be decrypted."""


@dataclass(frozen=True)
class Claimed:
    """A delivery one worker holds, with what sending it takes."""

    id: str
    claim: str
    channel: str
    event: str
    recipient: str
    payload: dict[str, Any]
    attempts: int
    url: str = ""
    sealed_secret: str = ""


def backoff(attempts: int) -> timedelta:
    """How long after its ``attempts``-th failed attempt a delivery is tried again: 30 s,
    doubling each time, at most an hour."""
    return min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY)


def deliver_due(database: Database, settings: Settings, limit: int = 100) -> int:
    """Send up to ``limit`` due deliveries; returns how many were sent."""
    sent = 0
    for delivery_id in _due(database, limit):
        claimed = _claim(database, delivery_id)
        if claimed is None:  # another worker got it first
            continue
        error = _send(claimed, settings)
        _record(database, claimed, error)
        sent += error is None
    return sent


def _due(database: Database, limit: int) -> list[str]:
    """Deliveries whose time has come, oldest first; a disabled webhook's wait."""
    with database.session(write=False) as session:
        stmt = (
            select(Delivery.id)
            .outerjoin(Webhook, Webhook.id == Delivery.webhook_id)
            .where(
                Delivery.state.in_(ACTIVE),
                Delivery.next_attempt_at <= now(),
                or_(Delivery.webhook_id.is_(None), Webhook.enabled.is_(True)),
            )
            .order_by(Delivery.next_attempt_at)
            .limit(limit)
        )
        return list(session.scalars(stmt))


def _claim(database: Database, delivery_id: str) -> Claimed | None:
    at, claim = now(), new_id("claim")
    with database.session() as session:
        delivery = session.scalars(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.state.in_(ACTIVE),
                Delivery.next_attempt_at <= at,
            )
            .values(
                state="sending",
                claim=claim,
                attempts=Delivery.attempts + 1,
                next_attempt_at=at + LEASE,
            )
            .returning(Delivery)
        ).one_or_none()
        if delivery is None:
            return None
        webhook = session.get(Webhook, delivery.webhook_id) if delivery.webhook_id else None
        return Claimed(
            id=delivery.id,
            claim=claim,
            channel=delivery.channel,
            event=delivery.event,
            recipient=delivery.recipient,
            payload=delivery.payload,
            attempts=delivery.attempts,
            url=webhook.url if webhook else "",
            sealed_secret=webhook.secret if webhook else "",
        )


def _send(claimed: Claimed, settings: Settings) -> str | None:
    """None when the other side took it, else why not."""
    try:
        if claimed.channel == "email":
            channels.send_email(settings, claimed.id, claimed.recipient, claimed.payload)
        else:
            secret = secrets.unseal(claimed.sealed_secret)["secret"]
            public_only = not settings.webhook_private_targets
            channels.post_webhook(
                claimed.url, secret, claimed.id, claimed.event, claimed.payload, public_only
            )
    except FAILURES as exc:
        return f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a bug or a bad address must not keep the delivery claimed
        log.exception("delivery-failed", delivery_id=claimed.id)
        return f"{type(exc).__name__}: {exc}"
    return None


def _record(database: Database, claimed: Claimed, error: str | None) -> None:
    """Sent, or failed for good after ``MAX_ATTEMPTS``, or due again after the backoff;
    only while the claim is still this worker's."""
    at = now()
    if error is None:
        outcome: dict[str, Any] = {"state": "sent", "sent_at": at, "last_error": ""}
    elif claimed.attempts >= MAX_ATTEMPTS:
        outcome = {"state": "failed", "last_error": error[:1024]}
    else:
        retry_at = at + backoff(claimed.attempts)
        outcome = {"state": "pending", "next_attempt_at": retry_at, "last_error": error[:1024]}
    with database.session() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == claimed.id, Delivery.claim == claimed.claim)
            .values(claim=None, **outcome)
        )
