"""what each host's data-plane agent last reported

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:35:00

One row per host whose agent has reported (``POST /sdn/hosts/{id}/status``); it goes with
its host.
"""

import sqlalchemy as sa
from alembic import op

import yunguan.core.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sdn_agents",
        sa.Column("host_id", sa.String(length=40), nullable=False),
        sa.Column("applied_version", sa.BigInteger(), nullable=False),
        sa.Column("routers", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("reported_at", yunguan.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("host_id"),
    )


def downgrade() -> None:
    op.drop_table("sdn_agents")
