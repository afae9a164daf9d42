"""The whole catalog as one YAML document, ids kept: categories, templates with every
version, items with their tenant grants. Importing an export, into the same database or
another, gives the same catalog, and importing it again changes nothing. YAML is read with
``safe_load`` only, and documents with aliases are refused (no "billion laughs")."""

from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from yunguan.catalog import parameters as params
from yunguan.catalog import service as catalog
from yunguan.catalog.models import CatalogItem, Category, ServiceTemplate, TemplateVersion
from yunguan.catalog.schemas import (
    CatalogDocument,
    CategoryDocument,
    ImportSummary,
    ItemDocument,
    TemplateDocument,
    VersionDocument,
)
from yunguan.core import audit
from yunguan.core.errors import BadRequest, Conflict, Unprocessable, field_errors, summary
from yunguan.identity.scope import Principal, require

M = TypeVar("M", bound=BaseModel)
EDITABLE = ("draft", "in-review")
"""States in which a version present already may take other content from a document."""


def parse(raw: bytes) -> CatalogDocument:
    """A document from YAML text: 400 when it is not YAML, 422 when it is not a catalog."""
    try:
        text = raw.decode()
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise BadRequest("YAML aliases are not accepted", code="malformed-yaml")
        data = yaml.safe_load(text)
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        raise BadRequest(f"not a YAML document: {exc}"[:1000], code="malformed-yaml")
    try:
        return CatalogDocument.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc.errors()[:50])
        raise Unprocessable(summary(errors), errors=errors)


def dump(document: CatalogDocument | dict[str, Any]) -> str:
    data = document.model_dump(mode="json") if isinstance(document, BaseModel) else document
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def export(session: Session, principal: Principal) -> CatalogDocument:
    require(principal, catalog.CATALOG_READ)
    versions: dict[str, list[TemplateVersion]] = {}
    for version in session.scalars(select(TemplateVersion).order_by(TemplateVersion.version)):
        versions.setdefault(version.template_id, []).append(version)
    templates = [
        TemplateDocument(
            id=t.id,
            name=t.name,
            kind=t.kind,
            description=t.description,
            versions=[_document(VersionDocument, v) for v in versions.get(t.id, [])],
        )
        for t in session.scalars(select(ServiceTemplate).order_by(ServiceTemplate.id))
    ]
    items = list(session.scalars(select(CatalogItem).order_by(CatalogItem.id)))
    grants = catalog.item_tenants(session, [i.id for i in items])
    return CatalogDocument(
        categories=[
            _document(CategoryDocument, c)
            for c in session.scalars(select(Category).order_by(Category.id))
        ],
        templates=templates,
        items=[
            ItemDocument.model_validate(
                _fields(ItemDocument, i) | {"tenant_ids": grants.get(i.id, [])}
            )
            for i in items
        ],
    )


def _fields(model: type[BaseModel], row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in model.model_fields if hasattr(row, name)}


def _document(model: type[M], row: Any) -> M:
    return model.model_validate(_fields(model, row))


def _whole(data: M) -> M:
    """``data`` with every field marked as given, so an import sets each one."""
    return type(data).model_validate(data.model_dump())


def import_catalog(session: Session, principal: Principal, raw: bytes) -> ImportSummary:
    """Create or update everything the YAML document holds, by id. Publishing by import
    skips the review, so it takes both ``catalog:write`` and ``catalog:review``."""
    require(principal, catalog.WRITE)
    require(principal, catalog.REVIEW)
    document = parse(raw)
    for category in document.categories:
        row = session.get(Category, category.id) or Category(id=category.id)
        catalog.save_category(session, row, _whole(category))
    for template in document.templates:
        _import_template(session, template)
    for item in document.items:
        row = session.get(CatalogItem, item.id) or CatalogItem(id=item.id)
        catalog.save_item(session, row, _whole(item), versions=catalog.LISTED)
    counts = ImportSummary(
        categories=len(document.categories),
        templates=len(document.templates),
        versions=sum(len(t.versions) for t in document.templates),
        items=len(document.items),
    )
    audit.note(target_type="catalog", target_id="", detail=counts.model_dump())
    return counts


def _import_template(session: Session, data: TemplateDocument) -> None:
    template = session.get(ServiceTemplate, data.id)
    if template is None:
        template = ServiceTemplate(id=data.id, kind=data.kind)
    elif template.kind != data.kind:
        raise Conflict(f"service template {data.id} is a {template.kind}", code="import-conflict")
    template.name, template.description = data.name, data.description
    catalog.save_template(session, template)
    for version in data.versions:
        _import_version(session, template, version)


def _import_version(session: Session, template: ServiceTemplate, data: VersionDocument) -> None:
    params.check_spec(template.kind, data.spec, data.parameters)
    content = {
        "version": data.version,
        "parameters": catalog.stored(data.parameters),
        "spec": data.spec,
    }
    version = session.get(TemplateVersion, data.id)
    if version is None:
        version = TemplateVersion(id=data.id, template_id=template.id)
    elif version.template_id != template.id:
        raise Conflict(f"version {data.id} belongs to another template", code="import-conflict")
    elif version.state not in EDITABLE and any(
        getattr(version, k) != v for k, v in content.items()
    ):
        raise Conflict(
            f"version {data.id} is {version.state} here and differs from the document",
            code="import-conflict",
        )
    history = data.model_dump(exclude={"id", "version", "parameters", "spec"})
    for key, value in (content | history).items():
        setattr(version, key, value)
    catalog.save_version(session, version)
