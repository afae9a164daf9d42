"""REST: /auth, /me, /tenants, /users, /groups, /roles, /audit-events."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from yunguan.core import audit
from yunguan.core.api import Filter, ResourceId, problem_responses
from yunguan.core.deps import AppSettings, DbSession, get_db
from yunguan.core.errors import NotFound
from yunguan.core.pagination import Page, Pages
from yunguan.core.types import UtcTime
from yunguan.identity import service
from yunguan.identity.deps import CurrentPrincipal, get_signer
from yunguan.identity.models import Group, Tenant
from yunguan.identity.roles import ROLES
from yunguan.identity.schemas import (
    AuditEventOut,
    GroupCreate,
    GroupMembership,
    GroupOut,
    GroupUpdate,
    MeOut,
    RoleOut,
    TenantCreate,
    TenantMove,
    TenantOut,
    TenantUpdate,
    TokenOut,
    TokenRequest,
    UserAction,
    UserCreate,
    UserOut,
    UserUpdate,
)
from yunguan.workflows import engine
from yunguan.workflows.api import accepted
from yunguan.workflows.schemas import Accepted
from yunguan.workflows.tenant_delete import KIND as TENANT_DELETE
from yunguan.workflows.tenant_delete import request_deletion

router = APIRouter(responses=problem_responses(400, 401, 404, 422))


# --- authentication ------------------------------------------------------------------------


@router.post(
    "/auth/token",
    response_model=TokenOut,
    name="auth.login",
    tags=["auth"],
    responses=problem_responses(423),
)
def issue_token(request: Request, body: TokenRequest, settings: AppSettings) -> TokenOut:
    token, ttl = service.authenticate(
        get_db(request), get_signer(request), settings, body.username, body.password
    )
    return TokenOut(access_token=token, expires_in=ttl)


@router.post("/auth/logout", status_code=204, name="auth.logout", tags=["auth"])
def logout(session: DbSession, principal: CurrentPrincipal) -> Response:
    service.logout(session, principal)
    return Response(status_code=204)


@router.get("/me", response_model=MeOut, tags=["auth"])
def read_me(session: DbSession, principal: CurrentPrincipal) -> dict:
    return service.me(session, principal)


# --- tenants -------------------------------------------------------------------------------


@router.get("/tenants", response_model=Page[TenantOut], tags=["tenants"])
def list_tenants(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    parent_id: Filter = None,
    name: Filter = None,
    subtree_of: Filter = None,
) -> Page[TenantOut]:
    rows, cursor = service.list_tenants(
        session, principal, page, parent_id=parent_id, name=name, subtree_of=subtree_of
    )
    return Page(items=[TenantOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/tenants",
    response_model=TenantOut,
    status_code=201,
    name="tenant.create",
    tags=["tenants"],
    responses=problem_responses(403, 409),
)
def create_tenant(session: DbSession, principal: CurrentPrincipal, body: TenantCreate) -> Tenant:
    return service.create_tenant(session, principal, body)


@router.get("/tenants/{tenant_id}", response_model=TenantOut, tags=["tenants"])
def get_tenant(session: DbSession, principal: CurrentPrincipal, tenant_id: ResourceId) -> Tenant:
    return service.get_tenant(session, principal, tenant_id)


@router.patch(
    "/tenants/{tenant_id}",
    response_model=TenantOut,
    name="tenant.update",
    tags=["tenants"],
    responses=problem_responses(403, 409),
)
def update_tenant(
    session: DbSession, principal: CurrentPrincipal, tenant_id: ResourceId, body: TenantUpdate
) -> Tenant:
    return service.update_tenant(session, principal, tenant_id, body)


@router.post(
    "/tenants/{tenant_id}/actions",
    response_model=TenantOut,
    name="tenant.move",
    tags=["tenants"],
    responses=problem_responses(403, 409),
)
def tenant_action(
    session: DbSession, principal: CurrentPrincipal, tenant_id: ResourceId, body: TenantMove
) -> Tenant:
    return service.move_tenant(session, principal, tenant_id, body.parent_id)


@router.delete(
    "/tenants/{tenant_id}",
    status_code=202,
    response_model=Accepted[TenantOut],
    name="tenant.delete",
    tags=["tenants"],
    responses=problem_responses(403, 409),
)
def delete_tenant_route(
    request: Request, response: Response, principal: CurrentPrincipal, tenant_id: ResourceId
) -> Accepted[TenantOut]:
    with get_db(request).session() as session:
        tenant, operation = request_deletion(session, principal, tenant_id)
    engine.submit(operation.id, TENANT_DELETE)
    return accepted(response, TenantOut.model_validate(tenant), operation)


# --- users ---------------------------------------------------------------------------------


@router.get("/users", response_model=Page[UserOut], tags=["users"])
def list_users(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    tenant_id: Filter = None,
    username: Filter = None,
    state: Filter = None,
) -> Page[UserOut]:
    rows, cursor = service.list_users(
        session, principal, page, tenant_id=tenant_id, username=username, state=state
    )
    return Page(items=[UserOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/users",
    response_model=UserOut,
    status_code=201,
    name="user.create",
    tags=["users"],
    responses=problem_responses(403, 409),
)
def create_user(
    session: DbSession, principal: CurrentPrincipal, settings: AppSettings, body: UserCreate
):
    return service.create_user(session, principal, body, settings)


@router.get("/users/{user_id}", response_model=UserOut, tags=["users"])
def get_user(session: DbSession, principal: CurrentPrincipal, user_id: ResourceId):
    return service.get_user(session, principal, user_id)


@router.patch(
    "/users/{user_id}",
    response_model=UserOut,
    name="user.update",
    tags=["users"],
    responses=problem_responses(403),
)
def update_user(
    session: DbSession, principal: CurrentPrincipal, user_id: ResourceId, body: UserUpdate
):
    return service.update_user(session, principal, user_id, body)


@router.post(
    "/users/{user_id}/actions",
    response_model=UserOut,
    name="user.action",
    tags=["users"],
    responses=problem_responses(403),
)
def user_action(
    session: DbSession,
    principal: CurrentPrincipal,
    settings: AppSettings,
    user_id: ResourceId,
    body: UserAction,
):
    audit.note(action=f"user.{body.action}")
    if body.action == "set-password":
        return service.set_password(
            session, principal, user_id, body.password, body.current_password, settings
        )
    return service.change_user_state(session, principal, user_id, body.action)


@router.delete(
    "/users/{user_id}",
    status_code=204,
    name="user.delete",
    tags=["users"],
    responses=problem_responses(403),
)
def delete_user(session: DbSession, principal: CurrentPrincipal, user_id: ResourceId) -> Response:
    service.delete_user(session, principal, user_id)
    return Response(status_code=204)


# --- groups --------------------------------------------------------------------------------


def _group_out(session, groups: list[Group]) -> list[GroupOut]:
    members = service.group_member_ids(session, [g.id for g in groups])
    fields = [name for name in GroupOut.model_fields if name != "member_ids"]
    return [
        GroupOut(**{name: getattr(g, name) for name in fields}, member_ids=members[g.id])
        for g in groups
    ]


@router.get("/groups", response_model=Page[GroupOut], tags=["groups"])
def list_groups(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    tenant_id: Filter = None,
    name: Filter = None,
) -> Page[GroupOut]:
    rows, cursor = service.list_groups(session, principal, page, tenant_id=tenant_id, name=name)
    return Page(items=_group_out(session, rows), next_cursor=cursor)


@router.post(
    "/groups",
    response_model=GroupOut,
    status_code=201,
    name="group.create",
    tags=["groups"],
    responses=problem_responses(403, 409),
)
def create_group(session: DbSession, principal: CurrentPrincipal, body: GroupCreate) -> GroupOut:
    return _group_out(session, [service.create_group(session, principal, body)])[0]


@router.get("/groups/{group_id}", response_model=GroupOut, tags=["groups"])
def get_group(session: DbSession, principal: CurrentPrincipal, group_id: ResourceId) -> GroupOut:
    return _group_out(session, [service.get_group(session, principal, group_id)])[0]


@router.patch(
    "/groups/{group_id}",
    response_model=GroupOut,
    name="group.update",
    tags=["groups"],
    responses=problem_responses(403, 409),
)
def update_group(
    session: DbSession, principal: CurrentPrincipal, group_id: ResourceId, body: GroupUpdate
) -> GroupOut:
    return _group_out(session, [service.update_group(session, principal, group_id, body)])[0]


@router.post(
    "/groups/{group_id}/actions",
    response_model=GroupOut,
    name="group.membership",
    tags=["groups"],
    responses=problem_responses(403),
)
def group_action(
    session: DbSession, principal: CurrentPrincipal, group_id: ResourceId, body: GroupMembership
) -> GroupOut:
    group = service.change_membership(session, principal, group_id, body.action, body.user_id)
    session.flush()
    return _group_out(session, [group])[0]


@router.delete(
    "/groups/{group_id}",
    status_code=204,
    name="group.delete",
    tags=["groups"],
    responses=problem_responses(403),
)
def delete_group(session: DbSession, principal: CurrentPrincipal, group_id: ResourceId):
    service.delete_group(session, principal, group_id)
    return Response(status_code=204)


# --- roles ---------------------------------------------------------------------------------


def _role_out(name: str) -> RoleOut:
    spec = ROLES[name]
    return RoleOut(
        name=name,
        description=spec["description"],  # type: ignore[arg-type]
        permissions=sorted(spec["permissions"]),
    )  # type: ignore[arg-type]


@router.get("/roles", response_model=Page[RoleOut], tags=["roles"])
def list_roles(principal: CurrentPrincipal) -> Page[RoleOut]:
    return Page(items=[_role_out(name) for name in ROLES])


@router.get("/roles/{role_name}", response_model=RoleOut, tags=["roles"])
def get_role(principal: CurrentPrincipal, role_name: ResourceId) -> RoleOut:
    if role_name not in ROLES:
        raise NotFound(f"role {role_name} not found")
    return _role_out(role_name)


# --- audit ---------------------------------------------------------------------------------


@router.get("/audit-events", response_model=Page[AuditEventOut], tags=["audit"])
def list_audit_events(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    actor_id: Filter = None,
    tenant_id: Filter = None,
    action: Filter = None,
    target_type: Filter = None,
    target_id: Filter = None,
    request_id: Filter = None,
    result: Annotated[str | None, Query(pattern="^(success|failure)$")] = None,
    since: UtcTime | None = None,
    until: UtcTime | None = None,
) -> Page[AuditEventOut]:
    rows, cursor = service.list_audit_events(
        session,
        principal,
        page,
        actor_id=actor_id,
        tenant_id=tenant_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        result=result,
        request_id=request_id,
        since=since,
        until=until,
    )
    return Page(items=[AuditEventOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/audit-events/{event_id}", response_model=AuditEventOut, tags=["audit"])
def get_audit_event(session: DbSession, principal: CurrentPrincipal, event_id: ResourceId):
    return service.get_audit_event(session, principal, event_id)
