"""The overview's per-asset period figures read from the indexes alone (issue 16).

`ix_mat_asset_start` (asset, start_time) gains status and duration, `ix_check_asset_name_time`
(asset, name, time) gains passed: a 7-day overview of 100 assets aggregated ~78,000
materializations and ~45,000 check results, and fetching each table row for those columns
was most of its time (big store, SQLite: 148 -> 44 ms and 119 -> 23 ms). The key columns
stay first, so every query that used the narrower index uses the wider one. The two
tables are locked while their index is rebuilt: 2.4 s for both on the big bench store
(1M materializations, 1M check results) on SQLite.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_mat_asset_start", "materializations", ["asset", "start_time"], ["status", "duration"]),
    ("ix_check_asset_name_time", "check_results", ["asset", "name", "time"], ["passed"]),
)


def upgrade() -> None:
    for name, table, key, covered in _INDEXES:
        op.drop_index(name, table)
        op.create_index(name, table, [*key, *covered])


def downgrade() -> None:
    for name, table, key, _covered in _INDEXES:
        op.drop_index(name, table)
        op.create_index(name, table, key)
