"""Sending one delivery: email through the configured SMTP server (stdlib ``smtplib``), a
webhook as a signed JSON POST. Each sender returns when the other side took it and raises
otherwise; nothing here touches the database."""

import ipaddress
import json
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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


CARRYING_LAST_32_BITS = tuple(
    ipaddress.ip_network(net)
    for net in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96")
)
"""NAT64, IPv4-compatible and IPv4-translated addresses: their last 32 bits are IPv4."""


def is_public(address: str) -> bool:
    """Whether ``address`` is a public one, including the IPv4 address that an IPv6 one
    carries (mapped, 6to4, Teredo, NAT64, compatible, translated): those reach IPv4 hosts."""
    ip = ipaddress.ip_address(address)
    if not ip.is_global:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return True
    carried = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    if any(ip in net for net in CARRYING_LAST_32_BITS):
        carried.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return all(inner.is_global for inner in carried if inner is not None)


def public_address(host: str) -> str:
    """The address to reach ``host`` at (the resolver's first), which must be public, as
    every address it resolves to must be: one private answer could be the one a later
    lookup returns."""
    found = [info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)]
    hidden = [address for address in found if not is_public(address)]
    if hidden:
        raise DeliveryFailed(f"{host} resolves to a non-public address ({hidden[0]})")
    return found[0]


def _netloc(host: str, port: int | None, userinfo: str = "") -> str:
    literal = f"[{host}]" if ":" in host else host
    return f"{userinfo}{literal}{f':{port}' if port else ''}"


def pinned(url: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``url`` with its host replaced by the public address it resolves to (so the
    connection goes where the check looked), the Host header and the TLS server name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = _netloc(public_address(host), parts.port, f"{userinfo}@" if userinfo else "")
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    host_header = {"Host": _netloc(host, parts.port)}
    return urlunsplit(parts._replace(netloc=netloc)), host_header, extensions


def post_webhook(
    url: str,
    secret: str,
    delivery_id: str,
    event: str,
    payload: dict,
    public_only: bool = False,
) -> None:
    """POST ``payload`` as JSON, signed; any 2xx answer is success (redirects are not
    followed, and the answer's body is never read). ``public_only``: only to a host whose
    addresses are all public."""
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
    extensions: dict[str, Any] = {}
    if public_only:
        url, host, extensions = pinned(url)
        headers |= host
    request = {"content": body, "headers": headers, "extensions": extensions}
    with (  # a proxy from the environment would see the pinned address, not the name
        httpx.Client(timeout=TIMEOUT_SECONDS, trust_env=not public_only) as client,
        client.stream("POST", url, **request) as response,
    ):
        if not response.is_success:
            raise DeliveryFailed(f"HTTP {response.status_code}")
