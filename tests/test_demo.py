"""`lakelens demo` and `run_demo()`: a seeded, simulated day of the glucose pipeline."""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import lakelens
from lakelens.cli.main import app
from lakelens.demo import DemoResult, run_demo
from lakelens.errors import LakelensError

TIMEOUT = "Connection timeout after 30s"
EXPECTED_ASSETS = {
    "nightscout_api": "external",
    "dlt_glucose_entries": "table",
    "stg_glucose_entries": "model",
    "fct_glucose_readings": "model",
    "mrt_glucose_readings": "model",
    "publish_glucose_marts": "asset",
    "superset_glucose_dashboard": "dashboard",
    "fct_daily_glucose_metrics": "model",
    "mrt_glucose_hourly_patterns": "model",
}
EXPECTED_EDGES = {
    ("nightscout_api", "dlt_glucose_entries"),
    ("dlt_glucose_entries", "stg_glucose_entries"),
    ("stg_glucose_entries", "fct_glucose_readings"),
    ("fct_glucose_readings", "mrt_glucose_readings"),
    ("mrt_glucose_readings", "publish_glucose_marts"),
    ("publish_glucose_marts", "superset_glucose_dashboard"),
    ("fct_glucose_readings", "fct_daily_glucose_metrics"),
    ("fct_daily_glucose_metrics", "mrt_glucose_hourly_patterns"),
}
EVERY_RUN = (
    "dlt_glucose_entries",
    "stg_glucose_entries",
    "fct_glucose_readings",
    "mrt_glucose_readings",
    "publish_glucose_marts",
    "fct_daily_glucose_metrics",
)
CHECKS = {
    "glucose_range_check",
    "no_duplicates",
    "validation_pass_rate",
    "glucose_freshness_check",
    "statistical_bounds_check",
}

runner = CliRunner()


def _clean_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    for key in list(os.environ):
        if key.startswith("LAKELENS_") and not key.startswith("LAKELENS_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.delenv("LOG_CORRELATION_ID", raising=False)
    monkeypatch.setenv("LAKELENS_HOME", str(home / "default-home"))


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoResult, Path]]:
    """One recorded day (288 runs, seed 42), shared by the read-only tests of this module."""
    home = tmp_path_factory.mktemp("demo-day")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _clean_env(monkeypatch, home)
        result = run_demo(home, runs=288, seed=42)
    yield result, home / "lakelens.db"


def rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as con:
        return con.execute(sql, params).fetchall()


def test_demo_records_the_assets_and_lineage_of_the_glucose_pipeline(day) -> None:
    _, db = day
    assert dict(rows(db, "SELECT name, kind FROM assets")) == EXPECTED_ASSETS
    edges = rows(db, "SELECT upstream, downstream, source FROM lineage_edges")
    assert {(up, down) for up, down, _ in edges} == EXPECTED_EDGES
    assert {source for *_, source in edges} == {"sdk"}
    owners = dict(rows(db, "SELECT name, owner FROM assets"))
    assert owners["dlt_glucose_entries"] == "data-platform"
    freshness = dict(rows(db, "SELECT name, freshness_seconds FROM assets"))
    assert freshness["dlt_glucose_entries"] == 7200


def test_the_dashboard_reports_its_views_as_downstream_usage(day) -> None:
    """The seeds' "Superset Dashboard (Glucose Monitoring) → 450 views/day": the demo's
    dashboard reports its views, more in daytime, and they count for the mart it reads."""
    _, db = day
    ((views,),) = rows(
        db,
        "SELECT sum(count) FROM asset_usage WHERE asset = 'superset_glucose_dashboard' "
        "AND kind = 'view'",
    )
    assert 400 <= views <= 500


def test_metrics_asset_shows_the_dashboards_views_as_about_450_a_day(day) -> None:
    """The day's views (24 hours and a bit before `now`) read as ~450/day on the asset the
    dashboard reads, not as half that (a reader new in the window once divided by 2 days)."""
    _, db = day
    ((views,),) = rows(
        db, "SELECT sum(count) FROM asset_usage WHERE asset = 'superset_glucose_dashboard'"
    )
    home = ["--home", str(db.parent)]
    result = runner.invoke(app, ["metrics", "asset", "publish_glucose_marts", "--json", *home])
    assert result.exit_code == 0, result.output
    usage = json.loads(result.output)["usage"]
    (reader,) = [r for r in usage["readers"] if r["kind"] == "dashboard"]
    assert reader["via"] == "superset_glucose_dashboard"
    assert reader["per_day"] == pytest.approx(views, rel=0.03)
    assert usage["views_per_day"] == pytest.approx(views, rel=0.03)
    text = runner.invoke(app, ["metrics", "asset", "publish_glucose_marts", *home])
    assert text.exit_code == 0, text.output
    assert f"{reader['per_day']:,.0f} views/day" in text.output


