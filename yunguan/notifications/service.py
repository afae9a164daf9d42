"""Notifications: ``notify`` (how every domain tells users and other systems that something
happened), each user's inbox, and tenants' webhooks. ``notify`` writes inside the caller's
transaction, as an outbox: inbox rows, plus email and webhook deliveries that
``delivery.deliver_due`` sends once that transaction has committed. The only code that
writes these tables, besides ``delivery`` recording what sending did."""

from collections.abc import Mapping, Sequence
from contextlib import suppress
from secrets import token_urlsafe
from typing import Any
from urllib.parse import urlsplit

from pydantic_core import to_jsonable_python
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from yunguan.core import audit, secrets
from yunguan.core.clock import now
from yunguan.core.config import Settings, get_settings
from yunguan.core.errors import NotFound, Unprocessable
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams, paginate, where_equal
from yunguan.identity import service as identity
from yunguan.identity.crud import apply_changes
from yunguan.identity.models import User
from yunguan.identity.scope import (
    SYSTEM,
    Principal,
    ancestors,
    get_visible,
    get_writable,
    list_visible,
    require,
)
from yunguan.notifications import channels
from yunguan.notifications.models import Delivery, Notification, Webhook
from yunguan.notifications.schemas import WebhookCreate, WebhookUpdate

READ, WRITE = "webhook:read", "webhook:write"
DELIVERIES = "notification:deliveries"  # every delivery, email included: the platform's

_settings: Settings | None = None


def configure(settings: Settings) -> None:
    """Decide with these settings (the app's) rather than the environment's whether
    ``notify`` queues email."""
    global _settings
    _settings = settings


def email_enabled() -> bool:
    return (_settings or get_settings()).smtp_host is not None


def _check_target(url: str | None) -> None:
    """Refuse at once a webhook whose host is a non-public address (or ``localhost``)
    unless the platform allows private targets; a name is checked where it resolves, at
    each delivery."""
    if url is None or (_settings or get_settings()).webhook_private_targets:
        return
    host = urlsplit(url).hostname or ""
    try:
        private = not channels.is_public(host)
    except ValueError:  # a name
        private = host == "localhost" or host.endswith(".localhost")
    if private:
        error = {"loc": ["body", "url"], "msg": "not a public address", "type": "private-target"}
        raise Unprocessable(
            f"url: {host} is not a public address; webhooks reach public hosts only here "
            "(YUNGUAN_WEBHOOK_PRIVATE_TARGETS)",
            code="private-target",
            errors=[error],
        )


# --- notify --------------------------------------------------------------------------------


def notify(
    session: Session,
    *,
    event: str,
    tenant_id: str,
    user_ids: Sequence[str],
    subject: str,
    body: str,
    data: Mapping[str, Any] | None = None,
    link: str = "",
) -> None:
    """Tell ``user_ids`` (inbox, and email when SMTP is configured) and the webhooks of
    ``tenant_id`` and its ancestors whose filter selects ``event``. Nothing is sent here:
    the deliveries are sent after the caller's transaction commits (and not if it rolls
    back). ``link`` is a portal path; unknown users are skipped."""
    if link and not (link.startswith("/") and not link.startswith("//")):
        raise ValueError(f"link must be a portal path, not {link!r}")
    at, subject = now(), " ".join(subject.split())[:255]  # one line: it is an email header
    for user in _recipients(session, user_ids):
        session.add(
            Notification(
                id=new_id("ntf"),
                user_id=user.id,
                tenant_id=tenant_id,
                event=event,
                subject=subject,
                body=body,
                link=link,
                created_at=at,
            )
        )
        if user.email and user.state == "active" and email_enabled():
            message = {"subject": subject, "body": body, "link": link}
            _queue(session, "email", tenant_id, event, message, recipient=user.email)
    content = {"event": event, "occurred_at": at.isoformat(), "tenant_id": tenant_id}
    content |= {"subject": subject, "data": to_jsonable_python(dict(data or {}))}
    for webhook in _subscribed(session, tenant_id, event):
        _queue(session, "webhook", tenant_id, event, content, webhook_id=webhook.id)


def _queue(
    session: Session, channel: str, tenant_id: str, event: str, content: dict, **to: str
) -> None:
    delivery_id = new_id("dlv")
    payload = {"id": delivery_id, **content} if channel == "webhook" else content
    session.add(
        Delivery(
            id=delivery_id,
            channel=channel,
            tenant_id=tenant_id,
            event=event,
            payload=payload,
            **to,
        )
    )


def _recipients(session: Session, user_ids: Sequence[str]) -> list[User]:
    """The users that exist, each once, in the order given."""
    found = []
    for user_id in dict.fromkeys(user_ids):
        with suppress(NotFound):
            found.append(identity.get_user(session, SYSTEM, user_id))
    return [user for user in found if user is not None]  # SYSTEM's own id names nobody


def matches(filters: Sequence[str], event: str) -> bool:
    """Whether a webhook's event filter selects ``event``: empty selects every event, a
    name itself, ``prefix.*`` (or ``*``) every event that starts so."""
    if not filters:
        return True
    return any(f == event or (f.endswith("*") and event.startswith(f[:-1])) for f in filters)


