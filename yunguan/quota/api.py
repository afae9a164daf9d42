"""REST: /quotas — the quota tree, limits, dry runs and reservations."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from yunguan.core.api import Filter, ResourceId, problem_responses
from yunguan.core.deps import AppSettings, DbSession
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
    return Page(items=service.describe(session, rows), next_cursor=cursor)


@router.post("/quotas/dry-run", response_model=schemas.CheckOut, name="quota.dry-run")
def dry_run(session: DbSession, principal: CurrentPrincipal, body: schemas.CheckRequest):
    """Would these amounts be admitted at the tenant now? Changes nothing."""
    return service.dry_run(session, principal, body.tenant_id, body.amounts)


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
    responses={**problem_responses(409), 202: {"description": "pending a reclaim"}},
)
def reserve(
    session: DbSession,
    principal: CurrentPrincipal,
    body: schemas.ReservationCreate,
    response: Response,
    settings: AppSettings,
):
    reservation = service.reserve_by_request(session, principal, body, settings)
    if reservation.state == "pending":
        response.status_code = 202
    return reservation


@router.get("/quotas/reclaims", response_model=Page[schemas.ReclaimOut])
def list_reclaims(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    tenant_id: Filter = None,
    claim_id: Filter = None,
    state: Filter = None,
):
    """Notices to workloads that must give borrowed capacity back."""
    rows, cursor = service.list_reclaims(
        session, principal, page, tenant_id=tenant_id, claim_id=claim_id, state=state
    )
    return Page(items=[schemas.ReclaimOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post("/quotas/reclaims/run", name="quota.reclaim", summary="Carry out due reclaims now")
def run_reclaims(session: DbSession, principal: CurrentPrincipal) -> dict[str, int]:
    return {"admitted": service.run_reclaims(session, principal)}


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
    return service.describe(session, service.get_nodes(session, principal, tenant_id))


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
    node = service.configure(session, principal, tenant_id, body)
    return service.describe(session, [node])[0]
