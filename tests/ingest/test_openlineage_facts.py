"""Facts that match their source (issue 17): runs without START, ABORT, repeated assertions and
TestRunFacets, sent by the real openlineage-python client to a real `lakelens serve`."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated import (
    data_quality_assertions_dataset,
    error_message_run,
    test_run,
)
from openlineage.client.transport.http import HttpConfig, HttpTransport

from lakelens.analysis.asset_metrics import asset_metrics
from lakelens.analysis.summary import summary
from lakelens.store import Store, reads

NS = "postgres://warehouse:5432"
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


def _send(server: Any, *events: RunEvent) -> None:
    """One request per event, as the client's HttpTransport sends them."""
    client = OpenLineageClient(transport=HttpTransport(HttpConfig(url=server.url, timeout=10)))
    for event in events:
        client.emit(event)
    client.close()


def _event(
    state: RunState,
    minutes_ago: float,
    run_id: str,
    job: str,
    *,
    inputs: list[InputDataset] | None = None,
    outputs: list[OutputDataset] | None = None,
    run_facets: dict[str, Any] | None = None,
) -> RunEvent:
    return RunEvent(
        eventType=state,
        eventTime=_at(minutes_ago),
        run=Run(runId=run_id, facets=run_facets or {}),
        job=Job(namespace="shop", name=job),
        inputs=inputs or [],
        outputs=outputs or [],
        producer="https://example.com/lakelens-tests",
    )


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def test_runs_without_start_count_in_totals_and_since(serve_ol: Any, store_url: str) -> None:
    """COMPLETE-only and FAIL-only runs are runs: in the totals and in /api/v1/runs?since=1h."""
    server = serve_ol()
    done, failed, late_start, split = _ids(4)
    error = error_message_run.ErrorMessageRunFacet(
        message="ValueError: bad row", programmingLanguage="python"
    )
    _send(
        server,
        _event(RunState.COMPLETE, 10, done, "load_orders", outputs=[OutputDataset(NS, "orders")]),
        _event(
            RunState.FAIL,
            5,
            failed,
            "load_payments",
            outputs=[OutputDataset(NS, "payments")],
            run_facets={"errorMessage": error},
        ),
        # COMPLETE delivered before its START: the START's earlier time is the start.
        _event(
            RunState.COMPLETE, 2, late_start, "load_items", outputs=[OutputDataset(NS, "items")]
        ),
        _event(RunState.START, 8, late_start, "load_items", outputs=[OutputDataset(NS, "items")]),
        # START without outputs, COMPLETE with them: the output starts with its run.
        _event(RunState.START, 20, split, "load_users"),
        _event(RunState.COMPLETE, 17, split, "load_users", outputs=[OutputDataset(NS, "users")]),
    )
    listed = {r["run_id"]: r for r in server.get("/api/v1/runs", since="1h")["runs"]}
    assert set(listed) == {done, failed, late_start, split}

    store = Store(store_url)
    try:
        result = summary(store, since=(NOW - timedelta(hours=1)).timestamp())
        assert (result.runs.total, result.runs.success, result.runs.failure) == (4, 3, 1)
        assert result.failures.by_asset == {f"{NS}/payments": 1}
        with store.connect() as conn:
            runs = {r.run_id: r for r in reads.runs(conn)}
            assert runs[failed].start_time == runs[failed].end_time == NOW - timedelta(minutes=5)
            assert runs[late_start].start_time == NOW - timedelta(minutes=8)
            (items,) = reads.materializations(conn, asset=f"{NS}/items")
            assert items.duration_seconds == 360.0
            (users,) = reads.materializations(conn, asset=f"{NS}/users")
            assert users.start_time == NOW - timedelta(minutes=20)
            assert users.duration_seconds == 180.0
    finally:
        store.close()


def test_an_aborted_run_is_the_last_run(serve_ol: Any, store_url: str) -> None:
    """`metrics asset` says canceled, as its own table does, with or without a START."""
    server = serve_ol()
    started, alone = _ids(2)
    orders, refunds = OutputDataset(NS, "orders"), OutputDataset(NS, "refunds")
    _send(
        server,
        _event(RunState.START, 9, started, "load_orders", outputs=[orders]),
        _event(RunState.ABORT, 8, started, "load_orders", outputs=[orders]),
        _event(RunState.ABORT, 4, alone, "load_refunds", outputs=[refunds]),
    )
    store = Store(store_url)
    try:
        with store.connect() as conn:
            for asset in (f"{NS}/orders", f"{NS}/refunds"):
                metrics = asset_metrics(conn, asset, now=NOW.timestamp())
                assert [r.status for r in metrics.runs] == ["canceled"]
                assert metrics.last_status == "canceled"
    finally:
        store.close()


def _assertions(*results: tuple[str, str, bool]) -> Any:
    return data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
        assertions=[
            data_quality_assertions_dataset.Assertion(assertion=a, column=c, success=ok)
            for a, c, ok in results
        ]
    )


def _check_totals(store: Store) -> tuple[int, int, int, int]:
    """(rows, failed rows) of check_results and (checks, checks_failed) of the hourly rollups."""
    with store.connect() as conn:
        rows = reads.check_results(conn)
        hours = conn.exec_driver_sql(
            "SELECT coalesce(sum(checks), 0), coalesce(sum(checks_failed), 0) FROM asset_hours"
        ).one()
    return len(rows), sum(1 for r in rows if not r.passed), int(hours[0]), int(hours[1])


