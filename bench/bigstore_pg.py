"""The big store of bench/bigstore.py on PostgreSQL: the same rows, copied with COPY.

The SQLite store is built (or taken from the cache) first; its rows then go into a fresh
PostgreSQL database whose schema `Store(url)` made through the real migrations, table by
table with `COPY ... FROM STDIN` (psycopg's `cursor.copy`), the big tables' secondary
indexes dropped during the load and recreated after it, then `VACUUM ANALYZE` (what
autovacuum gives a live store: statistics and the visibility map for index-only scans).

The database is named after the size and BUILD_VERSION, and its comment records the end of
the SQLite store's data and the schema revision: when either differs (the SQLite store was
shifted to now, rebuilt or migrated), the copy is made again. Setup, not what is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bigstore import BIG_TABLES, BUILD_VERSION, say
from lakelens.store import Store
from lakelens.store.schema import HEAD_REVISION

__all__ = ["add_database_url", "bench_store_url", "prepare_postgres", "scratch_database"]

SKIPPED = ("alembic_version",)  # written by the migrations themselves


def _database_url(server_url: str, name: str) -> str:
    """Database `name` on the server of `server_url`, as libpq (psql, psycopg) takes it."""
    from lakelens.store.postgres import libpq_url

    plain = libpq_url(server_url)[0]
    base, _, _db = plain.partition("?")[0].rpartition("/")
    query = plain.partition("?")[2]
    return f"{base}/{name}" + (f"?{query}" if query else "")


def prepare_postgres(admin_url: str, db: Path, info: dict[str, Any], label: str) -> str:
    """The URL of a PostgreSQL database holding the rows of the SQLite store `db`.

    `admin_url` names any database on the server (it is used to create the bench's own);
    `label` tells the sizes apart (quick, full).
    """
    import psycopg

    name = f"lakelens_bench_{label}_v{BUILD_VERSION}"
    admin_url = _database_url(admin_url, admin_url.partition("?")[0].rpartition("/")[2])
    marker = json.dumps({"data_end": info["data_end"], "revision": HEAD_REVISION})
    with psycopg.connect(admin_url, autocommit=True) as admin:
        found = admin.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (name,),
        ).fetchone()
        if found is not None and found[0] == marker:
            return _database_url(admin_url, name)
        say(f"copying {db} into PostgreSQL database {name} ...")
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _database_url(admin_url, name)
    seconds = copy_store(db, url)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"COMMENT ON DATABASE \"{name}\" IS '{marker}'")
    say(f"copied in {seconds:.0f} s")
    return url


def copy_store(db: Path, url: str) -> float:
    """Fill the empty database at `url` with every row of the SQLite store `db`."""
    import psycopg

    started = time.perf_counter()
    store = Store(url)
    store.engine  # noqa: B018 - the schema, through the real migrations
    store.close()
    source = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public' "
            "AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conname = i.indexname)",
            (list(BIG_TABLES),),
        ).fetchall()
        for index, _ in indexes:
            conn.execute(f'DROP INDEX "{index}"')
        _history_days(source, conn)
        tables = [
            t
            for (t,) in source.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
            if t not in SKIPPED
        ]
        for table in tables:
            copied = _copy_table(source, conn, table)
            if copied:
                say(f"  {table}: {copied:,} rows ({time.perf_counter() - started:.0f} s)")
        say(f"recreating the {len(indexes)} indexes of the big tables ...")
        for _, sql in indexes:
            # pg_indexes gives a partitioned table's index as `ON ONLY logs`, which builds
            # no index on the partitions (and stays invalid): build it on every partition.
            conn.execute(sql.replace(" ON ONLY ", " ON ", 1))
        _advance_sequences(conn)
        say("VACUUM ANALYZE ...")
        conn.execute("VACUUM ANALYZE")
    source.close()
    store = Store(url)
    say(f"  {store.index_ended_days()} --grep indexes of ended days built")
    store.close()
    return time.perf_counter() - started


def _history_days(source: sqlite3.Connection, conn: Any) -> None:
    """A day partition for every day of the copied logs and spans, as a store that lived
    through those days has (the migrations make only yesterday to a week ahead; without
    these, the history lands in one default partition)."""
    from lakelens.store.partition_state import DAY, PARTITIONED, day_name

    for table, column in PARTITIONED.items():
        if not conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{table}_default",)).fetchone()[
            0
        ]:
            continue  # one table, not partitioned
        low, high = source.execute(
            f'SELECT min("{column}"), max("{column}") FROM {table}'
        ).fetchone()
        if low is None:
            continue
        for day in range(int(low // DAY), int(high // DAY) + 1):
            name = day_name(table, day)
            if not conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]:
                conn.execute(
                    f"CREATE TABLE {name} PARTITION OF {table} "
                    f"FOR VALUES FROM ({day * DAY}) TO ({(day + 1) * DAY})"
                )


def _copy_table(source: sqlite3.Connection, conn: Any, table: str) -> int:
    """COPY the columns both sides have; SQLite's 0/1 booleans are PostgreSQL's too."""
    ours = [row[1] for row in source.execute(f'PRAGMA table_info("{table}")')]
    theirs = {
        name: kind
        for name, kind in conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s",
            (table,),
        )
    }
    columns = [c for c in ours if c in theirs]
    if not columns:
        return 0
    booleans = [i for i, c in enumerate(columns) if theirs[c] == "boolean"]
    names = ", ".join(f'"{c}"' for c in columns)
    cursor = source.execute(f'SELECT {names} FROM "{table}"')
    conn.execute(f'TRUNCATE "{table}" CASCADE')  # rows the migrations seeded are in `source` too
    count = 0
    with conn.cursor() as out, out.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        while rows := cursor.fetchmany(50_000):
            for row in rows:
                if booleans:
                    row = list(row)
                    for i in booleans:
                        if row[i] is not None:
                            row[i] = bool(row[i])
                copy.write_row(row)
            count += len(rows)
    return count


def _advance_sequences(conn: Any) -> None:
    """Serial columns continue after the copied ids."""
    serials = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')"
    ).fetchall()
    for table, column in serials:
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), "
            f'coalesce((SELECT max("{column}") FROM "{table}"), 0) + 1, false)'
        )


@contextlib.contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """A fresh, empty database on the server of `server_url` for the block, dropped after."""
    import psycopg

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    server_url = _database_url(server_url, server_url.partition("?")[0].rpartition("/")[2])
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _database_url(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_store_url(server_url: str, home: Path) -> str:
    """The PostgreSQL copy of the bench store whose home is `home` (.bench-data/SIZE/home)."""
    meta = home.parent / "store.json"
    if not meta.exists():
        raise SystemExit(
            f"{meta} is missing: --home with --database-url takes a store built by "
            "bench/queries.py (.bench-data/quick/home or .bench-data/full/home)."
        )
    info = json.loads(meta.read_text())
    return prepare_postgres(server_url, home / "lakelens.db", info, home.parent.name)


def add_database_url(parser: argparse.ArgumentParser, what: str) -> None:
    """--database-url: a PostgreSQL server on which the bench also runs (`what` it does there)."""
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LAKELENS_DATABASE_URL") or None,
        type=_postgres_url,
        help=f"a PostgreSQL server (any database on it): {what} (default: $LAKELENS_DATABASE_URL)",
    )


def _postgres_url(text: str) -> str:
    if not text.startswith("postgres"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a postgresql:// URL (SQLite is always measured)"
        )
    return text
