"""Tenancy enforced in one place.

Every service asks this module which rows a principal may see (``restrict``) and whether it
may change one (``require``). A row outside the principal's tenant subtree is reported as
missing (404), never as forbidden, so ids of other tenants leak nothing.
"""

from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Select, false, or_, select
from sqlalchemy.orm import Session

from yunguan.core.errors import Forbidden, NotFound
from yunguan.core.pagination import PageParams, paginate, where_equal
from yunguan.identity.models import Tenant
from yunguan.identity.roles import PLATFORM_ADMIN, permissions_of

M = TypeVar("M")


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    tenant_id: str
    tenant_path: str
    roles: frozenset[str]
    token_id: str | None = None
    permissions: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "permissions", permissions_of(self.roles))

    @property
    def is_platform_admin(self) -> bool:
        return PLATFORM_ADMIN in self.roles

    def can(self, permission: str) -> bool:
        return "*" in self.permissions or permission in self.permissions


SYSTEM = Principal(
    user_id="system",
    username="system",
    tenant_id="",
    tenant_path="",
    roles=frozenset({PLATFORM_ADMIN}),
)
"""Workflows act as the platform, on work a request authorised before it was queued."""


def ancestors(tenant_path: str) -> list[str]:
    """The tenant ids of a path, root first, the tenant itself last."""
    return [t for t in tenant_path.split("/") if t]


def subtree_ids(path: str) -> Select[Any]:
    return select(Tenant.id).where(Tenant.path.startswith(path, autoescape=True))


def restrict(
    stmt: Select[Any], model: Any, principal: Principal, permission: str, *, owned: bool = False
) -> Select[Any]:
    """Limit ``stmt`` (a select over ``model``) to the rows ``principal`` may see: its
    subtree's, and rows shared with everyone (``visibility`` public) unless ``owned``."""
    if not principal.can(permission):
        return stmt.where(false())
    if principal.is_platform_admin:
        return stmt
    if model is Tenant:
        return stmt.where(Tenant.path.startswith(principal.tenant_path, autoescape=True))
    if hasattr(model, "tenant_path"):  # rows that outlive their tenant carry its path
        return stmt.where(model.tenant_path.startswith(principal.tenant_path, autoescape=True))
    mine = model.tenant_id.in_(subtree_ids(principal.tenant_path))
    if hasattr(model, "visibility") and not owned:
        return stmt.where(or_(model.visibility == "public", mine))
    return stmt.where(mine)


def restrict_granted(
    stmt: Select[Any],
    model: Any,
    grants: tuple[Any, Any],
    principal: Principal,
    permission: str,
    *,
    everyone: Any,
) -> Select[Any]:
    """Limit ``stmt`` to rows no tenant owns but that are shared with tenant subtrees: a row
    is visible when ``everyone`` holds for it, or when one of its grants (``grants`` = the
    grant table's row-id and tenant-id columns) names the principal's tenant or an ancestor."""
    if not principal.can(permission):
        return stmt.where(false())
    if principal.is_platform_admin:
        return stmt
    row_id, tenant_id = grants
    granted = select(row_id).where(tenant_id.in_(ancestors(principal.tenant_path)))
    return stmt.where(or_(everyone, model.id.in_(granted)))


def get_visible(
    session: Session,
    model: type[M],
    ident: str,
    principal: Principal,
    permission: str,
    *,
    owned: bool = False,
) -> M:
    """The row ``ident`` of ``model`` if the principal may see it, else NotFound. ``owned``:
    only its subtree's rows, not those shared with everyone (for changing one)."""
    stmt = restrict(
        select(model).where(model.id == ident), model, principal, permission, owned=owned
    )  # type: ignore[attr-defined]
    row = session.scalars(stmt).one_or_none()
    if row is None:
        raise NotFound(f"{model.__tablename__.rstrip('s')} {ident} not found")  # type: ignore[attr-defined]
    return row


def require(principal: Principal, permission: str) -> None:
    """For an object already known to be visible: may the principal change it?"""
    if not principal.can(permission):
        raise Forbidden(f"permission '{permission}' required")


def get_writable(
    session: Session, model: type[M], ident: str, principal: Principal, noun: str
) -> M:
    """Owned by the principal's subtree with ``noun:read`` (else 404) and changeable with
    ``noun:write`` (else 403)."""
    row = get_visible(session, model, ident, principal, f"{noun}:read", owned=True)
    require(principal, f"{noun}:write")
    return row


def get_permitted(
    session: Session, model: type[M], ident: str, principal: Principal, permission: str, noun: str
) -> M:
    """A row no tenant owns (infrastructure): the principal needs ``permission`` (else 403)."""
    require(principal, permission)
    row = session.get(model, ident)
    if row is None:
        raise NotFound(f"{noun} {ident} not found")
    return row


def list_permitted(
    session: Session,
    principal: Principal,
    model: Any,
    permission: str,
    page: PageParams,
    **filters: Any,
) -> tuple[list[Any], str | None]:
    """Rows no tenant owns, filtered by equality, one page at a time."""
    require(principal, permission)
    return paginate(session, where_equal(select(model), model, **filters), model.id, page)


def list_visible(
    session: Session,
    principal: Principal,
    model: Any,
    permission: str,
    page: PageParams,
    **filters: Any,
) -> tuple[list[Any], str | None]:
    """Rows of tenants the principal sees, filtered by equality, one page at a time."""
    stmt = where_equal(restrict(select(model), model, principal, permission), model, **filters)
    return paginate(session, stmt, model.id, page)
