"""Logs partitioned by day on PostgreSQL, so retention drops whole days (issue 16).

The table is rebuilt as `PARTITION BY RANGE (time)`: same columns, rows, ids and id sequence,
and the same indexes (read from the catalog, so an index an earlier revision added, such as
the log search index, comes along). Its primary key becomes (id, time): a partitioned table's
keys must include the partition column. SQLite keeps one table. See store/partitioning.py.

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


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
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
