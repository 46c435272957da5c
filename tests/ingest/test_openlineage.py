"""OpenLineage RunEvents from the real openlineage-python client, converted and stored."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    DatasetEvent,
    InputDataset,
    Job,
    JobEvent,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.generated import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    error_message_run,
    nominal_time_run,
    output_statistics_output_dataset,
    parent_run,
    processing_engine_run,
    schema_dataset,
    sql_job,
)
from openlineage.client.serde import Serde
from openlineage.client.transport.http import HttpConfig, HttpTransport

from lakelens.analysis.asset_metrics import asset_metrics
from lakelens.analysis.lineage import impact, load_graph
from lakelens.errors import InvalidArgumentError
from lakelens.ingest import Ingested
from lakelens.ingest.openlineage import dataset_name, job_name, schema_hash, to_ingested
from lakelens.store import Store, reads

WAREHOUSE = "postgres://warehouse:5432"
T0 = datetime(2024, 10, 15, 6, 0, tzinfo=timezone.utc)


def _at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _epoch(minutes: float) -> float:
    return (T0 + timedelta(minutes=minutes)).timestamp()


def _schema(**columns: str) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in columns.items()]
    )


def _stats(
    rows: int, size: int
) -> output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet:
    return output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
        rowCount=rows, size=size
    )


def _event(
    state: RunState,
    minutes: float,
    run_id: str,
    job: str,
    *,
    inputs: list[InputDataset] | None = None,
    outputs: list[OutputDataset] | None = None,
    run_facets: dict[str, Any] | None = None,
    job_facets: dict[str, Any] | None = None,
) -> RunEvent:
    return RunEvent(
        eventType=state,
        eventTime=_at(minutes),
        run=Run(runId=run_id, facets=run_facets or {}),
        job=Job(namespace="glucose", name=job, facets=job_facets or {}),
        inputs=inputs or [],
        outputs=outputs or [],
        producer="https://example.com/lakelens-tests",
    )


# -- the real client's HTTP transport, recorded -----------------------------------------------


def _emit_through_client(recorder: Any, events: list[Any]) -> list[dict[str, Any]]:
    """Send events with OpenLineageClient + HttpTransport; return the JSON the server received."""
    url = recorder.url
    client = OpenLineageClient(transport=HttpTransport(HttpConfig(url=url, timeout=10)))
    for event in events:
        client.emit(event)
    client.close()
    assert [path for path, *_ in recorder.requests] == ["/api/v1/lineage"] * len(events)
    return [json.loads(body) for _, body in recorder.bodies()]


# -- a realistic DAG: ingest → transform → publish, under a parent DAG run ---------------------


class Dag:
    dag_run = str(uuid.uuid4())
    ingest = str(uuid.uuid4())
    transform = str(uuid.uuid4())
    publish = str(uuid.uuid4())
    api = InputDataset(namespace="https://nightscout.example.com", name="/api/v1/entries")
    raw_schema = _schema(id="VARCHAR", sgv="INT", date="TIMESTAMP")
    fct_schema = _schema(id="VARCHAR", sgv="INT", date="TIMESTAMP", mmol="DOUBLE")


def _parent() -> dict[str, Any]:
    return {
        "parent": parent_run.ParentRunFacet(
            run=parent_run.Run(runId=Dag.dag_run),
            job=parent_run.Job(namespace="glucose", name="daily_glucose"),
        ),
        "nominalTime": nominal_time_run.NominalTimeRunFacet(
            nominalStartTime="2024-10-15T00:00:00Z", nominalEndTime="2024-10-16T00:00:00Z"
        ),
    }


def _raw(*, facets: bool) -> Any:
    return (
        OutputDataset(
            WAREHOUSE,
            "raw.glucose_entries",
            facets={"schema": Dag.raw_schema},
            outputFacets={"outputStatistics": _stats(288, 40_960)},
        )
        if facets
        else InputDataset(WAREHOUSE, "raw.glucose_entries")
    )


def _fct(*, output: bool) -> Any:
    if not output:
        return InputDataset(WAREHOUSE, "analytics.fct_glucose_readings")
    assertions = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
        assertions=[
            data_quality_assertions_dataset.Assertion(
                assertion="not_null", success=True, column="id"
            ),
            data_quality_assertions_dataset.Assertion(
                assertion="unique", success=True, column="id"
            ),
            data_quality_assertions_dataset.Assertion(
                assertion="accepted_range",
                success=False,
                column="sgv",
                severity="error",
                expected="400",
                actual="512",
                description="sgv stays below 400 mg/dL",
            ),
        ]
    )
    lineage = column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            "mmol": column_lineage_dataset.Fields(
                inputFields=[
                    column_lineage_dataset.InputField(WAREHOUSE, "raw.glucose_entries", "sgv")
                ]
            )
        }
    )
    return OutputDataset(
        WAREHOUSE,
        "analytics.fct_glucose_readings",
        facets={"schema": Dag.fct_schema, "columnLineage": lineage},
        outputFacets={"outputStatistics": _stats(280, 51_200), "dataQualityAssertions": assertions},
    )


PUBLISH_TRACE = (
    "Traceback (most recent call last):\n"
    '  File "publish.py", line 12, in publish\n'
    "    upload(frame)\n"
    "ConnectionError: superset refused the upload (HTTP 503)"
)


def _dag_events() -> list[Any]:
    mart = OutputDataset(WAREHOUSE, "marts.mrt_glucose_daily")
    error = error_message_run.ErrorMessageRunFacet(
        message="ConnectionError: superset refused the upload (HTTP 503)",
        programmingLanguage="python",
        stackTrace=PUBLISH_TRACE,
    )
    engine = {
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version="2.10.2", name="Airflow", openlineageAdapterVersion="1.12.0"
        )
    }
    sql = {
        "sql": sql_job.SQLJobFacet(query="select * from raw.glucose_entries", dialect="postgres")
    }
    return [
        _event(RunState.START, 0, Dag.dag_run, "daily_glucose"),
        _event(RunState.START, 1, Dag.ingest, "ingest", inputs=[Dag.api], run_facets=_parent()),
        _event(
            RunState.COMPLETE,
            4,
            Dag.ingest,
            "ingest",
            inputs=[Dag.api],
            outputs=[_raw(facets=True)],
            run_facets={**_parent(), **engine},
        ),
        _event(
            RunState.START,
            5,
            Dag.transform,
            "transform",
            inputs=[_raw(facets=False)],
            outputs=[OutputDataset(WAREHOUSE, "analytics.fct_glucose_readings")],
            run_facets=_parent(),
            job_facets=sql,
        ),
        _event(
            RunState.COMPLETE,
            7.5,
            Dag.transform,
            "transform",
            inputs=[_raw(facets=False)],
            outputs=[_fct(output=True)],
            run_facets=_parent(),
            job_facets=sql,
        ),
        _event(
            RunState.START,
            8,
            Dag.publish,
            "publish",
            inputs=[_fct(output=False)],
            outputs=[mart],
            run_facets=_parent(),
        ),
        _event(
            RunState.FAIL,
            9,
            Dag.publish,
            "publish",
            inputs=[_fct(output=False)],
            outputs=[mart],
            run_facets={**_parent(), "errorMessage": error},
        ),
        _event(RunState.FAIL, 9.5, Dag.dag_run, "daily_glucose"),
    ]


RAW = f"{WAREHOUSE}/raw.glucose_entries"
FCT = f"{WAREHOUSE}/analytics.fct_glucose_readings"
MART = f"{WAREHOUSE}/marts.mrt_glucose_daily"
API = "https://nightscout.example.com/api/v1/entries"


def _store_events(url: str, payloads: list[Any]) -> Store:
    store = Store(url)
    for payload in payloads:
        result = to_ingested(payload, now=_epoch(60))
        assert result.rejected == []
        store.write(result.batch)
    return store


def test_dag_from_the_real_client_gives_graph_runs_failures_rows_checks_and_schemas(
    store_url: str, http_recorder: Any
) -> None:
    """One request per event, exactly as openlineage-python's HttpTransport sends them."""
    payloads = _emit_through_client(http_recorder, _dag_events())
    store = _store_events(store_url, payloads)
    try:
        with store.connect() as conn:
            graph = load_graph(conn)
            assert set(graph.edges()) == {(API, RAW), (RAW, FCT), (FCT, MART)}
            assert graph.nodes[API].kind == "source"
            result = impact(graph, RAW)
            assert result.direct == [FCT]
            assert result.transitive == [(MART, 2)]
            edges = {(e.upstream, e.downstream): e for e in reads.lineage_edges(conn)}
            assert {e.source for e in edges.values()} == {"openlineage"}
            assert edges[(RAW, FCT)].columns == {"mmol": ["sgv"]}

            runs = {r.run_id: r for r in reads.runs(conn)}
            assert len(runs) == 4
            ingest = runs[Dag.ingest]
            assert (ingest.job, ingest.status) == ("glucose/ingest", "success")
            assert ingest.start_time == T0 + timedelta(minutes=1)
            assert ingest.end_time == T0 + timedelta(minutes=4)
            assert ingest.parent_run_id == Dag.dag_run
            assert ingest.partition == "2024-10-15"
            assert ingest.trace_id == Dag.ingest.replace("-", "")
            assert json.loads(ingest.tags["openlineage.run.processing_engine"])["name"] == "Airflow"
            transform = runs[Dag.transform]
            assert json.loads(transform.tags["openlineage.job.sql"])["dialect"] == "postgres"

            publish = runs[Dag.publish]
            assert publish.status == "failure"
            assert publish.error_type == "ConnectionError"
            assert (
                publish.error_message == "ConnectionError: superset refused the upload (HTTP 503)"
            )
            assert publish.error_traceback == PUBLISH_TRACE
            assert runs[Dag.dag_run].status == "failure"
            assert runs[Dag.dag_run].parent_run_id is None

            (mart,) = reads.materializations(conn, asset=MART)
            assert (mart.status, mart.error_type) == ("failure", "ConnectionError")
            assert mart.error_traceback == PUBLISH_TRACE
            assert mart.duration_seconds == 60.0

            (log,) = reads.logs(conn, run_id=Dag.publish)
            assert (log.level, log.logger, log.job, log.asset) == (
                40,
                "openlineage",
                "glucose/publish",
                MART,
            )
            assert "superset refused the upload" in log.message
            assert log.attributes["stack_trace"] == PUBLISH_TRACE
            assert log.trace_id == Dag.publish.replace("-", "")

            fct = asset_metrics(conn, FCT, now=_epoch(60))
            assert fct.last_status == "success"
            assert [(r.run_id, r.rows, r.bytes, r.duration_seconds) for r in fct.runs] == [
                (Dag.transform, 280, 51_200, 150.0)
            ]
            assert (fct.upstream, fct.downstream) == (1, 1)
            checks = {c.name: c for c in fct.checks}
            assert set(checks) == {"not_null(id)", "unique(id)", "accepted_range(sgv)"}
            assert checks["not_null(id)"].pass_rate == 100.0
            assert checks["not_null(id)"].severity == "warning"
            failed = checks["accepted_range(sgv)"]
            assert (failed.pass_rate, failed.severity, failed.last_value) == (0.0, "error", 512.0)
            (stored,) = [c for c in reads.check_results(conn) if c.name == "accepted_range(sgv)"]
            assert (stored.threshold, stored.total_rows) == (400.0, 280)
            assert stored.message == "sgv stays below 400 mg/dL"

            raw = asset_metrics(conn, RAW, now=_epoch(60))
            assert [(r.rows, r.bytes, r.status) for r in raw.runs] == [(288, 40_960, "success")]
            mart_metrics = asset_metrics(conn, MART, now=_epoch(60))
            assert mart_metrics.failure_rate == 100.0
            assert mart_metrics.runs[0].error_message.startswith("ConnectionError")

            snapshots = {s.asset: s for s in reads.schema_snapshots(conn)}
            assert set(snapshots) == {RAW, FCT}
            assert snapshots[FCT].columns == [
                ("id", "VARCHAR"),
                ("sgv", "INT"),
                ("date", "TIMESTAMP"),
                ("mmol", "DOUBLE"),
            ]
            assert snapshots[FCT].hash == schema_hash(snapshots[FCT].columns)
            assert snapshots[FCT].run_id == Dag.transform
    finally:
        store.close()


