"""Logs and spans partitioned by day on PostgreSQL (revision 0015), so retention drops days.

Each day is a partition `logs_pYYYYMMDD` (UTC) of `logs`, ranged on `time` (and
`spans_pYYYYMMDD` of `spans`, on `start_time`); `logs_default` takes anything no day
partition covers (a late record from before the oldest day, a clock far ahead), so an insert
never fails for lack of a partition. Days are made ahead (`AHEAD_DAYS`) by `maintain`, which
every process that writes runs at its first write and then hourly (`Store.write`), and
`lakelens serve` hourly with or without writes (`Store.keep_up`): the write path itself stays
plain INSERTs. A day made later than its rows
(they waited in the default partition) takes them out of the default partition as it is made.

Every DDL here waits at most `LOCK_TIMEOUT` for its lock: a partition is made or dropped with an
ACCESS EXCLUSIVE lock on the table, and a statement queued for that lock would hold up every
insert behind it. What could not be done is tried again at the next call.

SQLite keeps one table; so does a PostgreSQL store whose role cannot make partitions, with a
note saying so (`state`).
"""

from __future__ import annotations

import logging
import re
import time

import sqlalchemy as sa

from lakelens.store.partition_state import (
    PARTITIONED,
    Partitioning,
    day_name,
    day_partitions,
    state,
)
from lakelens.store.sql import borrow

__all__ = [
    "AHEAD_DAYS",
    "PARTITIONED",
    "Partitioning",
    "convert",
    "drop_days_before",
    "is_partition_name",
    "maintain",
    "state",
]

DAY = 86400
AHEAD_DAYS = 7
LOCK_TIMEOUT = "200ms"
# Conversion makes day partitions for at most this many days back; older rows go to default.
_HISTORY_DAYS = 400
# Makers of partitions take this lock (with the table's oid) so two processes never race.
_LOCK_KEY = 0x1A6E9A27
_DROP_ATTEMPTS = 20
_PARTITION_NAME = re.compile(r"^(?P<table>[a-z_]+)_(p\d{8}|default)$")

log = logging.getLogger("lakelens.store")


def is_partition_name(name: str) -> bool:
    """Whether `name` is one of the day (or default) partitions of a partitioned table."""
    match = _PARTITION_NAME.match(name)
    return match is not None and match["table"] in PARTITIONED


def _days(conn: sa.Connection, table: str) -> dict[int, str]:
    """The day partitions of `table`: {day number: partition name}."""
    return day_partitions(borrow(conn), table)


def _lock(conn: sa.Connection, table: str) -> None:
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(:key, to_regclass(:table)::oid::int)"),
        {"key": _LOCK_KEY, "table": table},
    )


