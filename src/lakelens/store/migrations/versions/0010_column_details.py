"""Column lineage details: how each output column uses its inputs, and dataset-wide inputs.

`lineage_edges.columns` keeps its {output column: [input columns]} shape, which every reader
walks; `column_details` adds, as JSON, what OpenLineage's columnLineage 1-2-0 says beyond it:
the transformation types (DIRECT/INDIRECT and their subtype) per input column, and the input
columns that affect the whole dataset (a filter, a join key, a grouping).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lineage_edges") as batch:
        batch.add_column(sa.Column("column_details", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("lineage_edges") as batch:
        batch.drop_column("column_details")
