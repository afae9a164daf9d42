"""REST: /providers (platform admins) — registration, sync and import of found machines."""

from fastapi import APIRouter, Request, Response

from yunguan.compute.schemas import InstanceOut
from yunguan.core.api import Filter, ResourceId, problem_responses
from yunguan.core.deps import DbSession, get_db
from yunguan.core.errors import BadRequest
from yunguan.core.pagination import Page, Pages
from yunguan.identity.deps import CurrentPrincipal
from yunguan.providers import service
from yunguan.providers.schemas import ProviderAction, ProviderCreate, ProviderOut, ProviderUpdate
from yunguan.workflows import engine
from yunguan.workflows.api import accepted
from yunguan.workflows.schemas import Accepted

router = APIRouter(tags=["providers"], responses=problem_responses(400, 401, 403, 404, 422))
WRITES = problem_responses(409)


@router.get("/providers", response_model=Page[ProviderOut], name="provider.list")
def list_providers(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    kind: Filter = None,
    zone_id: Filter = None,
    state: Filter = None,
):
    rows, cursor = service.list_providers(
        session, principal, page, kind=kind, zone_id=zone_id, state=state
    )
    return Page(items=[ProviderOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/providers",
    status_code=202,
    response_model=Accepted[ProviderOut],
    name="provider.create",
    responses=WRITES,
)
def create_provider(
    request: Request, response: Response, principal: CurrentPrincipal, body: ProviderCreate
):
    """Register a provider; its first inventory sync runs as the returned operation."""
    with get_db(request).session() as session:
        provider, operation = service.create_provider(session, principal, body)
        answer = accepted(response, ProviderOut.model_validate(provider), operation)
    engine.submit(operation.id, service.SYNC)
    return answer


@router.get("/providers/{item_id}", response_model=ProviderOut, name="provider.get")
def get_provider(session: DbSession, principal: CurrentPrincipal, item_id: ResourceId):
    return service.get_provider(session, principal, item_id)


@router.patch(
    "/providers/{item_id}", response_model=ProviderOut, name="provider.update", responses=WRITES
)
def update_provider(
    session: DbSession, principal: CurrentPrincipal, item_id: ResourceId, body: ProviderUpdate
):
    return service.update_provider(session, principal, item_id, body)


@router.delete("/providers/{item_id}", status_code=204, name="provider.delete", responses=WRITES)
def delete_provider(session: DbSession, principal: CurrentPrincipal, item_id: ResourceId):
    service.delete_provider(session, principal, item_id)
    return Response(status_code=204)


@router.post(
    "/providers/{item_id}/actions",
    status_code=202,
    response_model=Accepted[ProviderOut] | InstanceOut,
    name="provider.action",
    responses=WRITES,
)
def provider_action(
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    body: ProviderAction,
):
    """``sync`` (202, an operation) or ``import`` of a listed machine (201, the instance)."""
    with get_db(request).session() as session:
        provider = service.get_provider(session, principal, item_id)
        if body.action == "import":
            if body.machine is None:
                raise BadRequest("import needs 'machine'", code="invalid-field")
            response.status_code = 201
            return InstanceOut.model_validate(
                service.import_machine(session, principal, provider.id, body.machine)
            )
        operation = service.request_sync(session, principal, provider)
        answer = accepted(response, ProviderOut.model_validate(provider), operation)
    engine.submit(operation.id, service.SYNC)
    return answer
