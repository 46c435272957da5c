"""The pg_trgm indexes of `logs --grep` leave the partitioned `logs` table for ended days.

An index on the table is on every partition, today's too, which takes every insert: with
realistic messages PostgreSQL native ingest fell to 0.56x. On a `logs` partitioned by day
(revision 0015) this drops the indexes of the table; the partitions of days that ended get
their own, built without blocking writes (store/log_search_days.py). A `logs` that is one
table keeps its indexes; SQLite is unchanged.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from alembic import op

from lakelens.store import log_search

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from lakelens.store.log_search_days import is_partitioned
    from lakelens.store.sql import borrow

    conn = op.get_bind()
    if conn.dialect.name == "postgresql" and is_partitioned(borrow(conn)):
        log_search.drop_postgres(conn)


def downgrade() -> None:
    conn = op.get_bind()
    if (
        conn.dialect.name == "postgresql"
        and conn.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").scalar()
    ):
        # On the table again (the partitions' own indexes of the same expression attach).
        for name, expression in log_search.PG_INDEXES.items():
            conn.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS {name} ON logs USING gin ({expression} gin_trgm_ops)"
            )
