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

Today's partition gets partial indexes instead (`build_today`): each hour, the same pair
`WHERE time < <start of the hour>`, named `logs_p20261207_message_trgm_h16`. A row inserted
now does not satisfy the predicate, so ingest does not maintain them; a search scans the rows
since the boundary and reads the rest of today through them (`today_boundary`). Once the new
pair is valid the older pairs of the partition are dropped, and once the day has ended and its
full pair is built, its partial ones are.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from typing import TYPE_CHECKING

from lakelens.store.log_search import PG_INDEXES
from lakelens.store.postgres import error_line

if TYPE_CHECKING:
    from collections.abc import Iterator

    import sqlalchemy as sa

    from lakelens.store.sql import Reader

__all__ = [
    "below",
    "build",
    "build_today",
    "coverage",
    "hour_index_name",
    "index_name",
    "is_partitioned",
    "start_background",
    "today_boundary",
]

log = logging.getLogger("lakelens.store")

DAY = 86400
HOUR = 3600
# Builders of a partition's indexes hold this advisory lock (with the partition's oid).
_LOCK_KEY = 0x1A6E7267
_BUILDING = threading.Lock()  # one build at a time in a process


def index_name(partition: str, index: str) -> str:
    """`logs_p20261206_message_trgm` for the parent's `ix_logs_message_trgm`."""
    return f"{partition}_{index.removeprefix('ix_logs_')}"


def hour_index_name(partition: str, index: str, hour: int) -> str:
    """`logs_p20261207_message_trgm_h16`: today's partial index up to 16:00 UTC."""
    return f"{index_name(partition, index)}_h{hour:02d}"