def test_one_array_request_equals_one_request_per_event(tmp_path: Path) -> None:
    """Marquez accepts an array too; folding START and COMPLETE in one batch loses nothing."""
    payload = [Serde.to_dict(e) for e in _dag_events()]
    one = to_ingested(payload, now=0)
    assert (one.accepted, one.rejected) == (8, [])
    store = Store(f"sqlite:///{tmp_path}/l.db")
    store.write(one.batch)
    with store.connect() as conn:
        runs = {r.run_id: r for r in reads.runs(conn)}
        assert runs[Dag.transform].status == "success"
        assert runs[Dag.transform].start_time == T0 + timedelta(minutes=5)
        assert runs[Dag.transform].end_time == T0 + timedelta(minutes=7.5)
        # Tags of START and COMPLETE are merged, not replaced.
        assert "openlineage.job.sql" in runs[Dag.transform].tags
        assert len(reads.materializations(conn)) == 3
    store.close()


def test_an_output_first_listed_on_complete_gets_the_start_of_the_same_request() -> None:
    """START often lists no outputs; only a START in the same request can lend its time."""
    run_id = str(uuid.uuid4())
    start = Serde.to_dict(_event(RunState.START, 0, run_id, "load"))
    complete = Serde.to_dict(
        _event(RunState.COMPLETE, 2, run_id, "load", outputs=[OutputDataset(WAREHOUSE, "x")])
    )
    (together,) = to_ingested([start, complete], now=0).batch.materializations
    assert (together.start_time, together.end_time) == (T0, T0 + timedelta(minutes=2))
    (alone,) = to_ingested(complete, now=0).batch.materializations
    assert (alone.start_time, alone.end_time) == (None, T0 + timedelta(minutes=2))


