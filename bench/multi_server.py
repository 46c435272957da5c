"""Ingest throughput of 1, 2 and 3 `lakelens serve` processes on one PostgreSQL database, the
clients' connections spread across them, and where the CPU went.

Each server count gets a new database and fresh servers (`--no-alerts --no-monitors`); one
client process (bench/ingest.py's) drives the same connections in every case, connection k
to server k mod N. Two phases: native batches of 500 logs (6 httpx connections) and one
OpenLineage RunEvent per request (6 raw keep-alive connections).

    .venv/bin/python bench/multi_server.py --quick     # 4 s per phase (about a minute)
    .venv/bin/python bench/multi_server.py --json
    .venv/bin/python bench/multi_server.py --store-writers 1,2,3   # the store alone, no HTTP

The figure judged is the ratio N servers ÷ 1 server, measured in the same run (goal: two
servers >= 1.5x one, on a machine with the cores for it). Beside it: the CPU milliseconds per
request of the servers, of the PostgreSQL backends serving this database (from
pg_stat_activity, read in /proc) and of the client; the events/s those costs allow (each server
is one Python process: one core at most; the machine: all its cores for every part); how busy
the whole machine was; and what the database's backends were doing (sampled every 50 ms:
running, waiting for the rollup advisory lock, for row locks, for WAL/IO).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
from contextlib import ExitStack, suppress
from typing import Any

from ingest import (  # bench/ingest.py: the same client, store and process helpers
    DEFAULT_POSTGRES,
    LAKELENS,
    _drive,
    cpu_seconds,
    free_port,
    fresh_store,
    wait_ready,
    writer_counters,
)

GOAL = 1.5  # two servers ÷ one
QUIET = ("--no-alerts", "--no-monitors")
CONNECTIONS = 6  # divides evenly among 1, 2 and 3 servers
PHASES = [
    ("native", "native", 500, "native events/s (batches of 500 logs)"),
    ("openlineage", "ol-raw", 1, "OpenLineage RunEvents/s (1 per request)"),
]


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores so far, from /proc/stat."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def backends(url: str) -> list[int]:
    """The pids of the PostgreSQL backends connected to the database of `url`."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return [int(pid) for (pid,) in found]
    finally:
        engine.dispose()


