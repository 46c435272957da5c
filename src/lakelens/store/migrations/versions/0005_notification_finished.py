"""Notifications record when their last attempt ended (delivered, failed or gave up).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("finished_at", sa.Double))
    op.execute("UPDATE notifications SET finished_at = delivered_at WHERE delivered_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("finished_at")
