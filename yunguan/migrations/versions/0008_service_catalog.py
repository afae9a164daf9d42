"""service catalog: templates and their versions, categories, items and their tenant grants

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 11:05:16.093009
"""

import sqlalchemy as sa
from alembic import op

import yunguan.core.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "categories",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("created_at", yunguan.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", yunguan.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "service_templates",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=False),
        sa.Column("created_at", yunguan.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", yunguan.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "template_versions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("template_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("submitted_by", sa.String(length=40), nullable=True),
        sa.Column("submitted_at", yunguan.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(length=40), nullable=True),
        sa.Column("reviewed_at", yunguan.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("review_comment", sa.String(length=1024), nullable=False),
        sa.Column("created_at", yunguan.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", yunguan.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["service_templates.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("template_id", "version"),
    )
    with op.batch_alter_table("template_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_template_versions_template_id"), ["template_id"], unique=False
        )

    op.create_table(
        "catalog_items",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=False),
        sa.Column("category_id", sa.String(length=40), nullable=False),
        sa.Column("template_version_id", sa.String(length=40), nullable=False),
        sa.Column("price_monthly", sa.Numeric(precision=28, scale=10), nullable=False),
        sa.Column("restricted", sa.Boolean(), nullable=False),
        sa.Column("created_at", yunguan.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", yunguan.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
        ),
        sa.ForeignKeyConstraint(
            ["template_version_id"],
            ["template_versions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("catalog_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_catalog_items_category_id"), ["category_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_catalog_items_name"), ["name"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_catalog_items_template_version_id"),
            ["template_version_id"],
            unique=False,
        )

    op.create_table(
        "catalog_item_tenants",
        sa.Column("item_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["catalog_items.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id", "tenant_id"),
    )
    with op.batch_alter_table("catalog_item_tenants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_catalog_item_tenants_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("catalog_item_tenants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_item_tenants_tenant_id"))

    op.drop_table("catalog_item_tenants")
    with op.batch_alter_table("catalog_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_items_template_version_id"))
        batch_op.drop_index(batch_op.f("ix_catalog_items_name"))
        batch_op.drop_index(batch_op.f("ix_catalog_items_category_id"))

    op.drop_table("catalog_items")
    with op.batch_alter_table("template_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_template_versions_template_id"))

    op.drop_table("template_versions")
    op.drop_table("service_templates")
    op.drop_table("categories")
