"""Log text search: an index that serves `lakelens logs --grep` (issue 16).

SQLite: an FTS5 trigram table over the logs' message and attributes, kept in step by
triggers (see lakelens.store.log_search). PostgreSQL: pg_trgm GIN indexes on lower(message)
and lower(attributes); when the extension cannot be created the migration still succeeds,
`--grep` scans as before and `lakelens health` says how to enable the index.

On a big store this migration indexes every stored log once (minutes for 10M logs).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

from lakelens.store import log_search

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        log_search.create_sqlite(conn)
    else:
        log_search.create_postgres(conn)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        log_search.drop_sqlite(conn)
    else:
        log_search.drop_postgres(conn)
