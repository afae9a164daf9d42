"""Portal pages of the catalog, for platform administrators: service templates with their
versions and review lifecycle, categories and catalog items, and the YAML export and import.
Every change goes through ``catalog.service`` (or ``catalog.transfer``), as the API's do.

The pages live under ``/admin/catalog``; ``/catalog`` is the tenants' catalog."""

from collections.abc import Iterable
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, File, Form, Path, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from yunguan.catalog import schemas, transfer
from yunguan.catalog import service as catalog
from yunguan.catalog.models import TEMPLATE_KINDS, TemplateVersion
from yunguan.core.errors import BadRequest, NotFound
from yunguan.identity import service as identity
from yunguan.identity.scope import Principal
from yunguan.web.portal import ALL, FormText, page, page_principal, panel, submit, templates

router = APIRouter(include_in_schema=False)
ADMIN = "/admin/catalog"
Description = Annotated[str, Form(max_length=1024)]
Definition = Annotated[str, Form(max_length=16000)]
ChosenTenants = Annotated[list[str] | None, Form()]
Number = Annotated[int, Path(ge=1, le=1_000_000)]
YamlText = Annotated[str, Form(max_length=1024 * 1024)]


# --- parameters and specs as the forms show and take them -----------------------------------


def as_yaml(value: Any) -> str:
    """Parameters or a spec as editable YAML (nothing: an empty text)."""
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True) if value else ""


templates.env.filters["yaml"] = as_yaml


def _definition(field: str, text: str, empty: list | dict) -> Any:
    """A YAML (or JSON: YAML reads it too) value typed into a form; a blank text is
    ``empty``. Aliases are refused, as on import."""
    if not text.strip():
        return empty
    try:
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise BadRequest(f"{field}: YAML aliases are not accepted", code="invalid-field")
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        where = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark else ""
        raise BadRequest(f"{field} is not YAML or JSON: {exc.problem}{where}", code="invalid-field")
    except (yaml.YAMLError, RecursionError):
        raise BadRequest(f"{field} is not YAML or JSON", code="invalid-field")


def _content(parameters: str, spec: str) -> dict[str, Any]:
    return {
        "parameters": _definition("parameters", parameters, []),
        "spec": _definition("spec", spec, {}),
    }


# --- service templates ---------------------------------------------------------------------


def _by_template(versions: Iterable[TemplateVersion]) -> dict[str, list[TemplateVersion]]:
    grouped: dict[str, list[TemplateVersion]] = {}
    for version in versions:
        grouped.setdefault(version.template_id, []).append(version)
    return grouped


def _templates_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        rows, _ = catalog.list_templates(session, principal, ALL)
        versions = _by_template(catalog.list_all_versions(session, principal))
    return panel(
        request,
        "catalog_admin_templates.html",
        principal,
        status,
        service_templates=sorted(rows, key=lambda t: t.name),
        versions=versions,
        kinds=TEMPLATE_KINDS,
        error=error,
        notice=notice,
    )


@router.get(ADMIN + "/templates", response_class=HTMLResponse)
def templates_page(request: Request) -> Response:
    intro = (
        "What tenants can order, in numbered versions. A version is submitted for review and "
        "published by another administrator (four eyes); a published version never changes."
    )
    return page(request, "Service templates", _templates_panel, intro)