def _make_day(conn: sa.Connection, table: str, day: int) -> str:
    """Create the partition of `day`, moving its rows out of the default partition if any."""
    name, column = day_name(table, day), PARTITIONED[table]
    bounds = f"FROM ({day * DAY}) TO ({(day + 1) * DAY})"
    waiting = conn.execute(
        sa.text(
            f'SELECT 1 FROM {table}_default WHERE "{column}" >= :low AND "{column}" < :high LIMIT 1'
        ),
        {"low": day * DAY, "high": (day + 1) * DAY},
    ).first()
    if waiting is None:
        conn.exec_driver_sql(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES {bounds}")
        return name
    # Made late: its rows are in the default partition, where a new partition may not overlap.
    conn.exec_driver_sql(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)")
    conn.execute(
        sa.text(
            f"WITH moved AS (DELETE FROM {table}_default "
            f'WHERE "{column}" >= :low AND "{column}" < :high RETURNING *) '
            f"INSERT INTO {name} SELECT * FROM moved"
        ),
        {"low": day * DAY, "high": (day + 1) * DAY},
    )
    conn.exec_driver_sql(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES {bounds}")
    return name


def maintain(engine: sa.Engine, *, now: float | None = None) -> list[Partitioning]:
    """Make the partitions of yesterday, today and the next `AHEAD_DAYS` days where missing;
    return how each partitioned table is kept (a note when it falls back to one table)."""
    if engine.dialect.name != "postgresql":
        return [Partitioning(table, "table") for table in PARTITIONED]
    today = int((time.time() if now is None else now) // DAY)
    states = []
    from lakelens.store.engine import detached

    for table in PARTITIONED:
        with detached(engine) as conn:
            found = state(conn, table)
            days = _days(conn, table) if found.mode == "days" else {}
        states.append(found)
        for day in range(today - 1, today + AHEAD_DAYS + 1):
            if found.mode != "days" or day in days:
                continue
            try:
                with detached(engine) as conn, conn.begin():
                    _lock(conn, table)
                    if day not in _days(conn, table):
                        _make_day(conn, table, day)
            except sa.exc.OperationalError as exc:  # a lock not granted in time: next call
                log.info("partition of %s for day %d not made yet: %s", table, day, exc.orig)
                break
    return states


def drop_days_before(engine: sa.Engine, table: str, cutoff: float) -> int:
    """Drop the day partitions of `table` that end at or before `cutoff`, all in one
    statement (one short lock, retried while ingest holds the table); return the rows they
    held, or 0 when the lock never came (their rows are then deleted like the edge's)."""
    with engine.connect() as conn:
        doomed = [
            name for day, name in sorted(_days(conn, table).items()) if (day + 1) * DAY <= cutoff
        ]
        # Counted before the lock is taken: the drop itself must stay short.
        rows = sum(
            conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar() or 0 for name in doomed
        )
    if not doomed:
        return 0
    for attempt in range(_DROP_ATTEMPTS):
        try:
            with engine.begin() as conn:
                _lock(conn, table)
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {', '.join(doomed)}")
            return rows
        # No lock in time: let ingest pass, retry. InternalError: "tuple concurrently updated",
        # seen when an index of an ended day was being built (store/log_search_days.py).
        except (sa.exc.OperationalError, sa.exc.InternalError) as exc:
            if attempt == _DROP_ATTEMPTS - 1:
                log.warning("%s: old days not dropped (%s); deleting their rows", table, exc.orig)
                return 0
            time.sleep(0.05 * (attempt + 1))
    return 0  # pragma: no cover - the loop returns


def convert(conn: sa.Connection, table: str, key: tuple[str, ...]) -> None:
    """Rebuild `table` as partitioned by day with the same columns, defaults, rows, sequence,
    grants and indexes (whatever it has, read from the catalog); `key` is its primary key,
    to which the time column is added (a partitioned table's keys must include it)."""
    column = PARTITIONED[table]
    index_sql = conn.execute(
        sa.text(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = to_regclass(:table) AND NOT i.indisprimary"
        ),
        {"table": table},
    ).scalars()
    indexes = list(index_sql)
    sequences = list(
        conn.execute(
            sa.text(
                "SELECT s.oid::regclass::text, a.attname FROM pg_depend d "
                "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
                "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
                "WHERE d.refobjid = to_regclass(:table) AND d.deptype = 'a'"
            ),
            {"table": table},
        )
    )
    grants = list(
        conn.execute(
            sa.text(
                "SELECT grantee, privilege_type FROM information_schema.role_table_grants "
                "WHERE table_schema = current_schema() AND table_name = :table"
            ),
            {"table": table},
        )
    )
    low = conn.execute(sa.text(f'SELECT min("{column}") FROM {table}')).scalar()
    old = f"{table}_unpartitioned"
    for sequence, _ in sequences:  # the sequence outlives the old table
        conn.exec_driver_sql(f"ALTER SEQUENCE {sequence} OWNED BY NONE")
    conn.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {old}")
    conn.exec_driver_sql(
        f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING STORAGE "
        f'INCLUDING COMMENTS) PARTITION BY RANGE ("{column}")'
    )
    conn.exec_driver_sql(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    # A day partition for each day from the oldest row (at most _HISTORY_DAYS back) to
    # AHEAD_DAYS from now; rows outside (older, or from a clock far ahead) go to default.
    today = int(time.time() // DAY)
    first = today - 1 if low is None else max(int(low // DAY), today - _HISTORY_DAYS)
    for day in range(min(first, today - 1), today + AHEAD_DAYS + 1):
        conn.exec_driver_sql(
            f"CREATE TABLE {day_name(table, day)} PARTITION OF {table} "
            f"FOR VALUES FROM ({day * DAY}) TO ({(day + 1) * DAY})"
        )
    # Rows first, keys and indexes after: building an index once beats updating it per row.
    conn.exec_driver_sql(f"INSERT INTO {table} SELECT * FROM {old}")
    conn.exec_driver_sql(f"DROP TABLE {old}")
    columns = ", ".join(f'"{name}"' for name in dict.fromkeys((*key, column)))
    conn.exec_driver_sql(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({columns})")
    for sql in indexes:  # each names `table` (the catalog rendered it before the rename)
        conn.exec_driver_sql(sql)
    for sequence, owner in sequences:
        conn.exec_driver_sql(f'ALTER SEQUENCE {sequence} OWNED BY {table}."{owner}"')
    for grantee, privilege in grants:  # a writer role granted INSERT keeps it
        to = "PUBLIC" if grantee == "PUBLIC" else '"' + grantee.replace('"', '""') + '"'
        conn.exec_driver_sql(f"GRANT {privilege} ON {table} TO {to}")
    conn.exec_driver_sql(f"ANALYZE {table}")
