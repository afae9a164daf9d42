from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yunguan.core.clock import now
from yunguan.core.db import Base


class Tenant(Base):
    """A node of the tenant tree. ``path`` is the materialized chain of ids, ``/t-root/t-a/``,
    so a subtree is one indexed prefix match."""

    __tablename__ = "tenants"
    __table_args__ = (UniqueConstraint("parent_id", "name", name="uq_tenant_sibling_name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(1024), default="")
    parent_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("tenants.id"), index=True)
    path: Mapped[str] = mapped_column(String(2048), index=True)
    state: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)

    @property
    def depth(self) -> int:
        return self.path.count("/") - 2


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    tenant_id: Mapped[str] = mapped_column(String(40), ForeignKey("tenants.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(16), default="active")
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    password_changed_at: Mapped[datetime] = mapped_column(default=now)
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)


class Group(Base):
    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_group_tenant_name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(1024), default="")
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Token(Base):
    """An issued bearer token; the JWT carries its id (``jti``) so it can be revoked."""

    __tablename__ = "tokens"
    __table_args__ = (Index("ix_tokens_user_active", "user_id", "revoked_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(40), ForeignKey("users.id", ondelete="CASCADE"))
    issued_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Secret(Base):
    """Process-wide secrets (the JWT signing key) live in the database, not on one host."""

    __tablename__ = "secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(512))
