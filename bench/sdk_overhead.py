"""What the lakelens SDK costs a pipeline, measured against its peers in the same process.

    .venv/bin/python bench/sdk_overhead.py            # full run (about a minute)
    .venv/bin/python bench/sdk_overhead.py --quick    # smoke run (a few seconds)
    .venv/bin/python bench/sdk_overhead.py --json     # machine-readable results

1. Spans: `lakelens.span` inside a run vs the OpenTelemetry SDK (BatchSpanProcessor, no-op exporter).
2. Logs: `lakelens.get_logger` rendering JSON vs plain structlog JSON, both into os.devnull.
3. Storage: records/s through the SDK writer into SQLite vs raw sqlite3.executemany.

Every figure is the median of several repetitions; the peers are measured alternately with
lakelens so that a noisy neighbour slows both.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import lakelens
from lakelens.config import Settings, load_settings
from lakelens.events import LOG_COLUMNS, Batch
from lakelens.store import Store
from lakelens.store.engine import SQLITE_BUSY_TIMEOUT_MS

SPAN_GOAL = 1 / 5  # a lakelens span costs at most a fifth of an OpenTelemetry span
LOG_GOAL = 1.5  # a lakelens log record costs at most 1.5 x a structlog JSON record
THROUGHPUT_GOAL = 0.5  # the writer stores at least half as many rows/s as raw executemany


@dataclass(frozen=True)
class Sizes:
    spans: int
    logs: int
    rows: int
    reps: int


FULL = Sizes(spans=50_000, logs=50_000, rows=100_000, reps=7)
QUICK = Sizes(spans=2_000, logs=2_000, rows=5_000, reps=2)

Sample = dict[str, float]


def now() -> float:
    return time.perf_counter()


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


# -- lakelens setup ---------------------------------------------------------------------------
class GatedStore(Store):
    """A Store whose next write can be held back, so the writer's queue fills while it waits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def hold(self) -> None:
        self.entered.clear()
        self.release.clear()

    def write(self, batch: Batch) -> None:
        if not self.release.is_set():
            self.entered.set()
            self.release.wait()
        super().write(batch)


def settings_for(home: Path, log_format: str) -> Settings:
    # env={}: no LAKELENS_* variable of the calling shell changes what is measured.
    return load_settings(env={}, home=str(home), log_format=log_format)


def use(settings: Settings, store: Store) -> None:
    """Point the SDK at `store` and start its writer thread before anything is timed."""
    lakelens.configure(settings=settings, store=store)
    with lakelens.run("bench-warmup"):
        pass
    flush()


def new_store(template: Path, directory: Path, cls: type[Store] = Store) -> tuple[Settings, Store]:
    """A migrated, empty store: a copy of the template database (so no migration is timed)."""
    directory.mkdir(parents=True)
    shutil.copy(template, directory / "lakelens.db")
    settings = settings_for(directory, "none")
    store = cls(settings=settings)
    store.engine  # noqa: B018 - open it (and check its revision) now
    return settings, store


def make_template(root: Path) -> Path:
    settings = settings_for(root / "template", "none")
    store = Store(settings=settings)
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return root / "template" / "lakelens.db"


def park(root: Path, *stores: Store) -> None:
    """Flush and stop the writer, point the SDK at an unused home, close `stores`."""
    lakelens.configure(settings=settings_for(root / "parked", "none"))
    for store in stores:
        store.close()


def flush() -> None:
    """lakelens.flush(), which must not time out: a timed-out flush would flatter the figures."""
    if not lakelens.flush():
        raise SystemExit(f"lakelens.flush() timed out: {lakelens.stats()}")


def check_nothing_dropped() -> None:
    lost = {kind: count for kind, count in lakelens.stats()["dropped"].items() if count}
    if lost:
        raise SystemExit(f"lakelens dropped events ({lost}): the figures would be too good")


@contextlib.contextmanager
def devnull() -> Iterator[io.TextIOWrapper]:
    with open(os.devnull, "w") as sink:
        yield sink


# -- 1. spans ----------------------------------------------------------------------------------
def lakelens_spans(n: int) -> Sample:
    with lakelens.run("bench-spans"):
        flush()
        gc.collect()
        start = now()
        for _ in range(n):
            with lakelens.span("fetch", endpoint="x") as s:
                s.set("a", 1)
                s.set("b", "x")
        loop = now()
        flush()
        end = now()
    check_nothing_dropped()
    return {"loop_us": (loop - start) / n * 1e6, "total_us": (end - start) / n * 1e6}


