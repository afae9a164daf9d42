"""REST: /notifications (the caller's inbox), /webhooks (with their deliveries) and
/notification-deliveries (every delivery, for platform administrators)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from yunguan.core.api import Filter, ResourceId, problem_responses
from yunguan.core.deps import DbSession
from yunguan.core.pagination import Page, Pages
from yunguan.identity.crud import Collection, add_collection
from yunguan.identity.deps import CurrentPrincipal
from yunguan.notifications import schemas
from yunguan.notifications import service as notifications
from yunguan.notifications.models import CHANNELS, DELIVERY_STATES

router = APIRouter(responses=problem_responses(400, 401, 403, 404, 422))

# --- the inbox -----------------------------------------------------------------------------

INBOX = ["notifications"]
Out = schemas.NotificationOut


@router.get("/notifications", response_model=Page[Out], tags=INBOX, name="notification.list")
def list_notifications(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    unread: Annotated[bool | None, Query(description="true: unread only; false: read only")] = None,
):
    """The caller's own notifications, newest first."""
    rows, cursor = notifications.list_inbox(session, principal, page, unread)
    return Page(items=[Out.model_validate(r) for r in rows], next_cursor=cursor)


@router.get(
    "/notifications/summary",
    response_model=schemas.InboxSummary,
    tags=INBOX,
    name="notification.summary",
)
def inbox_summary(session: DbSession, principal: CurrentPrincipal):
    return {"unread": notifications.unread_count(session, principal)}


@router.post(
    "/notifications/actions",
    response_model=schemas.InboxMarked,
    tags=INBOX,
    name="notification.read-all",
)
def inbox_action(session: DbSession, principal: CurrentPrincipal, body: schemas.InboxAction):
    """``read-all``: mark every unread notification read; answers how many were."""
    return {"marked": notifications.mark_all_read(session, principal)}


@router.get("/notifications/{item_id}", response_model=Out, tags=INBOX, name="notification.get")
def get_notification(session: DbSession, principal: CurrentPrincipal, item_id: ResourceId):
    return notifications.get_notification(session, principal, item_id)


@router.post(
    "/notifications/{item_id}/actions",
    response_model=Out,
    tags=INBOX,
    name="notification.action",
)
def notification_action(
    session: DbSession,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    body: schemas.NotificationAction,
):
    """``read`` or ``unread``."""
    return notifications.mark(session, principal, item_id, body.action)


# --- webhooks ------------------------------------------------------------------------------

add_collection(
    router,
    Collection(
        "webhook",
        "/webhooks",
        schemas.WebhookOut,
        schemas.WebhookCreate,
        schemas.WebhookUpdate,
        notifications.list_webhooks,
        None,
        notifications.get_webhook,
        notifications.update_webhook,
        notifications.delete_webhook,
        filters=("tenant_id",),
    ),
)
WEBHOOKS = ["webhooks"]
Deliveries = Page[schemas.DeliveryOut]


@router.post(
    "/webhooks",
    response_model=schemas.WebhookCreated,
    status_code=201,
    tags=WEBHOOKS,
    name="webhook.create",
    responses=problem_responses(409),
)
def create_webhook(session: DbSession, principal: CurrentPrincipal, body: schemas.WebhookCreate):
    """The answer holds the signing secret: the only time it is shown."""
    webhook, secret = notifications.create_webhook(session, principal, body)
    shown = schemas.WebhookOut.model_validate(webhook).model_dump()
    return schemas.WebhookCreated(**shown, secret=secret)


@router.get(
    "/webhooks/{item_id}/deliveries",
    response_model=Deliveries,
    tags=WEBHOOKS,
    name="webhook.deliveries",
)
def webhook_deliveries(
    session: DbSession, principal: CurrentPrincipal, item_id: ResourceId, page: Pages
):
    """The webhook's deliveries, newest first."""
    rows, cursor = notifications.list_webhook_deliveries(session, principal, item_id, page)
    return Page(items=[schemas.DeliveryOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get(
    "/notification-deliveries",
    response_model=Deliveries,
    tags=["notification-deliveries"],
    name="notification-delivery.list",
)
def list_deliveries(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    channel: Literal[CHANNELS] | None = None,  # type: ignore[valid-type]
    state: Literal[DELIVERY_STATES] | None = None,  # type: ignore[valid-type]
    tenant_id: Filter = None,
):
    """Every email and webhook delivery, newest first: platform administrators only."""
    filters = {"channel": channel, "state": state, "tenant_id": tenant_id}
    rows, cursor = notifications.list_deliveries(session, principal, page, **filters)
    return Page(items=[schemas.DeliveryOut.model_validate(r) for r in rows], next_cursor=cursor)
