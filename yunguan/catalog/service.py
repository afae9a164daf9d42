"""Catalog: service templates (versioned, reviewed before publication), categories and
catalog items. The platform writes the catalog; tenants read the items shown to their
subtree whose version is published. The only code that writes the catalog tables
(``catalog.transfer`` imports through the functions here)."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from yunguan.catalog import parameters as params
from yunguan.catalog.models import (
    CatalogItem,
    CatalogItemTenant,
    Category,
    ServiceTemplate,
    TemplateVersion,
)
from yunguan.catalog.schemas import (
    CategoryCreate,
    CategoryUpdate,
    ItemCreate,
    ItemUpdate,
    TemplateCreate,
    TemplateUpdate,
    VersionAction,
    VersionCreate,
)
from yunguan.core import audit
from yunguan.core.clock import now
from yunguan.core.db import flush_or_conflict
from yunguan.core.errors import Conflict, NotFound, Unprocessable, summary
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams, paginate, where_equal
from yunguan.identity import service as identity
from yunguan.identity.crud import apply_changes
from yunguan.identity.scope import (
    Principal,
    get_permitted,
    list_permitted,
    require,
    restrict_granted,
)

READ = "resource:read"  # categories and the items shown to one's tenant: every role
CATALOG_READ = "catalog:read"  # templates, hidden items, export: the platform
WRITE = "catalog:write"
REVIEW = "catalog:review"
# action -> (the states it starts from, the state it leads to, the permission it needs)
TRANSITIONS = {
    "submit": (("draft",), "in-review", WRITE),
    "approve": (("in-review",), "published", REVIEW),
    "reject": (("in-review",), "draft", REVIEW),
    "offline": (("published",), "offline", WRITE),
    "delete": (("draft", "offline"), "deleted", WRITE),
}
ORDERABLE = ("published",)
LISTED = ("published", "offline")
"""States of the versions catalog items may point to (an offline one hides its items)."""


def stored(parameters: Sequence[params.Parameter]) -> list[dict[str, Any]]:
    return [p.model_dump(mode="json", exclude_none=True) for p in parameters]


def parameters_of(version: TemplateVersion) -> list[params.Parameter]:
    return [params.Parameter.model_validate(p) for p in version.parameters]


# --- templates -----------------------------------------------------------------------------


def list_templates(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_permitted(session, principal, ServiceTemplate, CATALOG_READ, page, **filters)


def get_template(session: Session, principal: Principal, template_id: str) -> ServiceTemplate:
    return get_permitted(
        session, ServiceTemplate, template_id, principal, CATALOG_READ, "service template"
    )


def create_template(session: Session, principal: Principal, data: TemplateCreate):
    require(principal, WRITE)
    params.check_spec(data.kind, data.spec, data.parameters)
    fields = data.model_dump(include={"name", "kind", "description"})
    template = save_template(session, ServiceTemplate(id=new_id("st"), **fields))
    _add_version(session, template, 1, data.parameters, data.spec)
    return template


def update_template(session: Session, principal: Principal, template_id: str, data: TemplateUpdate):
    require(principal, WRITE)
    template = get_template(session, principal, template_id)
    apply_changes(template, data)
    return save_template(session, template)


def save_template(session: Session, template: ServiceTemplate) -> ServiceTemplate:
    session.add(template)
    detail = f"a service template named {template.name!r} exists"
    flush_or_conflict(session, detail, "duplicate-name")
    audit.note(target_type="service-template", target_id=template.id)
    return template


# --- versions ------------------------------------------------------------------------------


def _add_version(
    session: Session,
    template: ServiceTemplate,
    number: int,
    parameters: list[params.Parameter],
    spec: dict[str, Any],
) -> TemplateVersion:
    version = TemplateVersion(
        id=new_id("stv"),
        template_id=template.id,
        version=number,
        parameters=stored(parameters),
        spec=spec,
    )
    return save_version(session, version)


def save_version(session: Session, version: TemplateVersion) -> TemplateVersion:
    session.add(version)
    detail = f"version {version.version} of {version.template_id} exists"
    flush_or_conflict(session, detail, "duplicate-version")
    return version


def list_versions(session: Session, principal: Principal, template_id: str):
    get_template(session, principal, template_id)
    stmt = select(TemplateVersion).where(TemplateVersion.template_id == template_id)
    return list(session.scalars(stmt.order_by(TemplateVersion.version)))


def list_all_versions(session: Session, principal: Principal) -> list[TemplateVersion]:
    """Every template's versions, by template and number (the portal's overviews)."""
    require(principal, CATALOG_READ)
    stmt = select(TemplateVersion).order_by(TemplateVersion.template_id, TemplateVersion.version)
    return list(session.scalars(stmt))


def get_version(
    session: Session, principal: Principal, template_id: str, number: int, *, lock: bool = False
) -> TemplateVersion:
    get_template(session, principal, template_id)
    stmt = select(TemplateVersion).where(
        TemplateVersion.template_id == template_id, TemplateVersion.version == number
    )
    if lock:  # two reviewers, or a reviewer and an editor, take turns
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    version = session.scalars(stmt).one_or_none()
    if version is None:
        raise NotFound(f"version {number} of service template {template_id} not found")
    return version


def create_version(session: Session, principal: Principal, template_id: str, data: VersionCreate):
    """The next version, a draft; parameters and spec not given are the latest version's."""
    require(principal, WRITE)
    template = session.scalars(
        select(ServiceTemplate).where(ServiceTemplate.id == template_id).with_for_update()
    ).one_or_none()
    if template is None:
        raise NotFound(f"service template {template_id} not found")
    latest = session.scalars(
        select(TemplateVersion)
        .where(TemplateVersion.template_id == template_id)
        .order_by(TemplateVersion.version.desc())
        .limit(1)
    ).first()
    parameters = data.parameters
    if parameters is None:
        parameters = parameters_of(latest) if latest else []
    spec = data.spec if data.spec is not None else (latest.spec if latest else {})
    params.check_spec(template.kind, spec, parameters)
    version = _add_version(session, template, latest.version + 1 if latest else 1, parameters, spec)
    audit.note(target_type="template-version", target_id=version.id)
    return version