class CountingExporter(SpanExporter):
    """Does nothing with the spans but count them (to show that none were dropped)."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def otel_spans(provider: TracerProvider, n: int) -> Sample:
    tracer = provider.get_tracer("bench")
    # The parent plays the role of the lakelens run: both measure child spans of one trace.
    with tracer.start_as_current_span("bench-spans"):
        provider.force_flush()
        gc.collect()
        start = now()
        for _ in range(n):
            with tracer.start_as_current_span("fetch", attributes={"endpoint": "x"}) as s:
                s.set_attribute("a", 1)
                s.set_attribute("b", "x")
        loop = now()
        provider.force_flush()
        end = now()
    return {"loop_us": (loop - start) / n * 1e6, "total_us": (end - start) / n * 1e6}


def bench_spans(root: Path, template: Path, sizes: Sizes) -> dict[str, Any]:
    settings, store = new_store(template, root / "spans")
    use(settings, store)
    exporter = CountingExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    warmup = min(1000, sizes.spans)
    lakelens_spans(warmup)  # not counted
    otel_spans(provider, warmup)
    provider.force_flush()  # exports the warm-up's parent
    exported_before = exporter.exported
    ours: list[Sample] = []
    theirs: list[Sample] = []
    for rep in range(sizes.reps):
        # Alternate who goes first: a noisy neighbour then slows both about equally.
        if rep % 2:
            theirs.append(otel_spans(provider, sizes.spans))
            ours.append(lakelens_spans(sizes.spans))
        else:
            ours.append(lakelens_spans(sizes.spans))
            theirs.append(otel_spans(provider, sizes.spans))
    provider.shutdown()
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT count(*) FROM spans WHERE name = 'fetch'").scalar()
    park(root, store)
    return {
        "n": sizes.spans,
        "lakelens": _columns(ours),
        "otel": _columns(theirs),
        # Every span of the timed loops must have reached its destination.
        "lakelens_stored": stored - warmup,
        "otel_exported": exporter.exported - exported_before - sizes.reps,  # minus the parents
        "expected": sizes.spans * sizes.reps,
    }


def _columns(samples: list[Sample]) -> dict[str, dict[str, float]]:
    return {key: summary([s[key] for s in samples]) for key in samples[0]}


# -- 2. logs -----------------------------------------------------------------------------------
def lakelens_logs(n: int) -> Sample:
    log = lakelens.get_logger("bench")
    with lakelens.run("bench-logs"):
        flush()
        with devnull() as sink, contextlib.redirect_stderr(sink):
            gc.collect()
            start = now()
            for i in range(n):
                log.info("hello", rows=i, asset_name="x")
            loop = now()
            sink.flush()
            flush()
            end = now()
    check_nothing_dropped()
    return {"loop_us": (loop - start) / n * 1e6, "total_us": (end - start) / n * 1e6}


class UnflushedWriteLogger(structlog.WriteLogger):
    """structlog's WriteLogger without its flush after every line (lakelens does not flush)."""

    def msg(self, message: str) -> None:
        self._write(message + "\n")

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def structlog_logs(n: int, logger_class: type[structlog.WriteLogger]) -> Sample:
    with devnull() as sink:
        log = structlog.wrap_logger(
            logger_class(sink),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso"),
                structlog.processors.JSONRenderer(),
            ],
        )
        gc.collect()
        start = now()
        for i in range(n):
            log.info("hello", rows=i, asset_name="x")
        loop = now()
        sink.flush()
        end = now()
    return {"loop_us": (loop - start) / n * 1e6, "total_us": (end - start) / n * 1e6}


def sample_line(emit: Callable[[], None]) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer):
        emit()
    return buffer.getvalue()


