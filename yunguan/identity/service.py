"""Identity: tenants, users, groups, logins. The only code that writes these tables."""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yunguan.core import audit
from yunguan.core.audit import AuditEvent
from yunguan.core.clock import now
from yunguan.core.config import Settings
from yunguan.core.db import Database
from yunguan.core.errors import BadRequest, Conflict, Forbidden, Locked, NotFound, Unauthorized
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams, paginate, where_equal
from yunguan.identity import credentials
from yunguan.identity.credentials import TokenSigner
from yunguan.identity.models import Group, GroupMember, Tenant, Token, User
from yunguan.identity.roles import PLATFORM_ADMIN
from yunguan.identity.schemas import (
    GroupCreate,
    GroupUpdate,
    TenantCreate,
    TenantUpdate,
    UserCreate,
    UserUpdate,
)
from yunguan.identity.scope import (
    Principal,
    get_visible,
    get_writable,
    require,
    restrict,
)

MAX_TENANT_DEPTH = 32
ROOT_TENANT_NAME = "root"


# --- tenants -------------------------------------------------------------------------------


def ensure_root_tenant(session: Session) -> Tenant:
    root = session.scalars(select(Tenant).where(Tenant.parent_id.is_(None))).first()
    if root is None:
        tenant_id = new_id("t")
        root = Tenant(id=tenant_id, name=ROOT_TENANT_NAME, parent_id=None, path=f"/{tenant_id}/")
        session.add(root)
        session.flush()
    return root


