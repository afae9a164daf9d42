"""a VPC's transit VXLAN segment (the data plane's router-to-router link)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 08:10:00

VPCs created before this revision get theirs with their next vxnet; until then their
routers have no transit link (no ondemand default path, no SNAT from other hosts).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vpcs") as batch:
        batch.add_column(sa.Column("transit_vni", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vpcs") as batch:
        batch.drop_column("transit_vni")