class Waits:
    """Samples what the database's backends do, every 50 ms while running: the mean number
    running a statement, waiting for an advisory lock (the rollup lock of store/writes.py),
    for another lock (rows: assets, batch ids) and on WAL or I/O (commits)."""

    NAMES = ("running", "advisory_waiting", "row_lock_waiting", "io_waiting")

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.engine = sa.create_engine(url)
        self.samples: list[tuple[int, ...]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Waits:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.engine.dispose()

    def _run(self) -> None:
        sql = (
            "SELECT count(*) FILTER (WHERE wait_event_type IS NULL), "
            "count(*) FILTER (WHERE wait_event = 'advisory'), "
            "count(*) FILTER (WHERE wait_event_type = 'Lock' AND wait_event <> 'advisory'), "
            "count(*) FILTER (WHERE wait_event_type IN ('IO', 'LWLock')) "
            "FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'active' AND pid <> pg_backend_pid()"
        )
        with self.engine.connect() as conn:
            while not self._stop.wait(0.05):
                row = conn.exec_driver_sql(sql).one()
                conn.rollback()
                self.samples.append(tuple(int(v) for v in row))

    def means(self) -> dict[str, float]:
        count = max(1, len(self.samples))
        return {
            name: sum(sample[k] for sample in self.samples) / count
            for k, name in enumerate(self.NAMES)
        }


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with suppress(FileNotFoundError, ProcessLookupError, IndexError):  # ended meanwhile
            total += cpu_seconds(pid)
    return total


def measure(servers: int, seconds: float, postgres_url: str) -> dict[str, dict[str, float]]:
    """{phase: figures} for `servers` servers on a new database."""
    found: dict[str, dict[str, float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="lakelens-multi-bench-") as home,
        fresh_store("postgres", home, postgres_url) as url,
        ExitStack() as stack,
    ):
        env = dict(
            os.environ, LAKELENS_HOME=home, LAKELENS_LOG_FORMAT="none", LAKELENS_DATABASE_URL=url
        )
        procs: list[subprocess.Popen[bytes]] = []
        bases = []
        for _ in range(servers):
            port = free_port()
            proc = subprocess.Popen(
                [LAKELENS, "serve", "--port", str(port), "--home", home, *QUIET],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            stack.callback(_stop, proc)
            procs.append(proc)
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            wait_ready(f"{base}/livez")
        for name, mode, per_request, _label in PHASES:
            _drive(",".join(bases), mode, 1.0, CONNECTIONS)  # warm-up: connections, caches
            pids = [p.pid for p in procs]
            database = backends(url)
            before = (_cpu(pids), _cpu(database), machine_busy())
            writers = [writer_counters(base) for base in bases]
            with Waits(url) as waits:
                data = _drive(",".join(bases), mode, seconds, CONNECTIONS)
            after = (_cpu(pids), _cpu(database), machine_busy())
            # Each server's writer (/metrics): busy share of the phase, requests a transaction.
            done = [
                [b - a for a, b in zip(old, writer_counters(base), strict=True)]
                for old, base in zip(writers, bases, strict=True)
            ]
            wall, requests = data["seconds"], data["sent"] / per_request
            busy = (after[2][0] - before[2][0]) / max(1, after[2][1] - before[2][1])
            found[name] = {
                "events_per_s": data["sent"] / wall,
                # CPU ms per request: what each part costs, whatever the neighbours take.
                "servers_ms": (after[0] - before[0]) * 1000 / requests,
                "postgres_ms": (after[1] - before[1]) * 1000 / requests,
                "client_ms": data["cpu"] * 1000 / requests,
                "machine_busy_cores": busy * (os.cpu_count() or 1),
                "writer_busy": max(d[2] for d in done) / data["seconds"],
                "requests_per_transaction": sum(d[1] for d in done)
                / max(1.0, sum(d[0] for d in done)),
                # Mean backends of this database doing each, sampled every 50 ms.
                **{f"backends_{k}": v for k, v in waits.means().items()},
            }
            found[name] |= ceilings(found[name], servers, per_request)
    return found


def _store_writer(url: str, k: int, seconds: float, out: Any) -> None:
    """Write one-run, one-materialization batches (a batch id claimed, as a server does) for
    `seconds`; put the latencies and the errors on `out`."""
    import random
    import time
    import uuid
    from datetime import datetime, timezone

    from lakelens.events import Batch
    from lakelens.model import Materialization, Run
    from lakelens.store import Store

    store, rng = Store(url), random.Random(k)
    latencies: list[float] = []
    errors: list[str] = []
    end = time.time() + seconds
    while time.time() < end:
        run = f"r{k}-{uuid.uuid4().hex[:12]}"
        now = datetime.now(timezone.utc)
        start = datetime.fromtimestamp(now.timestamp() - rng.random() * 5, timezone.utc)
        asset = f"shop.t{rng.randrange(20)}"  # 20 assets shared by every writer, one hour
        batch = Batch(
            runs=[Run(run, "job", "success", start, now)],
            materializations=[
                Materialization(f"{run}-m", run, asset, "success", start, now, rows=10)
            ],
        )
        began = time.perf_counter()
        try:
            store.write(batch, batch_id=uuid.uuid4().hex)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
        latencies.append(time.perf_counter() - began)
    store.close()
    out.put((latencies, errors))


def store_writers(writers: int, seconds: float, postgres_url: str) -> dict[str, float]:
    """Transactions/s of `writers` processes writing to a new database through the store alone
    (no HTTP, no server): what the rollup lock lets several writers do at once."""
    import multiprocessing
    import statistics
    import tempfile

    import sqlalchemy as sa

    from lakelens.store import Store

    with (
        tempfile.TemporaryDirectory(prefix="lakelens-multi-bench-") as home,
        fresh_store("postgres", home, postgres_url) as url,
    ):
        Store(url).close()  # created and migrated once, before the writers start
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            deadlocks = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
            before = conn.exec_driver_sql(deadlocks).scalar() or 0
            conn.rollback()
            context = multiprocessing.get_context("spawn")
            out = context.Queue()
            procs = [
                context.Process(target=_store_writer, args=(url, k, seconds, out))
                for k in range(writers)
            ]
            for proc in procs:
                proc.start()
            found = [out.get() for _ in procs]
            for proc in procs:
                proc.join()
            after = conn.exec_driver_sql(deadlocks).scalar() or 0
        engine.dispose()
    latencies = sorted(x for lat, _ in found for x in lat)
    return {
        "transactions_per_s": len(latencies) / seconds,
        "median_ms": statistics.median(latencies) * 1000,
        "p90_ms": latencies[int(len(latencies) * 0.9)] * 1000,
        "errors": sum(len(errors) for _, errors in found),
        "deadlocks": after - before,
    }


def ceilings(figures: dict[str, float], servers: int, per_request: int) -> dict[str, float]:
    """Events/s the CPU costs allow: each server (one Python process, one core at most) and
    the whole machine (every part, on all the cores), had lakelens the machine to itself."""
    total_ms = figures["servers_ms"] + figures["postgres_ms"] + figures["client_ms"]
    cores = os.cpu_count() or 1
    return {
        "servers_ceiling": servers * 1000 / figures["servers_ms"] * per_request,
        "machine_ceiling": cores * 1000 / total_ms * per_request,
        "lakelens_cores": figures["events_per_s"] / per_request * total_ms / 1000,
    }


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 s per phase (default 15 s)")
    parser.add_argument("--servers", default="1,2,3", help="server counts to measure")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--store-writers",
        metavar="COUNTS",
        help="instead: COUNTS (e.g. 1,2,3) processes writing to the store directly, no server",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LAKELENS_DATABASE_URL") or DEFAULT_POSTGRES,
        help=f"a PostgreSQL server: each count uses a new database on it ({DEFAULT_POSTGRES})",
    )
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.servers.split(",")]
    if 1 not in counts or min(counts) < 1:
        parser.error("--servers must include 1 (the reference) and only counts >= 1")
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url must be a PostgreSQL URL: several servers share PostgreSQL")
    seconds = 4.0 if args.quick else 15.0
    load = os.getloadavg()
    if args.store_writers:
        for n in (int(n) for n in args.store_writers.split(",")):
            figures = store_writers(n, seconds, args.database_url)
            print(
                f"{n} store writers: {figures['transactions_per_s']:,.0f} transactions/s, "
                f"median {figures['median_ms']:.2f} ms, p90 {figures['p90_ms']:.2f} ms, "
                f"{figures['errors']} errors, {figures['deadlocks']} deadlocks "
                f"(load average {os.getloadavg()[0]:.2f})"
            )
        return 0
    results = {n: measure(n, seconds, args.database_url) for n in counts}
    ratios = {
        n: {name: results[n][name]["events_per_s"] / results[1][name]["events_per_s"]
            for name, *_ in PHASES}
        for n in counts
    }  # fmt: skip
    report: dict[str, Any] = {
        "results": results,
        "ratios": ratios,
        "goal": GOAL,
        "cores": os.cpu_count(),
        "load_average_before": load,
        "load_average_after": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"lakelens serve x N on one PostgreSQL, {CONNECTIONS} client connections spread across "
        f"them ({seconds:g} s per phase, {os.cpu_count()} cores, load average {load[0]:.2f} "
        f"before, {os.getloadavg()[0]:.2f} after)"
    )
    for name, _mode, _per, label in PHASES:
        print(f"  {label}")
        print(
            f"    {'servers':>7} {'events/s':>9} {'÷ 1':>5} | CPU ms/request: {'servers':>7} "
            f"{'postgres':>8} {'client':>6} | cores: {'ours':>4} {'machine':>7} | ceiling "
            f"events/s: {'servers':>7} {'machine':>7} | writer: busiest, requests/txn | "
            "PostgreSQL backends: running, waiting for the rollup lock, rows, WAL/IO"
        )
        for n in counts:
            f = results[n][name]
            verdict = ""
            if n == 2:
                verdict = f"goal >= {GOAL} {'PASS' if ratios[n][name] >= GOAL else 'FAIL'}"
            print(
                f"    {n:>7} {f['events_per_s']:>9,.0f} {ratios[n][name]:>5.2f} | {'':15} "
                f"{f['servers_ms']:>7.2f} {f['postgres_ms']:>8.2f} {f['client_ms']:>6.2f} | "
                f"{'':6} {f['lakelens_cores']:>4.2f} {f['machine_busy_cores']:>7.2f} | "
                f"{'':18} {f['servers_ceiling']:>7,.0f} {f['machine_ceiling']:>7,.0f} | "
                f"{'':8}{f['writer_busy']:>7.0%} {f['requests_per_transaction']:>12.1f} | "
                + " ".join(f"{f['backends_' + name]:.2f}" for name in Waits.NAMES)
                + f"  {verdict}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
