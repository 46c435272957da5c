"""Log text search: an index that serves `lakelens logs --grep` (issue 16).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: the search index lands with the change that reads it."""


def downgrade() -> None:
    pass
