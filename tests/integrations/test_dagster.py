"""Real Dagster runs (in-process, ephemeral instance) recorded in lakelens by record_run and the sensor."""

# No `from __future__ import annotations`: Dagster reads the context and config annotations.
import json
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import lakelens
from lakelens.cli.main import app
from lakelens.config import load_settings
from lakelens.errors import StoreError
from lakelens.store import Store, reads

try:
    import dagster as dg
except ImportError:
    if os.environ.get("LAKELENS_TEST_STRICT") == "1":
        raise
    pytest.skip(
        "Dagster is not installed (pip install 'lakelens[dagster]')", allow_module_level=True
    )

from lakelens.integrations.dagster import (
    lakelens_run,
    lakelens_sensor,
    observe,
    record_run,
)

PARTITION = "2024-10-15"
SEEN_IN_OP: dict[str, Any] = {}


# -- the code location ----------------------------------------------------------------------


@dg.asset(
    key_prefix="raw",
    owners=["team:data-platform"],
    group_name="ingest",
    description="Orders fetched from the shop API.",
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=2)),
)
def orders(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    context.log.info("fetched 42 orders from the shop API")
    with lakelens_run(context):
        SEEN_IN_OP["env_run_id"] = os.environ.get("LAKELENS_RUN_ID")
        SEEN_IN_OP["dbt_env"] = os.environ.get("DBT_ENV_CUSTOM_ENV_LAKELENS_RUN_ID")
        lakelens.get_logger("shop").info("lakelens SDK line inside the op")
        with lakelens.span("fetch orders"):
            logging.getLogger("shop.api").warning("stdlib line inside the op")
    return dg.MaterializeResult(metadata={"dagster/row_count": 42, "api_seconds": 1.5, "note": "x"})


class CleanConfig(dg.Config):
    fail: bool = False


@dg.asset(
    deps=[orders],
    check_specs=[dg.AssetCheckSpec("no_null_ids", asset="clean_orders")],
)
def clean_orders(context: dg.AssetExecutionContext, config: CleanConfig) -> Iterator[Any]:
    if config.fail:
        raise ValueError("clean_orders exploded: 3 orders have no customer")
    yield dg.MaterializeResult(metadata={"rows": 40})
    yield dg.AssetCheckResult(
        passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={"value": 2, "threshold": 0}
    )


@dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2024-10-01"), deps=[clean_orders])
def daily_revenue(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    context.log.warning(f"summing partition {context.partition_key}")
    return dg.MaterializeResult(metadata={"dagster/row_count": 7})


@dg.asset_check(asset=orders, blocking=False)
def orders_have_ids(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, severity=dg.AssetCheckSeverity.ERROR)


with warnings.catch_warnings():
    # Superseded by FreshnessPolicy in Dagster 1.11+, still common: both become the SLA.
    warnings.simplefilter("ignore")
    FRESHNESS_CHECKS = dg.build_last_update_freshness_checks(
        assets=[clean_orders], lower_bound_delta=timedelta(hours=3)
    )
DEFS = dg.Definitions(
    assets=[orders, clean_orders, daily_revenue],
    asset_checks=[orders_have_ids, *FRESHNESS_CHECKS],
)
ALL = [orders, clean_orders, daily_revenue, orders_have_ids]


def _materialize(instance: Any, *, fail: bool) -> str:
    config = {"ops": {"clean_orders": {"config": {"fail": fail}}}}
    result = dg.materialize(
        ALL, instance=instance, partition_key=PARTITION, run_config=config, raise_on_error=False
    )
    assert result.success is not fail
    return str(result.run_id)


@pytest.fixture(scope="module")
def dagster_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One successful and one failed run on one ephemeral instance, shared by the module.

    The SDK (used inside `orders` through lakelens_run) records into its own store.
    """
    sdk_home = tmp_path_factory.mktemp("sdk")
    saved = lakelens.sdk._runtime.RT.save()
    lakelens.configure(settings=load_settings(home=str(sdk_home), log_format="none"))
    instance = dg.DagsterInstance.ephemeral()
    try:
        ok = _materialize(instance, fail=False)
        failed = _materialize(instance, fail=True)
        assert lakelens.flush()
        yield {"instance": instance, "ok": ok, "failed": failed, "sdk_home": sdk_home}
    finally:
        lakelens.sdk._runtime.RT.restore(saved)
        instance.dispose()


def _store_at(home: Path) -> Store:
    return Store(settings=load_settings(home=str(home)))


def _contents(store: Store) -> dict[str, Any]:
    with store.connect() as conn:
        return {
            "runs": {r.run_id: r for r in reads.runs(conn)},
            "mats": reads.materializations(conn),
            "checks": reads.check_results(conn),
            "logs": reads.logs(conn),
            "edges": {(e.upstream, e.downstream, e.source) for e in reads.lineage_edges(conn)},
            "assets": {a.name: a for a in reads.assets(conn)},
        }


# -- record_run -----------------------------------------------------------------------------


def test_record_run_stores_runs_materializations_checks_lineage_and_logs(
    dagster_runs: dict[str, Any], store_url: str
) -> None:
    instance, ok, failed = dagster_runs["instance"], dagster_runs["ok"], dagster_runs["failed"]
    store = Store(store_url)
    first = record_run(instance, ok, defs=DEFS, store=store)
    second = record_run(instance, failed, store=store)
    assert (first.status, first.written, first.materializations, first.checks) == (
        "success",
        True,
        3,
        2,
    )
    assert (second.status, second.written) == ("failure", True)
    data = _contents(store)
    store.close()

    # Runs: the Dagster run id is the lakelens run id.
    assert set(data["runs"]) == {ok, failed}
    run_ok, run_failed = data["runs"][ok], data["runs"][failed]
    assert (run_ok.status, run_ok.job, run_ok.partition) == (
        "success",
        "__ephemeral_asset_job__",
        PARTITION,
    )
    assert run_ok.start_time is not None and run_ok.end_time >= run_ok.start_time
    assert run_ok.correlation_id == ok and run_ok.trigger == "manual"
    assert run_failed.status == "failure" and run_failed.error_type == "ValueError"
    assert "3 orders have no customer" in run_failed.error_message
    assert "raise ValueError" in run_failed.error_traceback

    # Materializations: rows from dagster/row_count or rows, numeric metadata, duration, partition.
    mats = {(m.run_id, m.asset): m for m in data["mats"]}
    raw = mats[(ok, "raw.orders")]
    assert (raw.status, raw.rows, raw.partition) == ("success", 42, None)
    assert raw.attributes["api_seconds"] == 1.5 and "note" not in raw.attributes
    assert raw.duration_seconds is not None and raw.duration_seconds >= 0
    assert mats[(ok, "clean_orders")].rows == 40
    revenue = mats[(ok, "daily_revenue")]
    assert (revenue.status, revenue.rows, revenue.partition) == ("success", 7, PARTITION)

    # The failure: the step's error with its stack trace; downstream skipped.
    boom = mats[(failed, "clean_orders")]
    assert (boom.status, boom.error_type) == ("failure", "ValueError")
    assert boom.error_message == "clean_orders exploded: 3 orders have no customer"
    assert "Traceback" in boom.error_traceback and "raise ValueError" in boom.error_traceback
    assert mats[(failed, "daily_revenue")].status == "skipped"
    assert mats[(failed, "raw.orders")].status == "success"

    # Checks with severity: WARN → warning, ERROR → error.
    checks = {(c.run_id, c.asset, c.name): c for c in data["checks"]}
    nulls = checks[(ok, "clean_orders", "no_null_ids")]
    assert (nulls.passed, nulls.severity, nulls.value, nulls.threshold) == (False, "warning", 2, 0)
    ids = checks[(ok, "raw.orders", "orders_have_ids")]
    assert (ids.passed, ids.severity) == (True, "error")
    assert (failed, "raw.orders", "orders_have_ids") in checks

    # The asset graph: lineage (source dagster), owner, group, freshness SLAs.
    assert {
        ("raw.orders", "clean_orders", "dagster"),
        ("clean_orders", "daily_revenue", "dagster"),
    } <= data["edges"]
    raw_asset, clean = data["assets"]["raw.orders"], data["assets"]["clean_orders"]
    assert raw_asset.freshness_seconds == 7200  # FreshnessPolicy.time_window(2h)
    assert clean.freshness_seconds == 10800  # build_last_update_freshness_checks(3h)
    assert (raw_asset.owner, raw_asset.group) == ("team:data-platform", "ingest")
    assert raw_asset.description == "Orders fetched from the shop API."

    # Logs: engine events and context.log lines, correlated by run id and asset.
    logs = data["logs"]
    user = [r for r in logs if r.message == "fetched 42 orders from the shop API"]
    assert len(user) == 2  # one per run
    assert {r.run_id for r in user} == {ok, failed}
    assert all(r.asset == "raw.orders" and r.level == 20 for r in user)
    assert all(r.trace_id == lakelens.sdk._runtime.trace_id_for(r.run_id) for r in user)
    partition_line = next(r for r in logs if r.message.startswith("summing partition"))
    assert (partition_line.asset, partition_line.level) == ("daily_revenue", 30)
    step_failure = next(r for r in logs if r.attributes.get("dagster/event_type") == "STEP_FAILURE")
    assert step_failure.run_id == failed and step_failure.asset == "clean_orders"
    assert step_failure.level == 40 and "3 orders have no customer" in step_failure.message
    assert "raise ValueError" in step_failure.attributes["exception"]
    engine = {r.attributes.get("dagster/event_type") for r in logs if r.run_id == ok}
    assert {"STEP_START", "STEP_SUCCESS", "ASSET_MATERIALIZATION", "PIPELINE_SUCCESS"} <= engine


def test_recording_a_run_again_writes_nothing_new(
    dagster_runs: dict[str, Any], tmp_path: Path
) -> None:
    instance, ok = dagster_runs["instance"], dagster_runs["ok"]
    store = _store_at(tmp_path)
    assert record_run(instance, ok, defs=DEFS, store=store).written
    before = _contents(store)
    again = record_run(instance, ok, defs=DEFS, store=store)
    after = _contents(store)
    store.close()
    assert not again.written and again.logs == 0
    assert len(after["logs"]) == len(before["logs"]) > 20
    assert len(after["mats"]) == len(before["mats"]) == 3
    assert len(after["checks"]) == len(before["checks"]) == 2
    assert after["runs"].keys() == before["runs"].keys() == {ok}


def test_cli_shows_the_recorded_dagster_runs(dagster_runs: dict[str, Any], tmp_path: Path) -> None:
    instance = dagster_runs["instance"]
    store = _store_at(tmp_path)
    for run_id in (dagster_runs["ok"], dagster_runs["failed"]):
        record_run(instance, run_id, defs=DEFS, store=store)
    store.close()
    runner = CliRunner()

    result = runner.invoke(app, ["metrics", "asset", "clean_orders", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "no_null_ids" in result.output and "ValueError" in result.output
    assert "40" in result.output

    result = runner.invoke(
        app, ["metrics", "asset", "clean_orders", "--json", "--home", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["freshness_seconds"] == 10800 and data["failure_rate"] == 50.0
    assert [r["status"] for r in data["runs"]] == ["failure", "success"]
    assert data["checks"][0]["severity"] == "warning"

    result = runner.invoke(app, ["lineage", "impact", "raw.orders", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "clean_orders" in result.output and "daily_revenue" in result.output


# -- correlation ----------------------------------------------------------------------------


def test_sdk_code_inside_an_op_records_under_the_dagster_run_id(
    dagster_runs: dict[str, Any],
) -> None:
    ok, failed = dagster_runs["ok"], dagster_runs["failed"]
    # The last run to execute `orders`; child processes (dbt, dlt) inherit the variables.
    assert SEEN_IN_OP["env_run_id"] == SEEN_IN_OP["dbt_env"] == failed
    assert os.environ.get("LAKELENS_RUN_ID") is None  # restored after the block
    store = _store_at(dagster_runs["sdk_home"])
    with store.connect() as conn:
        lines = [r for r in reads.logs(conn) if r.message == "lakelens SDK line inside the op"]
        stdlib_lines = [r for r in reads.logs(conn) if r.message == "stdlib line inside the op"]
        spans = reads.spans(conn)
        runs = reads.runs(conn)
    store.close()
    assert {r.run_id for r in lines} == {ok, failed}
    assert all(r.job == "__ephemeral_asset_job__" for r in lines)
    # They name the asset the op computes, as do spans and stdlib records in the block.
    assert {r.asset for r in lines} == {"raw.orders"}
    assert {(r.asset, r.run_id) for r in stdlib_lines} == {
        ("raw.orders", ok),
        ("raw.orders", failed),
    }
    assert {(s.name, s.asset) for s in spans} == {("fetch orders", "raw.orders")}
    # The SDK joined Dagster's run: it did not record a run of its own.
    assert runs == []
    # Once the sensor has recorded the Dagster runs, `logs --asset` finds the SDK's lines.
    store = _store_at(dagster_runs["sdk_home"])
    record_run(dagster_runs["instance"], ok, defs=DEFS, store=store)
    store.close()
    found = CliRunner().invoke(
        app, ["logs", "--asset", "raw.orders", "--home", str(dagster_runs["sdk_home"])]
    )
    assert found.exit_code == 0, found.output
    assert found.output.count("lakelens SDK line inside the op") == 2
    assert found.output.count("stdlib line inside the op") == 2


# -- the sensor -----------------------------------------------------------------------------


def test_observe_adds_a_sensor_that_records_once_and_keeps_its_cursor(
    dagster_runs: dict[str, Any], tmp_path: Path
) -> None:
    instance = dagster_runs["instance"]
    store = _store_at(tmp_path)
    defs = observe(DEFS, store=store)
    sensor = defs.resolve_sensor_def("lakelens")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING

    first = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    assert "Recorded 2 Dagster run(s)" in first.skip_reason.skip_message
    assert first.cursor is not None
    recorded = _contents(store)
    assert set(recorded["runs"]) == {dagster_runs["ok"], dagster_runs["failed"]}
    assert ("raw.orders", "clean_orders", "dagster") in recorded["edges"]

    second = sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert "Recorded 0 Dagster run(s)" in second.skip_reason.skip_message
    assert second.cursor == first.cursor
    # From the start again (a lost cursor): the claims keep everything single.
    again = sensor(dg.build_sensor_context(instance=instance))
    assert "Recorded 0 Dagster run(s)" in again.skip_reason.skip_message
    assert len(_contents(store)["logs"]) == len(recorded["logs"])
    store.close()


def test_sensor_keeps_its_cursor_while_the_store_is_unavailable(
    dagster_runs: dict[str, Any], tmp_path: Path
) -> None:
    instance = dagster_runs["instance"]
    blocker = tmp_path / "home"
    blocker.write_text("a file where the store directory should be")
    store = _store_at(blocker)
    sensor = lakelens_sensor(DEFS, store=store)

    with pytest.raises(StoreError, match="cursor did not move"):
        sensor(dg.build_sensor_context(instance=instance))

    blocker.unlink()  # the store comes back
    result = sensor(dg.build_sensor_context(instance=instance))
    assert "Recorded 2 Dagster run(s)" in result.skip_reason.skip_message
    assert len(_contents(store)["runs"]) == 2
    store.close()


def test_sensor_without_history_starts_at_the_newest_run(
    dagster_runs: dict[str, Any], tmp_path: Path
) -> None:
    store = _store_at(tmp_path)
    sensor = lakelens_sensor(store=store, history=False)
    result = sensor(dg.build_sensor_context(instance=dagster_runs["instance"]))
    assert result.cursor is not None and int(result.cursor) > 0
    assert _contents(store)["runs"] == {}
    store.close()


def test_an_unfinished_run_is_recorded_without_its_logs(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    run = instance.create_run_for_job(
        dg.define_asset_job("only_orders", selection=[orders]).resolve(
            asset_graph=DEFS.resolve_asset_graph()
        ),
        run_config={},
    )
    store = _store_at(tmp_path)
    partial = record_run(instance, run.run_id, store=store)
    assert (partial.status, partial.finished, partial.written, partial.logs) == (
        "queued",
        False,
        True,
        0,
    )
    assert _contents(store)["runs"][run.run_id].status == "queued"
    store.close()
    instance.dispose()


# -- packaging ------------------------------------------------------------------------------


def test_import_without_dagster_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['dagster'] = None\n"
        "import lakelens, lakelens.integrations\n"
        "try:\n"
        "    import lakelens.integrations.dagster\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Dagster support needs the extra: pip install 'lakelens[dagster]'"


def test_import_lakelens_does_not_import_dagster() -> None:
    code = "import sys, lakelens, lakelens.integrations; print('dagster' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sensor_skips_a_run_it_cannot_read_and_records_the_others(
    dagster_runs: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakelens.integrations import dagster as integration

    build = integration._Translation.build

    def broken_for_the_failed_run(self: Any) -> Any:
        if self.run_id == dagster_runs["failed"]:
            raise KeyError("an event lakelens does not understand")
        return build(self)

    monkeypatch.setattr(integration._Translation, "build", broken_for_the_failed_run)
    store = _store_at(tmp_path)
    result = lakelens_sensor(store=store)(dg.build_sensor_context(dagster_runs["instance"]))
    assert "Recorded 1 Dagster run(s)" in result.skip_reason.skip_message
    assert set(_contents(store)["runs"]) == {dagster_runs["ok"]}
    store.close()


def test_record_run_writes_into_the_store_the_sdk_is_configured_with(
    dagster_runs: dict[str, Any], sdk: Store
) -> None:
    result = record_run(dagster_runs["instance"], dagster_runs["ok"], defs=DEFS)
    assert result.written
    data = _contents(sdk)
    assert set(data["runs"]) == {dagster_runs["ok"]}
    assert data["assets"]["raw.orders"].freshness_seconds == 7200


def test_a_failed_dagster_asset_check_opens_an_incident(
    dagster_runs: dict[str, Any], store_url: str
) -> None:
    from lakelens.alerts.config import AlertingConfig
    from lakelens.alerts.engine import AlertEngine
    from lakelens.alerts.incidents import Policy
    from lakelens.alerts.triage import incidents

    store = Store(store_url)
    try:
        record_run(dagster_runs["instance"], dagster_runs["ok"], defs=DEFS, store=store)
        config = AlertingConfig(incident_policy=Policy(group_wait=0))
        opened = AlertEngine(store, config).evaluate().opened
        with store.connect() as conn:
            found = [i for i in incidents(conn) if i.id in opened]
    finally:
        store.close()
    summaries = [f["summary"] for i in found for f in i.findings if f["rule"] == "check_failed"]
    assert any(s.startswith("no_null_ids failed on clean_orders") for s in summaries), summaries
