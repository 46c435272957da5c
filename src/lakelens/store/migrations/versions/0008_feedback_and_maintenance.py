"""Feedback on findings (points taken out of learned baselines) and maintenance windows.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "baseline_feedback",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(32)),
        sa.Column("asset", sa.String(512), nullable=False),
        sa.Column("run_id", sa.String(128)),
        sa.Column("rule", sa.String(128)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("created_by", sa.String(128)),
        sa.Column("time", sa.Double, nullable=False),
    )
    op.create_index("ix_baseline_feedback_asset", "baseline_feedback", ["asset"])
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("schedule", sa.String(128), nullable=False),
        sa.Column("assets", sa.Text),
        sa.Column("created_by", sa.String(128)),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("ended_at", sa.Double),
    )


def downgrade() -> None:
    op.drop_table("maintenance_windows")
    op.drop_index("ix_baseline_feedback_asset", "baseline_feedback")
    op.drop_table("baseline_feedback")
