"""REST: /flavors, /images, /instances (with their actions, console and events)."""

from fastapi import APIRouter, Request, Response

from yunguan.compute import schemas
from yunguan.compute import service as compute
from yunguan.core.api import Filter, ResourceId, problem_responses
from yunguan.core.deps import DbSession, get_db
from yunguan.core.pagination import Page, Pages
from yunguan.identity.crud import Collection, add_collection
from yunguan.identity.deps import CurrentPrincipal
from yunguan.workflows import engine
from yunguan.workflows.api import accepted
from yunguan.workflows.schemas import Accepted

router = APIRouter(responses=problem_responses(400, 401, 403, 404, 422))
Out = schemas.InstanceOut

for collection in (
    Collection(
        "flavor",
        "/flavors",
        schemas.FlavorOut,
        schemas.FlavorCreate,
        schemas.FlavorUpdate,
        compute.list_flavors,
        compute.create_flavor,
        compute.get_flavor,
        compute.update_flavor,
        compute.delete_flavor,
        filters=("name",),
    ),
    Collection(
        "image",
        "/images",
        schemas.ImageOut,
        schemas.ImageCreate,
        schemas.ImageUpdate,
        compute.list_images,
        compute.create_image,
        compute.get_image,
        compute.update_image,
        compute.delete_image,
        filters=("tenant_id", "name", "visibility", "os_type"),
    ),
):
    add_collection(router, collection)

TAGS = ["instances"]
LONG = problem_responses(403, 409)


@router.get("/instances", response_model=Page[Out], tags=TAGS, name="instance.list")
def list_instances(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    tenant_id: Filter = None,
    zone_id: Filter = None,
    state: Filter = None,
    host_id: Filter = None,
    vxnet_id: Filter = None,
    name: Filter = None,
):
    filters = {"tenant_id": tenant_id, "zone_id": zone_id, "state": state, "host_id": host_id}
    filters |= {"vxnet_id": vxnet_id, "name": name}
    rows, cursor = compute.list_instances(session, principal, page, **filters)
    return Page(items=[Out.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/instances",
    status_code=202,
    response_model=Accepted[Out] | schemas.InstancesAccepted,
    tags=TAGS,
    name="instance.create",
    responses=LONG,
)
def create_instances(
    request: Request, response: Response, principal: CurrentPrincipal, body: schemas.InstanceCreate
):
    """Provision one instance (or ``count``): 202 with each in ``creating`` and the operation
    to follow. ``count`` > 1 answers a list."""
    with get_db(request).session() as session:
        made = compute.request_create(session, principal, body)
        answers = [accepted(response, Out.model_validate(i), op) for i, op in made]
    for _, operation in made:
        engine.submit(operation.id, compute.CREATE)
    return answers[0] if body.count == 1 else schemas.InstancesAccepted(items=answers)


@router.get("/instances/{item_id}", response_model=Out, tags=TAGS, name="instance.get")
def get_instance(session: DbSession, principal: CurrentPrincipal, item_id: ResourceId):
    return compute.get_instance(session, principal, item_id)


@router.patch(
    "/instances/{item_id}", response_model=Out, tags=TAGS, name="instance.update", responses=LONG
)
def update_instance(
    session: DbSession,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    body: schemas.InstanceUpdate,
):
    return compute.update_instance(session, principal, item_id, body)


@router.delete(
    "/instances/{item_id}",
    status_code=202,
    response_model=Accepted[Out],
    tags=TAGS,
    name="instance.delete",
    responses=LONG,
)
def delete_instance(
    request: Request, response: Response, principal: CurrentPrincipal, item_id: ResourceId
):
    with get_db(request).session() as session:
        instance, operation = compute.request_delete(session, principal, item_id)
        answer = accepted(response, Out.model_validate(instance), operation)
    engine.submit(operation.id, compute.DELETE)
    return answer


@router.post(
    "/instances/{item_id}/actions",
    status_code=202,
    response_model=Accepted[Out],
    tags=TAGS,
    name="instance.action",
    responses=LONG,
)
def instance_action(
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    body: schemas.InstanceAction,
):
    """``start``, ``stop`` or ``reboot``: 202 with the operation to follow."""
    with get_db(request).session() as session:
        instance, operation = compute.request_action(session, principal, item_id, body.action)
        answer = accepted(response, Out.model_validate(instance), operation)
    engine.submit(operation.id, compute.POWER)
    return answer


@router.get(
    "/instances/{item_id}/events",
    response_model=list[schemas.InstanceEventOut],
    tags=TAGS,
    name="instance.events",
)
def instance_events(session: DbSession, principal: CurrentPrincipal, item_id: ResourceId):
    return compute.list_events(session, principal, item_id)


@router.get(
    "/instances/{item_id}/console",
    response_model=schemas.ConsoleOut,
    tags=TAGS,
    name="instance.console",
    responses=problem_responses(409, 502),
)
def instance_console(session: DbSession, principal: CurrentPrincipal, item_id: ResourceId):
    """The machine's console log, read from the provider now."""
    output = compute.console_log(session, principal, item_id)
    return schemas.ConsoleOut(instance_id=item_id, output=output)
