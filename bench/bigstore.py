"""A big synthetic lakelens store for benchmarks: built once, cached, kept ending "now".

The store is created by `Store(url)` (the real schema and migrations), then filled with raw
sqlite3 in big transactions without journal or fsync, indexes dropped during the load and
recreated from their own SQL: setup, not what is measured. The full size holds 1M
materializations of 500 assets over 30 days, their runs and check results, 10M log records,
the assets' lineage and a separate 10,000-node lineage graph; the assets' kept state
columns are computed at the end from the materializations, as migration 0002 does.

A cached store whose data ends more than FRESH_SECONDS ago has every time shifted forward,
so that "the last hour" always holds data. Its tables are also exported once to Parquet.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import shutil
import sqlite3
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lakelens.events import LOG_COLUMNS
from lakelens.store import Store, log_search
from lakelens.store.schema import HEAD_REVISION

__all__ = ["DAY", "EXPORTED", "FULL", "QUICK", "Sizes", "prepare", "say"]

FRESH_SECONDS = 600  # a cached store whose data ends longer ago than this is shifted to now
BUILD_VERSION = 2  # bump when the generated data changes: cached stores are then rebuilt
DAY = 86_400.0


@dataclass(frozen=True)
class Sizes:
    assets: int
    materializations: int
    logs: int
    lineage_nodes: int
    days: int


FULL = Sizes(assets=500, materializations=1_000_000, logs=10_000_000, lineage_nodes=10_000, days=30)
QUICK = Sizes(assets=100, materializations=20_000, logs=200_000, lineage_nodes=1_000, days=30)


def say(message: str) -> None:
    """Progress, on stderr so that --json output stays clean."""
    print(message, file=sys.stderr, flush=True)


# -- the synthetic platform ----------------------------------------------------------------------
LAYERS = {"raw": "bronze", "stg": "silver", "int": "silver", "fct": "gold", "mrt": "mart"}
DOMAINS = ("orders", "customers", "payments", "shipments", "inventory", "sessions", "clicks")
DOMAINS += ("campaigns", "tickets", "devices", "glucose", "trips", "ledger", "forecasts")
ENTITIES = ("daily", "hourly", "events", "snapshot", "history", "summary", "latest", "dedup")
TEAMS = ("team-core", "team-growth", "team-finance", "team-ops", "team-ml", "team-platform")
# Seconds between runs, before scaling so that the jobs produce the wanted materializations.
PERIODS = (300, 600, 900, 1800, 3600, 3600, 3 * 3600, 6 * 3600, DAY)
ERRORS = (
    ("TimeoutError", "Read timed out after 30s waiting for warehouse.internal"),
    ("ConnectionRefusedError", "Connection refused by warehouse.internal:5432"),
    ("SchemaMismatchError", "Column 'amount' changed type from DECIMAL(18,2) to VARCHAR"),
    ("DbtRuntimeError", "Database Error in model {asset}: division by zero"),
    ("PermissionError", "Access Denied: s3://lake/{asset}/ (403)"),
    ("MemoryError", "Worker exceeded its memory limit of 8 GiB"),
    ("DataQualityError", "{asset}: 1,204 rows failed not_null(customer_id)"),
)
CHECKS = ("not_null_id", "unique_id", "row_count_min", "freshness", "accepted_values", "range")


@dataclass
class AssetSpec:
    name: str
    job: int
    median_seconds: float
    median_rows: float
    row_bytes: int
    failure_rate: float
    checks: tuple[str, ...]


@dataclass
class JobSpec:
    name: str
    assets: list[int]
    period: float
    phase: float


def new_id(rng: random.Random) -> str:
    """A UUID4-shaped id, like the SDK's."""
    text = f"{rng.getrandbits(128):032x}"
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-{text[16:20]}-{text[20:]}"


