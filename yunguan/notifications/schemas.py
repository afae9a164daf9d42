from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AnyUrl, Field, StringConstraints, UrlConstraints

from yunguan.core.types import Identifier, Input, Output, Text

EVENT_FILTER = r"^(\*|[a-z0-9_-]+(\.[a-z0-9_-]+)*(\.\*)?)$"
EventFilter = Annotated[str, StringConstraints(max_length=64, pattern=EVENT_FILTER)]
EventFilters = Annotated[
    list[EventFilter],
    Field(
        max_length=50,
        description='event names or prefixes such as "order.*"; empty: every event',
    ),
]
WebhookUrl = Annotated[
    AnyUrl,
    UrlConstraints(max_length=2048, allowed_schemes=["http", "https"], host_required=True),
    AfterValidator(str),
]
WebhookSecret = Annotated[
    str, StringConstraints(min_length=16, max_length=256, pattern=r"^[\x21-\x7e]+$")
]


class NotificationOut(Output):
    id: str
    event: str
    tenant_id: str
    subject: str
    body: str
    link: str
    created_at: datetime
    read_at: datetime | None


class NotificationAction(Input):
    action: Literal["read", "unread"]


class InboxAction(Input):
    """``read-all``: mark every unread notification of the caller read."""

    action: Literal["read-all"]


class InboxSummary(Output):
    unread: int


class InboxMarked(Output):
    marked: int


class WebhookCreate(Input):
    url: WebhookUrl = Field(description="http or https")
    events: EventFilters = []
    enabled: bool = True
    description: Text = ""
    tenant_id: Identifier | None = Field(default=None, description="default: the caller's")
    secret: WebhookSecret | None = Field(
        default=None, description="the HMAC key (16+ printable characters); default: generated"
    )


class WebhookUpdate(Input):
    url: WebhookUrl | None = None
    events: EventFilters | None = None
    enabled: bool | None = None
    description: Text | None = None


class WebhookOut(Output):
    id: str
    tenant_id: str
    url: str
    events: list[str]
    enabled: bool
    description: str
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    """The only answer that shows the secret."""

    secret: str


class DeliveryOut(Output):
    id: str
    channel: str
    webhook_id: str | None
    recipient: str
    tenant_id: str
    event: str
    state: str
    attempts: int
    last_error: str
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None