@pytest.mark.parametrize("order", ["start_first", "complete_first"])
def test_start_then_complete_is_one_run_with_both_times(store_url: str, order: str) -> None:
    run_id = str(uuid.uuid4())
    out = OutputDataset(WAREHOUSE, "raw.x", outputFacets={"outputStatistics": _stats(10, 99)})
    start = Serde.to_dict(_event(RunState.START, 0, run_id, "load", outputs=[out]))
    complete = Serde.to_dict(_event(RunState.COMPLETE, 2, run_id, "load", outputs=[out]))
    payloads = [start, complete] if order == "start_first" else [complete, start]
    store = _store_events(store_url, payloads)
    with store.connect() as conn:
        (run,) = reads.runs(conn)
        assert (run.status, run.start_time, run.end_time) == (
            "success",
            T0,
            T0 + timedelta(minutes=2),
        )
        (mat,) = reads.materializations(conn)
        assert (mat.status, mat.rows, mat.bytes, mat.duration_seconds) == ("success", 10, 99, 120.0)
        assert mat.attributes["openlineage.namespace"] == WAREHOUSE
    store.close()


def test_running_and_abort_states() -> None:
    run_id = str(uuid.uuid4())
    out = OutputDataset(WAREHOUSE, "raw.x")
    running = to_ingested(
        Serde.to_dict(_event(RunState.RUNNING, 1, run_id, "j", outputs=[out])), now=0
    )
    (run,) = running.batch.runs
    # The first event the store sees of a run opens it; a START, if it comes, moves it back.
    assert (run.status, run.start_time, run.end_time) == (
        "started",
        T0 + timedelta(minutes=1),
        None,
    )
    abort = to_ingested(Serde.to_dict(_event(RunState.ABORT, 2, run_id, "j", outputs=[out])), now=0)
    assert abort.batch.runs[0].status == "canceled"
    assert abort.batch.materializations[0].status == "canceled"
    assert abort.batch.logs == []  # only FAIL writes a log line


