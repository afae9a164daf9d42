"""REST: /service-templates (with their versions and version actions), /categories,
/catalog-items, and the catalog's YAML export and import."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from yunguan.catalog import schemas, transfer
from yunguan.catalog import service as catalog
from yunguan.core.api import ResourceId, problem_responses
from yunguan.core.deps import DbSession
from yunguan.core.errors import UnsupportedMediaType
from yunguan.identity.crud import Collection, add_collection
from yunguan.identity.deps import CurrentPrincipal

router = APIRouter(responses=problem_responses(400, 401, 403, 404, 422))

for collection in (
    Collection(
        "service-template",
        "/service-templates",
        schemas.TemplateOut,
        schemas.TemplateCreate,
        schemas.TemplateUpdate,
        catalog.list_templates,
        catalog.create_template,
        catalog.get_template,
        catalog.update_template,
        None,
        filters=("name", "kind"),
    ),
    Collection(
        "category",
        "/categories",
        schemas.CategoryOut,
        schemas.CategoryCreate,
        schemas.CategoryUpdate,
        catalog.list_categories,
        catalog.create_category,
        catalog.get_category,
        catalog.update_category,
        catalog.delete_category,
        filters=("name",),
    ),
    Collection(
        "catalog-item",
        "/catalog-items",
        schemas.ItemOut,
        schemas.ItemCreate,
        schemas.ItemUpdate,
        catalog.list_items,
        catalog.create_item,
        catalog.get_item,
        catalog.update_item,
        catalog.delete_item,
        filters=("category_id", "name"),
    ),
):
    add_collection(router, collection)

TAGS = ["service-templates"]
VERSIONS = "/service-templates/{item_id}/versions"
Number = Annotated[int, Path(ge=1, le=1_000_000)]
Out = schemas.VersionOut
WRITES = problem_responses(409)


@router.get(VERSIONS, response_model=list[Out], tags=TAGS, name="template-version.list")
def list_versions(session: DbSession, principal: CurrentPrincipal, item_id: ResourceId):
    return catalog.list_versions(session, principal, item_id)


@router.post(
    VERSIONS,
    response_model=Out,
    status_code=201,
    tags=TAGS,
    name="template-version.create",
    responses=WRITES,
)
def create_version(
    session: DbSession,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    body: schemas.VersionCreate,
):
    """The next version, a draft: parameters and spec not given are the latest version's."""
    return catalog.create_version(session, principal, item_id, body)


@router.get(VERSIONS + "/{version}", response_model=Out, tags=TAGS, name="template-version.get")
def get_version(
    session: DbSession, principal: CurrentPrincipal, item_id: ResourceId, version: Number
):
    return catalog.get_version(session, principal, item_id, version)


@router.patch(
    VERSIONS + "/{version}",
    response_model=Out,
    tags=TAGS,
    name="template-version.update",
    responses=WRITES,
)
def update_version(
    session: DbSession,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    version: Number,
    body: schemas.VersionUpdate,
):
    """Change a draft; any other state answers 409 ``immutable-version``."""
    return catalog.update_version(session, principal, item_id, version, body)


@router.post(
    VERSIONS + "/{version}/actions",
    response_model=Out,
    tags=TAGS,
    name="template-version.action",
    responses=WRITES,
)
def version_action(
    session: DbSession,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    version: Number,
    body: schemas.VersionAction,
):
    """``submit``, ``approve`` (not by the submitter), ``reject`` (with a comment),
    ``offline`` or ``delete``; a move its state does not allow answers 409."""
    return catalog.act(session, principal, item_id, version, body)


# --- YAML import and export ----------------------------------------------------------------

YAML = "application/yaml"


class YamlResponse(JSONResponse):
    """A model answered as YAML; being a JSONResponse, its schema is in the OpenAPI document."""

    media_type = YAML

    def render(self, content: Any) -> bytes:
        return transfer.dump(content).encode()


@router.get(
    "/catalog/export",
    response_model=schemas.CatalogDocument,
    response_class=YamlResponse,
    tags=["catalog"],
    name="catalog.export",
)
def export_catalog(session: DbSession, principal: CurrentPrincipal):
    """Categories, templates with every version, and items, as YAML (ids kept)."""
    return transfer.export(session, principal)


async def yaml_body(request: Request) -> bytes:
    """An import's raw text, sent as ``application/yaml`` or ``text/plain`` (else 415)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in (YAML, "text/plain"):
        raise UnsupportedMediaType(f"send the catalog as {YAML} or text/plain")
    return await request.body()


@router.post(
    "/catalog/import",
    response_model=schemas.ImportSummary,
    tags=["catalog"],
    name="catalog.import",
    responses=problem_responses(409, 415),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                YAML: {"schema": {"$ref": "#/components/schemas/CatalogDocument"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        }
    },
)
def import_catalog(
    session: DbSession, principal: CurrentPrincipal, body: Annotated[bytes, Depends(yaml_body)]
):
    """Create or update, by id, everything an export holds. Published versions present
    already must be identical (else 409)."""
    return transfer.import_catalog(session, principal, body)
