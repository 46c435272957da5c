"""`lakelens metrics summary|asset|export`: numbers checked against independent SQL."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sqlite3
import subprocess
import time

import pytest
from typer.testing import CliRunner

from lakelens.cli.main import app

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def _linear(values: list[float], q: float) -> float:
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def test_summary_json_matches_independent_sql(pipeline_home) -> None:
    home, _ = pipeline_home
    data = json.loads(
        invoke("metrics", "summary", "--period", "24h", "--json", "--home", str(home)).output
    )
    since = time.time() - 86400
    with sqlite3.connect(home / "lakelens.db") as db:
        statuses = [
            s for (s,) in db.execute("SELECT status FROM runs WHERE start_time >= ?", (since,))
        ]
        durations = [
            d
            for (d,) in db.execute(
                "SELECT end_time - start_time FROM materializations WHERE start_time >= ? AND end_time IS NOT NULL",
                (since,),
            )
        ]
        rows = db.execute(
            "SELECT sum(rows) FROM materializations WHERE start_time >= ?", (since,)
        ).fetchone()[0]
        checks = db.execute(
            "SELECT count(*), sum(passed = 0) FROM check_results WHERE time >= ?", (since,)
        ).fetchone()
    assert data["runs"]["total"] == len(statuses) == 3
    assert data["runs"]["failure"] == statuses.count("failure") == 1
    assert data["runs"]["success_rate"] == pytest.approx(100 * 2 / 3)
    assert data["rows"] == rows == 4 * 487
    assert data["latency"]["count"] == len(durations)
    for key, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert data["latency"][key] == pytest.approx(_linear(durations, q), abs=1e-5)
    assert (data["checks"]["total"], data["checks"]["failed"]) == (checks[0], checks[1]) == (2, 1)
    assert data["failures"] == {"by_error_type": {"ApiTimeout": 1}, "by_asset": {"dlt_entries": 1}}
    assert data["assets"]["failing_assets"] == ["dlt_entries"]
    assert data["status"] == "FAILING" and data["status_reasons"] == [
        "1 asset(s) failing: dlt_entries"
    ]


def test_summary_text_and_status_rule_in_help(pipeline_home) -> None:
    home, _ = pipeline_home
    out = invoke("metrics", "summary", "--home", str(home)).output
    assert "Overall status: ✗ FAILING — 1 asset(s) failing: dlt_entries" in out
    assert "Failure:   1 (33.33%)" in out and "By error:  ApiTimeout ×1" in out
    assert "Rows:      1.9K" in out
    help_text = invoke("metrics", "summary", "--help").output
    assert "FAILING when any asset's latest" in help_text and "DEGRADED" in help_text


def test_status_degraded_and_healthy(tmp_path) -> None:
    import lakelens
    from lakelens.config import load_settings
    from lakelens.testing import FakeClock

    now = time.time()
    clock = FakeClock(now - 7200)
    lakelens.configure(settings=load_settings(home=str(tmp_path), log_format="none"), clock=clock)
    with lakelens.run("job"), lakelens.asset("stale_one", freshness="1h"):
        lakelens.record(rows=1)
    clock.set(now - 60)
    with lakelens.run("job"), lakelens.asset("fresh_one", freshness="1h"):
        lakelens.check("positive", passed=True)
    lakelens.flush()
    lakelens.configure(settings=load_settings(home=str(tmp_path / "x"), log_format="none"))
    data = json.loads(invoke("metrics", "summary", "--json", "--home", str(tmp_path)).output)
    assert data["status"] == "DEGRADED" and data["assets"]["warning_assets"] == ["stale_one"]
    assert data["status_reasons"] == ["1 asset(s) stale or failing checks: stale_one"]
    healthy = json.loads(
        invoke("metrics", "summary", "--json", "--period", "30m", "--home", str(tmp_path)).output
    )
    assert healthy["runs"]["total"] == 1  # the window is 30 minutes; health is as of now
    assert healthy["status"] == "DEGRADED"


def test_summary_on_an_empty_store_and_bad_period(tmp_path) -> None:
    from lakelens.store import Store

    Store(f"sqlite:///{tmp_path / 'lakelens.db'}").engine.dispose()  # an empty store
    assert (
        "No runs recorded yet — try `lakelens demo`."
        in invoke("metrics", "summary", "--home", str(tmp_path)).output
    )
    bad = runner.invoke(
        app, ["metrics", "summary", "--period", "fortnight", "--home", str(tmp_path)]
    )
    assert bad.exit_code == 1 and "Invalid --period 'fortnight'" in bad.output


def test_asset_details_runs_and_checks(pipeline_home) -> None:
    home, info = pipeline_home
    out = invoke("metrics", "asset", "dlt_entries", "--home", str(home)).output
    assert "Metrics for dlt_entries (asset · owner platform)" in out
    assert "Last run status    ✗ failure" in out
    assert "Failure rate       33.33% (1/3)" in out
    assert "Avg rows/run       487" in out
    assert "Lineage            1 upstream · 1 downstream" in out
    assert info["run_ids"][2][:8] in out and "ApiTimeout: Connection timeout after 30s" in out
    assert "range_check" in out and "50.0%" in out and "1/2" in out
    data = json.loads(
        invoke("metrics", "asset", "dlt_entries", "--json", "-n", "2", "--home", str(home)).output
    )
    assert [r["status"] for r in data["runs"]] == ["failure", "success"]
    assert data["failure_rate"] == 50.0 and data["upstream"] == 1
    assert data["stale"] is True  # last success ~2.9h ago, SLA 2h


def test_asset_unknown_name(pipeline_home) -> None:
    home, _ = pipeline_home
    result = runner.invoke(app, ["metrics", "asset", "stg_entrie", "--home", str(home)])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: Unknown asset 'stg_entrie'. Did you mean 'stg_entries'?"


def test_export_json_csv(pipeline_home, tmp_path) -> None:
    home, info = pipeline_home
    data = json.loads(
        invoke(
            "metrics", "export", "--format", "json", "--period", "7d", "--home", str(home)
        ).output
    )
    by_asset = {a["asset"]: a for a in data["assets"]}
    assert by_asset["dlt_entries"]["runs"] == 3 and by_asset["dlt_entries"]["failures"] == 1
    assert by_asset["stg_entries"]["rows"] == 2 * 487
    assert len(data["runs"]) == 5 and {r["run_id"] for r in data["runs"]} == set(info["run_ids"])
    target = tmp_path / "metrics.csv"
    invoke(
        "metrics",
        "export",
        "--format",
        "csv",
        "--period",
        "30d",
        "--output",
        str(target),
        "--home",
        str(home),
    )
    table = list(csv.DictReader(target.open()))
    assert (
        len(table) == 5 and table[0]["asset"] == "dlt_entries" and table[-1]["status"] == "failure"
    )
    per_asset = invoke(
        "metrics", "export", "--format", "csv", "--level", "asset", "--home", str(home)
    ).output
    assert [r["asset"] for r in csv.DictReader(io.StringIO(per_asset))] == [
        "dlt_entries",
        "stg_entries",
    ]
    # Times are ISO 8601 (UTC), rates and seconds at most 4 decimals.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", table[0]["start_time"])
    rates = [r["failure_rate"] for r in csv.DictReader(io.StringIO(per_asset))]
    assert all(len(r.partition(".")[2]) <= 4 for r in rates), rates


def test_export_prometheus_parses_and_passes_promtool(pipeline_home, require_tool) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    promtool = require_tool("promtool", "apt-get install prometheus")
    home, _ = pipeline_home
    text = invoke("metrics", "export", "--format", "prometheus", "--home", str(home)).output
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    assert (
        samples[("asset_executions_total", (("asset_name", "dlt_entries"), ("status", "failure")))]
        == 1
    )
    assert (
        samples[
            (
                "asset_rows_processed_total",
                (("asset_name", "stg_entries"), ("operation", "processed")),
            )
        ]
        == 974
    )
    assert (
        samples[
            (
                "asset_execution_seconds_count",
                (("asset_name", "dlt_entries"), ("status", "success")),
            )
        ]
        == 2
    )
    assert samples[("asset_freshness_sla_seconds", (("asset_name", "dlt_entries"),))] == 7200
    assert (
        samples[
            ("validation_pass_rate", (("asset_name", "dlt_entries"), ("check_name", "range_check")))
        ]
        == 50.0
    )
    assert samples[("asset_failing", (("asset_name", "dlt_entries"),))] == 1
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_label_values_are_escaped(tmp_path, require_tool) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    import lakelens
    from lakelens.config import load_settings

    promtool = require_tool("promtool", "apt-get install prometheus")
    nasty = 'raw."quoted"\\back\nline'
    lakelens.configure(settings=load_settings(home=str(tmp_path), log_format="none"))
    with lakelens.run("job"), lakelens.asset(nasty, freshness="1h"):
        lakelens.check('check "x"', passed=True)
    lakelens.flush()
    lakelens.configure(settings=load_settings(home=str(tmp_path / "x"), log_format="none"))
    text = invoke("metrics", "export", "--format", "prometheus", "--home", str(tmp_path)).output
    names = {
        s.labels.get("asset_name") for f in text_string_to_metric_families(text) for s in f.samples
    }
    assert nasty in names
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_asset_checks_include_results_recorded_by_a_separate_run(tmp_path) -> None:
    """`dbt run` then `dbt test`: the tests' run materializes nothing, its checks still count."""
    import lakelens
    from lakelens.testing import recording

    home = tmp_path / "home"
    with recording(home, log_format="none"):

        @lakelens.asset("orders")
        def build() -> None:
            lakelens.record(rows=10)

        with lakelens.run("dbt_run"):
            build()
        with lakelens.run("dbt_test"):
            lakelens.check("not_null_order_id", passed=False, asset="orders", severity="error")
            lakelens.check("unique_order_id", passed=True, asset="orders")
    data = json.loads(invoke("metrics", "asset", "orders", "--json", "--home", str(home)).output)
    checks = {c["name"]: c for c in data["checks"]}
    assert set(checks) == {"not_null_order_id", "unique_order_id"}
    assert checks["not_null_order_id"]["last_passed"] is False
    assert checks["unique_order_id"]["pass_rate"] == 100.0


def test_metrics_alone_is_the_summary_of_the_last_day(pipeline_home) -> None:
    from typer.testing import CliRunner

    from lakelens.cli.main import app

    home, _ = pipeline_home
    alone = CliRunner().invoke(app, ["metrics", "--home", str(home)])
    assert alone.exit_code == 0, alone.output
    assert "Platform Metrics Summary (last 24h)" in alone.output
    assert "since last" not in alone.output
    full = CliRunner().invoke(app, ["metrics", "summary", "--home", str(home)])
    assert alone.output.splitlines()[:4] == full.output.splitlines()[:4]
