"""Sending one delivery: email through the configured SMTP server (stdlib ``smtplib``), a
webhook as a signed JSON POST. Each sender returns when the other side took it and raises
otherwise; nothing here touches the database."""

import json
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import httpx

from yunguan.core.clock import now
from yunguan.core.config import Settings
from yunguan.notifications.signing import sign

TIMEOUT_SECONDS = 5.0


class DeliveryFailed(Exception):
    """The other side answered, but did not take the delivery."""


def send_email(
    settings: Settings, delivery_id: str, recipient: str, message: dict[str, Any]
) -> None:
    """``message`` (subject, body, link) to ``recipient``. Every attempt carries the same
    Message-ID, so a server that sees a retry of a delivered message can drop it."""
    if settings.smtp_host is None:
        raise DeliveryFailed("SMTP is not configured (YUNGUAN_SMTP_HOST)")
    email = EmailMessage()
    email["From"] = settings.smtp_from
    email["To"] = recipient
    email["Subject"] = message["subject"]
    email["Date"] = format_datetime(now())
    email["Message-ID"] = f"<{delivery_id}@yunguan>"
    text = message["body"]
    if message["link"]:
        text += f"\n\n{(settings.public_url or '').rstrip('/')}{message['link']}"
    email.set_content(text)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_SECONDS) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password or "")
        smtp.send_message(email)


def post_webhook(url: str, secret: str, delivery_id: str, event: str, payload: dict) -> None:
    """POST ``payload`` as JSON, signed; any 2xx answer is success (redirects are not
    followed, and the answer's body is never read)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    timestamp = str(int(now().timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Yunguan-Webhooks",
        "X-Yunguan-Event": event,
        "X-Yunguan-Delivery": delivery_id,
        "X-Yunguan-Timestamp": timestamp,
        "X-Yunguan-Signature": sign(secret, timestamp, body),
    }
    with httpx.stream(
        "POST", url, content=body, headers=headers, timeout=TIMEOUT_SECONDS
    ) as response:
        if not response.is_success:
            raise DeliveryFailed(f"HTTP {response.status_code}")