def update_version(
    session: Session, principal: Principal, template_id: str, number: int, data: VersionCreate
):
    require(principal, WRITE)
    version = get_version(session, principal, template_id, number, lock=True)
    if version.state != "draft":
        raise Conflict(
            f"version {number} is {version.state}; only a draft changes (make a new version)",
            code="immutable-version",
        )
    template = session.get(ServiceTemplate, template_id)
    parameters = parameters_of(version) if data.parameters is None else data.parameters
    spec = version.spec if data.spec is None else data.spec
    params.check_spec(template.kind, spec, parameters)  # type: ignore[union-attr]
    version.parameters, version.spec = stored(parameters), spec
    audit.note(target_type="template-version", target_id=version.id)
    return version


def act(
    session: Session, principal: Principal, template_id: str, number: int, data: VersionAction
) -> TemplateVersion:
    """Move a version through its lifecycle. Approval takes a second pair of eyes: the
    reviewer is never the one who submitted it."""
    sources, target, permission = TRANSITIONS[data.action]
    require(principal, permission)
    version = get_version(session, principal, template_id, number, lock=True)
    audit.note(target_type="template-version", target_id=version.id)
    if version.state not in sources:
        raise Conflict(
            f"cannot {data.action} version {number}: it is {version.state}",
            code="illegal-transition",
        )
    if data.action == "approve" and version.submitted_by == principal.user_id:
        raise Conflict("the submitter cannot approve its own version", code="four-eyes")
    if data.action == "delete":
        _refuse_if_listed(session, version)
    if data.action == "submit":
        version.submitted_by, version.submitted_at = principal.user_id, now()
    if data.action in ("approve", "reject"):
        version.reviewed_by, version.reviewed_at = principal.user_id, now()
        version.review_comment = data.comment
    audit.note(detail={"from": version.state, "to": target})
    version.state = target
    return version


