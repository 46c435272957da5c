"""Retention under load: does `lakelens db prune` stall ingest? (issue 16, item 5)

A store of `--logs` log records spread evenly over 60 days (2,000,000 by default, a few
minutes; the issue's 10M takes 5-10 minutes per store on 2 cores) is pruned of its 30 oldest days by
`lakelens db prune --older-than-days 30` while a client sends native batches of 100 logs to
`lakelens serve` at a steady rate (20 requests/s). The figure is the p99 request latency while
the prune runs ÷ the p99 of the same client just before it, on the same server: goal <= 2.

The store is written directly (sqlite3 executemany; PostgreSQL COPY) after lakelens made its
schema; on PostgreSQL the day partitions of those 60 days are made first, as the store's
hourly upkeep would have made them day by day.

    .venv/bin/python bench/prune_load.py                          # SQLite and PostgreSQL
    .venv/bin/python bench/prune_load.py --stores sqlite --logs 500000
    .venv/bin/python bench/prune_load.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from ingest import DEFAULT_POSTGRES, LAKELENS, fresh_store, server_env, serving

DAY = 86400.0
SPAN_DAYS = 60
PRUNE_DAYS = 30
RATE = 20.0  # requests per second
GOAL = 2.0


def fill(url: str, logs: int, now: float) -> float:
    """Write `logs` records spread over the last SPAN_DAYS days; return the seconds it took."""
    from lakelens.events import LOG_COLUMNS
    from lakelens.store import Store

    store = Store(url)
    store.engine  # noqa: B018 - the schema, by lakelens' migrations
    if not url.startswith("sqlite"):
        for day in range(SPAN_DAYS + 1):  # the upkeep of the days the data came in
            store.maintain_partitions(now=now - day * DAY)
    store.close()
    started = time.perf_counter()
    step = SPAN_DAYS * DAY / logs
    chunk = 50_000

    def rows(start: int) -> list[tuple[object, ...]]:
        return [
            (now - SPAN_DAYS * DAY + i * step, 20 if i % 10 else 40, f"fetched {i} rows",
             "bench", f"run-{i // 1000}", f"asset_{i % 50}", "job", None, None, None)
            for i in range(start, min(start + chunk, logs))
        ]  # fmt: skip

    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        marks = ", ".join("?" * len(LOG_COLUMNS))
        sql = f"INSERT INTO logs ({', '.join(LOG_COLUMNS)}) VALUES ({marks})"
        for start in range(0, logs, chunk):
            conn.executemany(sql, rows(start))
            conn.commit()
        conn.execute("ANALYZE")
        conn.close()
    else:
        import psycopg
        import sqlalchemy as sa

        plain = sa.make_url(url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(plain) as conn:
            copy = f"COPY logs ({', '.join(LOG_COLUMNS)}) FROM STDIN"
            for start in range(0, logs, chunk):
                with conn.cursor() as cursor, cursor.copy(copy) as out:
                    for row in rows(start):
                        out.write_row(row)
                conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE logs")
    return time.perf_counter() - started


class Client:
    """Native batches of 100 logs at RATE requests/s on one keep-alive connection, each
    request's (start, latency) recorded."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import httpx

        client = httpx.Client(base_url=self.base, timeout=60)
        headers = {"Content-Type": "application/json"}
        due = time.perf_counter()
        while not self.stop.is_set():
            due += 1 / RATE
            now = time.time()
            body = json.dumps(
                [
                    {"type": "log", "time": now, "level": 20, "message": "fetched rows",
                     "logger": "bench", "run_id": "bench-run", "asset": f"asset_{j % 50}"}
                    for j in range(100)
                ]
            )  # fmt: skip
            began = time.perf_counter()
            client.post("/api/v1/events", content=body, headers=headers).raise_for_status()
            self.samples.append((began, time.perf_counter() - began))
            time.sleep(max(0.0, due - time.perf_counter()))
        client.close()

    def between(self, start: float, end: float) -> list[float]:
        return [latency for began, latency in self.samples if start <= began < end]


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000


def measure(kind: str, logs: int, baseline: float, postgres_url: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as home, fresh_store(kind, home, postgres_url) as url:
        now = time.time()
        print(f"{kind}: writing {logs:,} logs over {SPAN_DAYS} days ...", file=sys.stderr)
        fill_seconds = fill(url, logs, now)
        with serving(home, url) as (_server, base):
            client = Client(base)
            client.thread.start()
            time.sleep(2)  # warm up
            quiet_start = time.perf_counter()
            time.sleep(baseline)
            prune_start = time.perf_counter()
            pruned = subprocess.run(
                [LAKELENS, "db", "prune", "--older-than-days", str(PRUNE_DAYS), "--json"],
                env=server_env(home, url),
                capture_output=True,
                text=True,
                check=True,
            )
            prune_end = time.perf_counter()
            client.stop.set()
            client.thread.join()
    quiet = client.between(quiet_start, prune_start)
    during = client.between(prune_start, prune_end)
    deleted = json.loads(pruned.stdout)["deleted"]
    return {
        "store": kind,
        "logs": logs,
        "fill_seconds": round(fill_seconds, 1),
        "logs_pruned": deleted.get("logs"),
        "prune_seconds": round(prune_end - prune_start, 2),
        "requests_quiet": len(quiet),
        "requests_during_prune": len(during),
        "p99_quiet_ms": round(p99(quiet), 1),
        "p99_during_prune_ms": round(p99(during), 1) if during else None,
        "max_during_prune_ms": round(max(during) * 1000, 1) if during else None,
        "ratio": round(p99(during) / p99(quiet), 2) if during else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=2_000_000, help="log records in the store")
    parser.add_argument("--stores", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--baseline", type=float, default=15.0, help="seconds before the prune")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LAKELENS_DATABASE_URL") or DEFAULT_POSTGRES,
        help="the PostgreSQL server (a new database is made on it and dropped)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    results = [
        measure(kind, args.logs, args.baseline, args.database_url)
        for kind in args.stores.split(",")
    ]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"prune {PRUNE_DAYS} of {SPAN_DAYS} days while ingesting {RATE:g} requests/s of 100 logs")
    for r in results:
        verdict = "ok" if r["ratio"] is not None and r["ratio"] <= GOAL else "MISSED"
        print(
            f"  {r['store']:<9} {r['logs']:,} logs, {r['logs_pruned']:,} pruned in "
            f"{r['prune_seconds']} s; p99 {r['p99_quiet_ms']} ms quiet, "
            f"{r['p99_during_prune_ms']} ms during prune (max {r['max_during_prune_ms']} ms, "
            f"{r['requests_during_prune']} requests): x{r['ratio']} (goal <= {GOAL:g}) {verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