def platform_specs(rng: random.Random, sizes: Sizes) -> tuple[list[AssetSpec], list[JobSpec]]:
    """Assets in jobs of 1-9; schedules scaled so that `days` hold the wanted materializations."""
    jobs: list[JobSpec] = []
    while (first := sum(len(j.assets) for j in jobs)) < sizes.assets:
        count = min(rng.randint(1, 9), sizes.assets - first)
        name = f"{rng.choice(DOMAINS)}_pipeline_{len(jobs)}"
        period = float(rng.choice(PERIODS))
        jobs.append(JobSpec(name, list(range(first, first + count)), period, rng.uniform(0, 300)))
    jobs[0].period = 300.0  # the busiest job (every 5 minutes) holds the "busy" asset
    span = sizes.days * DAY
    # Failures cut runs short (what follows a failed step is skipped): aim 1% high.
    wanted = sizes.materializations * 1.01
    for _ in range(20):  # scale all but the first job, never below every 5 minutes
        expected = sum(len(j.assets) * span / j.period for j in jobs)
        if abs(expected / wanted - 1) < 0.001:
            break
        for job in jobs[1:]:
            job.period = max(300.0, job.period * expected / wanted)
    assets: list[AssetSpec] = []
    names: set[str] = set()
    for job_index, job in enumerate(jobs):
        budget = 0.4 * job.period / len(job.assets)  # a run ends well before the next one
        for _ in job.assets:
            name = f"{rng.choice(list(LAYERS))}_{rng.choice(DOMAINS)}_{rng.choice(ENTITIES)}"
            if name in names:
                name = f"{name}_{len(assets)}"
            names.add(name)
            flaky = rng.random() < 0.03
            assets.append(
                AssetSpec(
                    name=name,
                    job=job_index,
                    median_seconds=min(budget, rng.lognormvariate(math.log(20), 1.2)),
                    median_rows=rng.lognormvariate(math.log(50_000), 2.0),
                    row_bytes=rng.randint(60, 1200),
                    failure_rate=rng.uniform(0.1, 0.3) if flaky else rng.uniform(0.002, 0.02),
                    checks=tuple(rng.sample(CHECKS, rng.choice((0, 1, 1, 2)))),
                )
            )
    return assets, jobs


@dataclass(slots=True)
class PlannedMat:
    asset: int
    start: float
    end: float | None  # None: still running when the data ends
    status: str
    error: int  # index into ERRORS, -1 when none


@dataclass(slots=True)
class PlannedRun:
    job: int
    start: float
    mats: list[PlannedMat]
    complete: bool = True  # False: steps after the last one had not started yet

    @property
    def status(self) -> str:
        if self.mats[-1].status == "failure":
            return "failure"
        return "success" if self.end is not None else "started"

    @property
    def end(self) -> float | None:
        last = self.mats[-1]
        return last.end if last.status == "failure" or self.complete else None


