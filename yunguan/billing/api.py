"""REST: /usage-events — what was metered (a tenant sees its subtree's)."""

from datetime import datetime
from typing import Any

from fastapi import APIRouter

from yunguan.billing import service
from yunguan.core.api import Filter, problem_responses
from yunguan.core.deps import DbSession
from yunguan.core.pagination import Page, Pages
from yunguan.core.types import Output
from yunguan.identity.deps import CurrentPrincipal

router = APIRouter(tags=["usage-events"], responses=problem_responses(400, 401, 422))


class UsageEventOut(Output):
    id: str
    source: str
    event_id: str
    tenant_id: str
    resource_type: str
    resource_id: str
    meter: str
    action: str
    attributes: dict[str, Any]
    occurred_at: datetime


@router.get("/usage-events", response_model=Page[UsageEventOut], name="usage-event.list")
def list_usage_events(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    tenant_id: Filter = None,
    resource_id: Filter = None,
    meter: Filter = None,
):
    rows, cursor = service.list_usage_events(
        session, principal, page, tenant_id=tenant_id, resource_id=resource_id, meter=meter
    )
    return Page(items=[UsageEventOut.model_validate(r) for r in rows], next_cursor=cursor)
