"""The pg_trgm indexes of `logs --grep` on logs partitioned by day: only on days that ended.

A GIN trigram index on the partition that takes every insert cut PostgreSQL native ingest to
0.56x (realistic messages). On a `logs` partitioned by day (revision 0015) the indexes are
therefore on the leaf partitions of days that ended and on `logs_default` (which takes only
late or far-off rows, and the history older than the day partitions), never on the parent:
today's and the coming days' partitions have none, so inserts pay nothing, and a search scans
today's partition (one day of logs) and uses the index everywhere else.

`build` makes the missing ones with `CREATE INDEX CONCURRENTLY` from an autocommit
connection (writes go on), one at a time, newest day first. A build that was aborted leaves
an INVALID index: it is dropped and built again. A session advisory lock per partition keeps
two processes from building the same one; a lock per process keeps a process to one build at
a time. `Store.maintain_partitions` (hourly) runs it in a background daemon thread;
`lakelens db upgrade` runs it to the end. A non-partitioned `logs` keeps indexes on the table
(store/log_search.py).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from lakelens.store.log_search import PG_INDEXES

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelens.store.sql import Reader

__all__ = ["build", "coverage", "index_name", "is_partitioned", "start_background"]

log = logging.getLogger("lakelens.store")

DAY = 86400
# Builders of a partition's indexes hold this advisory lock (with the partition's oid).
_LOCK_KEY = 0x1A6E7267
_BUILDING = threading.Lock()  # one build at a time in a process


def index_name(partition: str, index: str) -> str:
    """`logs_p20261206_message_trgm` for the parent's `ix_logs_message_trgm`."""
    return f"{partition}_{index.removeprefix('ix_logs_')}"


def is_partitioned(db: Reader) -> bool:
    return bool(
        db.value(
            "SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass('logs') "
            "AND to_regclass('logs') IS NOT NULL"
        )
    )


def _ended(db: Reader, now: float, keep_days: float | None = None) -> list[str]:
    """The partitions that take no more inserts: days that ended (newest first), then default;
    with `keep_days`, not the days a prune with that retention drops next."""
    from lakelens.store.partition_state import day_partitions

    days = day_partitions(db, "logs")
    oldest = -1.0 if keep_days is None else now - keep_days * DAY
    ended = [
        name
        for day, name in sorted(days.items(), reverse=True)
        if (day + 1) * DAY <= now and (day + 1) * DAY > oldest
    ]
    if db.value("SELECT to_regclass('logs_default') IS NOT NULL"):
        ended.append("logs_default")
    return ended


def _indexes(db: Reader, partitions: list[str]) -> dict[str, bool]:
    """{index name: valid} of the trigram indexes on `partitions`."""
    if not partitions:
        return {}
    wanted = [index_name(p, index) for p in partitions for index in PG_INDEXES]
    rows = db.rows(
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relnamespace = to_regnamespace(current_schema()) AND c.relname IN :names",
        {"names": wanted},
    )
    return {name: bool(valid) for name, valid in rows}


def _missing(db: Reader, now: float, keep_days: float | None) -> list[tuple[str, str, str]]:
    """(partition, index, expression) for each index to build."""
    partitions = _ended(db, now, keep_days)
    found = _indexes(db, partitions)
    return [
        (partition, index_name(partition, index), expression)
        for partition in partitions
        for index, expression in PG_INDEXES.items()
        if not found.get(index_name(partition, index))
    ]


def coverage(
    db: Reader, now: float | None = None, keep_days: float | None = None
) -> tuple[int, int]:
    """(partitions with both indexes valid, partitions that should have them)."""
    partitions = _ended(db, time.time() if now is None else now, keep_days)
    found = _indexes(db, partitions)
    done = sum(all(found.get(index_name(p, index)) for index in PG_INDEXES) for p in partitions)
    return done, len(partitions)


