"""Portal pages of the identity domain: tenant tree, users, groups, audit log, roles."""

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from yunguan.core import audit
from yunguan.core.errors import Problem
from yunguan.core.pagination import PageParams
from yunguan.identity import service
from yunguan.identity.roles import PLATFORM_ADMIN, ROLE_NAMES, ROLES
from yunguan.identity.schemas import GroupCreate, TenantCreate, TenantUpdate, UserCreate
from yunguan.identity.scope import Principal
from yunguan.web.portal import ALL, FormText, page, page_principal, panel, render, submit
from yunguan.workflows import engine
from yunguan.workflows.tenant_delete import KIND as TENANT_DELETE
from yunguan.workflows.tenant_delete import request_deletion

router = APIRouter(include_in_schema=False)


# --- tenants -------------------------------------------------------------------------------


def _tenants_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    """Visible tenants as a tree; a tenant whose parent is hidden is a top node."""
    with request.app.state.db.session(write=False) as session:
        tenants, _ = service.list_tenants(session, principal, ALL)
    nodes = {t.id: {"tenant": t, "children": []} for t in tenants}
    tops = []
    for tenant in tenants:
        parent = nodes.get(tenant.parent_id or "")
        (parent["children"] if parent else tops).append(nodes[tenant.id])
    ordered: list = []

    def walk(level: list[dict], depth: int) -> None:
        for node in level:
            ordered.append((node["tenant"], depth))
            walk(node["children"], depth + 1)

    walk(tops, 0)
    return panel(
        request,
        "tenants_panel.html",
        principal,
        status,
        tree=tops,
        choices=ordered,
        error=error,
        notice=notice,
    )


@router.get("/tenants", response_class=HTMLResponse)
def tenants_page(request: Request) -> Response:
    return page(request, "Tenants", _tenants_panel)


@router.post("/tenants/new", name="tenant.create")
def tenant_create(
    request: Request,
    name: FormText,
    parent_id: FormText,
    description: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = TenantCreate(name=name, parent_id=parent_id, description=description)
        return f"Created tenant “{service.create_tenant(session, principal, data).name}”."

    return submit(request, _tenants_panel, change)


@router.post("/tenants/{tenant_id}/rename", name="tenant.update")
def tenant_rename(request: Request, tenant_id: str, name: FormText) -> Response:
    def change(session: Session, principal: Principal) -> str:
        service.update_tenant(session, principal, tenant_id, TenantUpdate(name=name))
        return f"Renamed to “{name}”."

    return submit(request, _tenants_panel, change)


@router.post("/tenants/{tenant_id}/move", name="tenant.move")
def tenant_move(request: Request, tenant_id: str, parent_id: FormText) -> Response:
    def change(session: Session, principal: Principal) -> str:
        moved = service.move_tenant(session, principal, tenant_id, parent_id)
        return f"Moved “{moved.name}”."

    return submit(request, _tenants_panel, change)


@router.post("/tenants/{tenant_id}/delete", name="tenant.delete")
def tenant_delete(request: Request, tenant_id: str) -> Response:
    queued: list[str] = []

    def change(session: Session, principal: Principal) -> str:
        tenant, operation = request_deletion(session, principal, tenant_id)
        queued.append(operation.id)
        return f"Deleting “{tenant.name}” (operation {operation.id})."

    response = submit(request, _tenants_panel, change)
    for operation_id in queued:  # committed by now
        engine.submit(operation_id, TENANT_DELETE)
    return response


# --- users ---------------------------------------------------------------------------------


def _users_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    tenant_filter = request.query_params.get("tenant_id") or None
    with request.app.state.db.session(write=False) as session:
        users, _ = service.list_users(session, principal, ALL, tenant_id=tenant_filter)
        tenants, _ = service.list_tenants(session, principal, ALL)
    grantable = [r for r in ROLE_NAMES if r != PLATFORM_ADMIN or principal.is_platform_admin]
    return panel(
        request,
        "users_panel.html",
        principal,
        status,
        users=users,
        tenants=tenants,
        tenant_names={t.id: t.name for t in tenants},
        roles=grantable,
        error=error,
        notice=notice,
        tenant_filter=tenant_filter,
    )


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request) -> Response:
    return page(request, "Users", _users_panel)


@router.post("/users/new", name="user.create")
def user_create(
    request: Request,
    username: FormText,
    password: FormText,
    tenant_id: FormText,
    roles: Annotated[list[str] | None, Form()] = None,
    display_name: FormText = "",
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = UserCreate(
            username=username,
            password=password,
            tenant_id=tenant_id,
            roles=roles or ["member"],
            display_name=display_name,
        )
        user = service.create_user(session, principal, data, request.app.state.settings)
        return f"Created user “{user.username}”."

    return submit(request, _users_panel, change)


USER_ACTIONS = {
    "disable": "disabled",
    "enable": "enabled",
    "unlock": "unlocked",
    "delete": "deleted",
}


@router.post("/users/{user_id}/{action}", name="user.action")
def user_action(request: Request, user_id: str, action: str) -> Response:
    audit.note(action=f"user.{action}")

    def change(session: Session, principal: Principal) -> str:
        if action not in USER_ACTIONS:
            raise Problem(f"unknown action {action}")
        if action == "delete":
            service.delete_user(session, principal, user_id)
        else:
            service.change_user_state(session, principal, user_id, action)
        return f"User {USER_ACTIONS[action]}."

    return submit(request, _users_panel, change)


# --- groups --------------------------------------------------------------------------------


def _groups_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        groups, _ = service.list_groups(session, principal, ALL)
        members = service.group_member_ids(session, [g.id for g in groups])
        tenants, _ = service.list_tenants(session, principal, ALL)
        users, _ = service.list_users(session, principal, ALL)
    return panel(
        request,
        "groups_panel.html",
        principal,
        status,
        groups=groups,
        members=members,
        tenants=tenants,
        users=users,
        tenant_names={t.id: t.name for t in tenants},
        usernames={u.id: u.username for u in users},
        roles=[r for r in ROLE_NAMES if r != PLATFORM_ADMIN],
        error=error,
        notice=notice,
    )


@router.get("/groups", response_class=HTMLResponse)
def groups_page(request: Request) -> Response:
    return page(
        request,
        "Groups",
        _groups_panel,
        "A group grants its roles to every member, in the member's own tenant subtree.",
    )


@router.post("/groups/new", name="group.create")
def group_create(
    request: Request,
    name: FormText,
    tenant_id: FormText,
    roles: Annotated[list[str] | None, Form()] = None,
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = GroupCreate(name=name, tenant_id=tenant_id, roles=roles or [])
        return f"Created group “{service.create_group(session, principal, data).name}”."

    return submit(request, _groups_panel, change)


@router.post("/groups/{group_id}/members", name="group.membership")
def group_members(
    request: Request,
    group_id: str,
    user_id: FormText,
    action: Annotated[str, Form(pattern="^(add-member|remove-member)$")],
):
    def change(session: Session, principal: Principal) -> str:
        group = service.change_membership(session, principal, group_id, action, user_id)
        return f"{'Added to' if action == 'add-member' else 'Removed from'} “{group.name}”."

    return submit(request, _groups_panel, change)


@router.post("/groups/{group_id}/delete", name="group.delete")
def group_delete(request: Request, group_id: str) -> Response:
    def change(session: Session, principal: Principal) -> str:
        service.delete_group(session, principal, group_id)
        return "Group deleted."

    return submit(request, _groups_panel, change)


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
    roles = [{"name": name, **spec} for name, spec in ROLES.items()]
    return render(request, "roles.html", principal, roles=roles)