def plan_runs(
    rng: random.Random, assets: list[AssetSpec], jobs: list[JobSpec], sizes: Sizes, now: float
) -> list[PlannedRun]:
    """Runs from newest to oldest until exactly `sizes.materializations`; returned oldest first."""
    starts: list[tuple[float, int]] = []
    first = now - sizes.days * DAY * 1.2  # a margin: planning stops at the wanted count
    for index, job in enumerate(jobs):
        count = int((now - first - job.phase) // job.period) + 1
        starts.extend((first + job.phase + k * job.period, index) for k in range(count))
    starts.sort(reverse=True)
    planned: list[PlannedRun] = []
    total = 0
    for scheduled, job_index in starts:
        start = scheduled + rng.uniform(0, 20)  # scheduler jitter
        if start >= now:
            continue
        run = PlannedRun(job_index, start, [])
        clock = start + rng.uniform(0.2, 2.0)
        for asset_index in jobs[job_index].assets:
            spec = assets[asset_index]
            end = clock + spec.median_seconds * rng.lognormvariate(0, 0.35)
            if clock >= now or end > now:
                if clock < now:
                    run.mats.append(PlannedMat(asset_index, clock, None, "started", -1))
                run.complete = False
                break
            failed = rng.random() < spec.failure_rate
            error = rng.randrange(len(ERRORS)) if failed else -1
            status = "failure" if failed else "success"
            run.mats.append(PlannedMat(asset_index, clock, end, status, error))
            if failed:
                break  # the orchestrator skips what depends on a failed step
            clock = end + rng.uniform(0.05, 1.0)
        if not run.mats:
            continue
        del run.mats[sizes.materializations - total :]
        planned.append(run)
        total += len(run.mats)
        if total == sizes.materializations:
            break
    if total < sizes.materializations:
        raise SystemExit(f"planned only {total:,} materializations; widen the schedule margin")
    planned.reverse()
    return planned


def lineage_graph(
    rng: random.Random, nodes: int, start: float
) -> tuple[str, list[dict[str, Any]], list[tuple[str, str]]]:
    """A 12-layer DAG of `nodes` assets under one root: every node is reachable from it."""
    weights = (1, 5, 20, 60, 150, 300, 600, 1000, 1500, 2000, 2200, 2164)
    counts = [max(1, round(w * nodes / sum(weights))) for w in weights]
    counts[0] = 1
    counts[-1] += nodes - sum(counts)
    kinds = ("source", "raw", "raw", "stg", "stg", "int", "int", "fct", "fct", "mart", "mart")
    layers: list[list[str]] = []
    rows: list[dict[str, Any]] = []
    for depth, count in enumerate(counts):
        names = []
        for i in range(count):
            layer = kinds[depth] if depth < len(kinds) else "bi"
            kind = "source" if depth == 0 else "asset" if layer != "bi" else "dashboard"
            if kind == "dashboard" and i % 10 == 0:
                kind = "external"
            name = f"lg.{layer}.{rng.choice(DOMAINS)}_{rng.choice(ENTITIES)}_{depth}_{i:05d}"
            names.append(name)
            rows.append(
                {
                    "name": name,
                    "kind": kind,
                    "owner": rng.choice(TEAMS),
                    "layer": layer,
                    "group_name": "lineage-10k",
                    "tags": '{"publishing":"true"}' if kind == "asset" and i % 50 == 0 else None,
                    "updated_at": start,
                }
            )
        layers.append(names)
    edges: set[tuple[str, str]] = set()
    for depth in range(1, len(layers)):
        for name in layers[depth]:
            edges.add((rng.choice(layers[depth - 1]), name))  # reachable from the root
            for _ in range(rng.choice((0, 1, 1, 2))):
                edges.add((rng.choice(layers[rng.randrange(depth)]), name))
    return layers[0][0], rows, sorted(edges)


def platform_rows(
    rng: random.Random, assets: list[AssetSpec], jobs: list[JobSpec], start: float
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The assets' registry rows and a DAG: each job a chain, plus reads of earlier jobs."""
    rows = []
    for index, spec in enumerate(assets):
        job = jobs[spec.job]
        layer, domain = spec.name.split("_")[:2]
        rows.append(
            {
                "name": spec.name,
                "kind": "table",
                "owner": rng.choice(TEAMS),
                "layer": LAYERS[layer],
                "group_name": job.name,
                "description": f"{layer} model of {domain}, part of {job.name}",
                "freshness_seconds": 3 * job.period if index % 3 else None,
                "availability_target": 0.99 if index % 4 == 0 else None,
                "expected_rows": int(spec.median_rows),
                "critical": int(index % 10 == 0),
                "tags": json.dumps({"domain": domain}),
                "updated_at": start,
            }
        )
    edges: set[tuple[str, str]] = set()
    for job_index, job in enumerate(jobs):
        names = [assets[i].name for i in job.assets]
        edges.update(itertools.pairwise(names))
        for _ in range(rng.randint(1, 3) if job_index else 0):
            other = jobs[rng.randrange(job_index)]
            edges.add((assets[rng.choice(other.assets)].name, rng.choice(names)))
    return rows, sorted(edges)


class LogBudget:
    """Log records per materialization, spread so that the total is exactly the target."""

    def __init__(self, total: int, mats: int) -> None:
        self.base, self.extra = divmod(total, mats)
        self.mats = mats
        self.seen = 0

    def next(self) -> int:
        i, self.seen = self.seen, self.seen + 1
        return self.base + (i + 1) * self.extra // self.mats - i * self.extra // self.mats


@dataclass
class Rows:
    """What one batch of planned runs becomes."""

    runs: list[dict[str, Any]]
    materializations: list[dict[str, Any]]
    check_results: list[dict[str, Any]]
    logs: list[tuple[Any, ...]]


class LogRows:
    """Appends log rows (in LOG_COLUMNS order) for the run and span currently set on it."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.run_id = self.job = self.trace_id = self.span_id = ""

    def __call__(
        self, t: float, level: int, text: str, asset: str | None = None, **fields: Any
    ) -> None:
        logger = self.job if level == 30 else "lakelens"
        attributes = json.dumps(fields) if fields else None
        self.rows.append(
            (
                t,
                level,
                text,
                logger,
                self.run_id,
                asset,
                self.job,
                self.trace_id,
                self.span_id or None,
                attributes,
            )
        )


def rows_of(
    rng: random.Random,
    planned: Sequence[PlannedRun],
    assets: list[AssetSpec],
    jobs: list[JobSpec],
    budget: LogBudget,
    now: float,
) -> Rows:
    out = Rows([], [], [], [])
    log = LogRows(out.logs)
    for run in planned:
        job = jobs[run.job]
        run_id = new_id(rng)
        trace_id = run_id.replace("-", "")
        stamp = datetime.fromtimestamp(run.start, timezone.utc).isoformat()
        partition = stamp[:10] if job.period >= DAY / 2 else stamp[:16]
        failed = run.mats[-1] if run.status == "failure" else None
        error_type, message, traceback = error_of(failed, assets, job)

        log.run_id, log.job, log.trace_id, log.span_id = run_id, job.name, trace_id, None
        log(run.start, 20, f"run of {job.name} started")
        if run.end is not None and failed:
            log(run.end, 40, f"run of {job.name} failed: {message}", error_type=error_type)
        elif run.end is not None:
            log(run.end, 20, f"run of {job.name} succeeded")
        out.runs.append(
            {
                "run_id": run_id,
                "job": job.name,
                "status": run.status,
                "start_time": run.start,
                "end_time": run.end,
                "partition": partition,
                "trigger": "schedule",
                "tags": json.dumps({"schedule": f"every {job.period:.0f}s"}),
                "correlation_id": run_id,
                "trace_id": trace_id,
                "error_type": error_type,
                "error_message": message,
                "error_traceback": traceback,
            }
        )
        for mat in run.mats:
            spec = assets[mat.asset]
            log.span_id = f"{rng.getrandbits(64):016x}"
            rows = int(spec.median_rows * rng.lognormvariate(0, 0.25))
            done = mat.status == "success"
            duration = None if mat.end is None else mat.end - mat.start
            out.materializations.append(
                {
                    "id": new_id(rng),
                    "run_id": run_id,
                    "asset": spec.name,
                    "status": mat.status,
                    "start_time": mat.start,
                    "end_time": mat.end,
                    "duration": duration,
                    "partition": partition,
                    "rows": rows if done else 0 if mat.status == "failure" else None,
                    "bytes": rows * spec.row_bytes if done else None,
                    "inserts": rows if done else None,
                    "updates": rows // 20 if done else None,
                    "cpu_seconds": duration and duration * rng.uniform(0.2, 0.9),
                    "peak_memory_bytes": int(rng.lognormvariate(math.log(300e6), 0.6)),
                    "error_type": error_type if mat is failed else None,
                    "error_message": message if mat is failed else None,
                    "error_traceback": traceback if mat is failed else None,
                }
            )
            for name in spec.checks if done else ():
                passed = rng.random() >= (0.1 if spec.failure_rate > 0.05 else 0.02)
                bad = 0 if passed else rng.randint(1, max(1, rows // 100))
                out.check_results.append(
                    {
                        "id": new_id(rng),
                        "run_id": run_id,
                        "asset": spec.name,
                        "name": name,
                        "passed": int(passed),
                        "severity": "error" if name.endswith("_id") else "warning",
                        "time": mat.end,
                        "value": float(bad),
                        "threshold": 0.0,
                        "valid_rows": rows - bad,
                        "total_rows": rows,
                        "message": None if passed else f"{bad:,} rows failed {name}",
                    }
                )
            # The materialization's records: started, progress (mostly INFO), outcome.
            count = budget.next()
            stop = now if mat.end is None else mat.end
            step = (stop - mat.start) / max(1, count - 1)
            log(mat.start, 20, f"{spec.name} started", spec.name)
            for i in range(1, count if mat.end is None else count - 1):
                t, roll = mat.start + i * step, rng.random()
                if roll < 0.03:
                    log(t, 10, f"query plan for {spec.name}: 4 stages", spec.name)
                elif roll < 0.07:
                    log(t, 30, f"slow query on {spec.name}; retrying", spec.name, attempt=i)
                elif roll < 0.075:
                    text = f"could not send lineage for {spec.name}; continuing"
                    log(t, 40, text, spec.name, error_type="HTTPError")
                elif roll < 0.4:
                    log(t, 20, f"fetched page {i}", spec.name, rows=rows // count)
                else:
                    log(t, 20, f"merged batch {i} into {spec.name}", spec.name)
            if mat is failed:
                log(stop, 40, f"{spec.name} failed: {message}", spec.name, error_type=error_type)
            elif mat.end is not None:
                log(stop, 20, f"{spec.name} materialized: {rows:,} rows", spec.name, rows=rows)
    # Log ids follow time, as in a live store (the runs of a batch overlap in time).
    out.logs.sort(key=lambda row: row[0])
    return out


def error_of(
    failed: PlannedMat | None, assets: list[AssetSpec], job: JobSpec
) -> tuple[str | None, str | None, str | None]:
    """(type, message, traceback) of a failed step, or Nones."""
    if failed is None:
        return None, None, None
    kind, template = ERRORS[failed.error]
    message = template.format(asset=assets[failed.asset].name)
    traceback = (
        "Traceback (most recent call last):\n"
        f'  File "pipelines/{job.name}.py", line 88, in run\n    step()\n{kind}: {message}\n'
    )
    return kind, message, traceback


# -- building the store --------------------------------------------------------------------------
# The backfill of migration 0002 (src/lakelens/store/migrations/versions/0002_asset_state.py)
# with one change: `+status`, so that SQLite looks rows up by ix_mat_asset_start. As written,
# the statements pick ix_mat_status_start and read every success once per asset (hours here).
ASSET_STATE_SQL = (
    """
    UPDATE assets SET
      last_status = (SELECT m.status FROM materializations m
                     WHERE m.asset = assets.name AND +m.status IN ('success', 'failure')
                     ORDER BY m.start_time DESC LIMIT 1),
      last_start_time = (SELECT max(m.start_time) FROM materializations m
                         WHERE m.asset = assets.name AND +m.status IN ('success', 'failure')),
      last_success_time = (SELECT max(m.end_time) FROM materializations m
                           WHERE m.asset = assets.name AND +m.status = 'success'),
      last_failure_time = (SELECT max(m.end_time) FROM materializations m
                           WHERE m.asset = assets.name AND +m.status = 'failure')
    """,
    """
    UPDATE assets SET
      last_end_time = (SELECT m.end_time FROM materializations m
                       WHERE m.asset = assets.name AND m.start_time = assets.last_start_time
                       ORDER BY m.end_time DESC LIMIT 1),
      last_run_id = (SELECT m.run_id FROM materializations m
                     WHERE m.asset = assets.name AND m.start_time = assets.last_start_time
                     ORDER BY m.end_time DESC LIMIT 1),
      failure_streak = (SELECT count(*) FROM materializations m
                        WHERE m.asset = assets.name AND +m.status = 'failure'
                          AND m.start_time > coalesce(
                            (SELECT max(s.start_time) FROM materializations s
                             WHERE s.asset = assets.name AND +s.status = 'success'), -1))
    WHERE last_start_time IS NOT NULL
    """,
)
BIG_TABLES = ("logs", "materializations", "check_results", "runs")


def insert(conn: sqlite3.Connection, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Append dict rows (columns from the first row); the schema's defaults fill the rest."""
    if rows:
        names = list(rows[0])
        marks = ", ".join(f":{n}" for n in names)
        conn.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", rows)


def big_indexes(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(name, CREATE INDEX sql) of the indexes on the big tables, as the migrations made them."""
    marks = ", ".join("?" * len(BIG_TABLES))
    return conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        f"AND tbl_name IN ({marks}) ORDER BY name",
        BIG_TABLES,
    ).fetchall()


def bulk_connection(path: Path) -> sqlite3.Connection:
    """Setup, not what is measured: no journal, no fsync, a 2 GB page cache."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")  # leave WAL: OFF is refused while in WAL
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-2000000"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("PRAGMA temp_store=MEMORY")
    return conn


def build(path: Path, sizes: Sizes, seed: int = 7) -> dict[str, Any]:
    """Create the store at `path` and fill it; returns what the timings need to know about it."""
    started = time.perf_counter()
    now = time.time()
    rng = random.Random(seed)
    shutil.rmtree(path.parent, ignore_errors=True)
    store = Store(f"sqlite:///{path}")
    store.engine  # noqa: B018 - creates the schema through the real migrations
    store.close()

    conn = bulk_connection(path)
    # Bulk loads are faster into bare tables: drop the indexes, recreate them from their own SQL.
    indexes = big_indexes(conn)
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")

    say(f"planning {sizes.materializations:,} materializations of {sizes.assets} assets ...")
    assets, jobs = platform_specs(rng, sizes)
    runs = plan_runs(rng, assets, jobs, sizes, now)
    first_time = runs[0].start
    registry, edges = platform_rows(rng, assets, jobs, first_time)
    root, graph_assets, graph_edges = lineage_graph(rng, sizes.lineage_nodes, first_time)
    conn.execute("BEGIN")
    insert(conn, "assets", registry)
    insert(conn, "assets", graph_assets)
    insert(
        conn,
        "lineage_edges",
        [
            {"upstream": u, "downstream": d, "source": "sdk", "updated_at": first_time}
            for u, d in edges + graph_edges
        ],
    )
    conn.execute("COMMIT")

    run_logs = sum(1 if r.end is None else 2 for r in runs)
    budget = LogBudget(sizes.logs - run_logs, sizes.materializations)
    say(f"writing {len(runs):,} runs and their materializations, checks and logs ...")
    counts = dict.fromkeys(("runs", "materializations", "check_results", "logs"), 0)
    failed_runs: list[str] = []
    log_sql = f"INSERT INTO logs ({', '.join(LOG_COLUMNS)}) VALUES ({', '.join('?' * 10)})"
    for batch, first in enumerate(range(0, len(runs), 5_000)):
        rows = rows_of(rng, runs[first : first + 5_000], assets, jobs, budget, now)
        conn.execute("BEGIN")
        insert(conn, "runs", rows.runs)
        insert(conn, "materializations", rows.materializations)
        insert(conn, "check_results", rows.check_results)
        conn.executemany(log_sql, rows.logs)
        conn.execute("COMMIT")
        failed_runs.extend(r["run_id"] for r in rows.runs if r["status"] == "failure")
        for key in counts:
            counts[key] += len(getattr(rows, key))
        if batch % 10 == 9 or first + 5_000 >= len(runs):
            say(
                f"  {counts['materializations']:>10,} materializations {counts['logs']:>12,} logs"
                f"  ({time.perf_counter() - started:.0f} s)"
            )
    if counts["logs"] != sizes.logs:
        raise SystemExit(f"wrote {counts['logs']:,} logs instead of {sizes.logs:,}")

    say(f"creating the {len(indexes)} indexes of the big tables ...")
    for name, sql in indexes:
        step = time.perf_counter()
        conn.execute(sql)
        say(f"  {name} ({time.perf_counter() - step:.0f} s)")
    # The search index's insert trigger only fires below its position (0 here): index the
    # bulk-loaded logs at once, as migration 0014 does for a store it upgrades.
    say("indexing the logs' text for --grep ...")
    step = time.perf_counter()
    for sql in log_search.REBUILD_SQLITE:
        conn.execute(sql)
    say(f"  {log_search.SQLITE_TABLE} ({time.perf_counter() - step:.0f} s)")
    say("computing the assets' kept state (as migration 0002 does) ...")
    conn.execute("BEGIN")
    for sql in ASSET_STATE_SQL:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")  # as lakelens itself leaves the file
    conn.close()

    busy = jobs[0].assets[0]
    recent = failed_runs[-200:]  # a failed run of the last hours: whose logs someone opens
    return {
        "version": BUILD_VERSION,
        "sizes": asdict(sizes),
        "counts": counts
        | {
            "assets": len(registry) + len(graph_assets),
            "lineage_edges": len(edges) + len(graph_edges),
            "failed_materializations": sum(
                1 for r in runs for m in r.mats if m.status == "failure"
            ),
        },
        "data_start": first_time,
        "data_end": now,
        "busy_asset": assets[busy].name,
        "busy_asset_materializations": sum(1 for r in runs for m in r.mats if m.asset == busy),
        "run_id": recent[len(recent) // 2],
        "lineage_root": root,
        "lineage_root_downstream": sizes.lineage_nodes - 1,
        "build_seconds": time.perf_counter() - started,
        "file_bytes": path.stat().st_size,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# -- keeping the cache current -------------------------------------------------------------------
TIME_COLUMNS = {
    "runs": ("start_time", "end_time"),
    "materializations": ("start_time", "end_time"),
    "check_results": ("time",),
    "logs": ("time",),
    "lineage_edges": ("updated_at",),
    "assets": ("updated_at", "last_start_time", "last_end_time"),
}
TIME_COLUMNS["assets"] += ("last_success_time", "last_failure_time")


def shift_to_now(path: Path, info: dict[str, Any]) -> float:
    """Move every time forward so that the data ends now; returns the seconds it took."""
    started = time.perf_counter()
    delta = time.time() - info["data_end"]
    conn = bulk_connection(path)
    # Indexes on a time column are dropped and rebuilt: cheaper than 10M moves in each.
    timed = [(n, sql) for n, sql in big_indexes(conn) if "time" in sql]
    conn.execute("BEGIN")
    for name, _ in timed:
        conn.execute(f"DROP INDEX {name}")
    for table, columns in TIME_COLUMNS.items():
        sets = ", ".join(f"{c} = {c} + ?" for c in columns)
        conn.execute(f"UPDATE {table} SET {sets}", [delta] * len(columns))
    for _, sql in timed:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    info["data_end"] += delta
    info["data_start"] += delta
    info["parquet_offset"] = info.get("parquet_offset", 0.0) + delta
    return time.perf_counter() - started


def current_revision(path: Path) -> str | None:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    finally:
        conn.close()


# -- Parquet export for DuckDB -------------------------------------------------------------------
EXPORTED = ("runs", "materializations", "check_results", "logs", "assets", "lineage_edges")


def export_parquet(path: Path, target: Path) -> float:
    """Each table to one Parquet file, with types from the store's declared column types."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    started = time.perf_counter()
    target.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    for table in EXPORTED:
        columns = conn.execute(f"PRAGMA table_info({table})").fetchall()
        fields = []
        for _, name, declared, *_ in columns:
            kind = declared.upper()
            if "INT" in kind or "BOOL" in kind:
                fields.append(pa.field(name, pa.int64()))
            elif any(word in kind for word in ("DOUBLE", "FLOAT", "REAL")):
                fields.append(pa.field(name, pa.float64()))
            else:
                fields.append(pa.field(name, pa.string()))
        schema = pa.schema(fields)
        cursor = conn.execute(f"SELECT * FROM {table} ORDER BY rowid")
        with pq.ParquetWriter(target / f"{table}.parquet", schema) as writer:
            while rows := cursor.fetchmany(250_000):
                arrays = [
                    pa.array(values, type=f.type)
                    for values, f in zip(zip(*rows, strict=True), fields, strict=True)
                ]
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
        say(f"  {table}.parquet ({time.perf_counter() - started:.0f} s)")
    conn.close()
    return time.perf_counter() - started


# -- the cache -----------------------------------------------------------------------------------
def prepare(data: Path, sizes: Sizes, rebuild: bool) -> tuple[dict[str, Any], float | None]:
    """The cached store under `data` (built when missing, stale or asked), shifted to now."""
    db, meta = data / "home" / "lakelens.db", data / "store.json"
    info: dict[str, Any] | None = None
    if not rebuild and db.exists() and meta.exists():
        info = json.loads(meta.read_text())
        if info.get("version") != BUILD_VERSION or info.get("sizes") != asdict(sizes):
            info = None
        elif info.get("shifting"):
            say("the last shift of the cached store was interrupted: rebuilding it")
            info = None
    shifted = None
    if info is None:
        meta.unlink(missing_ok=True)
        say(f"building the store at {db} ...")
        info = build(db, sizes)
        shutil.rmtree(data / "parquet", ignore_errors=True)
        say(f"built in {info['build_seconds']:.0f} s: {info['file_bytes'] / 1e9:.2f} GB")
    elif time.time() - info["data_end"] > FRESH_SECONDS:
        say("shifting the cached store's times forward to now ...")
        meta.write_text(json.dumps(info | {"shifting": True}, indent=2))
        shifted = shift_to_now(db, info)
        say(f"shifted in {shifted:.0f} s")
    meta.write_text(json.dumps(info, indent=2))
    # lakelens would migrate the store on first open: do it here, untimed, and say so.
    revision = current_revision(db)
    if revision != HEAD_REVISION:
        say(f"upgrading the cached store from revision {revision} to {HEAD_REVISION} ...")
        Store(f"sqlite:///{db}").upgrade()
        info["migrated"] = f"{revision} -> {HEAD_REVISION}"
        meta.write_text(json.dumps(info, indent=2))
    if not (data / "parquet" / "done").exists():
        say("exporting the tables to Parquet for DuckDB ...")
        info["parquet_seconds"] = export_parquet(db, data / "parquet")
        info["parquet_offset"] = 0.0
        (data / "parquet" / "done").touch()
        meta.write_text(json.dumps(info, indent=2))
    return info, shifted
