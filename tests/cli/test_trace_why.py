"""`lakelens trace` and `lakelens why` on a pipeline whose upstream just failed."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from lakelens.cli.main import app

runner = CliRunner()


def test_trace_tree_with_offsets_and_errors(pipeline_home) -> None:
    home, info = pipeline_home
    failed_run = info["run_ids"][2]
    result = runner.invoke(app, ["trace", failed_run[:8], "--home", str(home)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"run {failed_run}" in out and "✗ failure" in out
    assert "3 spans · 3 errors" in out  # the downstream asset never ran
    assert "✗ fetch_from_api [0ms - 70ms] 70ms" in out
    assert "✗ http.request [40ms - 70ms] 30ms ApiTimeout: Connection timeout after 30s" in out
    assert "Error: ApiTimeout: Connection timeout after 30s" in out


def test_trace_json_and_last_run_of_asset(pipeline_home) -> None:
    home, info = pipeline_home
    result = runner.invoke(
        app, ["trace", "--asset", "stg_entries", "--last", "--json", "--attrs", "--home", str(home)]
    )
    data = json.loads(result.output)
    assert data["run_id"] == info["run_ids"][1] and data["status"] == "success"
    names = [(s["name"], s["depth"]) for s in data["spans"]]
    assert names == [
        ("dlt_entries", 0),
        ("fetch_from_api", 1),
        ("http.request", 2),
        ("stg_entries", 0),
    ]
    fetch = data["spans"][1]
    assert fetch["attributes"] == {"endpoint": "/entries", "rows_fetched": 487}
    assert fetch["offset_seconds"] == 0 and round(fetch["duration_seconds"], 3) == 0.07


def test_trace_input_errors(pipeline_home) -> None:
    home, _ = pipeline_home
    for args, message in [
        (["trace", "zzzz"], "No run id or trace id starts with 'zzzz'"),
        (["trace"], "Give a RUN_ID, or --asset NAME --last"),
        (["trace", "--asset", "stg_entries"], "Give a RUN_ID, or --asset NAME --last"),
    ]:
        result = runner.invoke(app, [*args, "--home", str(home)])
        assert result.exit_code == 1 and message in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_why_walks_upstream_to_the_failing_asset(pipeline_home) -> None:
    home, info = pipeline_home
    result = runner.invoke(app, ["why", "stg_entries", "--home", str(home)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "stg_entries has no problem of its own" in out
    assert (
        "Root cause: upstream dlt_entries is failing" in out
        and "path: stg_entries ← dlt_entries" in out
    )
    assert "ApiTimeout: Connection timeout after 30s" in out
    assert "failing span: http.request" in out
    assert "Connection refused to api.example" in out and "Retry 1/3 after timeout" in out
    assert "1 failed run(s) in a row" in out
    assert "breaches its freshness SLA in" in out
    data = json.loads(
        runner.invoke(app, ["why", "stg_entries", "--json", "--home", str(home)]).output
    )
    assert data["chain"] == ["stg_entries", "dlt_entries"] and data["root_cause"] == "dlt_entries"
    assert data["last_error"]["run_id"] == info["run_ids"][2]
    assert data["failing_span"]["name"] == "http.request"


def test_why_on_a_healthy_asset(tmp_path) -> None:
    import lakelens
    from lakelens.config import load_settings

    lakelens.configure(settings=load_settings(home=str(tmp_path), log_format="none"))
    with lakelens.run("job"), lakelens.asset("fine", freshness="1h"):
        pass
    lakelens.flush()
    result = runner.invoke(app, ["why", "fine", "--home", str(tmp_path)])
    assert result.exit_code == 0 and "✓ fine looks healthy" in result.output


# -- the same story as the alerts: own failed checks, then the failed model, then stale sources --

HOUR = 3600.0


@pytest.fixture
def shop(store_url, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A callable recording into `store_url` (SQLite and PostgreSQL) with a clock started 20 h
    ago; `why(*args)` then runs the CLI on that store."""
    from lakelens.config import load_settings
    from lakelens.store import Store
    from lakelens.testing import FakeClock, recording

    monkeypatch.setenv("LAKELENS_DATABASE_URL", store_url)
    settings = load_settings(home=str(tmp_path / "home"), log_format="none")
    store = Store(settings=settings)
    clock = FakeClock(time.time() - 20 * HOUR)

    def record(steps):  # type: ignore[no-untyped-def]
        with recording(settings=settings, store=store, clock=clock):
            steps(clock)

    yield record
    store.close()


def why(*args: str):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["why", *args])
    assert result.exit_code == 0, result.output
    return result.output, json.loads(runner.invoke(app, ["why", *args, "--json"]).output)


def _materialize(name: str, *, deps: tuple[str, ...] = (), fail: str | None = None) -> str:
    import lakelens

    with lakelens.run(f"dbt run {name}") as run:
        try:
            with lakelens.asset(name, deps=list(deps), kind="model"):
                if fail:
                    raise RuntimeError(fail)
        except RuntimeError:
            pass
    return run.run_id


def _test(name: str, check: str, passed: bool, severity: str = "error") -> str:
    import lakelens

    with lakelens.run("dbt test") as run:
        lakelens.check(
            check, passed=passed, severity=severity, asset=name, valid_rows=0, total_rows=12
        )
    return run.run_id


