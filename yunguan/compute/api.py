"""REST: /flavors, /images, /instances (with their actions, console and events)."""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from yunguan.compute import schemas, volumes
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


def started(
    request: Request, response: Response, out: type[BaseModel], start: Callable, *args: Any
) -> Accepted[Any]:
    """Record a long operation in a transaction of its own (``start(session, *args)``
    answers the row and its operation), then queue its workflow: 202."""
    with get_db(request).session() as session:
        row, operation = start(session, *args)
        answer = accepted(response, out.model_validate(row), operation)
    engine.submit(operation.id, operation.kind)
    return answer


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
    return started(request, response, Out, compute.request_delete, principal, item_id)


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
    """``start``, ``stop``, ``reboot``, ``resize`` (with ``flavor_id``), ``migrate`` or
    ``live-migrate``: 202 with the operation to follow."""
    start = compute.request_action
    flavor_id = body.flavor_id or ""
    return started(request, response, Out, start, principal, item_id, body.action, flavor_id)


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


# --- volumes and snapshots -----------------------------------------------------------------

for collection in (
    Collection(
        "volume",
        "/volumes",
        schemas.VolumeOut,
        schemas.VolumeCreate,
        schemas.VolumeUpdate,
        volumes.list_volumes,
        None,
        volumes.get_volume,
        volumes.update_volume,
        None,
        filters=("tenant_id", "zone_id", "state", "instance_id", "name"),
    ),
    Collection(
        "snapshot",
        "/snapshots",
        schemas.SnapshotOut,
        schemas.SnapshotCreate,
        schemas.SnapshotUpdate,
        volumes.list_snapshots,
        None,
        volumes.get_snapshot,
        volumes.update_snapshot,
        None,
        filters=("tenant_id", "volume_id", "state", "name"),
    ),
):
    add_collection(router, collection)


@router.post(
    "/volumes",
    status_code=202,
    response_model=Accepted[schemas.VolumeOut],
    tags=["volumes"],
    name="volume.create",
    responses=LONG,
)
def create_volume(
    request: Request, response: Response, principal: CurrentPrincipal, body: schemas.VolumeCreate
):
    """A data volume (attached to ``instance_id`` once made, when given): 202."""
    return started(request, response, schemas.VolumeOut, volumes.request_create, principal, body)


@router.post(
    "/volumes/{item_id}/actions",
    status_code=202,
    response_model=Accepted[schemas.VolumeOut],
    tags=["volumes"],
    name="volume.action",
    responses=LONG,
)
def volume_action(
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    body: schemas.VolumeAction,
):
    """``attach`` (with ``instance_id``), ``detach`` or ``extend`` (with ``size_gb``): 202."""
    start = volumes.request_action
    return started(request, response, schemas.VolumeOut, start, principal, item_id, body)


@router.delete(
    "/volumes/{item_id}",
    status_code=202,
    response_model=Accepted[schemas.VolumeOut],
    tags=["volumes"],
    name="volume.delete",
    responses=LONG,
)
def delete_volume(
    request: Request, response: Response, principal: CurrentPrincipal, item_id: ResourceId
):
    start = volumes.request_delete
    return started(request, response, schemas.VolumeOut, start, principal, item_id)


@router.post(
    "/snapshots",
    status_code=202,
    response_model=Accepted[schemas.SnapshotOut],
    tags=["snapshots"],
    name="snapshot.create",
    responses=LONG,
)
def create_snapshot(
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    body: schemas.SnapshotCreate,
):
    start = volumes.request_snapshot
    return started(request, response, schemas.SnapshotOut, start, principal, body)


@router.delete(
    "/snapshots/{item_id}",
    status_code=202,
    response_model=Accepted[schemas.SnapshotOut],
    tags=["snapshots"],
    name="snapshot.delete",
    responses=LONG,
)
def delete_snapshot(
    request: Request, response: Response, principal: CurrentPrincipal, item_id: ResourceId
):
    start = volumes.request_snapshot_delete
    return started(request, response, schemas.SnapshotOut, start, principal, item_id)