def test_lineage_only_events_open_no_runs() -> None:
    """No eventType, OTHER, and static JobEvents: edges and schemas, but no run state."""
    run_id = str(uuid.uuid4())
    inputs = [InputDataset(WAREHOUSE, "a", facets={"schema": _schema(x="INT")})]
    outputs = [OutputDataset(WAREHOUSE, "b")]
    untyped = Serde.to_dict(_event(RunState.OTHER, 0, run_id, "j", inputs=inputs, outputs=outputs))
    del untyped["eventType"]
    other = Serde.to_dict(_event(RunState.OTHER, 0, run_id, "j", inputs=inputs, outputs=outputs))
    static = Serde.to_dict(
        JobEvent(
            eventTime=_at(0), job=Job(namespace="glucose", name="j"), inputs=inputs, outputs=outputs
        )
    )
    dataset = Serde.to_dict(
        DatasetEvent(
            eventTime=_at(0),
            dataset=StaticDataset(WAREHOUSE, "c", facets={"schema": _schema(y="TEXT")}),
        )
    )
    result = to_ingested([untyped, other, static, dataset], now=0)
    assert (result.accepted, result.rejected) == (4, [])
    batch = result.batch
    assert (batch.runs, batch.materializations, batch.logs) == ([], [], [])
    assert {(e.upstream, e.downstream) for e in batch.edges} == {
        (f"{WAREHOUSE}/a", f"{WAREHOUSE}/b")
    }
    assert [s.asset for s in batch.schemas][-1] == f"{WAREHOUSE}/c"