def _subscribed(session: Session, tenant_id: str, event: str) -> list[Webhook]:
    """Enabled webhooks of the tenant and its ancestors whose filter selects ``event``."""
    path = identity.tenant_paths(session, [tenant_id]).get(tenant_id, f"/{tenant_id}/")
    owners = ancestors(path)
    stmt = select(Webhook).where(Webhook.tenant_id.in_(owners), Webhook.enabled.is_(True))
    return [w for w in session.scalars(stmt.order_by(Webhook.id)) if matches(w.events, event)]


# --- the inbox (a user's own; nobody else's, whatever their roles) -------------------------


def _mine(principal: Principal) -> Any:
    return select(Notification).where(Notification.user_id == principal.user_id)


def list_inbox(
    session: Session, principal: Principal, page: PageParams, unread: bool | None = None
) -> tuple[list[Notification], str | None]:
    """Newest first; ``unread`` True: only unread ones, False: only read ones."""
    stmt = _mine(principal)
    if unread is not None:
        stmt = stmt.where(
            Notification.read_at.is_(None) if unread else Notification.read_at.is_not(None)
        )
    return paginate(session, stmt, Notification.id, page, newest_first=True)


def get_notification(session: Session, principal: Principal, notification_id: str) -> Notification:
    found = session.scalars(_mine(principal).where(Notification.id == notification_id)).first()
    if found is None:
        raise NotFound(f"notification {notification_id} not found")
    return found


def mark(session: Session, principal: Principal, notification_id: str, action: str) -> Notification:
    """``read`` (keeps the first reading's time) or ``unread``."""
    notification = get_notification(session, principal, notification_id)
    audit.note(target_type="notification", target_id=notification.id)
    if action == "unread":
        notification.read_at = None
    elif notification.read_at is None:
        notification.read_at = now()
    return notification


def mark_all_read(session: Session, principal: Principal) -> int:
    marked = session.execute(
        update(Notification)
        .where(Notification.user_id == principal.user_id, Notification.read_at.is_(None))
        .values(read_at=now())
    )
    return marked.rowcount or 0


def unread_count(session: Session, principal: Principal) -> int:
    return session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == principal.user_id, Notification.read_at.is_(None))
    )


# --- webhooks (tenant resources: webhook:read / webhook:write) -----------------------------


def list_webhooks(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_visible(session, principal, Webhook, READ, page, **filters)


def get_webhook(session: Session, principal: Principal, webhook_id: str) -> Webhook:
    return get_visible(session, Webhook, webhook_id, principal, READ)


def create_webhook(
    session: Session, principal: Principal, data: WebhookCreate
) -> tuple[Webhook, str]:
    """The webhook and its secret, which nothing shows again."""
    tenant = identity.tenant_for_new_resource(
        session, principal, data.tenant_id or principal.tenant_id
    )
    require(principal, WRITE)
    _check_target(data.url)
    secret = data.secret or token_urlsafe(32)
    webhook = Webhook(
        id=new_id("wh"),
        tenant_id=tenant.id,
        url=data.url,
        events=sorted(set(data.events)),
        enabled=data.enabled,
        description=data.description,
        secret=secrets.seal({"secret": secret}),
    )
    session.add(webhook)
    session.flush()
    audit.note(target_type="webhook", target_id=webhook.id, tenant_id=tenant.id)
    return webhook, secret


def update_webhook(
    session: Session, principal: Principal, webhook_id: str, data: WebhookUpdate
) -> Webhook:
    webhook = get_writable(session, Webhook, webhook_id, principal, "webhook")
    audit.note(target_type="webhook", target_id=webhook.id, tenant_id=webhook.tenant_id)
    _check_target(data.url)
    changes = apply_changes(webhook, data)
    if "events" in changes:
        webhook.events = sorted(set(webhook.events))
    return webhook


def delete_webhook(session: Session, principal: Principal, webhook_id: str) -> None:
    """The webhook and its deliveries, sent or not."""
    webhook = get_writable(session, Webhook, webhook_id, principal, "webhook")
    audit.note(target_type="webhook", target_id=webhook.id, tenant_id=webhook.tenant_id)
    session.delete(webhook)


# --- deliveries ----------------------------------------------------------------------------


def list_webhook_deliveries(
    session: Session, principal: Principal, webhook_id: str, page: PageParams
) -> tuple[list[Delivery], str | None]:
    """A visible webhook's deliveries, newest first."""
    get_webhook(session, principal, webhook_id)
    stmt = select(Delivery).where(Delivery.webhook_id == webhook_id)
    return paginate(session, stmt, Delivery.id, page, newest_first=True)


def list_deliveries(
    session: Session, principal: Principal, page: PageParams, **filters: Any
) -> tuple[list[Delivery], str | None]:
    """Every delivery (email ones name users' addresses): platform administrators only."""
    require(principal, DELIVERIES)
    stmt = where_equal(select(Delivery), Delivery, **filters)
    return paginate(session, stmt, Delivery.id, page, newest_first=True)