def _lock(session: Session, *tenant_ids: str) -> list[Tenant]:
    """Re-read tenants under a row lock (PostgreSQL; SQLite writers are serialised anyway),
    in id order so two transactions never wait on each other, with fresh column values."""
    locked = session.scalars(
        select(Tenant)
        .where(Tenant.id.in_(tenant_ids))
        .order_by(Tenant.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    by_id = {t.id: t for t in locked}
    if len(by_id) != len(set(tenant_ids)):
        raise Conflict("the tenant changed meanwhile; try again", code="tenant-changed")
    return [by_id[t] for t in tenant_ids]


def _require_active(tenant: Tenant) -> None:
    if tenant.state != "active":
        raise Conflict(f"tenant {tenant.id} is {tenant.state}", code="tenant-not-active")


def _managed_tenant(session: Session, principal: Principal, tenant_id: str) -> Tenant:
    """A tenant the principal may rename, move or delete: strictly below its own tenant."""
    tenant = get_writable(session, Tenant, tenant_id, principal, "tenant")
    if tenant.id == principal.tenant_id and not principal.is_platform_admin:
        raise Forbidden("a tenant's own administrators cannot rename, move or delete it")
    return tenant


def _name_taken(session: Session, parent_id: str | None, name: str, exclude: str = "") -> bool:
    return (
        session.scalar(
            select(func.count())
            .select_from(Tenant)
            .where(Tenant.parent_id == parent_id, Tenant.name == name, Tenant.id != exclude)
        )
        > 0
    )


def _flush_unique(session: Session, message: str, code: str) -> None:
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(message, code=code)


def create_tenant(session: Session, principal: Principal, data: TenantCreate) -> Tenant:
    get_writable(session, Tenant, data.parent_id, principal, "tenant")
    (parent,) = _lock(session, data.parent_id)
    _require_active(parent)
    if parent.depth + 1 > MAX_TENANT_DEPTH:
        raise BadRequest(f"tenant trees are limited to {MAX_TENANT_DEPTH} levels", code="too-deep")
    if _name_taken(session, parent.id, data.name):
        raise Conflict(f"'{data.name}' already exists under {parent.id}", code="duplicate-name")
    tenant_id = new_id("t")
    tenant = Tenant(
        id=tenant_id,
        name=data.name,
        description=data.description,
        parent_id=parent.id,
        path=f"{parent.path}{tenant_id}/",
    )
    session.add(tenant)
    _flush_unique(session, f"'{data.name}' already exists under {parent.id}", "duplicate-name")
    audit.note(target_type="tenant", target_id=tenant.id, tenant_id=tenant.id)
    return tenant


def list_tenants(
    session: Session,
    principal: Principal,
    page: PageParams,
    *,
    parent_id: str | None = None,
    name: str | None = None,
    subtree_of: str | None = None,
) -> tuple[list[Tenant], str | None]:
    stmt = restrict(select(Tenant), Tenant, principal, "tenant:read")
    stmt = where_equal(stmt, Tenant, parent_id=parent_id, name=name)
    if subtree_of:
        top = get_visible(session, Tenant, subtree_of, principal, "tenant:read")
        stmt = stmt.where(Tenant.path.startswith(top.path, autoescape=True))
    return paginate(session, stmt, Tenant.id, page)


def get_tenant(session: Session, principal: Principal, tenant_id: str) -> Tenant:
    return get_visible(session, Tenant, tenant_id, principal, "tenant:read")


def tenant_for_new_resource(session: Session, principal: Principal, tenant_id: str) -> Tenant:
    """A tenant something new may be created in: visible to the principal and active. Its
    row stays share-locked until the caller commits, so a deletion that starts meanwhile
    waits, then finds what was created (and refuses)."""
    stmt = restrict(select(Tenant).where(Tenant.id == tenant_id), Tenant, principal, "tenant:read")
    tenant = session.scalars(
        stmt.with_for_update(read=True).execution_options(populate_existing=True)
    ).one_or_none()
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    _require_active(tenant)
    return tenant


def tenant_paths(session: Session, tenant_ids: Iterable[str]) -> dict[str, str]:
    """Tree positions of tenants, for code acting on their behalf (no principal)."""
    rows = session.execute(select(Tenant.id, Tenant.path).where(Tenant.id.in_(set(tenant_ids))))
    return dict(rows.all())


def active_user_tenants(session: Session, user_ids: Iterable[str]) -> dict[str, str]:
    """The tenant paths of those users that exist and are active (the rest are left out)."""
    rows = session.execute(
        select(User.id, Tenant.path)
        .join(Tenant, Tenant.id == User.tenant_id)
        .where(User.id.in_(set(user_ids)), User.state == "active")
    )
    return dict(rows.all())


def update_tenant(
    session: Session, principal: Principal, tenant_id: str, data: TenantUpdate
) -> Tenant:
    tenant = _managed_tenant(session, principal, tenant_id)
    audit.note(target_type="tenant", target_id=tenant.id, tenant_id=tenant.id)
    if data.name is not None and data.name != tenant.name:
        if _name_taken(session, tenant.parent_id, data.name, exclude=tenant.id):
            raise Conflict(f"'{data.name}' already exists beside it", code="duplicate-name")
        audit.note(detail={"renamed_from": tenant.name, "renamed_to": data.name})
        tenant.name = data.name
    if data.description is not None:
        tenant.description = data.description
    _flush_unique(session, f"'{data.name}' already exists beside it", "duplicate-name")
    return tenant


def move_tenant(session: Session, principal: Principal, tenant_id: str, parent_id: str) -> Tenant:
    tenant = _managed_tenant(session, principal, tenant_id)
    audit.note(target_type="tenant", target_id=tenant.id, tenant_id=tenant.id)
    if tenant.parent_id is None:
        raise BadRequest("the root tenant cannot be moved", code="root-tenant")
    get_writable(session, Tenant, parent_id, principal, "tenant")
    tenant, parent = _lock(session, tenant.id, parent_id)
    if parent.path.startswith(tenant.path):
        raise Conflict("a tenant cannot move below itself", code="tenant-cycle")
    _require_active(tenant)
    _require_active(parent)
    if _name_taken(session, parent.id, tenant.name, exclude=tenant.id):
        raise Conflict(f"'{tenant.name}' already exists under {parent.id}", code="duplicate-name")
    subtree_height = session.scalar(
        select(
            func.max(func.length(Tenant.path) - func.length(func.replace(Tenant.path, "/", "")))
        ).where(Tenant.path.startswith(tenant.path, autoescape=True))
    ) - tenant.path.count("/")
    if parent.depth + 1 + subtree_height > MAX_TENANT_DEPTH:
        raise BadRequest(f"tenant trees are limited to {MAX_TENANT_DEPTH} levels", code="too-deep")
    old_prefix, new_prefix = tenant.path, f"{parent.path}{tenant.id}/"
    audit.note(detail={"from_parent": tenant.parent_id, "to_parent": parent.id})
    # Lock the whole subtree first. The rewrite is then a later statement, whose snapshot
    # (PostgreSQL, read committed) includes any child created while we waited for the locks.
    session.execute(
        select(Tenant.id)
        .where(Tenant.path.startswith(old_prefix, autoescape=True))
        .order_by(Tenant.id)
        .with_for_update()
    )
    try:
        session.execute(
            update(Tenant)
            .where(Tenant.path.startswith(old_prefix, autoescape=True))
            .values(path=literal(new_prefix) + func.substr(Tenant.path, len(old_prefix) + 1))
            .execution_options(synchronize_session=False)
        )
        session.execute(update(Tenant).where(Tenant.id == tenant.id).values(parent_id=parent.id))
    except IntegrityError:
        raise Conflict(f"'{tenant.name}' already exists under {parent.id}", code="duplicate-name")
    session.expire_all()
    return session.get(Tenant, tenant.id)  # type: ignore[return-value]


def check_deletable(session: Session, tenant: Tenant) -> None:
    """A tenant may go only when nothing lives below it (users and groups go with it)."""
    children = session.scalar(
        select(func.count()).select_from(Tenant).where(Tenant.parent_id == tenant.id)
    )
    if children:
        raise Conflict(
            f"tenant {tenant.id} still has {children} sub-tenant(s)", code="tenant-not-empty"
        )


def begin_tenant_deletion(session: Session, principal: Principal, tenant_id: str) -> Tenant:
    """Validate a delete request; the workflow does the work."""
    tenant = _managed_tenant(session, principal, tenant_id)
    # Recorded against the parent: the tenant itself is about to disappear.
    audit.note(target_type="tenant", target_id=tenant.id, tenant_id=tenant.parent_id)
    if tenant.parent_id is None:
        raise BadRequest("the root tenant cannot be deleted", code="root-tenant")
    (tenant,) = _lock(session, tenant.id)
    if tenant.state not in ("active", "delete-failed"):
        raise Conflict(f"tenant {tenant.id} is {tenant.state}", code="tenant-not-active")
    check_deletable(session, tenant)
    if principal.tenant_path.startswith(tenant.path):
        raise Conflict("you cannot delete the tenant you belong to", code="own-tenant")
    tenant.state = "deleting"
    return tenant


# --- tenant deletion steps (run by the workflow; each is idempotent) ------------------------


def revoke_tenant_tokens(session: Session, tenant_id: str) -> int:
    users = select(User.id).where(User.tenant_id == tenant_id)
    result = session.execute(
        update(Token)
        .where(Token.user_id.in_(users), Token.revoked_at.is_(None))
        .values(revoked_at=now())
    )
    return result.rowcount or 0


def remove_tenant_members(session: Session, tenant_id: str) -> int:
    """Drop the tenant's groups, memberships and users."""
    users = select(User.id).where(User.tenant_id == tenant_id)
    groups = select(Group.id).where(Group.tenant_id == tenant_id)
    session.execute(
        delete(GroupMember).where(GroupMember.user_id.in_(users) | GroupMember.group_id.in_(groups))
    )
    session.execute(delete(Group).where(Group.tenant_id == tenant_id))
    session.execute(delete(Token).where(Token.user_id.in_(users)))
    result = session.execute(delete(User).where(User.tenant_id == tenant_id))
    return result.rowcount or 0


def remove_tenant(session: Session, tenant_id: str) -> bool:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        return False
    session.delete(tenant)
    return True


# --- users ---------------------------------------------------------------------------------


def _check_grant(principal: Principal, tenant: Tenant, roles: list[str]) -> None:
    if PLATFORM_ADMIN in roles:
        if not principal.is_platform_admin:
            raise Forbidden("only platform administrators grant platform-admin")
        if tenant.parent_id is not None:
            raise BadRequest("platform-admin is granted only in the root tenant", code="bad-role")


def create_user(
    session: Session, principal: Principal, data: UserCreate, settings: Settings
) -> User:
    get_visible(session, Tenant, data.tenant_id, principal, "tenant:read")
    require(principal, "user:write")
    (tenant,) = _lock(session, data.tenant_id)  # no new members while it is being deleted
    _require_active(tenant)
    _check_grant(principal, tenant, data.roles)
    credentials.check_password_policy(data.password, data.username, settings.password_min_length)
    if session.scalar(select(func.count()).select_from(User).where(User.username == data.username)):
        raise Conflict(f"username '{data.username}' is taken", code="duplicate-username")
    user = User(
        id=new_id("u"),
        username=data.username,
        tenant_id=tenant.id,
        password_hash=credentials.hash_password(data.password),
        roles=sorted(set(data.roles)),
        display_name=data.display_name,
        email=data.email,
    )
    session.add(user)
    _flush_unique(session, f"username '{data.username}' is taken", "duplicate-username")
    audit.note(target_type="user", target_id=user.id, tenant_id=tenant.id)
    return user


def list_users(
    session: Session,
    principal: Principal,
    page: PageParams,
    *,
    tenant_id: str | None = None,
    username: str | None = None,
    state: str | None = None,
) -> tuple[list[User], str | None]:
    stmt = restrict(select(User), User, principal, "user:read")
    stmt = where_equal(stmt, User, tenant_id=tenant_id, username=username, state=state)
    return paginate(session, stmt, User.id, page)


def get_user(session: Session, principal: Principal, user_id: str) -> User:
    if user_id == principal.user_id:
        return session.get(User, user_id)  # type: ignore[return-value]
    return get_visible(session, User, user_id, principal, "user:read")


def _writable_user(session: Session, principal: Principal, user_id: str) -> User:
    user = get_writable(session, User, user_id, principal, "user")
    audit.note(target_type="user", target_id=user.id, tenant_id=user.tenant_id)
    if PLATFORM_ADMIN in user.roles and not principal.is_platform_admin:
        raise Forbidden("only platform administrators change platform administrators")
    return user


def update_user(session: Session, principal: Principal, user_id: str, data: UserUpdate) -> User:
    user = _writable_user(session, principal, user_id)
    if data.roles is not None:
        tenant = session.get(Tenant, user.tenant_id)
        _check_grant(principal, tenant, data.roles)  # type: ignore[arg-type]
        if user.id == principal.user_id and set(data.roles) != set(user.roles):
            raise Forbidden("you cannot change your own roles")
        audit.note(detail={"roles": sorted(set(data.roles))})
        user.roles = sorted(set(data.roles))
    if data.display_name is not None:
        user.display_name = data.display_name
    if data.email is not None:
        user.email = data.email
    return user


def revoke_user_tokens(session: Session, user_id: str) -> None:
    session.execute(
        update(Token)
        .where(Token.user_id == user_id, Token.revoked_at.is_(None))
        .values(revoked_at=now())
    )


def set_password(
    session: Session,
    principal: Principal,
    user_id: str,
    password: str,
    current_password: str | None,
    settings: Settings,
) -> User:
    if user_id == principal.user_id:
        user = session.get(User, user_id)
        audit.note(target_type="user", target_id=user_id, tenant_id=user.tenant_id)  # type: ignore[union-attr]
        if not current_password or not credentials.verify_password(
            current_password,
            user.password_hash,  # type: ignore[union-attr]
        ):
            raise Forbidden("current_password is wrong", code="wrong-password")
    else:
        user = _writable_user(session, principal, user_id)
    credentials.check_password_policy(password, user.username, settings.password_min_length)  # type: ignore[union-attr]
    user.password_hash = credentials.hash_password(password)  # type: ignore[union-attr]
    user.password_changed_at = now()  # type: ignore[union-attr]
    revoke_user_tokens(session, user_id)
    return user  # type: ignore[return-value]


def change_user_state(session: Session, principal: Principal, user_id: str, action: str) -> User:
    user = _writable_user(session, principal, user_id)
    if user.id == principal.user_id and action in ("disable", "revoke-tokens"):
        raise Forbidden(f"you cannot {action} yourself; log out instead")
    if action == "unlock":
        user.failed_logins, user.locked_until = 0, None
    elif action == "disable":
        user.state = "disabled"
        revoke_user_tokens(session, user.id)
    elif action == "enable":
        user.state = "active"
    else:
        revoke_user_tokens(session, user.id)
    return user


def delete_user(session: Session, principal: Principal, user_id: str) -> None:
    user = _writable_user(session, principal, user_id)
    if user.id == principal.user_id:
        raise Forbidden("you cannot delete yourself")
    session.delete(user)


# --- groups --------------------------------------------------------------------------------


def create_group(session: Session, principal: Principal, data: GroupCreate) -> Group:
    get_visible(session, Tenant, data.tenant_id, principal, "tenant:read")
    require(principal, "group:write")
    (tenant,) = _lock(session, data.tenant_id)
    _require_active(tenant)
    group = Group(
        id=new_id("g"),
        tenant_id=tenant.id,
        name=data.name,
        description=data.description,
        roles=sorted(set(data.roles)),
    )
    session.add(group)
    _flush_unique(session, f"group '{data.name}' exists in {tenant.id}", "duplicate-name")
    audit.note(target_type="group", target_id=group.id, tenant_id=tenant.id)
    return group


def list_groups(
    session: Session,
    principal: Principal,
    page: PageParams,
    *,
    tenant_id: str | None = None,
    name: str | None = None,
) -> tuple[list[Group], str | None]:
    stmt = restrict(select(Group), Group, principal, "group:read")
    stmt = where_equal(stmt, Group, tenant_id=tenant_id, name=name)
    return paginate(session, stmt, Group.id, page)


def get_group(session: Session, principal: Principal, group_id: str) -> Group:
    return get_visible(session, Group, group_id, principal, "group:read")


def group_member_ids(session: Session, group_ids: list[str]) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {gid: [] for gid in group_ids}
    rows = session.execute(
        select(GroupMember.group_id, GroupMember.user_id)
        .where(GroupMember.group_id.in_(group_ids))
        .order_by(GroupMember.user_id)
    )
    for group_id, user_id in rows:
        members[group_id].append(user_id)
    return members


def _writable_group(session: Session, principal: Principal, group_id: str) -> Group:
    group = get_writable(session, Group, group_id, principal, "group")
    audit.note(target_type="group", target_id=group.id, tenant_id=group.tenant_id)
    return group


def update_group(session: Session, principal: Principal, group_id: str, data: GroupUpdate) -> Group:
    group = _writable_group(session, principal, group_id)
    if data.roles is not None:
        group.roles = sorted(set(data.roles))
    if data.name is not None:
        group.name = data.name
    if data.description is not None:
        group.description = data.description
    _flush_unique(session, f"group '{data.name}' exists in {group.tenant_id}", "duplicate-name")
    return group


def change_membership(
    session: Session, principal: Principal, group_id: str, action: str, user_id: str
) -> Group:
    group = _writable_group(session, principal, group_id)
    user = get_visible(session, User, user_id, principal, "user:read")
    audit.note(detail={"user_id": user.id})
    group_tenant = session.get(Tenant, group.tenant_id)
    user_tenant = session.get(Tenant, user.tenant_id)
    if not user_tenant.path.startswith(group_tenant.path):  # type: ignore[union-attr]
        raise BadRequest("a group's members come from its tenant's subtree", code="bad-member")
    membership = session.get(GroupMember, (group.id, user.id))
    if action == "add-member" and membership is None:
        session.add(GroupMember(group_id=group.id, user_id=user.id))
    elif action == "remove-member" and membership is not None:
        session.delete(membership)
    return group


def delete_group(session: Session, principal: Principal, group_id: str) -> None:
    session.delete(_writable_group(session, principal, group_id))


# --- authentication ------------------------------------------------------------------------


def authenticate(
    db: Database, signer: TokenSigner, settings: Settings, username: str, password: str
) -> tuple[str, int]:
    """A fresh token for good credentials.

    Each attempt first takes one of the ``lockout_threshold`` tries allowed per lock-out
    window, atomically, so parallel guesses cannot outrun the lock. The password is then
    verified outside any transaction (argon2 is slow on purpose and SQLite has one writer),
    and the outcome recorded in a short one that re-checks the user and its tenant."""
    audit.note(action="auth.login", actor_name=username, target_type="user")
    current = now()
    with db.session(write=False) as session:
        user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None:
        credentials.verify_password(password, None)  # same work as for a real user
        raise Unauthorized("invalid username or password", code="invalid-credentials")
    audit.note(
        actor_id=user.id,
        actor_tenant_id=user.tenant_id,
        tenant_id=user.tenant_id,
        target_id=user.id,
    )
    attempt = _take_attempt(db, user.id, settings, current)
    if not credentials.verify_password(password, user.password_hash):
        if attempt >= settings.lockout_threshold:
            _lock_out(db, user.id, settings, current)
        raise Unauthorized("invalid username or password", code="invalid-credentials")
    token = Token(
        id=new_id("tok"),
        user_id=user.id,
        issued_at=current,
        expires_at=current + timedelta(seconds=settings.token_ttl_seconds),
    )
    with db.session() as session:
        still_welcome = session.execute(
            update(User)
            .where(User.id == user.id, User.state == "active", _not_locked(current))
            .where(User.tenant_id.in_(select(Tenant.id).where(Tenant.state == "active")))
            .values(failed_logins=0)
        ).rowcount
        if not still_welcome:
            raise Unauthorized("invalid username or password", code="invalid-credentials")
        session.add(token)
    jwt_token = signer.sign(
        user_id=user.id,
        username=user.username,
        token_id=token.id,
        issued_at=current,
        expires_at=token.expires_at,
    )
    return jwt_token, settings.token_ttl_seconds


def _not_locked(current: datetime) -> Any:
    return or_(User.locked_until.is_(None), User.locked_until <= current)


def _take_attempt(db: Database, user_id: str, settings: Settings, current: datetime) -> int:
    """Count this attempt; refuse it when the account is locked or out of tries."""
    with db.session() as session:
        attempt = session.scalar(
            update(User)
            .where(User.id == user_id, _not_locked(current))
            .values(failed_logins=User.failed_logins + 1, locked_until=None)
            .returning(User.failed_logins)
        )
        locked_until = session.scalar(select(User.locked_until).where(User.id == user_id))
    if attempt is None or attempt > settings.lockout_threshold:
        if attempt is not None:
            _lock_out(db, user_id, settings, current)
            locked_until = current + timedelta(seconds=settings.lockout_seconds)
        when = locked_until.isoformat() if locked_until else "a while"
        raise Locked(f"too many failed logins; try again after {when}")
    return attempt


def _lock_out(db: Database, user_id: str, settings: Settings, current: datetime) -> None:
    with db.session() as session:
        session.execute(
            update(User)
            .where(User.id == user_id)
            .values(
                failed_logins=0, locked_until=current + timedelta(seconds=settings.lockout_seconds)
            )
        )
    audit.note(detail={"locked": True})


def principal_from_token(session: Session, signer: TokenSigner, token: str) -> Principal:
    current = now()
    claims = signer.read(token, current)
    if claims is None:
        raise Unauthorized("invalid or expired token", code="invalid-token")
    row = session.execute(
        select(Token, User, Tenant.path)
        .join(User, User.id == Token.user_id)
        .join(Tenant, Tenant.id == User.tenant_id)
        .where(Token.id == claims["jti"], Token.user_id == claims["sub"])
    ).one_or_none()
    if row is None:
        raise Unauthorized("invalid or expired token", code="invalid-token")
    stored, user, tenant_path = row
    if stored.revoked_at is not None or stored.expires_at <= current or user.state != "active":
        raise Unauthorized("token revoked or expired", code="invalid-token")
    group_roles = session.scalars(
        select(Group.roles)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.user_id == user.id)
    )
    roles = set(user.roles)
    for extra in group_roles:
        roles.update(role for role in extra if role != PLATFORM_ADMIN)
    return Principal(
        user_id=user.id,
        username=user.username,
        tenant_id=user.tenant_id,
        tenant_path=tenant_path,
        roles=frozenset(roles),
        token_id=stored.id,
    )


def logout(session: Session, principal: Principal) -> None:
    audit.note(target_type="user", target_id=principal.user_id, tenant_id=principal.tenant_id)
    session.execute(update(Token).where(Token.id == principal.token_id).values(revoked_at=now()))


def bootstrap_user(
    session: Session, username: str, password: str, roles: list[str], settings: Settings
) -> User:
    """A user of the root tenant, made from the shell (``yunguan admin create-user``)."""
    root = ensure_root_tenant(session)
    credentials.check_password_policy(password, username, settings.password_min_length)
    if session.scalar(select(func.count()).select_from(User).where(User.username == username)):
        raise Conflict(f"username '{username}' is taken", code="duplicate-username")
    user = User(
        id=new_id("u"),
        username=username,
        tenant_id=root.id,
        password_hash=credentials.hash_password(password),
        roles=sorted(set(roles)),
    )
    session.add(user)
    session.flush()
    return user


def me(session: Session, principal: Principal) -> dict[str, Any]:
    user = session.get(User, principal.user_id)
    tenant = session.get(Tenant, principal.tenant_id)
    return {
        "id": principal.user_id,
        "username": principal.username,
        "display_name": user.display_name if user else "",
        "tenant_id": principal.tenant_id,
        "tenant_name": tenant.name if tenant else "",
        "roles": sorted(principal.roles),
        "permissions": sorted(principal.permissions),
    }


# --- audit trail (read-only: nothing in the API changes or deletes it) ---------------------


def list_audit_events(
    session: Session,
    principal: Principal,
    page: PageParams,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    **equal: str | None,
) -> tuple[list[AuditEvent], str | None]:
    """``equal`` filters: actor_id, tenant_id, action, target_type, target_id, result,
    request_id."""
    stmt = restrict(select(AuditEvent), AuditEvent, principal, "audit:read")
    stmt = where_equal(stmt, AuditEvent, **equal)
    if since:
        stmt = stmt.where(AuditEvent.occurred_at >= since)
    if until:
        stmt = stmt.where(AuditEvent.occurred_at < until)
    return paginate(session, stmt, AuditEvent.id, page, newest_first=True)


def get_audit_event(session: Session, principal: Principal, event_id: str) -> AuditEvent:
    return get_visible(session, AuditEvent, event_id, principal, "audit:read")