def test_why_counts_a_failed_error_check_of_the_latest_run(shop) -> None:
    """The check that alerts is the story, not '✓ looks healthy'; a warning is not."""
    import lakelens

    def steps(clock):  # type: ignore[no-untyped-def]
        with lakelens.run("dbt build"), lakelens.asset("stg_orders", kind="model"):
            lakelens.check(
                "not_null_order_id", passed=False, severity="error", message="3 null ids"
            )
            lakelens.check("row_count_band", passed=False, severity="warning")

    shop(steps)
    out, data = why("stg_orders")
    assert "looks healthy" not in out
    assert "stg_orders failed its error checks" in out and "Root cause: the asset itself." in out
    assert "✗ not_null_order_id (error, run " in out and "3 null ids" in out
    assert "row_count_band" not in out
    assert data["healthy"] is False and data["problem"] == "failed_checks"
    assert [c["name"] for c in data["failed_checks"]] == ["not_null_order_id"]
    assert data["last_error"] is None  # the materialization itself succeeded


def test_why_counts_checks_recorded_after_the_materialization_by_another_run(shop) -> None:
    """`dbt test` after `dbt run`: its failed error test counts until a later result passes."""
    tested: list[str] = []

    def build_then_test(clock):  # type: ignore[no-untyped-def]
        _materialize("stg_orders")
        clock.advance(60)
        tested.append(_test("stg_orders", "unique_order_id", passed=False))

    shop(build_then_test)
    out, data = why("stg_orders")
    assert "stg_orders failed its error checks" in out and "✗ unique_order_id (error" in out
    assert "0/12 rows valid" in out
    assert data["failed_checks"][0]["run_id"] == tested[0]

    shop(lambda clock: (clock.advance(60), _test("stg_orders", "unique_order_id", passed=True)))
    out, data = why("stg_orders")
    assert "✓ stg_orders looks healthy" in out and data["failed_checks"] == []

    # A new materialization starts over: the test of the previous build no longer counts.
    shop(lambda clock: (clock.advance(60), _test("stg_orders", "unique_order_id", passed=False)))
    shop(lambda clock: (clock.advance(60), _materialize("stg_orders")))
    assert why("stg_orders")[1]["healthy"] is True


def test_why_shows_the_failed_model_before_a_stale_source(shop) -> None:
    """After a dbt model failed, a dashboard's why names the model and its error first; the
    stale source upstream comes after."""
    import lakelens

    def steps(clock):  # type: ignore[no-untyped-def]
        with lakelens.run("load"), lakelens.asset("raw_orders", freshness="1h"):
            pass
        lakelens.asset("revenue_dashboard", kind="dashboard", deps=["stg_orders"]).declare()
        clock.advance(19 * HOUR)  # raw_orders has been stale for hours
        _materialize(
            "stg_orders",
            deps=("raw_orders",),
            fail="Database Error: column amount_usd does not exist",
        )

    shop(steps)
    out, data = why("revenue_dashboard")
    assert "Root cause: upstream stg_orders is failing" in out
    assert "RuntimeError: Database Error: column amount_usd does not exist" in out
    assert "Also upstream:\n  raw_orders is stale — last success 20.0h ago (SLA 1.0h)" in out
    assert out.index("column amount_usd") < out.index("raw_orders is stale")
    assert data["root_cause"] == "stg_orders" and data["chain"] == [
        "revenue_dashboard",
        "stg_orders",
    ]
    assert data["also_upstream"] == [{"asset": "raw_orders", "problem": "stale"}]

    out, data = why("stg_orders")
    assert "stg_orders is failing" in out and "Root cause: the asset itself." in out
    assert "column amount_usd does not exist" in out
    assert data["root_cause"] == "stg_orders" and data["also_upstream"][0]["asset"] == "raw_orders"


def test_why_shows_schema_drift_on_the_asset_the_alerts_found(shop, tmp_path) -> None:
    """An asset that succeeds but whose schema drifted is not 'healthy': the open drift alert
    the evaluator raised is its story."""
    import lakelens
    from lakelens.alerts.config import load_alerting
    from lakelens.alerts.engine import AlertEngine
    from lakelens.config import load_settings
    from lakelens.store import Store

    def build(columns):  # type: ignore[no-untyped-def]
        def steps(clock):  # type: ignore[no-untyped-def]
            clock.set(time.time() - 60)
            with lakelens.run("dbt run"), lakelens.asset("stg_orders", kind="model"):
                lakelens.schema(columns)

        return steps

    shop(build({"id": "int", "amount": "float"}))
    shop(build({"id": "int", "amount": "text"}))
    assert why("stg_orders")[1]["healthy"] is True  # nothing evaluated yet

    store = Store(settings=load_settings(home=str(tmp_path / "home"), log_format="none"))
    AlertEngine(store, load_alerting(store.settings)).evaluate()
    out, data = why("stg_orders")
    assert "stg_orders looks anomalous" in out and "Root cause: the asset itself." in out
    assert "! stg_orders schema changed: amount: float → text (schema_drift" in out
    assert data["problem"] == "anomalous" and data["anomalies"][0]["rule"] == "schema_drift"
    store.close()


def test_short_run_ids_resolve_back_to_their_run(shop) -> None:
    """Hints print the shortest prefix (8 characters at least) that names one run."""
    import lakelens
    from lakelens.analysis.runs import resolve_run_id, short_run_id
    from lakelens.store import Store

    ids = ["1796625912.101", "1796625987.202", "17966259", "1796625912.1015", "a1b2c3d4-e5f6"]

    def steps(clock):  # type: ignore[no-untyped-def]
        for run_id in ids:
            with lakelens.run("load", run_id=run_id):
                clock.advance(1)

    shop(steps)
    with Store().reader() as conn:
        short = {run_id: short_run_id(conn, run_id) for run_id in ids}
        assert all(resolve_run_id(conn, prefix) == run_id for run_id, prefix in short.items())
    assert short == {
        "1796625912.101": "1796625912.101",
        "1796625987.202": "179662598",
        "17966259": "17966259",
        "1796625912.1015": "1796625912.1015",
        "a1b2c3d4-e5f6": "a1b2c3d4",
    }
