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

Then column profiles (monitors/profiles.py): on one table of --profile-rows rows (1,000,000;
an integer key, numeric, double, text and timestamptz columns, ANALYZEd), every column
profiled on the monitor's own connection, whole (the default threshold) and from a
TABLESAMPLE of about 100,000 rows, against the bare count(*) of that table, same run, median
of --repeat. `--only cycle` or `--only profile` runs one half.
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


def _build_profiled(url: str, rows: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"""
            CREATE TABLE profiled AS SELECT
              g AS id,
              CAST(CASE WHEN g % 10 = 0 THEN NULL ELSE (g::bigint * 7919) % 100000 / 100.0 END
                   AS numeric(10,2)) AS amount,
              sin(g) AS score,
              'customer_' || (g % 5000) AS name,
              timestamptz '2024-01-01' + g * interval '1 second' AS created_at
            FROM generate_series(1, {rows}) g
            """
        )
        conn.execute("ANALYZE profiled")


def _profile_figures(url: str, rows: int, repeat: int) -> list[tuple[str, float, list[float]]]:
    """(label, median seconds, median seconds of each statement) for count(*) and profiles."""
    from lakelens.monitors import MonitorConfig
    from lakelens.monitors.collectors import open_collector

    config = MonitorConfig.create(url, name="bench", profile_columns={"profiled": ["*"]})
    collector = open_collector(config)
    try:
        (table,) = [t for t in collector.list_tables() if t.name == "profiled"]
        statements: list[float] = []
        fetch = collector.fetch

        def timed(sql: str) -> list[Any]:
            began = time.perf_counter()
            try:
                return fetch(sql)
            finally:
                statements.append(time.perf_counter() - began)

        collector.fetch = timed  # type: ignore[method-assign]
        cases: dict[str, tuple[int | None, list[float], list[list[float]]]] = {
            "count(*)": (None, [], []),
            f"profile, every row (threshold {config.profile_sample_above:,})": (
                config.profile_sample_above,
                [],
                [],
            ),
            "profile, sample of ~100,000 rows": (100_000, [], []),
        }
        for _ in range(repeat):
            for threshold, took, each in cases.values():
                statements.clear()
                began = time.perf_counter()
                if threshold is None:
                    collector.count(table)
                else:
                    collector.config = config.with_changes(profile_sample_above=threshold)
                    found = collector.profile(table, ["*"], table.row_count)
                    assert not found.failed and not found.error, found
                took.append(time.perf_counter() - began)
                each.append(list(statements))
        return [
            (
                label,
                statistics.median(took),
                [statistics.median(s) for s in zip(*each, strict=True)] if each[0] else [],
            )
            for label, (_, took, each) in cases.items()
        ]
    finally:
        collector.close()


def _print_profile(rows: int, figures: list[tuple[str, float, list[float]]]) -> None:
    print(f"Profile of a {rows:,}-row table, 5 columns, the monitor's connection (median):")
    reference = figures[0][1]
    for label, seconds, each in figures:
        parts = " + ".join(f"{s * 1000:,.0f}" for s in each)
        ratio = f"{seconds / reference:6.1f}× count(*)" if each else ""
        print(
            f"  {label:42}{seconds * 1000:9,.0f} ms  {ratio}"
            + (f"  (statements: {parts} ms)" if each else "")
        )


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
    parser.add_argument(
        "--profile-rows", type=int, default=1_000_000, help="rows of the profiled table"
    )
    parser.add_argument("--only", choices=["cycle", "profile"], help="run one half")
    args = parser.parse_args(argv)

    import psycopg

    name = f"lakelens_bench_monitor_{uuid.uuid4().hex[:8]}"
    base = args.server.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        ok = True
        if args.only != "profile":
            ok = _cycles(url, args)
        if args.only != "cycle":
            began = time.perf_counter()
            _build_profiled(url, args.profile_rows)
            print(f"Built a {args.profile_rows:,}-row table in {time.perf_counter() - began:.1f} s")
            _print_profile(args.profile_rows, _profile_figures(url, args.profile_rows, args.repeat))
        return 0 if ok else 1
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cycles(url: str, args: argparse.Namespace) -> bool:
    """The cycle half: build the tables, time the cycles; whether the goal was met."""
    from lakelens.monitors import MonitorConfig, run_cycle
    from lakelens.monitors.state import add_monitor
    from lakelens.store import Store

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
    return ok


if __name__ == "__main__":
    raise SystemExit(main())