def test_unknown_facets_are_kept_not_rejected() -> None:
    run_id = str(uuid.uuid4())
    event = Serde.to_dict(
        _event(
            RunState.COMPLETE,
            0,
            run_id,
            "spark_job",
            inputs=[
                InputDataset(
                    WAREHOUSE,
                    "src",
                    inputFacets={
                        "dataQualityMetrics": data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
                            columnMetrics={}, rowCount=7, bytes=70
                        )
                    },
                )
            ],
            outputs=[OutputDataset(WAREHOUSE, "dst")],
        )
    )
    event["run"]["facets"]["spark_properties"] = {"properties": {"spark.master": "local[*]"}}
    event["outputs"][0]["facets"]["custom_thing"] = {"anything": [1, 2, {"x": None}]}
    event["outputs"][0]["outputFacets"]["dataQualityMetrics"] = {"rowCount": 5, "bytes": 50}
    event["job"]["facets"]["jobType"] = {"processingType": "BATCH", "integration": "SPARK"}
    result = to_ingested(event, now=0)
    assert result.rejected == []
    (run,) = result.batch.runs
    assert json.loads(run.tags["openlineage.run.spark_properties"]) == {
        "properties": {"spark.master": "local[*]"}
    }
    assert json.loads(run.tags["openlineage.job.jobType"])["integration"] == "SPARK"
    inputs = json.loads(run.tags["openlineage.inputs"])
    assert inputs[f"{WAREHOUSE}/src"]["dataQualityMetrics"]["rowCount"] == 7
    (mat,) = result.batch.materializations
    assert mat.attributes["openlineage.facets"]["custom_thing"] == {"anything": [1, 2, {"x": None}]}
    assert (mat.rows, mat.bytes) == (5, 50)  # dataQualityMetrics when outputStatistics is absent


