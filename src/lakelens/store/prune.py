"""Retention: delete what is older than the retention window, table by table."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from lakelens.store import schema
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
_CHUNK = 50_000


def prune(
    engine: sa.Engine,
    cutoff: float,
    *,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Delete rows older than `cutoff` (epoch seconds); return rows deleted per table.

    Deletes in chunks so a big prune never holds the write lock for long. The newest schema
    snapshot and profile of each asset are kept whatever their age: drift detection and a
    profile's change compare against them.
    """
    deleted: dict[str, int] = {}
    for table, column in PRUNED_TABLES:
        time_col = table.c[column]
        key_columns = list(table.primary_key.columns)
        key = key_columns[0] if len(key_columns) == 1 else sa.tuple_(*key_columns)
        condition = time_col < cutoff
        if table is schema.schema_snapshots or table is schema.profiles:
            newest = sa.select(sa.func.max(table.c.id)).group_by(table.c.asset)
            condition = sa.and_(condition, table.c.id.not_in(newest))
        total = 0
        while True:
            chunk = sa.select(*key_columns).where(condition).limit(_CHUNK)
            with engine.connect() as conn:
                if is_sqlite(engine):
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                elif table.name in ROLLED_UP_TABLES:
                    conn.exec_driver_sql(LOCK_ROLLUPS)  # delete triggers update the rollups
                result = conn.execute(sa.delete(table).where(key.in_(chunk)))
                conn.commit()
            total += result.rowcount or 0
            if progress:
                progress(table.name, total)
            if (result.rowcount or 0) < _CHUNK:
                break
        deleted[table.name] = total
    return deleted
