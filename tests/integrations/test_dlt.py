"""Real dlt pipelines into a local duckdb file, recorded by lakelens.integrations.dlt."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

dlt = pytest.importorskip("dlt", reason="dlt is not installed (pip install 'lakelens[dlt]')")
pytest.importorskip("duckdb", reason="duckdb is not installed (pip install 'dlt[duckdb]')")

from dlt.pipeline.exceptions import PipelineStepFailed  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import lakelens  # noqa: E402
import lakelens.integrations.dlt as lakelens_dlt  # noqa: E402
from lakelens.alerts.config import AlertingConfig  # noqa: E402
from lakelens.alerts.rules import evaluate_rules  # noqa: E402
from lakelens.cli.main import app  # noqa: E402
from lakelens.store import Store, reads  # noqa: E402
from lakelens.testing import recording  # noqa: E402

Pipeline = Callable[[str], Any]


@pytest.fixture(autouse=True)
def _dlt_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """dlt keeps nothing in ~/.dlt, reads no project config and sends no telemetry."""
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt-data"))
    monkeypatch.setenv("DLT_PROJECT_DIR", str(tmp_path / "dlt-project"))
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    """`pipeline("name")`: a dlt pipeline loading into dataset `raw` of a duckdb file in tmp_path."""

    def make(name: str) -> Any:
        return dlt.pipeline(
            name,
            destination=dlt.destinations.duckdb(str(tmp_path / f"{name}.duckdb")),
            dataset_name="raw",
            pipelines_dir=str(tmp_path / "pipelines"),
        )

    return make


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """The SDK recording into a SQLite store under tmp_path/home."""
    with recording(tmp_path / "home") as store:
        yield store


def assert_prefixes(messages: list[str], prefixes: list[str]) -> None:
    """Each message starts with its prefix, and there are as many messages as prefixes."""
    assert len(messages) == len(prefixes), messages
    for message, prefix in zip(messages, prefixes, strict=True):
        assert message.startswith(prefix), (message, prefix)


def shop(*, email: bool = False, text_amounts: bool = False) -> Any:
    """A source with two resources; `users` has a nested list (a child table)."""

    @dlt.resource(name="users", write_disposition="append")
    def users() -> Iterator[list[dict[str, Any]]]:
        rows: list[dict[str, Any]] = [{"id": 1, "name": "ada"}, {"id": 2, "name": "bob"}]
        rows[1]["tags"] = ["admin", "ops"]
        if email:
            for row in rows:
                row["email"] = f"{row['name']}@example.com"
        yield rows

    @dlt.resource(name="orders", write_disposition="append")
    def orders() -> Iterator[list[dict[str, Any]]]:
        yield [{"id": i, "amount": f"{i * 1.5} EUR" if text_amounts else i * 1.5} for i in range(5)]

    @dlt.source(name="shop")
    def source() -> Any:
        return users, orders

    return source()


def test_a_load_is_recorded_as_a_run_with_tables_schemas_lineage_and_logs(
    sdk: Store, pipeline: Pipeline
) -> None:
    p = pipeline("shop_load")
    load_info = p.run(shop())
    run_id = lakelens_dlt.record(p, load_info)
    assert lakelens_dlt.record(p, load_info) == run_id  # recording twice changes nothing
    assert lakelens.flush()
    with sdk.connect() as conn:
        (run,) = reads.runs(conn)
        mats = {m.asset: m for m in reads.materializations(conn)}
        snapshots = {s.asset: s for s in reads.schema_snapshots(conn)}
        edges = {(e.upstream, e.downstream, e.source) for e in reads.lineage_edges(conn)}
        assets = {a.name: a for a in reads.assets(conn)}
        logs = [rec for rec in reads.logs(conn, run_id=run_id) if rec.logger == "dlt"]
        spans = {s.name: s for s in reads.spans(conn, run_id=run_id)}

    assert run_id == load_info.loads_ids[0] == run.run_id
    assert (run.job, run.status, run.error_message) == ("shop_load", "success", None)
    assert run.tags["dlt.load_ids"] == run_id and run.tags["dlt.destination"] == "duckdb"
    assert set(mats) == {"raw.users", "raw.users__tags", "raw.orders"}  # no _dlt_* tables
    assert {a: (m.status, m.rows) for a, m in mats.items()} == {
        "raw.users": ("success", 2),
        "raw.users__tags": ("success", 2),
        "raw.orders": ("success", 5),
    }
    orders = mats["raw.orders"]
    assert orders.run_id == run_id and orders.bytes and orders.bytes > 0
    assert run.start_time <= orders.start_time < orders.end_time <= run.end_time
    assert orders.attributes["dlt_resource"] == "orders"
    assert orders.attributes["table_created"] is True
    assert snapshots["raw.orders"].columns == [
        ("id", "bigint"),
        ("amount", "double"),
        ("_dlt_load_id", "text"),
        ("_dlt_id", "text"),
    ]
    assert snapshots["raw.users"].hash == lakelens.schema(
        dict(snapshots["raw.users"].columns), asset="elsewhere"
    )  # the same hash lakelens.schema() gives, so drift detection compares like with like
    assert edges == {
        ("dlt:shop.users", "raw.users", "dlt"),
        ("dlt:shop.users", "raw.users__tags", "dlt"),
        ("dlt:shop.orders", "raw.orders", "dlt"),
    }
    assert assets["raw.orders"].kind == "table" and assets["dlt:shop.orders"].kind == "source"

    messages = [rec.message for rec in logs]
    assert_prefixes(
        messages,
        [
            "dlt extract of shop_load finished in ",
            "dlt normalize of shop_load finished in ",
            "raw.",
            "raw.",
            "raw.",
            "dlt load of shop_load finished in ",
            "dlt pipeline shop_load succeeded in ",
        ],
    )
    assert messages[0].endswith("2 resource(s): orders, users")
    assert messages[1].endswith("9 rows in 3 table(s)")
    assert all(" rows loaded in " in m and m.endswith("(new table)") for m in messages[2:5])
    orders_log = next(rec for rec in logs if rec.asset == "raw.orders")
    assert orders_log.message.startswith("raw.orders: 5 rows loaded in ")
    assert orders_log.span_id == spans["raw.orders"].span_id
    assert orders_log.trace_id == run.trace_id
    assert spans["raw.orders"].parent_id == spans["load"].span_id
    assert spans["load"].parent_id == spans["dlt shop_load"].span_id


def test_a_schema_change_adds_a_snapshot_and_fires_schema_drift(
    store: Store, pipeline: Pipeline
) -> None:
    p = pipeline("shop_drift")
    lakelens_dlt.run(p, shop())
    # A new column on users; orders.amount turns to text, which dlt loads as a variant column.
    second = lakelens_dlt.run(p, shop(email=True, text_amounts=True))
    assert lakelens.flush()
    with store.connect() as conn:
        users = reads.schema_snapshots(conn, asset="raw.users")
        orders = reads.schema_snapshots(conn, asset="raw.orders")
        tags = reads.schema_snapshots(conn, asset="raw.users__tags")
        mats = [m for m in reads.materializations(conn) if m.run_id == second.loads_ids[0]]
        findings = evaluate_rules(conn, AlertingConfig(), now=time.time() + 1)

    assert len(users) == 2 and ("email", "text") in users[-1].columns
    assert len(orders) == 2 and ("amount__v_text", "text") in orders[-1].columns
    assert len(tags) == 1  # unchanged schema, no new snapshot
    by_asset = {m.asset: m for m in mats}
    assert by_asset["raw.users"].attributes["new_columns"] == ["email"]
    drift = {f.asset: f for f in findings if f.rule == "schema_drift"}
    assert set(drift) == {"raw.users", "raw.orders"}
    assert drift["raw.users"].details["added"] == ["email"]
    assert "+email" in drift["raw.users"].summary
    assert drift["raw.orders"].details["added"] == ["amount__v_text"]


def test_a_resource_failing_in_extract_is_recorded_and_raised(
    store: Store, pipeline: Pipeline
) -> None:
    @dlt.resource(name="readings", table_name="glucose_readings")
    def readings() -> Iterator[dict[str, Any]]:
        yield {"id": 1, "mg_dl": 104}
        raise ConnectionError("API returned 503 after 3 retries")

    with pytest.raises(PipelineStepFailed) as raised:
        lakelens_dlt.run(pipeline("nightscout"), readings())
    assert raised.value.step == "extract"
    assert lakelens.flush()
    with store.connect() as conn:
        (run,) = reads.runs(conn)
        (mat,) = reads.materializations(conn)
        errors = [rec for rec in reads.logs(conn) if rec.level >= logging.ERROR]

    assert run.run_id == raised.value.load_id and run.status == "failure"
    assert run.error_type == "ResourceExtractionError"
    assert "API returned 503 after 3 retries" in run.error_message
    assert "Traceback (most recent call last)" in run.error_traceback
    assert (mat.asset, mat.status, mat.error_type) == (
        "raw.glucose_readings",
        "failure",
        "ResourceExtractionError",
    )
    assert "API returned 503" in mat.error_message
    assert_prefixes(
        [rec.message for rec in errors],
        [
            "dlt extract of nightscout failed after ",
            "raw.glucose_readings failed: ResourceExtractionError: ",
            "dlt pipeline nightscout failed after ",
        ],
    )
    assert [rec.asset for rec in errors] == [None, "raw.glucose_readings", None]
    assert all("API returned 503" in rec.message for rec in errors)


def test_a_failed_load_job_is_recorded_with_the_job_error(store: Store, pipeline: Pipeline) -> None:
    @dlt.resource(
        name="prices", columns={"price": {"data_type": "decimal", "precision": 4, "scale": 2}}
    )
    def prices() -> Iterator[list[dict[str, Any]]]:
        yield [{"id": 1, "price": "1.50"}, {"id": 2, "price": "123456.78"}]  # too big for (4,2)

    with pytest.raises(PipelineStepFailed) as raised:
        lakelens_dlt.run(pipeline("pricing"), prices())
    assert raised.value.step == "load"
    assert lakelens.flush()
    with store.connect() as conn:
        (run,) = reads.runs(conn)
        (mat,) = reads.materializations(conn)
        snapshots = reads.schema_snapshots(conn, asset="raw.prices")
        (error_log,) = [r for r in reads.logs(conn) if r.level >= logging.ERROR and r.asset]

    assert run.status == "failure" and run.error_type == "DatabaseTerminalException"
    assert (mat.asset, mat.status, mat.rows) == ("raw.prices", "failure", 2)
    assert mat.error_type == "DatabaseTerminalException"
    assert "out of range" in mat.error_message and "Traceback" not in mat.error_message
    assert "Traceback (most recent call last)" in mat.error_traceback
    assert ("price", "decimal(4,2)") in snapshots[0].columns  # the table was created
    assert error_log.asset == "raw.prices" and "out of range" in error_log.message


def test_inside_an_orchestrated_run_dlt_joins_it_and_logs_read_in_order(
    store: Store, pipeline: Pipeline, tmp_path: Path
) -> None:
    log = lakelens.get_logger("orchestrator")

    @dlt.resource(name="entries")
    def entries() -> Iterator[list[dict[str, Any]]]:
        lakelens.get_logger("nightscout").info("fetched page 1")
        yield [{"id": 1, "sgv": 104}, {"id": 2, "sgv": 99}]

    with lakelens.run("orchestrated", run_id="orchestrated-2024-10-15"):
        log.info("starting ingestion")
        lakelens_dlt.run(pipeline("nightscout_entries"), entries())
        log.info("ingestion done; starting dbt")
    assert lakelens.flush()
    with store.connect() as conn:
        runs = reads.runs(conn)
        mats = reads.materializations(conn)

    assert [(r.run_id, r.job, r.status) for r in runs] == [
        ("orchestrated-2024-10-15", "orchestrated", "success")
    ]
    assert [(m.asset, m.run_id, m.rows) for m in mats] == [
        ("raw.entries", "orchestrated-2024-10-15", 2)
    ]
    result = CliRunner().invoke(
        app, ["logs", "--home", str(tmp_path / "home"), "--run-id", "orchestrated", "--json"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert {line["run_id"] for line in lines} == {"orchestrated-2024-10-15"}
    assert [line["logger"] for line in lines] == [
        "orchestrator",
        "nightscout",
        *["dlt"] * 5,
        "orchestrator",
    ]
    assert_prefixes(
        [line["message"] for line in lines],
        [
            "starting ingestion",
            "fetched page 1",
            "dlt extract of nightscout_entries finished in ",
            "dlt normalize of nightscout_entries finished in ",
            "raw.entries: 2 rows loaded in ",
            "dlt load of nightscout_entries finished in ",
            "dlt pipeline nightscout_entries succeeded in ",
            "ingestion done; starting dbt",
        ],
    )
    assert lines[4]["asset"] == "raw.entries"


def test_a_process_started_with_lakelens_run_id_joins_that_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pipeline: Pipeline
) -> None:
    monkeypatch.setenv("LAKELENS_RUN_ID", "dagster-run-42")
    monkeypatch.setenv("LAKELENS_JOB", "daily_glucose_pipeline")
    with recording(tmp_path / "home") as store:
        lakelens_dlt.run(pipeline("child"), [{"id": 1}], table_name="entries")
    with store.connect() as conn:
        assert reads.runs(conn) == []  # the parent process owns the run
        (mat,) = reads.materializations(conn)
        jobs = {rec.job for rec in reads.logs(conn, run_id="dagster-run-42")}
    assert (mat.run_id, mat.asset, mat.status) == ("dagster-run-42", "raw.entries", "success")
    assert jobs == {"daily_glucose_pipeline"}


def test_observe_records_every_run_however_it_is_started(
    store: Store, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dlt.pipeline import trace as dlt_trace

    monkeypatch.setattr(dlt_trace, "TRACKING_MODULES", list(dlt_trace.TRACKING_MODULES))
    lakelens_dlt.observe()
    lakelens_dlt.observe()  # registering twice still records once

    @dlt.resource(name="users")
    def broken() -> Iterator[dict[str, Any]]:
        raise TimeoutError("read timed out")
        yield {}

    p = pipeline("observed")
    p.extract(shop())  # separate steps, as some orchestrators call them
    p.normalize()
    load_info = p.load()
    assert lakelens.flush()
    with store.connect() as conn:
        assert [r.run_id for r in reads.runs(conn)] == load_info.loads_ids
        logged = len(reads.logs(conn))
    assert lakelens_dlt.record(p, load_info) == load_info.loads_ids[0]  # already recorded
    assert lakelens.flush()
    with store.connect() as conn:
        assert len(reads.logs(conn)) == logged
    with pytest.raises(PipelineStepFailed):
        p.run(broken())  # plain dlt: nothing to wrap
    assert lakelens.flush()
    with store.connect() as conn:
        runs = reads.runs(conn)
        mats = reads.materializations(conn)

    assert [(r.run_id, r.status) for r in runs] == [
        (load_info.loads_ids[0], "success"),
        (runs[1].run_id, "failure"),
    ]
    assert runs[1].error_type == "ResourceExtractionError"
    assert "read timed out" in runs[1].error_message
    assert sorted((m.asset, m.status, m.rows) for m in mats) == [
        ("raw.orders", "success", 5),
        ("raw.users", "failure", None),
        ("raw.users", "success", 2),
        ("raw.users__tags", "success", 2),
    ]


def test_import_lakelens_does_not_import_dlt() -> None:
    code = "import sys, lakelens; assert 'dlt' not in sys.modules, 'dlt imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_dlt_fails_with_one_sentence_naming_the_extra() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["dlt"] = None  # as if dlt were not installed
        try:
            import lakelens.integrations.dlt
        except ImportError as exc:
            print(exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "dlt support needs the extra: pip install 'lakelens[dlt]'"


def test_why_hints_name_the_failed_load_by_an_unambiguous_prefix(
    store: Store, pipeline: Pipeline, tmp_path: Path
) -> None:
    """dlt load ids are epoch seconds: two loads a second apart share their first 8 characters,
    so the `why` hint must print more of the id for `lakelens trace` to find the run."""

    @dlt.resource(name="readings", table_name="glucose_readings")
    def readings() -> Iterator[dict[str, Any]]:
        yield {"id": 1, "mg_dl": 104}

    @dlt.resource(name="readings", table_name="glucose_readings")
    def failing() -> Iterator[dict[str, Any]]:
        yield {"id": 2, "mg_dl": 99}
        raise ConnectionError("API returned 503 after 3 retries")

    lakelens_dlt.run(pipeline("nightscout"), readings())
    with pytest.raises(PipelineStepFailed) as raised:
        lakelens_dlt.run(pipeline("nightscout"), failing())
    assert lakelens.flush()
    with store.connect() as conn:
        ids = [run.run_id for run in reads.runs(conn)]
    assert len(ids) == 2 and ids[0][:8] == ids[1][:8], ids  # what made `[:8]` ambiguous

    runner = CliRunner()
    home = str(tmp_path / "home")
    result = runner.invoke(app, ["why", "raw.glucose_readings", "--home", home])
    assert result.exit_code == 0, result.output
    hint = result.output.split("lakelens trace ", 1)[1].split()[0]
    assert raised.value.load_id.startswith(hint) and len(hint) >= 8
    traced = runner.invoke(app, ["trace", hint, "--home", home])
    assert traced.exit_code == 0, traced.output
    assert raised.value.load_id in traced.output
    logged = runner.invoke(app, ["logs", "--run-id", hint, "--home", home])
    assert logged.exit_code == 0, logged.output
    assert "API returned 503" in logged.output
