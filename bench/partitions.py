"""How long `runs partitions` and `runs diff` take on a store with many runs.

    .venv/bin/python bench/partitions.py                      # SQLite, 100k runs, 2k partitions
    .venv/bin/python bench/partitions.py --postgres postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/partitions.py --runs 20000 --json  # smaller, machine-readable

The store is written through `Store.write(Batch)`: one partitioned job (`daily_sales`, --partitions
daily partitions, half of --runs over 60 days, re-run many times each), 49 other jobs (a third of them
partitioned by day over 100 days) for the other half, and two runs of `daily_sales` with
materializations, checks and 200 spans each for the diff. Each query is timed in-process on
the reader the CLI uses (sqlite3 for SQLite, SQLAlchemy for PostgreSQL): the median of --reps
runs after one warm-up. Then again with an index on runs (job, "partition", start_time),
created for the measurement and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

DAY = 86400.0
INDEX = "ix_bench_runs_job_partition"


def _build(store: Any, runs: int, partitions: int, now: float) -> tuple[str, str]:
    from lakelens.events import Batch
    from lakelens.model import CheckResult, Materialization, Run, from_epoch

    def moment(seconds: float) -> Any:
        return from_epoch(seconds)

    statuses = ("success",) * 9 + ("failure",)
    batch = Batch()
    written = 0

    def flush(force: bool = False) -> None:
        nonlocal batch, written
        if force or len(batch) >= 20_000:
            store.write(batch)
            written += len(batch)
            batch = Batch()

    main_runs = runs // 2
    for i in range(main_runs):
        day = i % partitions
        start = now - (main_runs - i) * (60 * DAY / main_runs)  # over 60 days
        batch.add(
            Run(
                f"ds-{i:07d}",
                "daily_sales",
                status=statuses[(i * 7) % 10],
                start_time=moment(start),
                end_time=moment(start + 30),
                partition=time.strftime("%Y-%m-%d", time.gmtime(now - (partitions - day) * DAY)),
            )
        )
        flush()
    for i in range(runs - main_runs):
        job = i % 49
        start = now - (runs - main_runs - i) * (60 * DAY / (runs - main_runs))
        batch.add(
            Run(
                f"other-{i:07d}",
                f"job_{job:02d}",
                status=statuses[i % 10],
                start_time=moment(start),
                end_time=moment(start + 10),
                partition=time.strftime("%Y-%m-%d", time.gmtime(now - (i % 100) * DAY))
                if job % 3 == 0
                else None,
            )
        )
        flush()
    # Two rich runs to compare: 20 assets, 40 checks, 200 spans each.
    ids = ("ds-diff-a", "ds-diff-b")
    for n, run_id in enumerate(ids):
        start = now + n * 3600
        batch.add(
            Run(
                run_id,
                "daily_sales",
                status="success",
                start_time=moment(start),
                end_time=moment(start + 300),
            )
        )
        for a in range(20):
            batch.add(
                Materialization(
                    f"{run_id}-m{a}",
                    run_id,
                    f"asset_{a:02d}",
                    status="success",
                    start_time=moment(start + a),
                    end_time=moment(start + a + 5 + n),
                    rows=1000 * (a + 1) + n * 17,
                )
            )
            for c in range(2):
                batch.add(
                    CheckResult(
                        f"{run_id}-c{a}-{c}",
                        f"asset_{a:02d}",
                        f"check_{c}",
                        passed=(a + c + n) % 7 != 0,
                        time=moment(start + a + 5),
                        run_id=run_id,
                    )
                )
        trace = uuid.uuid4().hex
        for s in range(200):
            # Span rows go in as the tuples the writer takes (trace, span, parent, run, asset,
            # name, start, end, status, error, attributes, events).
            batch.spans.append(
                (
                    trace,
                    f"{s:016x}",
                    None if s < 20 else f"{s % 20:016x}",
                    run_id,
                    None,
                    f"step_{s % 50}",
                    start + s,
                    start + s + 0.5 + n * (s % 3),
                    "ok",
                    None,
                    None,
                    None,
                )
            )
    flush(force=True)
    store.analyze()
    return ids


def _time(fn: Callable[[], Any], reps: int) -> dict[str, float]:
    fn()  # warm the cache
    samples = []
    for _ in range(reps):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    return {"median_ms": round(statistics.median(samples), 1), "min_ms": round(min(samples), 1)}


def _measure(store: Any, ids: tuple[str, str], reps: int) -> dict[str, Any]:
    from lakelens.analysis.partitions import partition_grid, partitioned_jobs
    from lakelens.analysis.run_diff import diff_runs

    out: dict[str, Any] = {}
    with store.reader() as db:
        grid = partition_grid(db, "daily_sales")
        out["cells"] = len(grid.cells)
        out["partition_grid"] = _time(lambda: partition_grid(db, "daily_sales"), reps)
        since = time.time() - 7 * DAY
        out["partition_grid_since_7d"] = _time(
            lambda: partition_grid(db, "daily_sales", since=since), reps
        )
        out["partition_grid_small_job"] = _time(lambda: partition_grid(db, "job_03"), reps)
        out["partitioned_jobs"] = _time(lambda: partitioned_jobs(db), reps)
        out["runs_diff"] = _time(lambda: diff_runs(db, ids[0], ids[1]), reps)
        out["runs_diff_previous"] = _time(lambda: diff_runs(db, None, ids[1]), reps)
    return out


def _index(store: Any, create: bool) -> None:
    with store.engine.begin() as conn:
        if create:
            conn.exec_driver_sql(f'CREATE INDEX {INDEX} ON runs (job, "partition", start_time)')
        else:
            conn.exec_driver_sql(f"DROP INDEX {INDEX}")
    store.analyze()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=2_000)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a scratch database is made)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from lakelens.store import Store

    results: dict[str, Any] = {"runs": args.runs, "partitions": args.partitions}
    with tempfile.TemporaryDirectory(prefix="lakelens-partitions-bench-") as scratch:
        scratch_db = None
        if args.postgres:
            import psycopg

            scratch_db = f"lakelens_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.postgres, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{scratch_db}"')
            url = f"{args.postgres.rpartition('/')[0]}/{scratch_db}"
        else:
            url = f"sqlite:///{scratch}/lakelens.db"
        results["backend"] = "postgresql" if args.postgres else "sqlite"
        store = Store(url)
        try:
            began = time.perf_counter()
            ids = _build(store, args.runs, args.partitions, time.time())
            results["build_s"] = round(time.perf_counter() - began, 1)
            results["without_index"] = _measure(store, ids, args.reps)
            _index(store, create=True)
            results["with_index"] = _measure(store, ids, args.reps)
            _index(store, create=False)
        finally:
            store.close()
            if scratch_db is not None:
                with psycopg.connect(args.postgres, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{scratch_db}" WITH (FORCE)')
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"{results['backend']}: {args.runs:,} runs, {args.partitions:,} partitions of daily_sales "
        f"(built in {results['build_s']}s)"
    )
    for key in results["without_index"]:
        if key == "cells":
            continue
        before, after = results["without_index"][key], results["with_index"][key]
        print(
            f"  {key:26} {before['median_ms']:8.1f} ms   with (job, partition, start_time) index "
            f"{after['median_ms']:8.1f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