def test_oversized_facets_stay_within_the_tag_budget() -> None:
    event = Serde.to_dict(_event(RunState.START, 0, str(uuid.uuid4()), "j"))
    event["run"]["facets"] = {f"big{i}": {"blob": "x" * 15_000} for i in range(5)}
    event["run"]["facets"]["huge"] = {"blob": "y" * 100_000}
    (run,) = to_ingested(event, now=0).batch.runs
    # Text is cut at 64 Ki characters at the ingest boundary (marked) before the facet budget.
    huge = json.loads(run.tags["openlineage.run.huge"])
    assert huge["_truncated"] is True and 65_536 <= huge["_chars"] < 100_011
    assert sum(len(k) + len(v) for k, v in run.tags.items()) < 64 * 1024
    assert "big4" in run.tags["openlineage.dropped_facets"]


def test_oversized_output_facets_keep_the_materialization_attributes_readable() -> None:
    event = _valid()
    event["outputs"][0]["facets"] = {f"big{i}": {"blob": "x" * 15_000} for i in range(6)}
    (mat,) = to_ingested(event, now=0).batch.materializations
    assert mat.attributes["openlineage.name"] == "b"
    assert len(mat.attributes["openlineage.facets"]) == 3
    assert mat.attributes["openlineage.dropped_facets"] == ["big3", "big4", "big5"]
    assert len(json.dumps(mat.attributes)) < 64 * 1024


def _valid(**changes: Any) -> dict[str, Any]:
    event = Serde.to_dict(
        _event(
            RunState.COMPLETE,
            0,
            str(uuid.uuid4()),
            "j",
            inputs=[InputDataset(WAREHOUSE, "a")],
            outputs=[OutputDataset(WAREHOUSE, "b")],
        )
    )
    event.update(changes)
    return event


def test_bad_events_are_rejected_one_by_one_with_reasons() -> None:
    no_time = _valid()
    del no_time["eventTime"]
    no_run_id = _valid()
    del no_run_id["run"]["runId"]
    no_job_name = _valid()
    del no_job_name["job"]["name"]
    payload = [
        _valid(),
        no_time,
        _valid(eventTime="yesterday"),
        _valid(eventTime="2024-02-30T10:00:00Z"),
        no_run_id,
        no_job_name,
        _valid(eventType="FINISHED"),
        "not an event",
        _valid(outputs={"name": "b"}),
        _valid(outputs=[{"namespace": "x"}]),
        _valid(run={"runId": "r" * 129}),
        _valid(run=None),
        _valid(eventTime="1969-12-31T23:59:59Z"),
        _valid(eventTime="2024-10-15T06:00:00.123456789+02:00"),
    ]
    result = to_ingested(payload, now=0)
    assert result.accepted == 2
    reasons = {r.index: r.reason for r in result.rejected}
    assert set(reasons) == set(range(1, 13))
    assert reasons[1] == "eventTime is missing"
    assert "is not an ISO 8601" in reasons[2] and "is not an ISO 8601" in reasons[3]
    assert reasons[4] == "run.runId is missing"
    assert reasons[5] == "job.name is missing"
    assert "unknown eventType 'FINISHED'" in reasons[6]
    assert reasons[7] == "an event must be a JSON object, not a string"
    assert reasons[8] == "outputs must be an array, not an object"
    assert reasons[9] == "outputs[0].name is missing"
    assert "longer than 128" in reasons[10]
    assert reasons[11] == "run is missing"
    assert "before 1970" in reasons[12]
    assert all("\n" not in r for r in reasons.values())
    # The accepted nanosecond, offset time is read as UTC microseconds.
    assert result.batch.runs[-1].end_time == datetime(
        2024, 10, 15, 4, 0, 0, 123456, tzinfo=timezone.utc
    )


@pytest.mark.parametrize("payload", ["{}", 3, None, b"[]", "x"])
def test_a_payload_that_is_neither_object_nor_array_is_invalid(payload: object) -> None:
    with pytest.raises(InvalidArgumentError, match="must be a RunEvent object or an array"):
        to_ingested(payload, now=0)


def test_empty_array_is_fine() -> None:
    assert to_ingested([], now=0) == Ingested()


