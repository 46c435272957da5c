"""Ingest idempotency: the ids of batches already committed, so a retried batch is stored once.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_batches",
        sa.Column("batch_id", sa.String(128), primary_key=True),
        sa.Column("received_at", sa.Double, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("accepted", sa.Integer, nullable=False),
        sa.Column("rejected", sa.Integer, nullable=False),
    )
    op.create_index("ix_ingest_batches_received", "ingest_batches", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_ingest_batches_received", table_name="ingest_batches")
    op.drop_table("ingest_batches")