def bench_logs(root: Path, template: Path, sizes: Sizes) -> dict[str, Any]:
    json_settings, json_store = new_store(template, root / "logs-json")
    json_settings = json_settings.replace(log_format="json")
    none_settings, none_store = new_store(template, root / "logs-none")
    variants: dict[str, Callable[[int], Sample]] = {
        "lakelens_json": lambda n: (use(json_settings, json_store), lakelens_logs(n))[1],
        "structlog_json": lambda n: structlog_logs(n, structlog.WriteLogger),
        "structlog_json_unflushed": lambda n: structlog_logs(n, UnflushedWriteLogger),
        "lakelens_none": lambda n: (use(none_settings, none_store), lakelens_logs(n))[1],
    }
    for run_variant in variants.values():  # warm-up, not counted
        run_variant(min(1000, sizes.logs))
    samples: dict[str, list[Sample]] = {name: [] for name in variants}
    for rep in range(sizes.reps):
        for name in list(variants) if rep % 2 == 0 else list(reversed(variants)):
            samples[name].append(variants[name](sizes.logs))

    use(json_settings, json_store)
    ours = sample_line(lambda: lakelens.get_logger("bench").info("hello", rows=1, asset_name="x"))
    peer = io.StringIO()
    structlog.wrap_logger(
        structlog.WriteLogger(peer),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
    ).info("hello", rows=1, asset_name="x")
    park(root, json_store, none_store)
    return {
        "n": sizes.logs,
        **{name: _columns(found) for name, found in samples.items()},
        "line_bytes": {"lakelens_json": len(ours), "structlog_json": len(peer.getvalue())},
    }


# -- 3. sustained writes -----------------------------------------------------------------------
def writer_end_to_end(settings: Settings, store: Store, n: int) -> Sample:
    """N records through the logger (log_format none), then flush: the pipeline's view."""
    use(settings, store)
    log = lakelens.get_logger("bench")
    written = lakelens.stats()["written"]
    with lakelens.run("bench-throughput"):
        flush()
        gc.collect()
        start = now()
        for i in range(n):
            log.info("hello", rows=i, asset_name="x")
        loop = now()
        flush()
        end = now()
        committed = lakelens.stats()["written"] - written - 1  # minus the run's start
    check_nothing_dropped()
    if committed != n:
        raise SystemExit(f"the writer stored {committed} of {n} records")
    return {
        "rows_per_s": n / (end - start),
        "producer_us": (loop - start) / n * 1e6,
    }


def writer_drain(settings: Settings, store: GatedStore, n: int) -> Sample:
    """The writer alone: N records queued while it is held, then timed until all are committed."""
    use(settings, store)
    log = lakelens.get_logger("bench")
    store.hold()
    with lakelens.run("bench-drain"):  # the run's start is the batch the writer now holds
        if not store.entered.wait(10):
            raise SystemExit("the writer did not pick up the run's start event")
        for i in range(n):
            log.info("hello", rows=i, asset_name="x")
        written = lakelens.stats()["written"]
        gc.collect()
        start = now()
        store.release.set()
        flush()
        end = now()
        committed = lakelens.stats()["written"] - written - 1
    check_nothing_dropped()
    if committed != n:
        raise SystemExit(f"the writer stored {committed} of {n} records")
    return {"rows_per_s": n / (end - start)}


