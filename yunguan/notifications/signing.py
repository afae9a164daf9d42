"""Webhook signatures: ``X-Yunguan-Signature: sha256=<hex>``, the HMAC-SHA256 of
``{timestamp}.{raw body}`` under the webhook's secret, with the timestamp (Unix seconds) in
``X-Yunguan-Timestamp``. Receivers check both with :func:`verify`."""

import hashlib
import hmac

from yunguan.core.clock import now

SCHEME = "sha256="
MAX_AGE_SECONDS = 300


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Yunguan-Signature`` value of ``body`` sent at ``timestamp``."""
    message = f"{timestamp}.".encode() + body
    return SCHEME + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: int | str,
    body: bytes,
    signature: str,
    *,
    max_age_seconds: int | None = MAX_AGE_SECONDS,
) -> bool:
    """Whether ``signature`` is ``body``'s under ``secret`` and, unless ``max_age_seconds``
    is None, ``timestamp`` is that recent (a replayed old call fails)."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if max_age_seconds is not None and abs(now().timestamp() - sent_at) > max_age_seconds:
        return False
    return hmac.compare_digest(sign(secret, sent_at, body).encode(), signature.encode())