def build(
    engine: sa.Engine,
    *,
    now: float | None = None,
    wait: bool = False,
    stop: threading.Event | None = None,
    keep_days: float | None = None,
) -> int:
    """Build the missing trigram indexes of ended days; return how many were built.

    With `wait`, wait for a build another thread or process runs on the same partition
    (then find it done); without, skip what is being built elsewhere. Does nothing on a
    non-partitioned `logs` or without pg_trgm. With `keep_days` (the retention), days
    that a prune is about to drop are left alone.
    """
    import sqlalchemy as sa

    from lakelens.store.sql import borrow

    if engine.dialect.name != "postgresql":
        return 0
    if not _BUILDING.acquire(blocking=wait):
        return 0
    from lakelens.store.engine import unbounded_answers

    built = 0
    try:
        # A build of a big day takes longer than a query may; one aborted is redone.
        with unbounded_answers(), engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            db = borrow(conn)
            if not is_partitioned(db) or not db.value(
                "SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"
            ):
                return 0
            # Its SHARE UPDATE EXCLUSIVE lock on an ended day's partition blocks no insert.
            conn.exec_driver_sql("SET statement_timeout = 0")
            for partition, name, expression in _missing(db, now or time.time(), keep_days):
                if stop is not None and stop.is_set():
                    break
                try:
                    built += _build_one(conn, partition, name, expression, wait=wait)
                except sa.exc.DBAPIError as exc:  # a lock not granted, a cancel: next time
                    reason = str(exc.orig).strip().splitlines()[0]
                    log.info("log search index %s not built yet: %s", name, reason)
            conn.exec_driver_sql("RESET statement_timeout")
    finally:
        _BUILDING.release()
    return built


def _build_one(
    conn: sa.Connection, partition: str, name: str, expression: str, *, wait: bool
) -> int:
    import sqlalchemy as sa

    from lakelens.store.migrate import _PG_LOCK_KEY

    # Never during a migration (which holds this lock): a build waits for the transactions
    # that began before it, a migration altering logs for the build's lock: a deadlock.
    if not conn.execute(
        sa.text("SELECT pg_try_advisory_lock_shared(:key)"), {"key": _PG_LOCK_KEY}
    ).scalar():
        return 0
    key = {"key": _LOCK_KEY, "table": partition}
    target = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
    locked = conn.execute(
        sa.text(f"SELECT {target}(:key, to_regclass(:table)::oid::int)"), key
    ).scalar()
    if locked is False:  # another process builds it
        conn.execute(sa.text("SELECT pg_advisory_unlock_shared(:key)"), {"key": _PG_LOCK_KEY})
        return 0
    try:
        # Looked at again under the lock: another process may have built it meanwhile.
        valid = conn.execute(
            sa.text(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = :name AND c.relnamespace = to_regnamespace(current_schema())"
            ),
            {"name": name},
        ).scalar()
        if valid:
            return 0
        if valid is False:  # left INVALID by an aborted build
            conn.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        conn.exec_driver_sql(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {partition} "
            f"USING gin ({expression} gin_trgm_ops)"
        )
        return 1
    finally:
        conn.execute(sa.text("SELECT pg_advisory_unlock(:key, to_regclass(:table)::oid::int)"), key)
        conn.execute(sa.text("SELECT pg_advisory_unlock_shared(:key)"), {"key": _PG_LOCK_KEY})


def start_background(
    engine: sa.Engine,
    stop: threading.Event,
    *,
    now: float | None = None,
    keep_days: float | None = None,
) -> threading.Thread | None:
    """Run `build` in a daemon thread unless this process already builds; the thread, or None."""
    if _BUILDING.locked():
        return None

    def run() -> None:
        try:
            build(engine, now=now, stop=stop, keep_days=keep_days)
        except Exception as exc:  # never takes the process down: retried next hour
            log.warning("log search indexes of ended days not built: %s", exc)

    thread = threading.Thread(target=run, name="lakelens-log-search-index", daemon=True)
    thread.start()
    return thread