@pytest.mark.parametrize(
    ("namespace", "name", "expected"),
    [
        ("postgres://db:5432", "public.orders", "postgres://db:5432/public.orders"),
        ("s3://bucket", "raw/events", "s3://bucket/raw/events"),
        ("s3://bucket/", "/raw/events", "s3://bucket/raw/events"),
        ("bigquery", "project.dataset.table", "bigquery/project.dataset.table"),
        ("file", "/tmp/out.csv", "file/tmp/out.csv"),
        ("file://", "/tmp/out.csv", "file:///tmp/out.csv"),
        ("hdfs://namenode:8020", "/data/x", "hdfs://namenode:8020/data/x"),
        ("", "orphan", "orphan"),
    ],
)
def test_dataset_names_join_namespace_and_name_with_one_slash(
    namespace: str, name: str, expected: str
) -> None:
    assert dataset_name(namespace, name) == expected


def test_jobs_in_the_default_namespace_keep_their_bare_name() -> None:
    assert job_name("default", "my_dag.my_task") == "my_dag.my_task"
    assert job_name("airflow-prod", "my_dag.my_task") == "airflow-prod/my_dag.my_task"


@pytest.mark.parametrize(
    ("message", "trace", "expected"),
    [
        (
            "Table or view not found: wrong_table",
            'Exception in thread "main" org.apache.spark.sql.AnalysisException: Table or view '
            "not found\n\tat org.apache.spark.Foo.bar(Foo.scala:1)",
            "org.apache.spark.sql.AnalysisException",
        ),
        ("boom", "Traceback (most recent call last):\n  File 'x'\nKeyError: 'id'", "KeyError"),
        ("psycopg.errors.UndefinedTable: relation missing", None, "psycopg.errors.UndefinedTable"),
        ("Something went wrong", None, None),
    ],
)
def test_error_type_comes_from_the_message_or_the_stack_trace(
    message: str, trace: str | None, expected: str | None
) -> None:
    facet: dict[str, Any] = {"message": message, "programmingLanguage": "x"}
    if trace:
        facet["stackTrace"] = trace
    event = _valid(eventType="FAIL")
    event["run"]["facets"] = {"errorMessage": facet}
    result = to_ingested(event, now=0)
    assert result.batch.runs[0].error_type == expected
    assert result.batch.materializations[0].error_message == message


def test_fail_without_error_facet_still_logs() -> None:
    result = to_ingested(_valid(eventType="FAIL"), now=0)
    (log,) = result.batch.logs
    assert log[1] == 40 and "has no errorMessage facet" in log[2]


def test_schema_hash_matches_the_sdk(sdk: Store) -> None:
    import lakelens

    columns = {"id": "VARCHAR", "sgv": "INT", "nested.value": "DOUBLE"}
    assert lakelens.schema(columns, asset="x") == schema_hash(list(columns.items()))


def test_nested_schema_fields_flatten_with_dots() -> None:
    event = _valid()
    event["outputs"][0]["facets"] = {
        "schema": {
            "fields": [
                {"name": "id", "type": "INT"},
                {"name": "address", "type": "STRUCT", "fields": [{"name": "city", "type": "TEXT"}]},
                {"name": "untyped"},
                {"type": "nameless"},
            ]
        }
    }
    (snap,) = to_ingested(event, now=0).batch.schemas
    assert snap.columns == [
        ("id", "INT"),
        ("address", "STRUCT"),
        ("address.city", "TEXT"),
        ("untyped", ""),
    ]


def test_hostile_strings_are_stored(store_url: str) -> None:
    """NUL characters and lone surrogates are legal JSON but no database stores them."""
    event = _valid(eventType="FAIL")
    event["job"]["name"] = "job\x00name"
    event["outputs"][0]["name"] = "b\ud800"
    event["run"]["facets"] = {
        "errorMessage": {"message": "bad \x00 byte", "programmingLanguage": "x"},
        "weird\x00key": {"v": "\udfff"},
    }
    result = to_ingested(event, now=0)
    assert result.rejected == []
    store = Store(store_url)
    store.write(result.batch)
    with store.connect() as conn:
        (run,) = reads.runs(conn)
        assert run.job == "glucose/job\ufffdname"
        assert run.error_message == "bad \ufffd byte"
        assert reads.materializations(conn)[0].asset == f"{WAREHOUSE}/b\ufffd"
    store.close()