def test_demo_records_288_runs_every_5_minutes_ending_now(day) -> None:
    result, db = day
    runs = rows(db, "SELECT job, status, start_time, end_time, partition FROM runs ORDER BY 3")
    assert len(runs) == result.runs == 288
    assert {job for job, *_ in runs} == {"glucose_pipeline"}
    assert result.until % 300 == 0 and result.until - result.since == 86400
    assert result.until <= time.time() < result.until + 300 + 60
    for index, (_, status, start, end, partition) in enumerate(runs):
        slot = result.since + index * 300
        assert slot <= start < end < slot + 300, index
        assert status in ("success", "failure")
        assert partition == datetime.fromtimestamp(slot, timezone.utc).strftime("%Y-%m-%dT%H:%M")


def test_a_few_runs_fail_with_an_api_timeout_and_skip_downstream_assets(day) -> None:
    result, db = day
    failed = rows(
        db, "SELECT run_id, error_type, error_message FROM runs WHERE status != 'success'"
    )
    assert 0 < len(failed) < 10
    assert result.failures == len(failed) and result.errors == {TIMEOUT: len(failed)}
    assert {(kind, message) for _, kind, message in failed} == {("NightscoutTimeout", TIMEOUT)}
    for run_id, *_ in failed:
        mats = rows(
            db,
            "SELECT asset, status, error_message, end_time - start_time "
            "FROM materializations WHERE run_id = ?",
            run_id,
        )
        assert [m[:3] for m in mats] == [("dlt_glucose_entries", "failure", TIMEOUT)]
        assert 30 <= mats[0][3] < 60  # a 30s timeout, then two retries
        logs = rows(db, "SELECT level, message FROM logs WHERE run_id = ? ORDER BY id", run_id)
        assert [m for level, m in logs if level == 30] == [
            "Connection timeout after 30s; retrying in 5s",
            "Connection refused to nightscout.api; retrying in 10s",
        ]
        errors = [m for level, m in logs if level == 40]
        assert errors[:2] == ["Connection refused to nightscout.api", "Retry 3/3 failed, aborting"]
        assert any(TIMEOUT in m for m in errors[2:])
        attempts = rows(
            db, "SELECT status FROM spans WHERE run_id = ? AND name = 'http.request'", run_id
        )
        assert attempts == [("error",)] * 3


def test_successful_runs_materialize_every_asset_with_realistic_numbers(day) -> None:
    _, db = day
    mats = rows(
        db,
        "SELECT m.asset, m.duration, m.rows, m.bytes, m.inserts, m.updates, m.cpu_seconds, "
        "m.peak_memory_bytes FROM materializations m JOIN runs r USING (run_id) "
        "WHERE r.status = 'success'",
    )
    by_asset: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for asset, *values in mats:
        by_asset[asset].append(values)
    successes = rows(db, "SELECT count(*) FROM runs WHERE status = 'success'")[0][0]
    for asset in EVERY_RUN:
        assert len(by_asset[asset]) == successes, asset
    statuses = [s for (s,) in rows(db, "SELECT status FROM runs ORDER BY start_time")]
    hourly = [s for s in statuses[::12] if s == "success"]  # the first run of each hour
    assert len(by_asset["mrt_glucose_hourly_patterns"]) == len(hourly) >= 22
    typical_ms = {
        "dlt_glucose_entries": (120, 190),
        "stg_glucose_entries": (35, 60),
        "fct_glucose_readings": (260, 390),
        "mrt_glucose_readings": (70, 105),
        "fct_daily_glucose_metrics": (45, 80),
        "mrt_glucose_hourly_patterns": (80, 140),
    }
    for asset, (low, high) in typical_ms.items():
        median = statistics.median(d for d, *_ in by_asset[asset]) * 1000
        assert low < median < high, (asset, median)
    publish = [d for d, *_ in by_asset["publish_glucose_marts"]]
    assert 0.45 < statistics.median(publish) < 0.56
    slow = [d for d in publish if d > 1.0]
    assert 20 <= len(slow) <= 24  # a two-hour slow period at ~1.2s
    dlt = by_asset["dlt_glucose_entries"]
    assert 470 < statistics.mean(r for _, r, *_ in dlt) < 505
    for duration, n, size, inserts, updates, cpu, memory in dlt:
        assert inserts == n and 0 <= updates <= 3
        assert 300 * n < size < 500 * n
        assert 0 < cpu < duration and 100 * 2**20 < memory < 400 * 2**20