# The partial indexes of a day partition, by name: (partition, column, hour).
_HOURLY = re.compile(r"^(logs_p\d{8})_(message|attributes)_trgm_h(\d{2})$")


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
    that a prune is about to drop are left alone. The partial indexes of a day whose full
    pair is built are dropped.
    """
    now = time.time() if now is None else now
    built = 0
    with _session(engine, wait) as conn:
        if conn is None:
            return 0
        from lakelens.store.sql import borrow

        for partition, name, expression in _missing(borrow(conn), now, keep_days):
            if stop is not None and stop.is_set():
                break
            built += _build_one(conn, partition, name, expression, wait=wait)
        if stop is None or not stop.is_set():
            _drop_stale(conn, now, wait=wait)
    return built


def build_today(engine: sa.Engine, *, now: float | None = None, wait: bool = False) -> int:
    """Build today's partial pair up to the start of the current hour, then drop the
    partition's older pairs; return how many indexes were built (0 in the day's first hour,
    or when they are there)."""
    from lakelens.store.partition_state import day_partitions
    from lakelens.store.sql import borrow

    now = time.time() if now is None else now
    day = int(now // DAY)
    hour = int((now - day * DAY) // HOUR)
    built = 0
    with _session(engine, wait) as conn:
        if conn is None:
            return 0
        partition = day_partitions(borrow(conn), "logs").get(day)
        if partition is not None and hour > 0:
            boundary = below(day * DAY + hour * HOUR)
            for index, expression in PG_INDEXES.items():
                name = hour_index_name(partition, index, hour)
                built += _build_one(conn, partition, name, expression, wait=wait, where=boundary)
        _drop_stale(conn, now, wait=wait)
    return built


@contextlib.contextmanager
def _session(engine: sa.Engine, wait: bool) -> Iterator[sa.Connection | None]:
    """An autocommit connection with no statement timeout for index builds, or None when
    there is nothing to build (SQLite, a non-partitioned `logs`, no pg_trgm) or this process
    already builds (and `wait` is false)."""
    from lakelens.store.engine import detached, unbounded_answers
    from lakelens.store.sql import borrow

    if engine.dialect.name != "postgresql" or not _BUILDING.acquire(blocking=wait):
        yield None
        return
    try:
        # A build of a big day takes longer than a query may; one aborted is redone.
        with unbounded_answers(), detached(engine) as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            db = borrow(conn)
            if not is_partitioned(db) or not db.value(
                "SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"
            ):
                yield None
                return
            # Its SHARE UPDATE EXCLUSIVE lock on a partition blocks no insert.
            conn.exec_driver_sql("SET statement_timeout = 0")
            yield conn
            conn.exec_driver_sql("RESET statement_timeout")
    finally:
        _BUILDING.release()


@contextlib.contextmanager
def _locked(conn: sa.Connection, partition: str, *, wait: bool) -> Iterator[bool]:
    """Hold the partition's build lock (and the shared migration lock); yields whether they
    were granted (without `wait`, not when another process builds or a migration runs)."""
    import sqlalchemy as sa

    from lakelens.store.migrate import _PG_LOCK_KEY

    # Never during a migration (which holds this lock): a build waits for the transactions
    # that began before it, a migration altering logs for the build's lock: a deadlock.
    if not conn.execute(
        sa.text("SELECT pg_try_advisory_lock_shared(:key)"), {"key": _PG_LOCK_KEY}
    ).scalar():
        yield False
        return
    key = {"key": _LOCK_KEY, "table": partition}
    target = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
    try:
        locked = conn.execute(
            sa.text(f"SELECT {target}(:key, to_regclass(:table)::oid::int)"), key
        ).scalar()
        if locked is False:  # another process builds it
            yield False
            return
        try:
            yield True
        finally:
            conn.execute(
                sa.text("SELECT pg_advisory_unlock(:key, to_regclass(:table)::oid::int)"), key
            )
    finally:
        conn.execute(sa.text("SELECT pg_advisory_unlock_shared(:key)"), {"key": _PG_LOCK_KEY})


def _build_one(
    conn: sa.Connection,
    partition: str,
    name: str,
    expression: str,
    *,
    wait: bool,
    where: str | None = None,
) -> int:
    """Build one index (partial with `where`) unless it is there; 1 when built. A failure
    is logged and left to the next run."""
    import sqlalchemy as sa

    try:
        with _locked(conn, partition, wait=wait) as locked:
            if not locked:
                return 0
            # Looked at again under the lock: another process may have built it meanwhile.
            valid = conn.execute(
                sa.text(
                    "SELECT i.indisvalid FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = :name "
                    "AND c.relnamespace = to_regnamespace(current_schema())"
                ),
                {"name": name},
            ).scalar()
            if valid:
                return 0
            if valid is False:  # left INVALID by an aborted build
                conn.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            predicate = f" WHERE {where}" if where else ""
            conn.exec_driver_sql(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {partition} "
                f"USING gin ({expression} gin_trgm_ops){predicate}"
            )
            return 1
    except sa.exc.DBAPIError as exc:  # a lock not granted, a cancel: next time
        log.info("log search index %s not built yet: %s", name, error_line(exc))
        return 0


def _hourly(db: Reader) -> dict[str, dict[int, list[tuple[str, bool]]]]:
    """{partition: {hour: [(index name, valid)]}} of the partial indexes of day partitions."""
    found: dict[str, dict[int, list[tuple[str, bool]]]] = {}
    rows = db.rows(
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relnamespace = to_regnamespace(current_schema()) "
        "AND c.relname ~ '^logs_p[0-9]{8}_(message|attributes)_trgm_h[0-9]{2}$'"
    )
    for name, valid in rows:
        match = _HOURLY.match(name)
        if match:
            hours = found.setdefault(match.group(1), {})
            hours.setdefault(int(match.group(3)), []).append((name, bool(valid)))
    return found


def _stale(hours: dict[int, list[tuple[str, bool]]], *, ended: bool, full: bool) -> list[str]:
    """The partial indexes of one partition to drop: the invalid ones (an aborted build),
    those older than the newest valid pair, and all once an ended day has its full pair."""
    if ended and full:
        return [name for pair in hours.values() for name, _ in pair]
    complete = [
        hour
        for hour, pair in hours.items()
        if len(pair) == len(PG_INDEXES) and all(valid for _, valid in pair)
    ]
    newest = max(complete, default=-1)
    return [
        name for hour, pair in hours.items() for name, valid in pair if not valid or hour < newest
    ]


def _drop_stale(conn: sa.Connection, now: float, *, wait: bool) -> None:
    """Drop the partial indexes no search reads any more (see `_stale`), under the build lock
    of their partition: an index another process is building is INVALID until it is done."""
    import sqlalchemy as sa

    from lakelens.store.sql import borrow

    db = borrow(conn)
    today = int(now // DAY)
    for partition, hours in _hourly(db).items():
        day = _day_number(partition)
        ended = day is not None and day < today
        full = ended and all(
            _indexes(db, [partition]).get(index_name(partition, i)) for i in PG_INDEXES
        )
        if not _stale(hours, ended=ended, full=full):
            continue
        try:
            with _locked(conn, partition, wait=wait) as locked:
                if not locked:
                    continue
                # Looked at again under the lock: a build may have ended meanwhile.
                for name in _stale(_hourly(db).get(partition, {}), ended=ended, full=full):
                    conn.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        except sa.exc.DBAPIError as exc:
            log.info(
                "partial log search indexes of %s not dropped yet: %s", partition, error_line(exc)
            )


def _day_number(partition: str) -> int | None:
    from lakelens.store.partition_state import _day_of

    return _day_of(partition)


def below(boundary: int) -> str:
    """The predicate of a partial index up to `boundary`; a search's WHERE holds it as it is
    written, so that the planner sees at once that the index covers the rows it asks for."""
    return f"time < {int(boundary)}"


def today_boundary(db: Reader, now: float | None = None) -> int | None:
    """Where today's newest valid partial pair ends (the rows before it are read through
    it, those after scanned), or None: one catalog read."""
    from lakelens.store.partition_state import day_name

    day = int((time.time() if now is None else now) // DAY)
    partition = day_name("logs", day)
    names = db.column(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = to_regclass(:partition) AND i.indisvalid AND i.indisready",
        {"partition": partition},
    )
    hours: dict[int, int] = {}
    for name in names:
        match = _HOURLY.match(name)
        if match and match.group(1) == partition:
            hour = int(match.group(3))
            hours[hour] = hours.get(hour, 0) + 1
    complete = [hour for hour, count in hours.items() if count == len(PG_INDEXES)]
    if not complete:
        return None
    return day * DAY + max(complete) * HOUR


def start_background(
    engine: sa.Engine,
    stop: threading.Event,
    *,
    now: float | None = None,
    keep_days: float | None = None,
) -> threading.Thread | None:
    """Run `build` then `build_today` in a daemon thread unless this process already builds;
    the thread, or None."""
    if _BUILDING.locked():
        return None

    def run() -> None:
        try:
            build(engine, now=now, stop=stop, keep_days=keep_days)
            if not stop.is_set():
                build_today(engine, now=now)
        except Exception as exc:  # never takes the process down: retried next hour
            log.warning("log search indexes not built: %s", exc)

    thread = threading.Thread(target=run, name="lakelens-log-search-index", daemon=True)
    thread.start()
    return thread
