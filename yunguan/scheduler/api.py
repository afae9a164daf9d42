"""REST: /placement (dry run, claims, rebalancing), /placement-policies, /placement-groups,
and the evacuation plan of a host."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from yunguan.core.api import Filter, ResourceId, problem_responses
from yunguan.core.deps import DbSession
from yunguan.core.pagination import Page, Pages
from yunguan.identity.crud import Collection, add_collection
from yunguan.identity.deps import CurrentPrincipal
from yunguan.scheduler import schemas, service

router = APIRouter(responses=problem_responses(400, 401, 403, 404, 422))


def _group_out(session, group) -> schemas.GroupOut:
    out = schemas.GroupOut.model_validate(group)
    out.host_ids = service.group_hosts(session, group.id)
    return out


add_collection(
    router,
    Collection(
        "placement-policy",
        "/placement-policies",
        schemas.PolicyOut,
        schemas.PolicyCreate,
        schemas.PolicyUpdate,
        service.list_policies,
        service.create_policy,
        service.get_policy,
        service.update_policy,
        service.delete_policy,
        filters=("zone_id", "tenant_id", "strategy"),
    ),
)


@router.post(
    "/placement/dry-run",
    response_model=schemas.PlacementOut,
    tags=["placement"],
    name="placement.dry-run",
    summary="Where a request would be placed now, without claiming anything",
)
def dry_run(session: DbSession, principal: CurrentPrincipal, body: schemas.PlacementRequest):
    return service.dry_run(session, principal, body)


@router.post(
    "/placement/claims",
    response_model=schemas.ClaimOut,
    status_code=201,
    tags=["placement"],
    name="placement.claim",
    responses=problem_responses(409),
)
def create_claim(session: DbSession, principal: CurrentPrincipal, body: schemas.ClaimCreate):
    return service.claim(session, principal, body)


@router.get("/placement/claims", response_model=Page[schemas.ClaimOut], tags=["placement"])
def list_claims(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    host_id: Filter = None,
    tenant_id: Filter = None,
    consumer_id: Filter = None,
    group_id: Filter = None,
):
    rows, cursor = service.list_claims(
        session,
        principal,
        page,
        host_id=host_id,
        tenant_id=tenant_id,
        consumer_id=consumer_id,
        group_id=group_id,
    )
    return Page(items=[schemas.ClaimOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/placement/claims/{claim_id}", response_model=schemas.ClaimOut, tags=["placement"])
def get_claim(session: DbSession, principal: CurrentPrincipal, claim_id: ResourceId):
    return service.get_claim(session, principal, claim_id)


@router.delete(
    "/placement/claims/{claim_id}", status_code=204, tags=["placement"], name="placement.release"
)
def release_claim(session: DbSession, principal: CurrentPrincipal, claim_id: ResourceId):
    service.release_by_request(session, principal, claim_id)
    return Response(status_code=204)


@router.get("/placement/rebalance-report", response_model=schemas.RebalanceOut, tags=["placement"])
def rebalance_report(
    session: DbSession,
    principal: CurrentPrincipal,
    threshold: Annotated[float, Query(gt=0, le=1)] = 0.8,
    zone_id: Filter = None,
):
    return service.rebalance_report(session, principal, threshold, zone_id)


@router.get(
    "/hosts/{item_id}/evacuation-plan", response_model=schemas.EvacuationOut, tags=["hosts"]
)
def evacuation_plan(session: DbSession, principal: CurrentPrincipal, item_id: ResourceId):
    return service.evacuation_plan(session, principal, item_id)


# --- placement groups (tenant resources) ---------------------------------------------------


@router.get("/placement-groups", response_model=Page[schemas.GroupOut], tags=["placement-groups"])
def list_groups(
    session: DbSession, principal: CurrentPrincipal, page: Pages, tenant_id: Filter = None
):
    rows, cursor = service.list_groups(session, principal, page, tenant_id=tenant_id)
    return Page(items=[_group_out(session, g) for g in rows], next_cursor=cursor)


@router.post(
    "/placement-groups",
    response_model=schemas.GroupOut,
    status_code=201,
    tags=["placement-groups"],
    name="placement-group.create",
)
def create_group(session: DbSession, principal: CurrentPrincipal, body: schemas.GroupCreate):
    return _group_out(session, service.create_group(session, principal, body))


@router.get(
    "/placement-groups/{placement_group_id}",
    response_model=schemas.GroupOut,
    tags=["placement-groups"],
)
def get_group(session: DbSession, principal: CurrentPrincipal, placement_group_id: ResourceId):
    return _group_out(session, service.get_group(session, principal, placement_group_id))


@router.delete(
    "/placement-groups/{placement_group_id}",
    status_code=204,
    tags=["placement-groups"],
    name="placement-group.delete",
    responses=problem_responses(409),
)
def delete_group(session: DbSession, principal: CurrentPrincipal, placement_group_id: ResourceId):
    service.delete_group(session, principal, placement_group_id)
    return Response(status_code=204)
