"""Portal pages of the identity domain: tenant tree, users, audit log, roles."""

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from yunguan.core import audit
from yunguan.core.errors import Problem
from yunguan.core.pagination import PageParams
from yunguan.identity import service
from yunguan.identity.roles import ROLE_NAMES, ROLES
from yunguan.identity.schemas import TenantCreate, TenantUpdate, UserCreate
from yunguan.identity.scope import Principal
from yunguan.web.portal import page_principal, render, same_origin
from yunguan.workflows.tenant_delete import request_deletion

router = APIRouter(include_in_schema=False)
TREE_LIMIT = PageParams(limit=1000)


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return exc.detail if isinstance(exc, Problem) else str(exc)


def _tree(request: Request, principal: Principal) -> list[dict]:
    """Visible tenants as nested dicts; a tenant whose parent is hidden is a top node."""
    with request.app.state.db.session(write=False) as session:
        tenants, _ = service.list_tenants(session, principal, TREE_LIMIT)
    nodes = {t.id: {"tenant": t, "children": []} for t in tenants}
    tops = []
    for tenant in tenants:
        parent = nodes.get(tenant.parent_id or "")
        (parent["children"] if parent else tops).append(nodes[tenant.id])
    return tops


def _tenants_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    tree = _tree(request, principal)
    flat = []

    def walk(nodes: list[dict], depth: int) -> None:
        for node in nodes:
            flat.append((node["tenant"], depth))
            walk(node["children"], depth + 1)

    walk(tree, 0)
    response = render(
        request,
        "tenants_panel.html",
        principal,
        tree=tree,
        choices=flat,
        error=error,
        notice=notice,
    )
    response.status_code = status
    return response


@router.get("/tenants", response_class=HTMLResponse)
def tenants_page(request: Request) -> Response:
    return _page(request, page_principal(request), "tenants.html", _tenants_panel)


def _page(request: Request, principal: Principal, template: str, panel) -> Response:
    """A full page around a panel; HTMX requests get the panel alone."""
    inner = panel(request, principal)
    if request.headers.get("hx-request"):
        return inner
    return render(request, template, principal, panel=inner.body.decode())


@router.post("/tenants/new", name="tenant.create")
def tenant_create(
    request: Request,
    name: Annotated[str, Form(max_length=200)],
    parent_id: Annotated[str, Form(max_length=64)],
    description: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    principal = page_principal(request)
    same_origin(request)
    try:
        data = TenantCreate(name=name, parent_id=parent_id, description=description)
        with request.app.state.db.session() as session:
            created = service.create_tenant(session, principal, data)
    except (Problem, ValidationError) as exc:
        return _tenants_panel(request, principal, error=_message(exc), status=422)
    return _tenants_panel(request, principal, notice=f"Created tenant “{created.name}”.")


@router.post("/tenants/{tenant_id}/rename", name="tenant.update")
def tenant_rename(
    request: Request, tenant_id: str, name: Annotated[str, Form(max_length=200)]
) -> Response:
    principal = page_principal(request)
    same_origin(request)
    try:
        with request.app.state.db.session() as session:
            service.update_tenant(session, principal, tenant_id, TenantUpdate(name=name))
    except (Problem, ValidationError) as exc:
        return _tenants_panel(request, principal, error=_message(exc), status=422)
    return _tenants_panel(request, principal, notice=f"Renamed to “{name}”.")


@router.post("/tenants/{tenant_id}/delete", name="tenant.delete")
def tenant_delete(request: Request, tenant_id: str) -> Response:
    principal = page_principal(request)
    same_origin(request)
    try:
        tenant, operation = request_deletion(request.app.state.db, principal, tenant_id)
    except Problem as exc:
        return _tenants_panel(request, principal, error=_message(exc), status=exc.status)
    return _tenants_panel(
        request, principal, notice=f"Deleting “{tenant.name}” (operation {operation.id})."
    )


# --- users ---------------------------------------------------------------------------------


def _users_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    tenant_filter = request.query_params.get("tenant_id") or None
    with request.app.state.db.session(write=False) as session:
        users, _ = service.list_users(session, principal, TREE_LIMIT, tenant_id=tenant_filter)
        tenants, _ = service.list_tenants(session, principal, TREE_LIMIT)
    names = {t.id: t.name for t in tenants}
    grantable = [r for r in ROLE_NAMES if r != "platform-admin" or principal.is_platform_admin]
    response = render(
        request,
        "users_panel.html",
        principal,
        users=users,
        tenants=tenants,
        tenant_names=names,
        roles=grantable,
        error=error,
        notice=notice,
        tenant_filter=tenant_filter,
    )
    response.status_code = status
    return response


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request) -> Response:
    return _page(request, page_principal(request), "users.html", _users_panel)


@router.post("/users/new", name="user.create")
def user_create(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=300)],
    tenant_id: Annotated[str, Form(max_length=64)],
    roles: Annotated[list[str] | None, Form()] = None,
    display_name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    principal = page_principal(request)
    same_origin(request)
    try:
        data = UserCreate(
            username=username,
            password=password,
            tenant_id=tenant_id,
            roles=roles or ["member"],
            display_name=display_name,
        )
        with request.app.state.db.session() as session:
            user = service.create_user(session, principal, data, request.app.state.settings)
    except (Problem, ValidationError) as exc:
        return _users_panel(request, principal, error=_message(exc), status=422)
    return _users_panel(request, principal, notice=f"Created user “{user.username}”.")


@router.post("/users/{user_id}/{action}", name="user.action")
def user_action(request: Request, user_id: str, action: str) -> Response:
    principal = page_principal(request)
    same_origin(request)
    audit.note(action=f"user.{action}")
    try:
        with request.app.state.db.session() as session:
            if action == "delete":
                service.delete_user(session, principal, user_id)
            elif action in ("disable", "enable", "unlock"):
                service.change_user_state(session, principal, user_id, action)
            else:
                raise Problem(f"unknown action {action}")
    except Problem as exc:
        return _users_panel(request, principal, error=_message(exc), status=exc.status)
    return _users_panel(
        request, principal, notice=f"User {action}d." if action != "unlock" else "User unlocked."
    )


# --- audit log, roles ----------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    action: Annotated[str | None, Query(max_length=128)] = None,
    result: Annotated[str | None, Query(pattern="^(success|failure|)$")] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    target: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    principal = page_principal(request)
    filters = {"action": action or None, "result": result or None, "target_id": target or None}
    with request.app.state.db.session(write=False) as session:
        if actor:
            found, _ = service.list_users(session, principal, PageParams(limit=1), username=actor)
            filters["actor_id"] = found[0].id if found else "-"
        try:
            events, next_cursor = service.list_audit_events(
                session, principal, PageParams(limit=50, cursor=cursor), **filters
            )
        except Problem:
            events, next_cursor = [], None
    context = {
        "events": events,
        "next_cursor": next_cursor,
        "action": action or "",
        "result": result or "",
        "actor": actor or "",
        "target": target or "",
    }
    if request.headers.get("hx-request"):
        return render(request, "audit_rows.html", principal, **context)
    return render(request, "audit.html", principal, **context)


@router.get("/roles", response_class=HTMLResponse)
def roles_page(request: Request) -> Response:
    principal = page_principal(request)
    roles = [{"name": n, **{k: v for k, v in spec.items()}} for n, spec in ROLES.items()]
    return render(request, "roles.html", principal, roles=roles)
