"""REST: /quotas — the quota tree, limits, dry runs and reservations."""

from typing import Annotated

from fastapi import APIRouter, Query

from yunguan.core.api import Filter, ResourceId, problem_responses
from yunguan.core.deps import DbSession
from yunguan.core.pagination import Page, Pages
from yunguan.identity.deps import CurrentPrincipal
from yunguan.quota import schemas, service

router = APIRouter(tags=["quotas"], responses=problem_responses(400, 401, 403, 404, 422))


@router.get("/quotas", response_model=Page[schemas.QuotaNodeOut])
def list_quotas(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    resource: Annotated[schemas.Resource, Query()],
    parent_id: Filter = None,
    tenant_id: Filter = None,
):
    rows, cursor = service.list_nodes(
        session, principal, resource, page, parent_id=parent_id, tenant_id=tenant_id
    )
    return Page(items=[schemas.QuotaNodeOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post("/quotas/dry-run", response_model=schemas.CheckOut, name="quota.dry-run")
def dry_run(session: DbSession, principal: CurrentPrincipal, body: schemas.CheckRequest):
    """Would these amounts be admitted at the tenant now? Changes nothing."""
    verdicts = service.dry_run(session, principal, body.tenant_id, body.amounts)
    return {"admitted": all(v["admitted"] for v in verdicts), "verdicts": verdicts}


@router.get("/quotas/reservations", response_model=Page[schemas.ReservationOut])
def list_reservations(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    tenant_id: Filter = None,
    state: Filter = None,
):
    rows, cursor = service.list_reservations(
        session, principal, page, tenant_id=tenant_id, state=state
    )
    return Page(items=[schemas.ReservationOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/quotas/reservations",
    response_model=schemas.ReservationOut,
    status_code=201,
    name="quota.reserve",
    responses=problem_responses(409),
)
def reserve(session: DbSession, principal: CurrentPrincipal, body: schemas.ReservationCreate):
    return service.reserve_by_request(session, principal, body)


@router.post(
    "/quotas/reservations/{reservation_id}/actions",
    response_model=schemas.ReservationOut | None,
    name="quota.reservation",
)
def reservation_action(
    session: DbSession,
    principal: CurrentPrincipal,
    reservation_id: ResourceId,
    body: schemas.ReservationAction,
):
    return service.reservation_action(session, principal, reservation_id, body.action)


@router.get("/quotas/{tenant_id}", response_model=list[schemas.QuotaNodeOut])
def get_quotas(session: DbSession, principal: CurrentPrincipal, tenant_id: ResourceId):
    return service.get_nodes(session, principal, tenant_id)


@router.patch(
    "/quotas/{tenant_id}",
    response_model=schemas.QuotaNodeOut,
    name="quota.update",
    responses=problem_responses(409),
)
def set_quota(
    session: DbSession,
    principal: CurrentPrincipal,
    tenant_id: ResourceId,
    body: schemas.QuotaChange,
):
    return service.configure(session, principal, tenant_id, body)
