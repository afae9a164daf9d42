from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, computed_field

from yunguan.core.types import Identifier, Input, Label, Output
from yunguan.quota.engine import INF, guarantee
from yunguan.quota.models import RESOURCE_CLASSES

Resource = Literal[RESOURCE_CLASSES]  # type: ignore[valid-type]
Amount = Annotated[int, Field(ge=0, le=10**12)]
Amounts = Annotated[dict[Resource, Amount], Field(min_length=1, max_length=len(RESOURCE_CLASSES))]


class QuotaChange(Input):
    """Limits of one tenant for one resource class; ``null`` means unlimited (for the
    guarantee: only at the root)."""

    resource: Resource
    guarantee: Amount | None = None
    own_share: Amount = 0
    lend_limit: Amount | None = None
    borrow_limit: Amount | None = None
    cap: Amount | None = None
    weight: Annotated[int, Field(ge=1, le=1000)] = 1
    force: bool = False


class QuotaNodeOut(Output):
    tenant_id: str
    parent_id: str | None
    resource: str
    guarantee: int | None
    own_share: int
    allocated: int
    lend_limit: int | None
    borrow_limit: int | None
    cap: int | None
    weight: int
    over_quota: bool
    lending_closed: bool
    used: int
    reserved: int
    subtree_usage: int
    slack: int
    lent: int = Field(0, description="of its idle guarantee, what others use (attributed)")
    pending: int = Field(0, description="what its requests waiting for a reclaim ask for")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def borrowed(self) -> int:
        """How far the subtree is above its guarantee."""
        return max(0, self.subtree_usage - guarantee(self))  # type: ignore[arg-type]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def free(self) -> int | None:
        """The classic figure: guarantee - used - reserved - allocated to children (None
        when the guarantee is unlimited)."""
        g = guarantee(self)  # type: ignore[arg-type]
        return None if g >= INF else g - self.used - self.reserved - self.allocated

    @computed_field  # type: ignore[prop-decorator]
    @property
    def idle(self) -> int:
        """Guarantee the subtree does not use (others may borrow up to the lend limit)."""
        g = guarantee(self)  # type: ignore[arg-type]
        return 0 if g >= INF else max(0, g - self.subtree_usage)


class ReservationCreate(Input):
    tenant_id: Identifier
    amounts: Amounts
    consumer_id: Label | None = None
    ttl_seconds: Annotated[int, Field(ge=1, le=86400)] = 600
    priority: Annotated[int, Field(ge=0, le=1000)] = 0
    reclaim: bool = Field(
        False, description="if refused, take borrowed capacity back and wait (202, pending)"
    )


class ReservationAction(Input):
    action: Literal["commit", "release"]


class ReservationOut(Output):
    id: str
    tenant_id: str
    consumer_id: str | None
    amounts: dict[str, int]
    state: str
    priority: int
    expires_at: datetime | None
    created_at: datetime
    committed_at: datetime | None


class CheckRequest(Input):
    tenant_id: Identifier
    amounts: Amounts


class VerdictOut(Output):
    resource: str
    amount: int
    admitted: bool
    refused_at: str | None
    reason: str | None
    slack_after: dict[str, int]


class CheckOut(Output):
    admitted: bool
    verdicts: list[VerdictOut]
    reclaim: list[str] | None = Field(
        None, description="when not admitted: the reservations a reclaim would stop, if any"
    )


class ReclaimOut(Output):
    id: str
    victim_id: str
    claim_id: str
    tenant_id: str
    consumer_id: str | None
    amounts: dict[str, int]
    state: str
    deadline: datetime
    created_at: datetime