def test_checks_spans_logs_metrics_and_schema_are_recorded(day) -> None:
    _, db = day
    checks = rows(db, "SELECT name, passed, severity FROM check_results")
    assert {name for name, *_ in checks} == CHECKS
    failed = [(name, severity) for name, passed, severity in checks if not passed]
    assert 0 < len(failed) < 10
    assert set(failed) == {("statistical_bounds_check", "warning")}

    run_id = rows(db, "SELECT run_id FROM runs WHERE status = 'success' ORDER BY start_time")[0][0]
    spans = rows(
        db,
        "SELECT span_id, parent_id, name, end_time - start_time FROM spans WHERE run_id = ?",
        run_id,
    )
    by_id = {span_id: (parent, name, duration) for span_id, parent, name, duration in spans}
    parent_of = {name: by_id[parent][1] if parent else None for _, parent, name, _ in spans}
    assert parent_of["dlt_glucose_entries"] is None
    for child, parent in {
        "fetch_from_api": "dlt_glucose_entries",
        "http.request": "fetch_from_api",
        "pandera_validation": "dlt_glucose_entries",
        "iceberg_merge": "dlt_glucose_entries",
        "read_snapshot": "iceberg_merge",
        "merge_operation": "iceberg_merge",
        "write_metadata": "iceberg_merge",
    }.items():
        assert parent_of[child] == parent, child
    for span_id, (_, name, duration) in by_id.items():
        children = [d for parent, _, d in by_id.values() if parent == span_id]
        assert sum(children) <= duration + 1e-6, name
    root = next(d for _, name, d in by_id.values() if name == "dlt_glucose_entries")
    assert 0.1 < root < 0.25

    logs = rows(db, "SELECT level, message, logger, job FROM logs WHERE run_id = ?", run_id)
    messages = [m for _, m, *_ in logs]
    assert any(m.startswith("Fetched ") and m.endswith(" rows from API") for m in messages)
    assert any(m.startswith("Merged to Iceberg (") for m in messages)
    assert {job for *_, job in logs} == {"glucose_pipeline"}
    assert "glucose_pipeline" in {logger for _, _, logger, _ in logs}
    warnings = rows(db, "SELECT message FROM logs WHERE level = 30")
    assert any(m.endswith("rows with invalid device type") for (m,) in warnings)
    assert any(m.startswith("publish_glucose_marts running slow") for (m,) in warnings)

    latency = rows(db, "SELECT count(*), min(value), max(value) FROM metric_points")
    successes = rows(db, "SELECT count(*) FROM runs WHERE status = 'success'")[0][0]
    assert latency[0][0] == successes and 0.010 < latency[0][1] < latency[0][2] < 0.200  # seconds
    assert rows(db, "SELECT asset FROM schema_snapshots") == [("dlt_glucose_entries",)]


def test_a_day_records_in_well_under_30_seconds(day) -> None:
    result, _ = day
    # The 30-second goal itself is measured by bench/sdk_overhead.py, not asserted here.
    assert result.elapsed_seconds > 0
    assert result.events_written > 10_000


Row = tuple[tuple[Any, ...], tuple[float, ...]]


