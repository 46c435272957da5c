"""Retention: delete what is older than the retention window, table by table."""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa

from lakelens.store import partitioning, schema
from lakelens.store.engine import is_sqlite
from lakelens.store.writes import LOCK_ROLLUPS, ROLLED_UP_TABLES

__all__ = ["PRUNED_TABLES", "prune"]

# (table, time column) in the order they are pruned.
PRUNED_TABLES: tuple[tuple[sa.Table, str], ...] = (
    (schema.logs, "time"),
    (schema.spans, "start_time"),
    (schema.metric_points, "time"),
    (schema.check_results, "time"),
    (schema.materializations, "start_time"),
    (schema.runs, "start_time"),
    (schema.schema_snapshots, "time"),
    (schema.profiles, "time"),
    (schema.table_observations, "time"),
    (schema.asset_usage, "time"),
    (schema.ingest_batches, "received_at"),
)
# Each delete is one transaction; on SQLite it holds the only write lock, so it is kept near
# _CHUNK_SECONDS (chunk size adapts to how fast rows go) and followed by a pause twice as
# long, in which waiting writers get the lock and the CPU: ingest waits at most about one
# chunk, and a big prune takes a few times longer (bench/prune_load.py: with 50,000-row
# chunks and no pause, p99 ingest latency during a SQLite prune was x3.85 of without).
_CHUNK_SECONDS = 0.025
_FIRST_CHUNK, _MIN_CHUNK, _MAX_CHUNK = 5_000, 500, 50_000


def prune(
    engine: sa.Engine,
    cutoff: float,
    *,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Delete rows older than `cutoff` (epoch seconds); return rows deleted per table.

    Deletes in short chunks so a big prune never holds the write lock for long. On PostgreSQL, the
    tables partitioned by day (store/partitioning.py) lose their whole days older than the
    cutoff by dropping partitions; the rows of the day the cutoff falls in, and old rows
    in the default partition, are deleted. The newest schema snapshot and profile of each
    asset are kept whatever their age: drift detection and a profile's change compare
    against them.
    """
    deleted: dict[str, int] = {}
    for table, column in PRUNED_TABLES:
        time_col = table.c[column]
        dropped = _drop_days(engine, table.name, cutoff)
        key_columns = list(table.primary_key.columns)
        condition = time_col < cutoff
        if table is schema.schema_snapshots or table is schema.profiles:
            newest = sa.select(sa.func.max(table.c.id)).group_by(table.c.asset)
            condition = sa.and_(condition, table.c.id.not_in(newest))
        if dropped is not None:  # partitioned: its key has the time column, (id, time)
            key_columns.append(time_col)
        key = key_columns[0] if len(key_columns) == 1 else sa.tuple_(*key_columns)
        total = dropped or 0
        if total and progress:
            progress(table.name, total)
        size = _FIRST_CHUNK
        while True:
            chunk = sa.select(*key_columns).where(condition).limit(size)
            delete = sa.delete(table).where(key.in_(chunk))
            if dropped is not None:  # the planner then leaves out the newer partitions
                delete = delete.where(time_col < cutoff)
            began = time.perf_counter()
            with engine.connect() as conn:
                if is_sqlite(engine):
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                elif table.name in ROLLED_UP_TABLES:
                    conn.exec_driver_sql(LOCK_ROLLUPS)  # delete triggers update the rollups
                result = conn.execute(delete)
                conn.commit()
                if is_sqlite(engine):
                    # Keeps the -wal file short: past its limit, the checkpoint that cuts it
                    # back would hold up every writer (store/engine.py, _bound_wal).
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            total += result.rowcount or 0
            if progress:
                progress(table.name, total)
            if (result.rowcount or 0) < size:
                break
            took = time.perf_counter() - began
            time.sleep(min(2 * took, 1.0))
            if took < _CHUNK_SECONDS / 2:
                size = min(size * 2, _MAX_CHUNK)
            elif took > _CHUNK_SECONDS * 2:
                size = max(size // 2, _MIN_CHUNK)
        deleted[table.name] = total
    return deleted


def _drop_days(engine: sa.Engine, table: str, cutoff: float) -> int | None:
    """Rows held by the whole days of `table` dropped before `cutoff` (0 when this role may
    not drop them), or None when the table is not partitioned (SQLite, an old store)."""
    if is_sqlite(engine) or table not in partitioning.PARTITIONED:
        return None
    with engine.connect() as conn:
        kept = partitioning.state(conn, table)
    if kept.partitioned and kept.mode != "days":
        return 0  # the role's fallback: every old row is deleted, partition by partition
    if kept.mode != "days":
        return None
    return partitioning.drop_days_before(engine, table, cutoff)
