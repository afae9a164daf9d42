"""Catalog: service templates and their versions, categories, and the items tenants see."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yunguan.core.db import Base
from yunguan.inventory.models import Timestamps

TEMPLATE_KINDS = ("instance", "bundle", "baremetal", "cloud-instance", "external")
# draft -> in-review -> published -> offline -> deleted (a rejection goes back to draft; a
# draft may be deleted at once)
VERSION_STATES = ("draft", "in-review", "published", "offline", "deleted")


class ServiceTemplate(Timestamps, Base):
    """What can be ordered; what it is made of lives in its versions."""

    __tablename__ = "service_templates"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(1024), default="")


class TemplateVersion(Timestamps, Base):
    """One numbered definition of a template: typed parameters and a spec that refers to
    them. Only a draft changes; a change to anything else is a new version."""

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("template_id", "version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    template_id: Mapped[str] = mapped_column(ForeignKey("service_templates.id"), index=True)
    version: Mapped[int]
    state: Mapped[str] = mapped_column(String(16), default="draft")
    parameters: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # plain user ids, not foreign keys: the history outlives its users
    submitted_by: Mapped[str | None] = mapped_column(String(40), default=None)
    submitted_at: Mapped[datetime | None] = mapped_column(default=None)
    reviewed_by: Mapped[str | None] = mapped_column(String(40), default=None)
    reviewed_at: Mapped[datetime | None] = mapped_column(default=None)
    review_comment: Mapped[str] = mapped_column(String(1024), default="")


class Category(Timestamps, Base):
    __tablename__ = "categories"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(1024), default="")
    sort_order: Mapped[int] = mapped_column(default=0)


class CatalogItem(Timestamps, Base):
    """An orderable offer: one published template version, shown to every tenant or, when
    ``restricted``, only to the subtrees in ``catalog_item_tenants``. The flag outlives the
    grants, so an item whose granted tenants are all deleted is seen by nobody, not by all."""

    __tablename__ = "catalog_items"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(String(1024), default="")
    category_id: Mapped[str] = mapped_column(ForeignKey("categories.id"), index=True)
    template_version_id: Mapped[str] = mapped_column(ForeignKey("template_versions.id"), index=True)
    price_monthly: Mapped[Decimal] = mapped_column(default=Decimal(0))
    restricted: Mapped[bool] = mapped_column(default=False)


class CatalogItemTenant(Base):
    __tablename__ = "catalog_item_tenants"

    item_id: Mapped[str] = mapped_column(
        ForeignKey("catalog_items.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True, index=True
    )
