from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from yunguan.core.types import (
    Email,
    Identifier,
    Input,
    Label,
    Name,
    Output,
    Password,
    Text,
    Username,
)
from yunguan.identity.roles import PLATFORM_ADMIN, ROLE_NAMES

RoleName = Literal[ROLE_NAMES]  # type: ignore[valid-type]
RoleList = Annotated[list[RoleName], Field(max_length=len(ROLE_NAMES))]
# platform-admin is granted to users directly, never through a group.
GroupRoleName = Literal[tuple(r for r in ROLE_NAMES if r != PLATFORM_ADMIN)]  # type: ignore[valid-type]
GroupRoleList = Annotated[list[GroupRoleName], Field(max_length=len(ROLE_NAMES))]


class TokenRequest(Input):
    username: Annotated[Label, Field(min_length=1, max_length=64)]
    password: Password


class TokenOut(Output):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class MeOut(Output):
    id: str
    username: str
    display_name: str
    tenant_id: str
    tenant_name: str
    roles: list[str]
    permissions: list[str]


class TenantCreate(Input):
    name: Name
    parent_id: Identifier
    description: Text = ""


class TenantUpdate(Input):
    name: Name | None = None
    description: Text | None = None


class TenantMove(Input):
    action: Literal["move"]
    parent_id: Identifier


class TenantOut(Output):
    id: str
    name: str
    description: str
    parent_id: str | None
    path: str
    depth: int
    state: str
    created_at: datetime
    updated_at: datetime


class UserCreate(Input):
    username: Username
    password: Password
    tenant_id: Identifier
    roles: RoleList = Field(default_factory=lambda: ["member"])
    display_name: Label = ""
    email: Email = ""


class UserUpdate(Input):
    display_name: Label | None = None
    email: Email | None = None
    roles: RoleList | None = None


class SetPassword(Input):
    action: Literal["set-password"]
    password: Password
    current_password: Password | None = None


class UserStateAction(Input):
    action: Literal["unlock", "disable", "enable", "revoke-tokens"]


UserAction = Annotated[SetPassword | UserStateAction, Field(discriminator="action")]


class UserOut(Output):
    id: str
    username: str
    display_name: str
    email: str
    tenant_id: str
    roles: list[str]
    state: str
    locked_until: datetime | None
    created_at: datetime
    updated_at: datetime


class GroupCreate(Input):
    name: Name
    tenant_id: Identifier
    roles: GroupRoleList = Field(default_factory=list)
    description: Text = ""


class GroupUpdate(Input):
    name: Name | None = None
    description: Text | None = None
    roles: GroupRoleList | None = None


class GroupMembership(Input):
    action: Literal["add-member", "remove-member"]
    user_id: Identifier


class GroupOut(Output):
    id: str
    tenant_id: str
    name: str
    description: str
    roles: list[str]
    member_ids: list[str]
    created_at: datetime
    updated_at: datetime


class RoleOut(Output):
    name: str
    description: str
    permissions: list[str]


class AuditEventOut(Output):
    id: str
    occurred_at: datetime
    actor_id: str | None
    actor_name: str
    actor_tenant_id: str | None
    tenant_id: str | None
    action: str
    target_type: str
    target_id: str
    result: str
    status_code: int | None
    request_id: str
    source_ip: str
    detail: dict
