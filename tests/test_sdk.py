"""The SDK records runs, materializations, checks, spans and logs, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest

import lakelens
from lakelens.store import reads


class ApiTimeout(Exception):
    pass


def _pipeline(fail: bool) -> None:
    log = lakelens.get_logger("glucose")

    @lakelens.asset(
        "dlt_glucose_entries", deps=["nightscout_api"], freshness="2h", owner="data-platform"
    )
    def load() -> None:
        with lakelens.span("fetch_from_api", endpoint="/api/v1/entries") as fetch:
            with lakelens.span("http.request"):
                log.info("requesting entries", attempt=1)
            if fail:
                raise ApiTimeout("Connection timeout after 30s")
            fetch.set("rows_fetched", 487)
        log.warning("2 rows with invalid device type", invalid_rows=2)
        lakelens.check(
            "glucose_range_check",
            passed=True,
            severity="error",
            value=0.0,
            threshold=0.0,
            valid_rows=487,
            total_rows=487,
        )
        lakelens.record(rows=487, bytes=48_700, inserts=487, updates=2)

    @lakelens.asset("stg_glucose_entries", deps=["dlt_glucose_entries"], kind="model")
    def stage() -> None:
        lakelens.record(rows=487)

    with lakelens.run("daily_glucose_pipeline", partition="2024-10-15"):
        load()
        stage()


def test_successful_run_records_everything(sdk) -> None:
    _pipeline(fail=False)
    assert lakelens.flush()
    with sdk.connect() as conn:
        (run,) = reads.runs(conn)
        mats = {m.asset: m for m in reads.materializations(conn)}
        checks = reads.check_results(conn)
        spans = reads.spans(conn, run_id=run.run_id)
        logs = reads.logs(conn, run_id=run.run_id)
        edges = {(e.upstream, e.downstream) for e in reads.lineage_edges(conn)}
        assets = {a.name: a for a in reads.assets(conn)}

    assert (
        run.status == "success"
        and run.job == "daily_glucose_pipeline"
        and run.partition == "2024-10-15"
    )
    assert run.end_time is not None and run.end_time >= run.start_time
    load = mats["dlt_glucose_entries"]
    assert (load.status, load.rows, load.bytes, load.inserts, load.updates) == (
        "success",
        487,
        48_700,
        487,
        2,
    )
    assert load.cpu_seconds is not None and load.cpu_seconds >= 0
    assert load.peak_memory_bytes and load.peak_memory_bytes > 1_000_000
    assert load.partition == "2024-10-15" and load.run_id == run.run_id
    assert mats["stg_glucose_entries"].status == "success"
    assert [(c.name, c.passed, c.severity, c.valid_rows, c.asset) for c in checks] == [
        ("glucose_range_check", True, "error", 487, "dlt_glucose_entries")
    ]
    assert assets["dlt_glucose_entries"].freshness_seconds == 7200
    assert assets["dlt_glucose_entries"].owner == "data-platform"
    assert assets["stg_glucose_entries"].kind == "model"
    assert edges == {
        ("nightscout_api", "dlt_glucose_entries"),
        ("dlt_glucose_entries", "stg_glucose_entries"),
    }

    by_name = {s.name: s for s in spans}
    root, fetch, http = (
        by_name["dlt_glucose_entries"],
        by_name["fetch_from_api"],
        by_name["http.request"],
    )
    assert (
        root.parent_id is None
        and fetch.parent_id == root.span_id
        and http.parent_id == fetch.span_id
    )
    assert {s.trace_id for s in spans} == {run.trace_id} and run.trace_id == run.run_id.replace(
        "-", ""
    )
    assert fetch.attributes == {"endpoint": "/api/v1/entries", "rows_fetched": 487}
    assert all(s.status == "ok" and s.end_time >= s.start_time for s in spans)

    requesting = next(rec for rec in logs if rec.message == "requesting entries")
    assert requesting.span_id == http.span_id and requesting.trace_id == run.trace_id
    assert requesting.asset == "dlt_glucose_entries" and requesting.job == "daily_glucose_pipeline"
    assert requesting.attributes == {"attempt": 1} and requesting.logger == "glucose"
    warning = next(rec for rec in logs if rec.level == logging.WARNING)
    assert (
        warning.message == "2 rows with invalid device type"
        and warning.attributes["invalid_rows"] == 2
    )


def test_failing_run_keeps_traceback_and_exception_propagates(sdk) -> None:
    with pytest.raises(ApiTimeout, match="Connection timeout after 30s"):
        _pipeline(fail=True)
    lakelens.flush()
    with sdk.connect() as conn:
        (run,) = reads.runs(conn)
        mats = reads.materializations(conn)
        spans = {s.name: s for s in reads.spans(conn)}
        errors = [rec for rec in reads.logs(conn) if rec.level >= logging.ERROR]
    assert run.status == "failure"
    assert run.error_type == "ApiTimeout" and run.error_message == "Connection timeout after 30s"
    assert (
        "Traceback (most recent call last)" in run.error_traceback
        and "raise ApiTimeout" in run.error_traceback
    )
    (load,) = mats  # the downstream asset never ran
    assert load.status == "failure" and load.error_type == "ApiTimeout"
    assert "raise ApiTimeout" in load.error_traceback and load.end_time is not None
    assert (
        spans["fetch_from_api"].status == "error"
        and "Connection timeout" in spans["fetch_from_api"].error_message
    )
    assert spans["http.request"].status == "ok"
    assert any(
        rec.asset == "dlt_glucose_entries" and "Connection timeout" in rec.message for rec in errors
    )


def test_asset_outside_a_run_gets_an_implicit_run(sdk) -> None:
    with lakelens.asset("orphan_table") as mat:
        mat.record(rows=5)
    lakelens.flush()
    with sdk.connect() as conn:
        (run,) = reads.runs(conn)
        (mat_row,) = reads.materializations(conn)
    assert run.job == "orphan_table" and run.status == "success" and run.trigger == "implicit"
    assert mat_row.run_id == run.run_id and mat_row.rows == 5


def test_stdlib_logging_inside_a_run_is_captured(sdk) -> None:
    std = logging.getLogger("third_party.loader")
    std.setLevel(logging.INFO)
    with lakelens.run("job") as run, lakelens.asset("table_a"):
        std.info("loaded %d rows", 12, extra={"table": "a"})
    std.warning("outside any run")  # not ours to store
    lakelens.flush()
    with sdk.connect() as conn:
        records = [rec for rec in reads.logs(conn) if rec.logger == "third_party.loader"]
    assert [(r.message, r.run_id, r.asset, r.attributes.get("table")) for r in records] == [
        ("loaded 12 rows", run.run_id, "table_a", "a")
    ]


def test_metrics_and_schema_are_stored(sdk) -> None:
    with lakelens.run("job"), lakelens.asset("table_a"):
        lakelens.metric("queue_size", 42, kind="gauge", queue="articles")
        lakelens.metric("articles_total", 3, kind="counter")
        first = lakelens.schema({"id": "int", "value": "float"})
        second = lakelens.schema([("id", "int"), ("value", "float")])
    with lakelens.run("job"), lakelens.asset("table_a"):
        third = lakelens.schema({"id": "int", "value": "double"})
    lakelens.flush()
    assert first == second != third
    import sqlalchemy as sa

    from lakelens.store import schema

    with sdk.connect() as conn:
        points = (
            conn.execute(sa.select(schema.metric_points).order_by(schema.metric_points.c.id))
            .mappings()
            .all()
        )
        snapshots = reads.schema_snapshots(conn, asset="table_a")
    assert [(p["name"], p["kind"], p["value"], p["asset"]) for p in points] == [
        ("queue_size", "gauge", 42.0, "table_a"),
        ("articles_total", "counter", 3.0, "table_a"),
    ]
    assert '"queue":"articles"' in points[0]["labels"]
    # An unchanged schema is stored once; a changed type is a new snapshot.
    assert [s.columns for s in snapshots] == [
        [("id", "int"), ("value", "float")],
        [("id", "int"), ("value", "double")],
    ]


def test_child_process_joins_the_run(sdk, tmp_path) -> None:
    child = textwrap.dedent(
        """
        import sys, lakelens
        lakelens.configure(database_url=sys.argv[1], log_format="none")
        log = lakelens.get_logger("child")
        log.info("hello from the child")
        with lakelens.run("ignored_job_name"):
            with lakelens.asset("child_asset"):
                lakelens.record(rows=3)
        lakelens.flush()
        """
    )
    with lakelens.run("parent_job") as run:
        env = dict(os.environ)
        assert env["LAKELENS_RUN_ID"] == run.run_id == env["LOG_CORRELATION_ID"]
        subprocess.run([sys.executable, "-c", child, sdk.url], check=True, env=env, timeout=60)
    assert "LAKELENS_RUN_ID" not in os.environ
    lakelens.flush()
    with sdk.connect() as conn:
        runs = reads.runs(conn)
        (mat,) = reads.materializations(conn)
        (record,) = [r for r in reads.logs(conn) if r.logger == "child"]
    assert [r.run_id for r in runs] == [run.run_id] and runs[0].status == "success"
    assert mat.run_id == run.run_id and mat.asset == "child_asset"
    assert (
        record.run_id == run.run_id
        and record.job == "parent_job"
        and record.trace_id == run.trace_id
    )


def test_log_records_are_printed_as_json_lines_for_loki(sdk, capsys) -> None:
    import json

    lakelens.configure(settings=sdk.settings.replace(log_format="json"), store=sdk)
    log = lakelens.get_logger("glucose")
    with lakelens.run("job") as run, lakelens.asset("table_a"):
        log.info("Fetched rows", rows=487)
        log.debug("below the level: neither printed nor stored")
    lakelens.flush()
    lines = [
        json.loads(line)
        for line in capsys.readouterr().err.splitlines()
        if '"Fetched rows"' in line
    ]
    assert len(lines) == 1
    line = lines[0]
    assert line["event"] == "Fetched rows" and line["level"] == "info" and line["rows"] == 487
    assert (
        line["run_id"] == run.run_id and line["asset"] == "table_a" and line["logger"] == "glucose"
    )
    assert (
        line["timestamp"].endswith("+00:00")
        and len(line["span_id"]) == 16
        and len(line["trace_id"]) == 32
    )
    with sdk.connect() as conn:
        assert not [r for r in reads.logs(conn) if "below the level" in r.message]


def test_exception_logs_keep_the_traceback(sdk) -> None:
    log = lakelens.get_logger("glucose")
    with lakelens.run("job"):
        try:
            raise KeyError("device")
        except KeyError:
            log.exception("lookup failed", device="x")
    lakelens.flush()
    with sdk.connect() as conn:
        (record,) = [r for r in reads.logs(conn) if r.message == "lookup failed"]
    assert record.level == 40 and "KeyError: 'device'" in record.attributes["exception"]
    assert record.attributes["device"] == "x"