def _recording(db: Path) -> dict[str, list[Row]]:
    """Every stored event as (exact values, times relative to the first run's start)."""
    time_columns = {
        "runs": ("start_time", "end_time", "partition"),
        "materializations": ("start_time", "end_time", "duration", "partition"),
        "check_results": ("time",),
        "logs": ("time",),
        "spans": ("start_time", "end_time"),
        "metric_points": ("time",),
        "schema_snapshots": ("time",),
        "assets": (
            "updated_at",
            "last_start_time",
            "last_end_time",
            "last_success_time",
            "last_failure_time",
        ),
        "lineage_edges": ("updated_at",),
    }
    orders = {"spans": "trace_id, span_id", "assets": "name", "lineage_edges": "1, 2"}
    recording: dict[str, list[Row]] = {}
    with sqlite3.connect(db) as con:
        t0 = con.execute("SELECT min(start_time) FROM runs").fetchone()[0]
        for table, times in time_columns.items():
            cursor = con.execute(f"SELECT * FROM {table} ORDER BY {orders.get(table, 'rowid')}")
            names = [d[0] for d in cursor.description]
            recording[table] = [
                (
                    tuple(v for n, v in zip(names, row, strict=True) if n not in times),
                    tuple(_relative(v, t0) for n, v in zip(names, row, strict=True) if n in times),
                )
                for row in cursor
            ]
    return recording


def _relative(value: Any, t0: float) -> float:
    if value is None:
        return -1.0
    if isinstance(value, str):  # a partition: the start of the run's slot
        value = datetime.strptime(value, "%Y-%m-%dT%H:%M").replace(tzinfo=timezone.utc).timestamp()
    return float(value) if value < 1e6 else float(value) - t0  # durations stay as they are


def _assert_same(first: dict[str, list[Row]], second: dict[str, list[Row]]) -> None:
    for table, rows_a in first.items():
        rows_b = second[table]
        assert [exact for exact, _ in rows_a] == [exact for exact, _ in rows_b], table
        for (exact, times_a), (_, times_b) in zip(rows_a, rows_b, strict=True):
            # Stored datetimes are rounded to microseconds: allow a few.
            assert times_a == pytest.approx(times_b, abs=5e-6), (table, exact)


def test_the_same_seed_records_the_same_events_and_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_demo(tmp_path / "a", runs=48, seed=7)
    # Recorded three days and 7 minutes later: only the absolute times may differ.
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3 * 86400 + 420)
    second = run_demo(tmp_path / "b", runs=48, seed=7)
    monkeypatch.undo()
    assert second.since - first.since in (3 * 86400 + 300, 3 * 86400 + 600)
    assert first.failures == second.failures > 0
    recording_a = _recording(tmp_path / "a" / "lakelens.db")
    recording_b = _recording(tmp_path / "b" / "lakelens.db")
    assert len(recording_a["logs"]) > 500 and len(recording_a["spans"]) > 500
    _assert_same(recording_a, recording_b)

    other = run_demo(tmp_path / "c", runs=48, seed=8)
    recording_c = _recording(tmp_path / "c" / "lakelens.db")
    ids = {table: [row[0][0] for row in recording_a[table]] for table in ("runs", "spans")}
    assert ids != {t: [row[0][0] for row in recording_c[t]] for t in ids}
    assert other.summary.rows != first.summary.rows


def test_the_demo_leaves_the_sdk_as_it_found_it(tmp_path: Path) -> None:
    from lakelens.config import load_settings
    from lakelens.store import Store

    settings = load_settings(home=str(tmp_path / "mine"), log_format="none")
    store = Store(settings=settings)
    lakelens.configure(settings=settings, store=store)
    try:
        run_demo(tmp_path / "demo", runs=3, seed=1)
        assert "LAKELENS_RUN_ID" not in os.environ
        with lakelens.run("after_the_demo"), lakelens.asset("mine"):
            lakelens.record(rows=1)
        assert lakelens.flush()
    finally:
        lakelens.configure(settings=load_settings(home=str(tmp_path / "after"), log_format="none"))
        store.close()
    mine = rows(tmp_path / "mine" / "lakelens.db", "SELECT job, start_time FROM runs")
    assert [job for job, _ in mine] == ["after_the_demo"]
    assert abs(mine[0][1] - time.time()) < 60  # the real clock is back
    demo_jobs = rows(tmp_path / "demo" / "lakelens.db", "SELECT DISTINCT job FROM runs")
    assert demo_jobs == [("glucose_pipeline",)]