def test_deeply_nested_events_are_rejected_not_crashed() -> None:
    deep: Any = {}
    node = deep
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    event = _valid()
    event["run"]["facets"] = {"deep": deep}
    result = to_ingested([event, _valid()], now=0)
    assert result.accepted == 1
    assert "nested more than 64 levels" in result.rejected[0].reason


# -- fuzzing ----------------------------------------------------------------------------------

# Text with what databases refuse (NUL, lone surrogates) and what columns cannot hold (length).
_text = st.text(
    st.characters() | st.sampled_from(["\x00", "\ud800", "\udfff"]), max_size=20
) | st.sampled_from(["r" * 129, "n" * 600, "2024-10-15T06:00:00Z", "START", "FAIL"])
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=20,
)
_FIELDS = [
    ("eventTime",),
    ("eventType",),
    ("run",),
    ("run", "runId"),
    ("run", "facets"),
    ("job",),
    ("job", "name"),
    ("job", "namespace"),
    ("job", "facets"),
    ("inputs",),
    ("outputs",),
    ("outputs", 0),
    ("outputs", 0, "name"),
    ("outputs", 0, "facets"),
    ("outputs", 0, "outputFacets"),
    ("outputs", 0, "outputFacets", "outputStatistics"),
    ("outputs", 0, "outputFacets", "outputStatistics", "rowCount"),
    ("outputs", 0, "facets", "schema"),
    ("outputs", 0, "facets", "schema", "fields"),
    ("outputs", 0, "outputFacets", "dataQualityAssertions"),
    ("outputs", 0, "outputFacets", "dataQualityAssertions", "assertions"),
    ("outputs", 0, "facets", "columnLineage"),
    ("run", "facets", "errorMessage"),
    ("run", "facets", "errorMessage", "message"),
    ("run", "facets", "parent"),
    ("run", "facets", "nominalTime"),
]


def _full_event() -> dict[str, Any]:
    return Serde.to_dict(
        _event(
            RunState.FAIL,
            0,
            str(uuid.uuid4()),
            "j",
            inputs=[_raw(facets=False)],
            outputs=[_fct(output=True)],
            run_facets={
                **_parent(),
                "errorMessage": error_message_run.ErrorMessageRunFacet(
                    message="x", programmingLanguage="python"
                ),
            },
        )
    )


def _replace(event: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = event
    for key in path[:-1]:
        if (isinstance(node, dict) and key in node) or (
            isinstance(node, list) and isinstance(key, int) and key < len(node)
        ):
            node = node[key]
        else:
            return
    if isinstance(node, (dict, list)):
        with contextlib.suppress(IndexError, TypeError):
            node[path[-1]] = value


@settings(max_examples=300, deadline=None)
@given(st.one_of(_json, st.lists(_json, max_size=3)))
def test_fuzz_arbitrary_json_never_raises_anything_but_invalid_argument(payload: Any) -> None:
    try:
        result = to_ingested(payload, now=0)
    except InvalidArgumentError as exc:
        assert "\n" not in str(exc)
        return
    assert result.accepted + len(result.rejected) == (
        len(payload) if isinstance(payload, list) else 1
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.tuples(st.sampled_from(_FIELDS), _json), min_size=1, max_size=4))
def test_fuzz_mutated_events_are_rejected_or_stored(
    store_url: str, mutations: list[tuple[tuple[Any, ...], Any]]
) -> None:
    """Whatever a field is replaced with, the event is rejected or the batch writes cleanly."""
    event = _full_event()
    for path, value in mutations:
        _replace(event, path, value)
    result = to_ingested([event], now=0)
    assert result.accepted + len(result.rejected) == 1
    assert all("\n" not in r.reason for r in result.rejected)
    store = Store(store_url)
    try:
        store.write(result.batch)
    finally:
        store.close()
