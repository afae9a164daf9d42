"""REST: /operations — progress of long-running work."""

from typing import Any

from fastapi import APIRouter, Response

from yunguan.core.api import Filter, ResourceId, problem_responses
from yunguan.core.deps import DbSession
from yunguan.core.pagination import Page, Pages
from yunguan.identity.deps import CurrentPrincipal
from yunguan.workflows import service
from yunguan.workflows.models import Operation
from yunguan.workflows.schemas import Accepted, OperationOut

router = APIRouter(tags=["operations"], responses=problem_responses(400, 401, 404, 422))


@router.get("/operations", response_model=Page[OperationOut])
def list_operations(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    target_id: Filter = None,
    state: Filter = None,
) -> Page[OperationOut]:
    rows, cursor = service.list_operations(session, principal, page, target_id, state)
    return Page(items=[OperationOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/operations/{operation_id}", response_model=OperationOut)
def get_operation(session: DbSession, principal: CurrentPrincipal, operation_id: ResourceId):
    return service.get_operation(session, principal, operation_id)


def accepted(response: Response, resource: Any, operation: Operation) -> Accepted[Any]:
    """The 202 answer of a long operation, with the operation's address in ``Location``."""
    response.headers["Location"] = f"/api/v1/operations/{operation.id}"
    return Accepted[Any](resource=resource, operation=OperationOut.model_validate(operation))
