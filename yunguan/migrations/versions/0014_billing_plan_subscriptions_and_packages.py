"""billing: plan subscriptions and packages; resolving quarantined usage; vendor-funded
discounts

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 23:08:10.388662
"""

import sqlalchemy as sa
from alembic import op

import yunguan.core.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan_subscriptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
        sa.Column("plan", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", yunguan.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", yunguan.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.Column("created_at", yunguan.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", yunguan.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("plan_subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plan_subscriptions_state"), ["state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_plan_subscriptions_tenant_id"), ["tenant_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_plan_subscriptions_tenant_path"), ["tenant_path"], unique=False
        )

    with op.batch_alter_table("usage_quarantine", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("state", sa.String(length=16), nullable=False, server_default="held")
        )
        batch_op.add_column(
            sa.Column("resolved_at", yunguan.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_usage_quarantine_state"), ["state"], unique=False)

    with op.batch_alter_table("discounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("funded_by", sa.String(length=16), nullable=False, server_default="platform")
        )

    with op.batch_alter_table("price_items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("included", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("discounts", schema=None) as batch_op:
        batch_op.drop_column("funded_by")

    with op.batch_alter_table("usage_quarantine", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_quarantine_state"))
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("state")

    with op.batch_alter_table("price_items", schema=None) as batch_op:
        batch_op.drop_column("included")

    with op.batch_alter_table("plan_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_subscriptions_tenant_path"))
        batch_op.drop_index(batch_op.f("ix_plan_subscriptions_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_plan_subscriptions_state"))

    op.drop_table("plan_subscriptions")
