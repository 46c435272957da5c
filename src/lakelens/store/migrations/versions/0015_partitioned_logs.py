"""Logs and spans partitioned by day on PostgreSQL, so retention drops whole days (issue 16).

Each table is rebuilt as `PARTITION BY RANGE (time)` (spans: `start_time`): same columns,
rows, ids and id sequence, and the same indexes (read from the catalog, so an index an
earlier revision added, such as the log search index, comes along). The time column joins
the primary key, (id, time) and (trace_id, span_id, start_time): a partitioned table's keys
must include it. A span sent twice has the same start, so it is still stored once. SQLite
keeps one table of each. See store/partitioning.py.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

from lakelens.store.partitioning import convert

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        convert(bind, "logs", ("id",))
        convert(bind, "spans", ("trace_id", "span_id"))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE spans RENAME TO spans_partitioned")
        op.execute("CREATE TABLE spans (LIKE spans_partitioned INCLUDING DEFAULTS)")
        op.execute("INSERT INTO spans SELECT * FROM spans_partitioned")
        op.execute("DROP TABLE spans_partitioned")
        op.execute("ALTER TABLE spans ADD PRIMARY KEY (trace_id, span_id)")
        op.execute("CREATE INDEX ix_spans_run ON spans (run_id)")
        op.execute("CREATE INDEX ix_spans_start ON spans (start_time)")
        # One table again, through a plain copy; the indexes come from revision 0001.
        op.execute("ALTER SEQUENCE logs_id_seq OWNED BY NONE")
        op.execute("ALTER TABLE logs RENAME TO logs_partitioned")
        op.execute("CREATE TABLE logs (LIKE logs_partitioned INCLUDING DEFAULTS)")
        op.execute("INSERT INTO logs SELECT * FROM logs_partitioned")
        op.execute("DROP TABLE logs_partitioned")
        op.execute("ALTER TABLE logs ADD PRIMARY KEY (id)")
        op.execute("ALTER SEQUENCE logs_id_seq OWNED BY logs.id")
        for name, columns in (
            ("ix_logs_run", "run_id, id"),
            ("ix_logs_asset_time", "asset, time"),
            ("ix_logs_level_time", "level, time"),
            ("ix_logs_time", "time"),
        ):
            op.execute(f"CREATE INDEX {name} ON logs ({columns})")