@router.post(ADMIN + "/templates/new", name="service-template.create")
def template_create(
    request: Request,
    name: FormText = "",
    kind: FormText = "",
    description: Description = "",
    parameters: Definition = "",
    spec: Definition = "",
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = schemas.TemplateCreate.model_validate(
            {"name": name, "kind": kind, "description": description} | _content(parameters, spec)
        )
        template = catalog.create_template(session, principal, data)
        return f"Created service template “{template.name}” (version 1, a draft)."

    return submit(request, _templates_panel, change)


def _usernames(session: Session, principal: Principal, user_ids: set[str]) -> dict[str, str]:
    """Submitters and reviewers by name (one deleted since stays an id)."""
    names = {}
    for user_id in user_ids:
        try:
            names[user_id] = identity.get_user(session, principal, user_id).username
        except NotFound:
            continue
    return names


def _allowed(principal: Principal, version: TemplateVersion) -> list[str]:
    """The lifecycle actions the version's state and the principal's permissions allow."""
    return [
        action
        for action, (sources, _, permission) in catalog.TRANSITIONS.items()
        if version.state in sources and principal.can(permission)
    ]


def _template_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    template_id = request.path_params["template_id"]
    with request.app.state.db.session(write=False) as session:
        template = catalog.get_template(session, principal, template_id)
        versions = catalog.list_versions(session, principal, template_id)
        people = {v.submitted_by for v in versions} | {v.reviewed_by for v in versions}
        usernames = _usernames(session, principal, people - {None})
    return panel(
        request,
        "catalog_admin_template.html",
        principal,
        status,
        t=template,
        versions=versions,
        latest=versions[-1] if versions else None,
        allowed={v.id: _allowed(principal, v) for v in versions},
        usernames=usernames,
        error=error,
        notice=notice,
    )


@router.get(ADMIN + "/templates/{template_id}", response_class=HTMLResponse)
def template_page(request: Request, template_id: str) -> Response:
    return page(request, "Service template", _template_panel)


@router.post(ADMIN + "/templates/{template_id}/versions", name="template-version.create")
def version_create(
    request: Request, template_id: str, parameters: Definition = "", spec: Definition = ""
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = schemas.VersionCreate.model_validate(_content(parameters, spec))
        version = catalog.create_version(session, principal, template_id, data)
        return f"Created version {version.version}, a draft."

    return submit(request, _template_panel, change)


@router.post(ADMIN + "/templates/{template_id}/versions/{number}", name="template-version.update")
def version_update(
    request: Request,
    template_id: str,
    number: Number,
    parameters: Definition = "",
    spec: Definition = "",
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = schemas.VersionUpdate.model_validate(_content(parameters, spec))
        catalog.update_version(session, principal, template_id, number, data)
        return f"Saved version {number}."

    return submit(request, _template_panel, change)


DONE = {
    "submit": "submitted for review",
    "approve": "published",
    "reject": "sent back to draft",
    "offline": "taken offline",
    "delete": "deleted",
}


@router.post(
    ADMIN + "/templates/{template_id}/versions/{number}/actions", name="template-version.action"
)
def version_action(
    request: Request,
    template_id: str,
    number: Number,
    action: FormText = "",
    comment: Description = "",
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = schemas.VersionAction.model_validate({"action": action, "comment": comment})
        catalog.act(session, principal, template_id, number, data)
        return f"Version {number} {DONE[data.action]}."

    return submit(request, _template_panel, change)


# --- categories and catalog items ----------------------------------------------------------


def _choices(session: Session, principal: Principal) -> dict[str, Any]:
    """What the item forms choose from (categories, published versions, tenants) and the
    names the item rows show."""
    rows, _ = catalog.list_templates(session, principal, ALL)
    template_names = {t.id: t.name for t in rows}
    versions = catalog.list_all_versions(session, principal)
    categories, _ = catalog.list_categories(session, principal, ALL)
    tenants, _ = identity.list_tenants(session, principal, ALL)
    return {
        "template_names": template_names,
        "version_states": {v.id: v.state for v in versions},
        "published": {
            v.id: f"{template_names[v.template_id]} v{v.version}"
            for v in versions
            if v.state in catalog.ORDERABLE
        },
        "categories": sorted(categories, key=lambda c: (c.sort_order, c.name)),
        "category_names": {c.id: c.name for c in categories},
        "tenants": sorted(tenants, key=lambda t: t.path),  # each below its parent
        "tenant_names": {t.id: t.name for t in tenants},
    }


def _items_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        context = _choices(session, principal)
        items, _ = catalog.list_items(session, principal, ALL)
    order = {c.id: n for n, c in enumerate(context["categories"])}
    return panel(
        request,
        "catalog_admin_items.html",
        principal,
        status,
        items=sorted(items, key=lambda i: (order.get(i.category_id), i.name)),
        error=error,
        notice=notice,
        **context,
    )


@router.get(ADMIN + "/items", response_class=HTMLResponse)
def items_page(request: Request) -> Response:
    intro = (
        "A catalog item offers one published template version in a category, to every "
        "tenant or only to chosen tenant subtrees. Taking its version offline hides it."
    )
    return page(request, "Categories and items", _items_panel, intro)


@router.post(ADMIN + "/categories/new", name="category.create")
def category_create(
    request: Request, name: FormText = "", description: Description = "", sort_order: FormText = "0"
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = schemas.CategoryCreate.model_validate(
            {"name": name, "description": description, "sort_order": sort_order or "0"}
        )
        return f"Created category “{catalog.create_category(session, principal, data).name}”."

    return submit(request, _items_panel, change)


@router.post(ADMIN + "/categories/{category_id}/delete", name="category.delete")
def category_delete(request: Request, category_id: str) -> Response:
    def change(session: Session, principal: Principal) -> str:
        catalog.delete_category(session, principal, category_id)
        return "Category deleted."

    return submit(request, _items_panel, change)


@router.post(ADMIN + "/items/new", name="catalog-item.create")
def item_create(
    request: Request,
    name: FormText = "",
    description: Description = "",
    category_id: FormText = "",
    template_version_id: FormText = "",
    price_monthly: FormText = "0",
    tenant_ids: ChosenTenants = None,
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = schemas.ItemCreate.model_validate(
            {
                "name": name,
                "description": description,
                "category_id": category_id,
                "template_version_id": template_version_id,
                "price_monthly": price_monthly,
                "tenant_ids": tenant_ids or [],
            }
        )
        item = catalog.create_item(session, principal, data)
        return f"Created catalog item “{item.name}”."

    return submit(request, _items_panel, change)


def _item_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        item = catalog.get_item(session, principal, request.path_params["item_id"])
        context = _choices(session, principal)
    return panel(
        request,
        "catalog_admin_item.html",
        principal,
        status,
        item=item,
        error=error,
        notice=notice,
        **context,
    )


@router.get(ADMIN + "/items/{item_id}", response_class=HTMLResponse)
def item_page(request: Request, item_id: str) -> Response:
    return page(request, "Catalog item", _item_panel)


@router.post(ADMIN + "/items/{item_id}", name="catalog-item.update")
def item_update(
    request: Request,
    item_id: str,
    name: FormText = "",
    description: Description = "",
    category_id: FormText = "",
    template_version_id: FormText = "",
    price_monthly: FormText = "0",
    tenant_ids: ChosenTenants = None,
) -> Response:
    """Save the item's form; no tenant chosen shows it to every tenant."""

    def change(session: Session, principal: Principal) -> str:
        fields = {
            "name": name,
            "description": description,
            "category_id": category_id,
            "price_monthly": price_monthly,
            "tenant_ids": tenant_ids or [],
        }
        # its version, gone offline, is kept unless another one is chosen
        if template_version_id != catalog.get_item(session, principal, item_id).template_version_id:
            fields["template_version_id"] = template_version_id
        data = schemas.ItemUpdate.model_validate(fields)
        return f"Saved “{catalog.update_item(session, principal, item_id, data).name}”."

    return submit(request, _item_panel, change)


@router.post(ADMIN + "/items/{item_id}/delete", name="catalog-item.delete")
def item_delete(request: Request, item_id: str) -> Response:
    def change(session: Session, principal: Principal) -> str:
        catalog.delete_item(session, principal, item_id)
        return "Catalog item deleted."

    return submit(request, _items_panel, change)


# --- YAML export and import ----------------------------------------------------------------


def _transfer_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        document = transfer.export(session, principal)
    return panel(
        request,
        "catalog_admin_transfer.html",
        principal,
        status,
        document=document,
        error=error,
        notice=notice,
    )


@router.get(ADMIN + "/transfer", response_class=HTMLResponse)
def transfer_page(request: Request) -> Response:
    intro = (
        "The whole catalog as one YAML document, ids kept. Importing it creates or updates "
        "by id, so importing the same document twice changes nothing."
    )
    return page(request, "Catalog import/export", _transfer_panel, intro)


@router.get(ADMIN + "/export")
def export_download(request: Request) -> Response:
    principal = page_principal(request)
    with request.app.state.db.session(write=False) as session:
        document = transfer.export(session, principal)
    return Response(
        transfer.dump(document),
        media_type="application/yaml",
        headers={"content-disposition": 'attachment; filename="catalog.yaml"'},
    )


@router.post(ADMIN + "/import", name="catalog.import")
def import_upload(
    request: Request, document: Annotated[UploadFile | None, File()] = None, text: YamlText = ""
) -> Response:
    """Import an uploaded file or, when none is chosen, the pasted text."""

    def change(session: Session, principal: Principal) -> str:
        raw = (document.file.read() if document else b"") or text.encode()
        if not raw.strip():
            raise BadRequest("choose a YAML file or paste the document", code="invalid-field")
        counts = transfer.import_catalog(session, principal, raw)
        return (
            f"Imported: categories {counts.categories}, service templates {counts.templates} "
            f"(versions {counts.versions}), catalog items {counts.items}."
        )

    return submit(request, _transfer_panel, change)
