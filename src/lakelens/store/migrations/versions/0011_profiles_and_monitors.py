"""The data itself: column profiles, warehouse table observations and the monitors that make them.

- `profiles`: one column profile of an asset's data (from `lakelens.profile()` in a pipeline,
  an integration, or a monitor), per-column statistics as JSON.
- `table_observations`: what a monitor read of a warehouse table from its metadata: row count
  (exact or the engine's estimate), size, last modification.
- `monitors`: the warehouses lakelens polls (`lakelens monitor add`); the URL is stored without
  its password, which comes from the environment.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("asset", sa.String(512), nullable=False),
        sa.Column("run_id", sa.String(128)),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("row_count", sa.BigInteger),
        sa.Column("sampled_rows", sa.BigInteger),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("columns", sa.Text, nullable=False),
    )
    op.create_index("ix_profiles_asset_time", "profiles", ["asset", "time"])
    op.create_table(
        "table_observations",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("asset", sa.String(512), nullable=False),
        sa.Column("monitor", sa.String(64), nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("row_count", sa.BigInteger),
        sa.Column("row_count_estimated", sa.Boolean),
        sa.Column("bytes", sa.BigInteger),
        sa.Column("modified_at", sa.Double),
        sa.Column("modified_source", sa.String(32)),
    )
    op.create_index("ix_table_observations_asset_time", "table_observations", ["asset", "time"])
    op.create_table(
        "monitors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("last_run", sa.Double),
        sa.Column("last_error", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("monitors")
    op.drop_index("ix_table_observations_asset_time", "table_observations")
    op.drop_table("table_observations")
    op.drop_index("ix_profiles_asset_time", "profiles")
    op.drop_table("profiles")