def test_a_repeated_assertion_is_one_result(serve_ol: Any, store_url: str) -> None:
    """START, RUNNING and COMPLETE carrying the same four assertions are four results, the
    latest one each; dbt-ol's test events (the facet twice, START and COMPLETE) one per test."""
    server = serve_ol()
    run_id, dbt_test = _ids(2)
    early = _assertions(
        ("not_null", "order_id", True),
        ("unique", "order_id", True),
        ("accepted_values", "status", False),  # fixed by the time the run completes
        ("positive", "amount", False),
    )
    final = _assertions(
        ("not_null", "order_id", True),
        ("unique", "order_id", True),
        ("accepted_values", "status", True),
        ("positive", "amount", False),
    )

    def orders(facet: Any) -> OutputDataset:
        return OutputDataset(NS, "orders", outputFacets={"dataQualityAssertions": facet})

    dbt = _assertions(("not_null", "customer_id", True), ("unique", "customer_id", False))
    customers = InputDataset(
        NS,
        "customers",
        facets={"dataQualityAssertions": dbt},
        inputFacets={"dataQualityAssertions": dbt},
    )
    _send(
        server,
        _event(RunState.START, 12, run_id, "orders", outputs=[orders(early)]),
        _event(RunState.RUNNING, 11, run_id, "orders", outputs=[orders(early)]),
        _event(RunState.COMPLETE, 10, run_id, "orders", outputs=[orders(final)]),
        _event(RunState.START, 9, dbt_test, "customers.test", inputs=[customers]),
        _event(RunState.COMPLETE, 8, dbt_test, "customers.test", inputs=[customers]),
    )
    store = Store(store_url)
    try:
        assert _check_totals(store) == (6, 2, 6, 2)
        result = summary(store, since=(NOW - timedelta(hours=1)).timestamp())
        assert (result.checks.total, result.checks.failed) == (6, 2)
        with store.connect() as conn:
            metrics = asset_metrics(conn, f"{NS}/orders", now=NOW.timestamp())
            checks = {c.name: (c.results, c.passed) for c in metrics.checks}
            assert checks == {
                "not_null(order_id)": (1, 1),
                "unique(order_id)": (1, 1),
                "accepted_values(status)": (1, 1),
                "positive(amount)": (1, 0),
            }
    finally:
        store.close()


def test_test_run_facets_are_check_results(serve_ol: Any, store_url: str) -> None:
    """dbt-ol's singular tests arrive as a `test` run facet naming no dataset: the results
    belong to the tested input, and are not kept as a tag."""
    server = serve_ol()
    (run_id,) = _ids(1)
    facet = test_run.TestRunFacet(
        tests=[
            test_run.TestExecution(
                name="test.shop.assert_positive_amounts",
                status="fail",
                severity="warn",
                type="singular",
                expected="0",
                actual="3",
            ),
            test_run.TestExecution(name="test.shop.assert_skipped", status="skip"),
        ]
    )
    job = "test.shop.assert_positive_amounts"
    orders = InputDataset(NS, "orders")
    _send(
        server,
        _event(RunState.START, 6, run_id, job, inputs=[orders], run_facets={"test": facet}),
        _event(RunState.FAIL, 5, run_id, job, inputs=[orders], run_facets={"test": facet}),
    )
    store = Store(store_url)
    try:
        with store.connect() as conn:
            (check,) = reads.check_results(conn)
            assert (check.asset, check.name, check.run_id) == (
                f"{NS}/orders",
                "test.shop.assert_positive_amounts",
                run_id,
            )
            assert (check.passed, check.severity, check.value, check.threshold) == (
                False,
                "warning",
                3.0,
                0.0,
            )
            (run,) = reads.runs(conn)
            assert "openlineage.run.test" not in run.tags
        assert _check_totals(store) == (1, 1, 1, 1)
    finally:
        store.close()


def test_column_lineage_is_shown(
    serve_ol: Any, store_url: str, tmp_path: Any, monkeypatch: Any
) -> None:
    """columnLineage reaches `lineage show --json`, `lineage export --format json` and the API."""
    import json

    from openlineage.client.generated import column_lineage_dataset
    from typer.testing import CliRunner

    from lakelens.cli.main import app

    server = serve_ol()
    (run_id,) = _ids(1)
    lineage = column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            "total": column_lineage_dataset.Fields(
                inputFields=[
                    column_lineage_dataset.InputField(NS, "orders", "amount"),
                    column_lineage_dataset.InputField(NS, "orders", "tax"),
                ]
            )
        }
    )
    revenue = OutputDataset(NS, "revenue", facets={"columnLineage": lineage})
    _send(
        server,
        _event(
            RunState.COMPLETE,
            3,
            run_id,
            "revenue",
            inputs=[InputDataset(NS, "orders")],
            outputs=[revenue],
        ),
    )
    orders, rev = f"{NS}/orders", f"{NS}/revenue"
    expected = [{"upstream": orders, "downstream": rev, "columns": {"total": ["amount", "tax"]}}]

    assert server.get(f"/api/v1/lineage/{rev}")["column_lineage"] == expected
    (edge,) = server.get("/api/v1/lineage")["edges"]
    assert edge == expected[0]

    monkeypatch.setenv("LAKELENS_DATABASE_URL", store_url)
    runner = CliRunner()
    shown = runner.invoke(app, ["lineage", "show", rev, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["column_lineage"] == expected
    out = tmp_path / "lineage.json"
    exported = runner.invoke(app, ["lineage", "export", "--format", "json", "--output", str(out)])
    assert exported.exit_code == 0, exported.output
    assert json.loads(out.read_text())["edges"] == expected