def test_recording_again_replaces_the_previous_demo_and_keeps_other_data(tmp_path: Path) -> None:
    import lakelens.testing

    first = run_demo(tmp_path, runs=4)
    views = "SELECT count(*) FROM asset_usage WHERE asset = 'superset_glucose_dashboard'"
    ((before,),) = rows(tmp_path / "lakelens.db", views)
    with lakelens.testing.recording(tmp_path), lakelens.run("my_job"), lakelens.asset("mine"):
        lakelens.record(rows=1)
    second = run_demo(tmp_path, runs=4)
    assert (first.replaced_previous, second.replaced_previous) == (False, True)
    # The dashboard's views (no run of their own) are replaced too, not added twice.
    assert before > 0 and rows(tmp_path / "lakelens.db", views) == [(before,)]
    db = tmp_path / "lakelens.db"
    assert rows(db, "SELECT job, count(*) FROM runs GROUP BY job ORDER BY job") == [
        ("glucose_pipeline", 4),
        ("my_job", 1),
    ]
    assert rows(db, "SELECT count(*) FROM materializations WHERE asset = 'mine'") == [(1,)]
    assert second.summary.runs.total == 5  # the summary covers the whole store: 4 demo runs + mine


@pytest.mark.parametrize("runs", [0, -1, True, 2.5])
def test_run_demo_rejects_a_bad_number_of_runs(tmp_path: Path, runs: Any) -> None:
    with pytest.raises(LakelensError, match="Invalid runs="):
        run_demo(tmp_path, runs=runs)


def test_run_demo_reports_progress(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    run_demo(tmp_path, runs=5, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(n, 5) for n in range(1, 6)]


def test_cli_demo_prints_where_the_data_is_and_a_summary(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--runs", "12", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    output = result.output
    assert f"{tmp_path / 'lakelens.db'}" in output
    assert "Recorded 12 runs of glucose_pipeline" in output
    assert "Total:     12" in output and "Success:   12 (100.00%)" in output
    for label in ("p50:", "p95:", "p99:", "Rows:", "Bytes:", "Checks:", "Next steps"):
        assert label in output
    assert "Overall status: ✓ HEALTHY" in output  # 12 runs: too short for the closing outage
    assert f"lakelens metrics asset dlt_glucose_entries --home {tmp_path}" in output
    assert rows(tmp_path / "lakelens.db", "SELECT count(*) FROM runs") == [(12,)]


def test_cli_demo_json_is_the_summary(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--runs", "24", "--seed", "3", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    again = runner.invoke(app, ["demo", "--json", "--runs", "24", "--home", str(tmp_path / "j")])
    assert again.exit_code == 0, again.output
    data = json.loads(again.output)
    assert data["location"].endswith(f"{tmp_path / 'j' / 'lakelens.db'}")
    assert data["runs"] == 24 and data["seed"] == 42
    summary = data["summary"]
    assert summary["runs"]["total"] == 24
    assert summary["runs"]["success"] + summary["runs"]["failure"] == 24
    assert set(summary["latency"]) == {"count", "p50", "p95", "p99", "approximate"}
    assert summary["assets"]["total"] == len(EXPECTED_ASSETS)
    assert summary["checks"]["total"] > 0


def test_cli_demo_uses_lakelens_home_by_default(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LAKELENS_HOME", str(tmp_path / "from-env"))
    result = runner.invoke(app, ["demo", "--runs", "2"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-env" / "lakelens.db").exists()


def test_cli_demo_twice_in_the_same_home_replaces_the_recording(tmp_path: Path) -> None:
    assert runner.invoke(app, ["demo", "--runs", "2", "--home", str(tmp_path)]).exit_code == 0
    result = runner.invoke(app, ["demo", "--runs", "2", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Replaced the previous demo recording" in result.output
    assert rows(tmp_path / "lakelens.db", "SELECT count(*) FROM runs") == [(2,)]


def test_the_day_ends_in_an_ongoing_api_outage_that_why_explains(day) -> None:
    from lakelens.cli.main import app as cli

    result, db = day
    statuses = [s for (s,) in rows(db, "SELECT status FROM runs ORDER BY start_time")]
    assert statuses[-3:] == ["failure"] * 3 and result.ongoing_outage
    explained = runner.invoke(cli, ["why", "mrt_glucose_readings", "--home", str(db.parent)])
    assert explained.exit_code == 0, explained.output
    assert "Root cause: upstream dlt_glucose_entries is failing" in explained.output
    assert "NightscoutTimeout: Connection timeout after 30s" in explained.output
    assert "3 failed run(s) in a row" in explained.output


def test_counter_of_errors_matches_runs(day) -> None:
    result, db = day
    statuses = Counter(status for (status,) in rows(db, "SELECT status FROM runs"))
    assert statuses["failure"] == result.failures
    assert result.summary.runs.failure == result.failures
