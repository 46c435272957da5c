"""The index behind `lakelens logs --grep`: FTS5 trigrams on SQLite, pg_trgm on PostgreSQL.

`--grep` means "the text is in the message or the attributes, whatever the case". On SQLite
an external-content FTS5 table (`logs_search`, trigram tokenizer, kept in step by triggers)
narrows the rows to a superset; the LIKE the filter always had then decides, so the indexed
search gives exactly the rows the scan gave. On PostgreSQL GIN trigram indexes on
lower(message) and lower(attributes) serve that LIKE itself. Without pg_trgm (no rights to
create the extension) the LIKE scans, and `lakelens health` says how to enable the index.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelens.store.sql import Reader

__all__ = [
    "ENABLE_HINT",
    "MIN_CHARS",
    "PG_INDEXES",
    "POSITION_TABLE",
    "REBUILD_SQLITE",
    "SQLITE_TABLE",
    "catch_up",
    "create_postgres",
    "create_sqlite",
    "describe",
    "drop_postgres",
    "drop_sqlite",
    "ensure_postgres",
    "index_pending",
    "is_index_object",
    "match_query",
    "pg_scan_lower",
    "rebuild_sqlite",
]

log = logging.getLogger("lakelens.store")

SQLITE_TABLE = "logs_search"
# Trigram indexes find nothing shorter than a trigram: shorter patterns keep the scan.
MIN_CHARS = 3
# Trigrams asked of the index at most: a long pattern's first ones narrow enough.
_MAX_TRIGRAMS = 12
PG_INDEXES = {
    "ix_logs_message_trgm": "lower(message)",
    "ix_logs_attributes_trgm": "lower(attributes)",
}
# ASCII letters lower-case to ASCII letters in the database's locale (not so in Turkish ones:
# 'I' -> 'ı'); PostgreSQL folds this constant once, when it plans the query.
_ASCII_LOWER = "lower('ABCDEFGHIJKLMNOPQRSTUVWXYZ') = 'abcdefghijklmnopqrstuvwxyz'"


def pg_scan_lower(column: str) -> str:
    """`lower(column)` for a sequential scan on PostgreSQL: the same value, sooner.

    In a UTF-8 database with a libc or ICU locale (C.UTF-8, en_US.UTF-8), lower() converts
    every value to wide characters and back; a value all in ASCII (as many bytes as
    characters) lower-cases the same under the "C" collation, byte by byte. On today's
    partition of the 10M-log store (224k logs, no trigram index) `--grep` scanned in 89 ms
    instead of 104 (min of 9, in psql). Not the form the trigram indexes are built on: for
    the partitions that have one, keep `lower(column)`.
    """
    return (
        f"(CASE WHEN octet_length({column}) = char_length({column}) AND {_ASCII_LOWER} "
        f'THEN lower({column} COLLATE "C") ELSE lower({column}) END)'
    )


ENABLE_HINT = (
    "run `CREATE EXTENSION pg_trgm;` in the store's database as a superuser (or a role "
    "with CREATE on the database), then `lakelens db upgrade`"
)

# detail=none: the index keeps which rows hold a trigram, not where. That costs a third less
# than detail=full, and the LIKE rechecks every row the index returns anyway.
#
# The index is filled in chunks, not by an insert trigger: a trigger indexing each request's
# rows cost 100 us a log (a small index segment written and merged per transaction: native
# ingest fell to 0.55x), a chunk of 20,000 rows 10 us. `logs_search_position.up_to` is the
# last log id indexed; rows above it are few and the search scans them.
POSITION_TABLE = f"{SQLITE_TABLE}_position"
_INDEXED = f"(SELECT up_to FROM {POSITION_TABLE})"
_ADD_NEW = (
    f"INSERT INTO {SQLITE_TABLE}(rowid, message, attributes) "
    "VALUES (new.id, new.message, new.attributes)"
)
_REMOVE_OLD = (
    f"INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}, rowid, message, attributes) "
    "VALUES ('delete', old.id, old.message, old.attributes)"
)
_SQLITE_CREATE = (
    f"CREATE VIRTUAL TABLE {SQLITE_TABLE} USING fts5(message, attributes, content='logs', "
    "content_rowid='id', tokenize='trigram', detail=none, columnsize=0)",
    f"CREATE TABLE {POSITION_TABLE} (up_to INTEGER NOT NULL)",
    f"INSERT INTO {POSITION_TABLE} (up_to) VALUES (0)",
    # Ids are not AUTOINCREMENT: after the newest logs are deleted (the demo re-recording
    # its runs) a new log may take an id the index has passed. Index it at once.
    f"CREATE TRIGGER {SQLITE_TABLE}_insert AFTER INSERT ON logs "
    f"WHEN new.id <= {_INDEXED} BEGIN {_ADD_NEW}; END",
    # Prune and the demo delete; an external-content index must be told what the row held.
    f"CREATE TRIGGER {SQLITE_TABLE}_delete AFTER DELETE ON logs "
    f"WHEN old.id <= {_INDEXED} BEGIN {_REMOVE_OLD}; END",
    # lakelens never rewrites a log's text, but a bench or a hand-made fix may.
    f"CREATE TRIGGER {SQLITE_TABLE}_update_old AFTER UPDATE OF id, message, attributes "
    f"ON logs WHEN old.id <= {_INDEXED} BEGIN {_REMOVE_OLD}; END",
    f"CREATE TRIGGER {SQLITE_TABLE}_update_new AFTER UPDATE OF id, message, attributes "
    f"ON logs WHEN new.id <= {_INDEXED} BEGIN {_ADD_NEW}; END",
)
SQLITE_TRIGGERS = tuple(
    f"{SQLITE_TABLE}_{event}" for event in ("insert", "delete", "update_old", "update_new")
)
# Writers index the logs above the position once this many wait; up to CHUNK at a time.
LAG = 20_000
CHUNK = 50_000


def is_index_object(name: str | None) -> bool:
    """Whether a table, trigger or index of that name belongs to the search index."""
    return bool(name) and (str(name).startswith(SQLITE_TABLE) or name in PG_INDEXES)


def create_sqlite(conn: sa.Connection) -> None:
    """The FTS5 table and its triggers, filled from the logs already stored."""
    for statement in _SQLITE_CREATE:
        conn.exec_driver_sql(statement)
    rebuild_sqlite(conn)


REBUILD_SQLITE = (
    f"INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}) VALUES ('rebuild')",
    f"UPDATE {POSITION_TABLE} SET up_to = (SELECT coalesce(max(id), 0) FROM logs)",
)


def rebuild_sqlite(conn: sa.Connection) -> None:
    """Index every stored log again (after a bulk load, or to repair the index)."""
    for statement in REBUILD_SQLITE:
        conn.exec_driver_sql(statement)


def catch_up(cursor: Any, *, lag: int | None = None, chunk: int | None = None) -> int:
    """Index the logs above the position when at least `lag` wait (`chunk` at most); returns
    how many were indexed. `cursor` is a sqlite3 cursor inside a write transaction."""
    lag = LAG if lag is None else lag
    chunk = CHUNK if chunk is None else chunk
    up_to, newest = cursor.execute(
        f"SELECT up_to, (SELECT coalesce(max(id), 0) FROM logs) FROM {POSITION_TABLE}"
    ).fetchone()
    if newest - up_to < max(lag, 1):
        return 0
    last = min(newest, up_to + chunk)
    cursor.execute(
        f"INSERT INTO {SQLITE_TABLE}(rowid, message, attributes) "
        "SELECT id, message, attributes FROM logs WHERE id > ? AND id <= ?",
        (up_to, last),
    )
    cursor.execute(f"UPDATE {POSITION_TABLE} SET up_to = ?", (last,))
    return int(last - up_to)


def index_pending(engine: sa.Engine) -> int:
    """Index every log above the position now (SQLite); returns how many were indexed."""
    with engine.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        cursor = conn.connection.cursor()
        total = 0
        while indexed := catch_up(cursor, lag=1):
            total += indexed
        conn.commit()
    return total


def drop_sqlite(conn: sa.Connection) -> None:
    for trigger in SQLITE_TRIGGERS:
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {SQLITE_TABLE}")
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {POSITION_TABLE}")


def create_postgres(conn: sa.Connection) -> str | None:
    """pg_trgm and the GIN indexes; None when they are in place, else why not (logged).

    Runs inside the migration's transaction: a refused CREATE EXTENSION is rolled back to a
    savepoint, and the store keeps working with the scan. On a `logs` partitioned by day
    the indexes are not on the table (they would slow every insert into today's partition):
    store/log_search_days.py builds them on the days that ended, and any left on the table
    by an earlier revision are dropped.
    """
    import sqlalchemy as sa

    from lakelens.store.log_search_days import is_partitioned
    from lakelens.store.sql import borrow

    partitioned = is_partitioned(borrow(conn))
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            if partitioned:
                drop_postgres(conn)
            for name, expression in PG_INDEXES.items() if not partitioned else ():
                conn.exec_driver_sql(
                    f"CREATE INDEX IF NOT EXISTS {name} ON logs "
                    f"USING gin ({expression} gin_trgm_ops)"
                )
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0]
        log.warning(
            "lakelens logs --grep scans the logs table: the pg_trgm index could not be "
            "made (%s). To enable it, %s.",
            reason,
            ENABLE_HINT,
        )
        return reason
    return None


def drop_postgres(conn: sa.Connection) -> None:
    for name in PG_INDEXES:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")


def _postgres_indexed(db: Reader) -> bool:
    """Whether the table's indexes are as they should be (none on a partitioned `logs`)."""
    from lakelens.store.log_search_days import is_partitioned

    names = list(PG_INDEXES)
    found = db.value(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename = 'logs' AND indexname IN :names",
        {"names": names},
    )
    if is_partitioned(db):
        return not found and _installed(db)
    return int(found or 0) == len(names)


def _installed(db: Reader) -> bool:
    return bool(db.value("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))


def ensure_postgres(conn: sa.Connection) -> str | None:
    """Build the indexes when they are missing (pg_trgm created since the migration ran);
    None when they are in place, else why not."""
    from lakelens.store.sql import borrow

    if _postgres_indexed(borrow(conn)):
        return None
    return create_postgres(conn)


def describe(db: Reader, *, keep_days: float | None = None) -> str:
    """How `logs --grep` searches this store, for `lakelens health` (`keep_days`: the
    retention; older days, about to be pruned, are not indexed)."""
    if db.dialect == "sqlite":
        found = db.value(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name",
            {"name": SQLITE_TABLE},
        )
        return "fts5 trigram index" if found else "scan: run `lakelens db upgrade`"
    from lakelens.store.log_search_days import coverage, is_partitioned

    if _postgres_indexed(db):
        if not is_partitioned(db):
            return "pg_trgm index"
        done, total = coverage(db, keep_days=keep_days)
        pending = (
            ""
            if done == total
            else " (the rest are built in the background hourly, or now by `lakelens db upgrade`)"
        )
        return f"pg_trgm index on ended days ({done} of {total} partitions); {_today(db)}{pending}"
    if _installed(db):
        return "scan (pg_trgm is installed, the index is not built): run `lakelens db upgrade`"
    return f"scan (pg_trgm is not installed): {ENABLE_HINT}"


def _today(db: Reader) -> str:
    """How today's partition is searched: scanned, or through its hourly partial index."""
    import datetime as dt

    from lakelens.store.log_search_days import today_boundary

    boundary = today_boundary(db)
    if boundary is None:
        return "today's logs scanned"
    hour = dt.datetime.fromtimestamp(boundary, dt.timezone.utc)
    return f"today's logs to {hour:%H:%M} UTC by an hourly partial index, the rest scanned"


def match_query(text: str) -> str | None:
    """The FTS5 query for rows that may hold `text` (every trigram of it, any case), or None
    when the index cannot narrow the search (too short)."""
    if len(text) < MIN_CHARS or "\x00" in text:
        return None
    trigrams = list(dict.fromkeys(text[i : i + 3] for i in range(len(text) - 2)))
    if len(trigrams) > _MAX_TRIGRAMS:
        step = len(trigrams) / _MAX_TRIGRAMS
        trigrams = [trigrams[int(i * step)] for i in range(_MAX_TRIGRAMS)]
    return " AND ".join('"' + t.replace('"', '""') + '"' for t in trigrams)
