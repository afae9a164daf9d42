from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from yunguan.core.types import Amount, Identifier, Input, Money, Name, Output, Text
from yunguan.orders.models import ORDER_STATES, SERVICE_STATES, TASK_STATES

OrderState = Literal[ORDER_STATES]  # type: ignore[valid-type]
TaskState = Literal[TASK_STATES]  # type: ignore[valid-type]
ServiceState = Literal[SERVICE_STATES]  # type: ignore[valid-type]
UserIds = Annotated[list[Identifier], Field(max_length=20)]
Months = Annotated[int, Field(ge=0, le=120, description="0: pay-as-you-go, no expiry")]


class Stage(Input):
    """One step of an approval chain: any one of ``approvers`` decides it. Left pending
    for ``timeout_hours``, it escalates to ``escalate_to``."""

    name: Name
    approvers: Annotated[UserIds, Field(min_length=1)]
    min_cost: Money = Field(Decimal(0), description="applies to orders costing at least this")
    timeout_hours: Annotated[int, Field(ge=1, le=24 * 90)] | None = None
    escalate_to: UserIds = []

    @model_validator(mode="after")
    def _escalation_needs_timeout(self) -> "Stage":
        if self.escalate_to and self.timeout_hours is None:
            raise ValueError("escalate_to needs timeout_hours")
        return self


Stages = Annotated[list[Stage], Field(min_length=1, max_length=10)]


class PolicyCreate(Input):
    tenant_id: Identifier = Field(description="the subtree whose orders the chain approves")
    name: Name
    stages: Stages


class PolicyUpdate(Input):
    name: Name | None = None
    stages: Stages | None = None


class PolicyOut(Output):
    id: str
    tenant_id: str
    name: str
    stages: list[Stage]
    created_at: datetime
    updated_at: datetime


class OrderCreate(Input):
    item_id: Identifier
    name: Name
    values: Annotated[dict[str, Any], Field(max_length=100)] = {}
    term_months: Months = 0
    auto_renew: bool = False
    tenant_id: Identifier | None = Field(None, description="default: the caller's tenant")

    @model_validator(mode="after")
    def _renew_needs_term(self) -> "OrderCreate":
        if self.auto_renew and not self.term_months:
            raise ValueError("auto_renew needs term_months (pay-as-you-go never expires)")
        return self


class OrderAction(Input):
    """``approve``/``reject`` (an approver of the current stage), ``delegate`` (to
    ``user_id``), ``comment``, ``cancel`` (while pending approval)."""

    action: Literal["approve", "reject", "delegate", "comment", "cancel"]
    comment: Text = ""
    user_id: Identifier | None = Field(None, description="delegate: who decides instead")

    @model_validator(mode="after")
    def _delegate_needs_user(self) -> "OrderAction":
        if (self.action == "delegate") != (self.user_id is not None):
            raise ValueError("user_id is given with delegate, and only with delegate")
        if self.action == "comment" and not self.comment.strip():
            raise ValueError("a comment needs text")
        return self


class TaskOut(Output):
    id: str
    order_id: str
    stage: int
    stage_name: str
    assignee_id: str
    state: TaskState
    due_at: datetime | None
    decided_at: datetime | None
    comment: str
    created_at: datetime


class EventOut(Output):
    at: datetime
    actor: str
    kind: str
    message: str


class OrderOut(Output):
    id: str
    tenant_id: str
    requested_by: str
    kind: str
    item_id: str
    template_version_id: str
    service_instance_id: str | None
    name: str
    values: dict[str, Any]
    term_months: int
    auto_renew: bool
    cost: Amount
    state: OrderState
    stage: int
    plan: list[dict[str, Any]]
    operation_id: str | None
    error: str
    created_at: datetime
    updated_at: datetime


class OrderDetail(OrderOut):
    tasks: list[TaskOut]
    events: list[EventOut]


class SubscriptionOut(Output):
    id: str
    tenant_id: str
    service_instance_id: str
    term_months: int
    auto_renew: bool
    price_monthly: Amount
    state: str
    starts_at: datetime
    expires_at: datetime | None
    ended_at: datetime | None


class ServiceInstanceOut(Output):
    id: str
    tenant_id: str
    order_id: str
    item_id: str
    name: str
    kind: str
    state: ServiceState
    resources: list[dict[str, str]]
    external_ref: str
    release_at: datetime | None
    released_at: datetime | None
    subscription: SubscriptionOut | None = None
    created_at: datetime
    updated_at: datetime


class ServiceAction(Input):
    """Day-2: ``start``/``stop`` its instances, ``renew`` for ``months``, ``set-auto-renew``,
    ``unsubscribe`` (released now, billing ends), ``reclaim`` (the platform takes it back).
    A resize is a change order: ``POST /service-instances/{id}/change-orders``."""

    action: Literal["start", "stop", "renew", "set-auto-renew", "unsubscribe", "reclaim"]
    months: Annotated[int, Field(ge=1, le=120)] | None = None
    auto_renew: bool | None = None

    @model_validator(mode="after")
    def _arguments(self) -> "ServiceAction":
        for action, field in (("renew", "months"), ("set-auto-renew", "auto_renew")):
            if (self.action == action) != (getattr(self, field) is not None):
                raise ValueError(f"{field} is given with {action}, and only with it")
        return self


class ChangeCreate(Input):
    """Resize every instance of a service to ``flavor_id`` (they are stopped, resized and
    started again), once the change is approved."""

    flavor_id: Identifier
    comment: Text = ""