def raw_executemany(path: Path, rows: list[tuple[Any, ...]], batch_size: int) -> Sample:
    """The ceiling: plain sqlite3, same table, same pragmas, one transaction per batch."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        "temp_store=MEMORY",
        "cache_size=-32000",
    ):
        conn.execute(f"PRAGMA {pragma}")
    sql = (
        f"INSERT INTO logs ({', '.join(LOG_COLUMNS)}) VALUES ({', '.join('?' * len(LOG_COLUMNS))})"
    )
    gc.collect()
    start = now()
    for first in range(0, len(rows), batch_size):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows[first : first + batch_size])
        conn.execute("COMMIT")
    end = now()
    (stored,) = conn.execute("SELECT count(*) FROM logs").fetchone()
    conn.close()
    if stored != len(rows):
        raise SystemExit(f"raw executemany stored {stored} of {len(rows)} rows")
    return {"rows_per_s": len(rows) / (end - start)}


def stored_rows(store: Store) -> list[tuple[Any, ...]]:
    """The log rows exactly as the writer stored them, to insert the same data raw."""
    with store.engine.connect() as conn:
        found = conn.exec_driver_sql(
            f"SELECT {', '.join(LOG_COLUMNS)} FROM logs WHERE message = 'hello' ORDER BY id"
        )
        # Plain tuples, as the writer passes them: sqlite3 binds tuples faster than Row objects.
        return [tuple(row) for row in found]


def bench_throughput(root: Path, template: Path, sizes: Sizes) -> dict[str, Any]:
    batch_size = settings_for(root, "none").batch_size
    # A warm-up through the SDK, not counted, also gives the rows the raw inserts will use.
    settings, store = new_store(template, root / "warmup")
    writer_end_to_end(settings, store, sizes.rows)
    rows = stored_rows(store)
    park(root, store)

    def end_to_end(directory: Path) -> Sample:
        settings, store = new_store(template, directory)
        try:
            return writer_end_to_end(settings, store, sizes.rows)
        finally:
            park(root, store)

    def drain(directory: Path) -> Sample:
        settings, store = new_store(template, directory, GatedStore)
        assert isinstance(store, GatedStore)
        try:
            return writer_drain(settings, store, sizes.rows)
        finally:
            park(root, store)

    def raw(directory: Path) -> Sample:
        directory.mkdir()
        shutil.copy(template, directory / "raw.db")
        return raw_executemany(directory / "raw.db", rows, batch_size)

    variants: dict[str, Callable[[Path], Sample]] = {
        "writer": end_to_end,
        "writer_only": drain,
        "raw": raw,
    }
    samples: dict[str, list[Sample]] = {name: [] for name in variants}
    names = list(variants)
    for rep in range(sizes.reps):
        # The disk stays busy with the previous database's pages for a while and whoever
        # writes next pays for it: start each one with nothing dirty, and rotate the order.
        for name in names[rep % 3 :] + names[: rep % 3]:
            os.sync()
            samples[name].append(variants[name](root / f"{name}-{rep}"))
    return {
        "n": sizes.rows,
        "batch_size": batch_size,
        **{k: _columns(v) for k, v in samples.items()},
    }


# -- report ------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpus": len(usable) if usable else os.cpu_count(),  # what `nproc` prints
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "lakelens": lakelens.__version__,
        "structlog": structlog.__version__,
        "opentelemetry_sdk": metadata.version("opentelemetry-sdk"),
        "sqlite": sqlite3.sqlite_version,
    }


def goals(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spans, logs, store = results["spans"], results["logs"], results["throughput"]

    def ratio(part: dict[str, Any], ours: str, theirs: str, key: str) -> float:
        return float(part[ours][key]["median"] / part[theirs][key]["median"])

    found: dict[str, dict[str, Any]] = {
        "span_main_thread": {
            "ratio": ratio(spans, "lakelens", "otel", "loop_us"),
            "goal": f"<= {SPAN_GOAL:.2f}",
        },
        # Info only: lakelens' figure includes writing the span to SQLite, the peer's exports
        # to a no-op. The goal is what the pipeline pays (main thread); the writer's own
        # throughput has its goal below.
        "span_incl_flush": {
            "ratio": ratio(spans, "lakelens", "otel", "total_us"),
            "goal": "info",
        },
        "log_main_thread": {
            "ratio": ratio(logs, "lakelens_json", "structlog_json", "loop_us"),
            "goal": f"<= {LOG_GOAL}",
        },
        "log_incl_flush": {
            "ratio": ratio(logs, "lakelens_json", "structlog_json", "total_us"),
            "goal": "info",
        },
        "log_vs_unflushed_structlog": {
            "ratio": ratio(logs, "lakelens_json", "structlog_json_unflushed", "loop_us"),
            "goal": "info",
        },
        "writer_end_to_end": {
            "ratio": ratio(store, "writer", "raw", "rows_per_s"),
            "goal": f">= {THROUGHPUT_GOAL}",
        },
        "writer_only": {
            "ratio": ratio(store, "writer_only", "raw", "rows_per_s"),
            "goal": "info",
        },
    }
    for entry in found.values():
        if entry["goal"] != "info":
            op, value = entry["goal"].split()
            met = entry["ratio"] >= float(value) if op == ">=" else entry["ratio"] <= float(value)
            entry["verdict"] = "PASS" if met else "FAIL"
    return found


def fmt(cell: dict[str, float], scale: float = 1.0, digits: int = 2) -> str:
    med, lo, hi = (cell[k] * scale for k in ("median", "min", "max"))
    return f"{med:,.{digits}f}  ({lo:,.{digits}f}–{hi:,.{digits}f})"


def print_report(results: dict[str, Any]) -> None:
    info, spans, logs, store, ratios = (
        results[k] for k in ("machine", "spans", "logs", "throughput", "goals")
    )
    print(
        f"lakelens {info['lakelens']} SDK overhead: {info['cpus']} CPUs ({info['cpu_model']}), "
        f"Python {info['python']}, SQLite {info['sqlite']}, {info['date']}"
    )
    print(f"{results['reps']} repetitions each; median (min–max)\n")

    print(f"1. Spans: enter + exit + 2 attributes, {spans['n']:,} per repetition")
    print(f"   {'':42} {'µs main thread':>26} {'µs incl. flush':>26}")
    for label, key in (
        ("lakelens.span in a run", "lakelens"),
        ("OpenTelemetry SDK (batch, no-op)", "otel"),
    ):
        row = spans[key]
        print(f"   {label:42} {fmt(row['loop_us']):>26} {fmt(row['total_us']):>26}")
    print(
        f"   spans stored by lakelens: {spans['lakelens_stored']:,} of {spans['expected']:,}; "
        f"exported by OpenTelemetry: {spans['otel_exported']:,} of {spans['expected']:,}\n"
    )

    print(f"2. Log records into os.devnull, {logs['n']:,} per repetition")
    print(f"   {'':42} {'µs main thread':>26} {'µs incl. flush':>26}")
    for label, key in (
        ("lakelens get_logger, log_format json", "lakelens_json"),
        ("structlog JSON (WriteLogger)", "structlog_json"),
        ("  info: structlog JSON, no flush per line", "structlog_json_unflushed"),
        ("  info: lakelens, log_format none", "lakelens_none"),
    ):
        row = logs[key]
        print(f"   {label:42} {fmt(row['loop_us']):>26} {fmt(row['total_us']):>26}")
    lines = logs["line_bytes"]
    print(
        f"   bytes per line: lakelens {lines['lakelens_json']}, structlog {lines['structlog_json']}"
        "\n"
    )

    print(
        f"3. Sustained writes into SQLite, {store['n']:,} log records per repetition "
        f"(batches of {store['batch_size']:,})"
    )
    print(f"   {'':42} {'records/s':>26}")
    for label, key in (
        ("lakelens: first record -> flush returns", "writer"),
        ("lakelens writer alone (queue drain)", "writer_only"),
        ("raw sqlite3.executemany", "raw"),
    ):
        print(f"   {label:42} {fmt(store[key]['rows_per_s'], digits=0):>26}")
    producer = store["writer"]["producer_us"]["median"]
    print(f"   (producer loop during the end-to-end run: {producer:.2f} µs per record)\n")

    print("Goals (ratios of medians)")
    labels = {
        "span_main_thread": "span, main thread: lakelens / OTel",
        "span_incl_flush": "span, incl. SQLite write: lakelens / OTel",
        "log_main_thread": "log, main thread: lakelens / structlog",
        "log_incl_flush": "log, incl. SQLite write: lakelens / structlog",
        "log_vs_unflushed_structlog": "log: lakelens / structlog without flush",
        "writer_end_to_end": "writes: lakelens end-to-end / raw",
        "writer_only": "writes: lakelens writer alone / raw",
    }
    for name, label in labels.items():
        entry = ratios[name]
        print(
            f"   {label:42} {entry['ratio']:>8.2f}   goal {entry['goal']:<8}"
            f" {entry.get('verdict', '')}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--reps", type=int, help="repetitions per measurement (default 7, 2 quick)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.reps:
        sizes = Sizes(sizes.spans, sizes.logs, sizes.rows, args.reps)
    for key in ("LAKELENS_RUN_ID", "LOG_CORRELATION_ID", "LAKELENS_JOB"):
        os.environ.pop(key, None)  # never join a run of whatever started us

    with tempfile.TemporaryDirectory(prefix="lakelens-bench-") as tmp:
        root = Path(tmp)
        template = make_template(root)
        started = now()
        results: dict[str, Any] = {"machine": machine(), "reps": sizes.reps, "sizes": asdict(sizes)}
        results["spans"] = bench_spans(root, template, sizes)
        results["logs"] = bench_logs(root, template, sizes)
        results["throughput"] = bench_throughput(root, template, sizes)
        results["seconds"] = now() - started
    results["goals"] = goals(results)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_report(results)
        print(f"\n({results['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