def _refuse_if_listed(session: Session, version: TemplateVersion) -> None:
    listed = session.scalar(
        select(func.count()).where(CatalogItem.template_version_id == version.id)
    )
    if listed:
        raise Conflict(f"{listed} catalog item(s) offer this version", code="in-use")


# --- categories ----------------------------------------------------------------------------


def list_categories(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_permitted(session, principal, Category, READ, page, **filters)


def get_category(session: Session, principal: Principal, category_id: str) -> Category:
    return get_permitted(session, Category, category_id, principal, READ, "category")


def create_category(session: Session, principal: Principal, data: CategoryCreate) -> Category:
    require(principal, WRITE)
    return save_category(session, Category(id=new_id("cat")), data)


def update_category(session: Session, principal: Principal, category_id: str, data: CategoryUpdate):
    require(principal, WRITE)
    return save_category(session, get_category(session, principal, category_id), data)


def save_category(
    session: Session, category: Category, data: CategoryCreate | CategoryUpdate
) -> Category:
    apply_changes(category, data)
    session.add(category)
    flush_or_conflict(session, f"a category named {category.name!r} exists", "duplicate-name")
    audit.note(target_type="category", target_id=category.id)
    return category


def delete_category(session: Session, principal: Principal, category_id: str) -> None:
    require(principal, WRITE)
    category = get_category(session, principal, category_id)
    session.delete(category)
    flush_or_conflict(session, f"category {category_id} still has items", "in-use")
    audit.note(target_type="category", target_id=category_id)


# --- catalog items -------------------------------------------------------------------------


def _visible_items(principal: Principal) -> Any:
    """Items shown to the principal's subtree (through ``scope``); tenants see only those
    whose version is published, the platform sees every item."""
    grants = (CatalogItemTenant.item_id, CatalogItemTenant.tenant_id)
    everyone = CatalogItem.restricted.is_(False)
    stmt = restrict_granted(
        select(CatalogItem), CatalogItem, grants, principal, READ, everyone=everyone
    )
    if principal.can(CATALOG_READ):
        return stmt
    published = select(TemplateVersion.id).where(TemplateVersion.state.in_(ORDERABLE))
    return stmt.where(CatalogItem.template_version_id.in_(published))


def _described(session: Session, principal: Principal, items: list[CatalogItem]):
    """Items with their version's kind and parameters (and, for the platform, grants)."""
    version_ids = {item.template_version_id for item in items}
    rows = session.execute(
        select(TemplateVersion, ServiceTemplate.kind)
        .join(ServiceTemplate, ServiceTemplate.id == TemplateVersion.template_id)
        .where(TemplateVersion.id.in_(version_ids))
    )
    versions = {version.id: (version, kind) for version, kind in rows}
    grants = item_tenants(session, [i.id for i in items]) if principal.can(CATALOG_READ) else {}
    for item in items:
        version, kind = versions[item.template_version_id]
        item.template_id, item.version, item.kind = version.template_id, version.version, kind  # type: ignore[attr-defined]
        item.parameters = version.parameters  # type: ignore[attr-defined]
        item.tenant_ids = grants.get(item.id, [])  # type: ignore[attr-defined]
    return items


def item_tenants(session: Session, item_ids: Sequence[str]) -> dict[str, list[str]]:
    rows = session.execute(
        select(CatalogItemTenant.item_id, CatalogItemTenant.tenant_id)
        .where(CatalogItemTenant.item_id.in_(item_ids))
        .order_by(CatalogItemTenant.tenant_id)
    )
    granted: dict[str, list[str]] = {}
    for item_id, tenant_id in rows:
        granted.setdefault(item_id, []).append(tenant_id)
    return granted


def list_items(session: Session, principal: Principal, page: PageParams, **filters: Any):
    stmt = where_equal(_visible_items(principal), CatalogItem, **filters)
    items, cursor = paginate(session, stmt, CatalogItem.id, page)
    return _described(session, principal, items), cursor


def get_item(session: Session, principal: Principal, item_id: str) -> CatalogItem:
    stmt = _visible_items(principal).where(CatalogItem.id == item_id)
    item = session.scalars(stmt).one_or_none()
    if item is None:
        raise NotFound(f"catalog item {item_id} not found")
    return _described(session, principal, [item])[0]


def orderable(
    session: Session, principal: Principal, item_id: str
) -> tuple[CatalogItem, TemplateVersion]:
    """An item the principal may order now (shown to it, its version published), described
    as ``get_item`` describes it, and its version."""
    item = get_item(session, principal, item_id)
    version = session.get(TemplateVersion, item.template_version_id)
    if version is None or version.state not in ORDERABLE:
        raise Conflict(f"catalog item {item_id} is not on offer now", code="not-orderable")
    return item, version


def template_of(session: Session, version_id: str) -> ServiceTemplate:
    """The template a version belongs to (for work authorised earlier)."""
    stmt = (
        select(ServiceTemplate)
        .join(TemplateVersion, TemplateVersion.template_id == ServiceTemplate.id)
        .where(TemplateVersion.id == version_id)
    )
    return session.scalars(stmt).one()


def _listable_version(session: Session, version_id: str, states: Sequence[str]) -> None:
    version = session.get(TemplateVersion, version_id)
    if version is None:
        raise NotFound(f"template version {version_id} not found")
    if version.state not in states:
        raise Conflict(
            f"template version {version_id} is {version.state}, not {' or '.join(states)}",
            code="version-not-published",
        )


def set_grants(session: Session, item: CatalogItem, tenant_ids: Sequence[str]) -> None:
    """Show the item to these tenant subtrees only (none: to every tenant)."""
    wanted = sorted(set(tenant_ids))
    unknown = sorted(set(wanted) - set(identity.tenant_paths(session, wanted)))
    if unknown:
        errors = [
            {"loc": ["tenant_ids"], "msg": f"no tenant {t}", "type": "unknown"} for t in unknown
        ]
        raise Unprocessable(summary(errors), code="unknown-tenant", errors=errors)
    session.execute(delete(CatalogItemTenant).where(CatalogItemTenant.item_id == item.id))
    session.add_all(CatalogItemTenant(item_id=item.id, tenant_id=t) for t in wanted)
    item.restricted = bool(wanted)


def save_item(
    session: Session,
    item: CatalogItem,
    data: ItemCreate | ItemUpdate,
    versions: Sequence[str] = ORDERABLE,
) -> CatalogItem:
    """Apply ``data`` to a new or existing item: its category must exist and its version be
    in ``versions`` (published, for what the API offers anew)."""
    if data.category_id is not None and session.get(Category, data.category_id) is None:
        raise NotFound(f"category {data.category_id} not found")
    if data.template_version_id is not None:
        _listable_version(session, data.template_version_id, versions)
    apply_changes(item, data, skip=["tenant_ids"])
    session.add(item)
    session.flush()
    if data.tenant_ids is not None:
        set_grants(session, item, data.tenant_ids)
    audit.note(target_type="catalog-item", target_id=item.id)
    return item


def create_item(session: Session, principal: Principal, data: ItemCreate) -> CatalogItem:
    require(principal, WRITE)
    item = save_item(session, CatalogItem(id=new_id("ci")), data)
    return _described(session, principal, [item])[0]


def update_item(session: Session, principal: Principal, item_id: str, data: ItemUpdate):
    require(principal, WRITE)
    item = save_item(session, _item_row(session, item_id), data)
    return _described(session, principal, [item])[0]


def _item_row(session: Session, item_id: str) -> CatalogItem:
    item = session.get(CatalogItem, item_id)
    if item is None:
        raise NotFound(f"catalog item {item_id} not found")
    return item


def delete_item(session: Session, principal: Principal, item_id: str) -> None:
    require(principal, WRITE)
    session.delete(_item_row(session, item_id))
    audit.note(target_type="catalog-item", target_id=item_id)
