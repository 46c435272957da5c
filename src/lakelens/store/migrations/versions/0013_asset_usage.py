"""Usage: who reads an asset and how often (issue 15, "Downstream usage").

One row per read or batch of views: a job that read the asset as an input (OpenLineage input
datasets, the SDK's deps of a run), or views of a dashboard reported through the SDK or API.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "asset_usage",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("asset", sa.String(512), nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reader", sa.String(512), nullable=False),
        sa.Column("run_id", sa.String(128)),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
    )
    op.create_index("ix_asset_usage_asset_time", "asset_usage", ["asset", "time"])


def downgrade() -> None:
    op.drop_index("ix_asset_usage_asset_time", "asset_usage")
    op.drop_table("asset_usage")
