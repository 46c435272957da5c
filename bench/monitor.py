"""One monitor cycle over 1,000 PostgreSQL tables, against the bare catalog queries it builds on.

    .venv/bin/python bench/monitor.py [--tables 1000] [--server postgresql://postgres@127.0.0.1:5432/test]

Creates a database of its own on the server (dropped at the end), with N tables of 100–600
rows (a primary key, text, numeric and timestamp columns; half of them ANALYZEd), and a
SQLite store in a temporary directory. Prints, for the first cycle (every table new: assets
and schema snapshots written) and a steady one (after a load into 10% of the tables):

- the cycle's wall time, next to the bare catalog queries alone (the catalog-wide size and
  statistics query plus information_schema.columns, on one connection), same run;
- the most connections the monitor had open at once (sampled every 20 ms from another
  session) and its longest statement, against its statement limit.

The goal (issue 15): under 30 s, at most one connection per monitor, no statement past its limit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from typing import Any

GOAL_SECONDS = 30.0


def _build(url: str, tables: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"""
            DO $$ BEGIN
              FOR i IN 1..{tables} LOOP
                EXECUTE format('CREATE TABLE t_%s (id int PRIMARY KEY, name text,
                  amount numeric(10,2), created_at timestamptz DEFAULT now())', lpad(i::text, 5, '0'));
                EXECUTE format('INSERT INTO t_%s (id, name, amount)
                  SELECT g, ''n'' || g, g FROM generate_series(1, %s) g',
                  lpad(i::text, 5, '0'), 100 + i % 500);
              END LOOP;
            END $$;
            """
        )
        for i in range(1, tables + 1, 2):
            conn.execute(f"ANALYZE t_{i:05d}")


def _load(url: str, tables: int, round_: int) -> None:
    """A load into every tenth table (what a steady cycle finds changed)."""
    import psycopg

    first = 100_000 * round_
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(1, tables + 1, 10):
            conn.execute(
                f"INSERT INTO t_{i:05d} (id, name, amount) "
                f"SELECT g, 'x', 1 FROM generate_series({first}, {first + 9}) g"
            )
        conn.execute("SELECT pg_stat_force_next_flush()")


def _bare_catalog(url: str) -> float:
    """The catalog-wide queries alone, on one fresh connection (as a cycle opens one)."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from lakelens.monitors.postgres import CATALOG_SQL, COLUMNS_SQL

    engine = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://"), poolclass=NullPool
    )
    began = time.perf_counter()
    with engine.connect() as conn:
        for sql in (CATALOG_SQL.format(size="true"), COLUMNS_SQL):
            conn.execute(sa.text(sql), {"schemas": None}).fetchall()
    took = time.perf_counter() - began
    engine.dispose()
    return took


class _Watch:
    """Samples the monitor's open connections; times every statement it runs."""

    def __init__(self, url: str, application: str) -> None:
        self.url = url
        self.application = application
        self.most_connections = 0
        self.statements: list[float] = []
        self._stop = threading.Event()
        self._started: dict[int, float] = {}

    def __enter__(self) -> _Watch:
        import sqlalchemy as sa

        sa.event.listen(sa.Engine, "before_cursor_execute", self._before)
        sa.event.listen(sa.Engine, "after_cursor_execute", self._after)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        import sqlalchemy as sa

        self._stop.set()
        self._thread.join()
        sa.event.remove(sa.Engine, "before_cursor_execute", self._before)
        sa.event.remove(sa.Engine, "after_cursor_execute", self._after)

    def _ours(self, conn: Any) -> bool:
        return conn.engine.url.get_backend_name() == "postgresql" and conn.engine.url.database in (
            self.url.rsplit("/", 1)[1],
        )

    def _before(self, conn: Any, cursor: Any, *args: Any) -> None:
        if self._ours(conn):
            self._started[id(cursor)] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, *args: Any) -> None:
        began = self._started.pop(id(cursor), None)
        if began is not None:
            self.statements.append(time.perf_counter() - began)

    def _sample(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                (count,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                    (self.application,),
                ).fetchone()  # type: ignore[misc]
                self.most_connections = max(self.most_connections, count)
                self._stop.wait(0.02)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument(
        "--server",
        default=os.environ.get(
            "LAKELENS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
        help="a PostgreSQL server where a database may be created",
    )
    parser.add_argument("--repeat", type=int, default=3, help="steady cycles to time")
    args = parser.parse_args(argv)

    import psycopg

    from lakelens.monitors import MonitorConfig, run_cycle
    from lakelens.monitors.state import add_monitor
    from lakelens.store import Store

    name = f"lakelens_bench_monitor_{uuid.uuid4().hex[:8]}"
    base = args.server.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        began = time.perf_counter()
        _build(url, args.tables)
        print(f"Built {args.tables:,} tables in {time.perf_counter() - began:.1f} s ({url})")
        with tempfile.TemporaryDirectory() as home:
            store = Store(f"sqlite:///{home}/lakelens.db")
            config = MonitorConfig.create(url, name="bench")
            add_monitor(store.engine, config, now=time.time())
            rows = []
            bare = [_bare_catalog(url) for _ in range(3)]
            for n, label in enumerate(
                ["first cycle", *[f"steady cycle {i + 1}" for i in range(args.repeat)]]
            ):
                if n:
                    _load(url, args.tables, n)
                with _Watch(url, "lakelens monitor bench") as watch:
                    result = run_cycle(store, config)
                assert result.ok, result.to_dict()
                rows.append((label, result, watch))
            bare.append(_bare_catalog(url))
            store.close()
        reference = statistics.median(bare)
        print(
            f"Bare catalog queries (catalog-wide sizes/statistics + information_schema.columns, "
            f"one connection): median {reference * 1000:.0f} ms of {len(bare)}"
        )
        print(
            f"{'':18}{'wall s':>8}{'tables':>8}{'changed':>9}{'stmts':>7}{'longest ms':>12}{'conns':>7}"
        )
        for label, result, watch in rows:
            print(
                f"{label:18}{result.seconds:8.2f}{result.tables:8,}{result.changed:9,}"
                f"{len(watch.statements):7,}{max(watch.statements) * 1000:12.0f}"
                f"{watch.most_connections:7}"
            )
        worst = max(r.seconds for _, r, _ in rows)
        conns = max(w.most_connections for _, _, w in rows)
        longest = max(max(w.statements) for _, _, w in rows)
        ok = worst < GOAL_SECONDS and conns <= 1 and longest < config.statement_timeout
        print(
            f"Goal: cycle < {GOAL_SECONDS:.0f} s, ≤ 1 connection, no statement past "
            f"{config.statement_timeout:.0f} s: {'met' if ok else 'NOT met'} "
            f"(slowest cycle {worst:.2f} s, {conns} connection, longest statement "
            f"{longest * 1000:.0f} ms)"
        )
        return 0 if ok else 1
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    raise SystemExit(main())
