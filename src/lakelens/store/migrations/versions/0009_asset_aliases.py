"""Asset aliases: the other names one asset arrives under (dbt relation, OpenLineage dataset, …).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "asset_aliases",
        sa.Column("alias", sa.String(512), primary_key=True),
        sa.Column("asset", sa.String(512), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("time", sa.Double, nullable=False),
    )
    op.create_index("ix_asset_aliases_asset", "asset_aliases", ["asset"])


def downgrade() -> None:
    op.drop_index("ix_asset_aliases_asset", "asset_aliases")
    op.drop_table("asset_aliases")
