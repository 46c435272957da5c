"""OTLP/HTTP traces and logs from the real OpenTelemetry SDK and exporters, converted and stored."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from lakelens.analysis.trace import load_trace
from lakelens.errors import InvalidArgumentError
from lakelens.ingest import Ingested
from lakelens.ingest.openlineage import to_ingested as openlineage_to_ingested
from lakelens.ingest.otlp import logs_to_ingested, traces_to_ingested
from lakelens.store import Store, reads

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
T = 1_729_000_000_000_000_000  # unix nanos
RUN = "run-2024-10-15"


def _ingest_all(convert: Any, bodies: list[tuple[str, bytes]]) -> Ingested:
    total = Ingested()
    for content_type, body in bodies:
        result = convert(body, content_type, now=1.0)
        total.batch.spans += result.batch.spans
        total.batch.logs += result.batch.logs
        total.rejected += result.rejected
        total.accepted += result.accepted
    return total


# -- traces -----------------------------------------------------------------------------------


def _pipeline_spans(tracer: trace.Tracer) -> None:
    """A run's spans with chosen times: root 2 s, load 1.4 s ⊃ fetch 1 s, publish fails."""
    root = tracer.start_span("daily_glucose_pipeline", start_time=T)
    with trace.use_span(root, end_on_exit=False):
        load = tracer.start_span(
            "load",
            start_time=T + 100_000_000,
            attributes={"lakelens.asset": "dlt_glucose_entries", "rows": 487},
        )
        with trace.use_span(load, end_on_exit=False):
            fetch = tracer.start_span(
                "fetch_from_api",
                kind=trace.SpanKind.CLIENT,
                start_time=T + 200_000_000,
                attributes={"http.url": "https://nightscout.example.com/api/v1/entries"},
            )
            fetch.add_event("page", {"page": 1, "ratio": 0.5}, timestamp=T + 300_000_000)
            fetch.end(end_time=T + 1_200_000_000)
        load.end(end_time=T + 1_500_000_000)
        publish = tracer.start_span("publish", start_time=T + 1_600_000_000)
        publish.record_exception(ConnectionError("refused"), timestamp=T + 1_700_000_000)
        publish.set_status(Status(StatusCode.ERROR, "superset refused the upload"))
        publish.end(end_time=T + 1_800_000_000)
    root.end(end_time=T + 2_000_000_000)


def _provider(run_attributes: dict[str, str]) -> TracerProvider:
    return TracerProvider(
        resource=Resource.create({"service.name": "glucose-etl", **run_attributes})
    )


def test_nested_spans_from_the_real_otlp_http_exporter(tmp_path: Path, http_recorder: Any) -> None:
    provider = _provider({"lakelens.run_id": RUN})
    exporter = OTLPSpanExporter(
        endpoint=f"{http_recorder.url}/v1/traces", compression=Compression.NoCompression
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _pipeline_spans(provider.get_tracer("glucose.pipeline", "1.2.3"))
    assert provider.force_flush()
    provider.shutdown()

    bodies = http_recorder.bodies("/v1/traces")
    assert {encoding for *_, encoding, _ in http_recorder.requests} == {"identity"}
    assert bodies and all(kind == PROTOBUF for kind, _ in bodies)
    result = _ingest_all(traces_to_ingested, bodies)
    assert (result.accepted, result.rejected) == (4, [])

    store = Store(f"sqlite:///{tmp_path}/l.db")
    store.write(result.batch)
    with store.connect() as conn:
        tree = load_trace(conn, RUN)
        assert tree.span_count == 4 and tree.error_count == 1
        (root,) = tree.roots
        assert root.span.name == "daily_glucose_pipeline"
        assert [c.span.name for c in root.children] == ["load", "publish"]
        load, publish = root.children
        (fetch,) = load.children
        assert fetch.span.name == "fetch_from_api"
        assert fetch.span.parent_id == load.span.span_id
        assert load.span.parent_id == root.span.span_id
        durations = {n.span.name: n.duration_seconds for n in tree.walk()}
        assert durations == pytest.approx(
            {"daily_glucose_pipeline": 2.0, "load": 1.4, "fetch_from_api": 1.0, "publish": 0.2},
            abs=1e-6,
        )
        assert fetch.offset_seconds == pytest.approx(0.2, abs=1e-6)
        assert tree.duration_seconds == pytest.approx(2.0, abs=1e-6)

        assert {n.span.run_id for n in tree.walk()} == {RUN}
        assert load.span.asset == "dlt_glucose_entries"
        assert fetch.span.asset is None  # the asset is an attribute of `load` only
        attributes = dict(load.span.attributes)
        attributes.pop("service.instance.id", None)  # Resource.create adds a random one
        assert attributes == {
            "rows": 487,
            "service.name": "glucose-etl",
            "otel.scope.name": "glucose.pipeline",
            "otel.scope.version": "1.2.3",
        }
        assert fetch.span.attributes["otel.span.kind"] == "client"
        assert fetch.span.events == [
            {
                "name": "page",
                "time": pytest.approx(T / 1e9 + 0.3),
                "attributes": {"page": 1, "ratio": 0.5},
            }
        ]
        assert (publish.span.status, publish.span.error_message) == (
            "error",
            "superset refused the upload",
        )
        assert publish.span.events[0]["name"] == "exception"
        assert publish.span.events[0]["attributes"]["exception.type"] == "ConnectionError"
        assert root.span.status == "ok"
        assert len({n.span.trace_id for n in tree.walk()}) == 1
    store.close()


def test_spans_join_the_openlineage_run_named_by_their_attribute(store_url: str) -> None:
    """`openlineage.run_id` on the resource ties Spark/Airflow spans to the OpenLineage run."""
    run_id = str(uuid.uuid4())
    memory = InMemorySpanExporter()
    provider = _provider({"openlineage.run_id": run_id})
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _pipeline_spans(provider.get_tracer("spark"))
    provider.shutdown()
    body = encode_spans(memory.get_finished_spans()).SerializeToString()

    lineage = openlineage_to_ingested(
        [
            {
                "eventType": event_type,
                "eventTime": when,
                "run": {"runId": run_id},
                "job": {"namespace": "spark", "name": "glucose_job"},
            }
            for event_type, when in (
                ("START", "2024-10-15T13:46:40Z"),
                ("COMPLETE", "2024-10-15T13:46:42Z"),
            )
        ],
        now=0,
    )
    store = Store(store_url)
    store.write(lineage.batch)
    store.write(traces_to_ingested(body, PROTOBUF, now=0).batch)
    with store.connect() as conn:
        tree = load_trace(conn, run_id)
        assert tree.run is not None and tree.run.job == "spark/glucose_job"
        assert tree.span_count == 4
        assert {n.span.run_id for n in tree.walk()} == {run_id}
    store.close()


def test_spans_without_a_run_are_kept_as_free_traces(tmp_path: Path) -> None:
    memory = InMemorySpanExporter()
    provider = _provider({})
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _pipeline_spans(provider.get_tracer("adhoc"))
    provider.shutdown()
    body = encode_spans(memory.get_finished_spans()).SerializeToString()
    result = traces_to_ingested(body, PROTOBUF, now=0)
    assert result.accepted == 4
    store = Store(f"sqlite:///{tmp_path}/l.db")
    store.write(result.batch)
    with store.connect() as conn:
        trace_id = result.batch.spans[0][0]
        stored = reads.spans(conn, trace_id=trace_id)
        assert len(stored) == 4 and {s.run_id for s in stored} == {None}
    store.close()


def _hex_ids(node: Any) -> Any:
    """protobuf's JSON writes bytes as base64; OTLP JSON writes trace and span ids as hex."""
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).hex()
            if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str)
            else _hex_ids(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def _otlp_json(message: Any) -> bytes:
    data = json_format.MessageToDict(message, use_integers_for_enums=True)
    return json.dumps(_hex_ids(data)).encode()


def test_json_encoding_gives_the_same_spans_as_protobuf() -> None:
    memory = InMemorySpanExporter()
    provider = _provider({"lakelens.run_id": RUN})
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _pipeline_spans(provider.get_tracer("glucose.pipeline"))
    provider.shutdown()
    request = encode_spans(memory.get_finished_spans())
    from_protobuf = traces_to_ingested(request.SerializeToString(), PROTOBUF, now=0)
    body = _otlp_json(request)
    assert b'"startTimeUnixNano": "' in body  # int64 as strings, as the spec writes them
    from_json = traces_to_ingested(body, "application/json; charset=utf-8", now=0)
    assert from_json.batch.spans == from_protobuf.batch.spans
    assert from_json.accepted == 4


HAND_WRITTEN_TRACE = {
    "resourceSpans": [
        {
            "resource": {
                "attributes": [
                    {"key": "service.name", "value": {"stringValue": "dbt"}},
                    {"key": "host.name", "value": {"stringValue": "worker-1"}},
                    {"key": "lakelens.run_id", "value": {"stringValue": "resource-run"}},
                ]
            },
            "scopeSpans": [
                {
                    "scope": {
                        "name": "dbt.runner",
                        "attributes": [
                            {"key": "lakelens.asset", "value": {"stringValue": "scope-asset"}}
                        ],
                    },
                    "spans": [
                        {
                            "traceId": "5B8EFFF798038103D269B633813FC60C",
                            "spanId": "EEE19B7EC3C1B174",
                            "parentSpanId": "EEE19B7EC3C1B173",
                            "name": "model.stg_orders",
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": 1544712661500000000,
                            "kind": 2,
                            "attributes": [
                                {"key": "lakelens.run_id", "value": {"stringValue": "span-run"}},
                                {"key": "rows", "value": {"intValue": "9007199254740993"}},
                                {"key": "ok", "value": {"boolValue": True}},
                                {"key": "ratio", "value": {"doubleValue": 0.25}},
                                {"key": "nan", "value": {"doubleValue": "NaN"}},
                                {"key": "blob", "value": {"bytesValue": "AAEC"}},
                                {
                                    "key": "tags",
                                    "value": {
                                        "arrayValue": {
                                            "values": [{"stringValue": "a"}, {"intValue": 2}]
                                        }
                                    },
                                },
                                {
                                    "key": "config",
                                    "value": {
                                        "kvlistValue": {
                                            "values": [
                                                {
                                                    "key": "materialized",
                                                    "value": {"stringValue": "view"},
                                                }
                                            ]
                                        }
                                    },
                                },
                                {"key": "empty", "value": {}},
                            ],
                            "events": [
                                {
                                    "timeUnixNano": "1544712661000000000",
                                    "name": "exception",
                                    "attributes": [
                                        {
                                            "key": "exception.type",
                                            "value": {"stringValue": "DbtRuntimeError"},
                                        },
                                        {
                                            "key": "exception.message",
                                            "value": {"stringValue": "bad SQL"},
                                        },
                                    ],
                                }
                            ],
                            "links": [
                                {
                                    "traceId": "00000000000000000000000000000001",
                                    "spanId": "0000000000000002",
                                }
                            ],
                            "status": {"code": 2},
                            "someFutureField": {"x": 1},
                        }
                    ],
                }
            ],
        }
    ]
}


def test_hand_written_otlp_json_maps_every_value_kind() -> None:
    result = traces_to_ingested(json.dumps(HAND_WRITTEN_TRACE).encode(), JSON, now=0)
    assert result.rejected == []
    (
        (
            trace_id,
            span_id,
            parent_id,
            run_id,
            asset,
            name,
            start,
            end,
            status,
            error,
            attrs,
            events,
        ),
    ) = result.batch.spans
    assert (trace_id, span_id, parent_id) == (
        "5b8efff798038103d269b633813fc60c",
        "eee19b7ec3c1b174",
        "eee19b7ec3c1b173",
    )
    # The span's own attribute wins over the resource's; the scope names the asset.
    assert (run_id, asset, name) == ("span-run", "scope-asset", "model.stg_orders")
    assert (start, end) == (1544712660.0, 1544712661.5)
    assert (status, error) == ("error", "DbtRuntimeError: bad SQL")
    assert json.loads(attrs) == {
        "rows": 9007199254740993,
        "ok": True,
        "ratio": 0.25,
        "nan": "nan",
        "blob": "AAEC",
        "tags": ["a", 2],
        "config": {"materialized": "view"},
        "empty": None,
        "service.name": "dbt",
        "otel.scope.name": "dbt.runner",
        "otel.span.kind": "server",
        "otel.links": [
            {
                "trace_id": "00000000000000000000000000000001",
                "span_id": "0000000000000002",
                "attributes": {},
            }
        ],
    }
    assert json.loads(events)[0]["time"] == 1544712661.0


def _json_span(**changes: Any) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "s",
        "startTimeUnixNano": "1544712660000000000",
    }
    span.update(changes)
    return {k: v for k, v in span.items() if v is not None}


def _trace_body(*spans: dict[str, Any], resource: list[Any] | None = None) -> bytes:
    return json.dumps(
        {
            "resourceSpans": [
                {"resource": {"attributes": resource or []}, "scopeSpans": [{"spans": list(spans)}]}
            ]
        }
    ).encode()


def test_spans_that_cannot_be_stored_are_rejected_one_by_one() -> None:
    long_run = [{"key": "lakelens.run_id", "value": {"stringValue": "r" * 129}}]
    body = _trace_body(
        _json_span(),
        _json_span(traceId="abcd"),
        _json_span(startTimeUnixNano=None),
        _json_span(spanId=None),
        _json_span(attributes=long_run),
        _json_span(traceId="00000000000000000000000000000000"),
        _json_span(spanId="eee19b7ec3c1b175", parentSpanId="0a"),
    )
    result = traces_to_ingested(body, JSON, now=0)
    assert result.accepted == 1
    reasons = {r.index: r.reason for r in result.rejected}
    assert reasons == {
        1: "span 1: traceId must be 16 bytes, not 2",
        2: "span 2: startTimeUnixNano is missing",
        3: "span 3: spanId is missing",
        4: "span 4: the run id attribute is longer than 128 characters",
        5: "span 5: traceId is missing",
        6: "span 6: parentSpanId must be 8 bytes, not 1",
    }


# -- logs -------------------------------------------------------------------------------------


@pytest.fixture
def otel_logger() -> Iterator[tuple[logging.Logger, LoggerProvider, Any]]:
    """A stdlib logger whose records go through the OpenTelemetry logging handler."""
    provider = LoggerProvider(
        resource=Resource.create(
            {"service.name": "glucose-etl", "lakelens.run_id": RUN, "lakelens.job": "daily_glucose"}
        )
    )
    with warnings.catch_warnings():
        # Deprecated in favour of opentelemetry-instrumentation-logging; same records either way.
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    logger = logging.getLogger(f"glucose.load.{uuid.uuid4().hex[:6]}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield logger, provider, handler
    finally:
        logger.removeHandler(handler)
        provider.shutdown()


def _log_lines(logger: logging.Logger) -> str:
    """Log inside a span; returns the span id the records should carry."""
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("load") as span:
        logger.info("fetched %d rows", 487, extra={"lakelens.asset": "dlt_glucose_entries"})
        logger.warning("late data")
        try:
            raise ValueError("bad row 17")
        except ValueError:
            logger.exception("row rejected")
        logger.debug("details")
        logger.critical({"event": "disk_full", "free": 0.1})
        return f"{span.get_span_context().span_id:016x}"


def test_logs_from_the_real_otlp_http_exporter(
    store_url: str, http_recorder: Any, otel_logger: tuple[logging.Logger, LoggerProvider, Any]
) -> None:
    logger, provider, _handler = otel_logger
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(
            OTLPLogExporter(
                endpoint=f"{http_recorder.url}/v1/logs", compression=Compression.NoCompression
            )
        )
    )
    span_id = _log_lines(logger)
    provider.force_flush()
    bodies = http_recorder.bodies("/v1/logs")
    assert {encoding for *_, encoding, _ in http_recorder.requests} == {"identity"}
    assert len(bodies) == 5 and {kind for kind, _ in bodies} == {PROTOBUF}
    result = _ingest_all(logs_to_ingested, bodies)
    assert (result.accepted, result.rejected) == (5, [])

    store = Store(store_url)
    store.write(result.batch)
    with store.connect() as conn:
        logs = reads.logs(conn, run_id=RUN)
    store.close()
    assert [(r.level, r.message) for r in logs] == [
        (20, "fetched 487 rows"),
        (30, "late data"),
        (40, "row rejected"),
        (10, "details"),
        (50, '{"event":"disk_full","free":0.1}'),
    ]
    assert {(r.logger, r.job, r.span_id) for r in logs} == {(logger.name, "daily_glucose", span_id)}
    assert len({r.trace_id for r in logs}) == 1 and len(logs[0].trace_id or "") == 32
    assert logs[0].asset == "dlt_glucose_entries" and logs[1].asset is None
    assert "lakelens.asset" not in logs[0].attributes
    assert logs[0].attributes["service.name"] == "glucose-etl"
    assert logs[2].attributes["exception.type"] == "ValueError"
    assert "bad row 17" in logs[2].attributes["exception.stacktrace"]
    assert abs(logs[0].time.timestamp() - logs[1].time.timestamp()) < 5


def test_log_encoder_output_reads_the_same_as_json(
    otel_logger: tuple[logging.Logger, LoggerProvider, Any],
) -> None:
    logger, provider, _handler = otel_logger
    memory = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    _log_lines(logger)
    request = encode_logs(memory.get_finished_logs())
    from_protobuf = logs_to_ingested(request.SerializeToString(), PROTOBUF, now=0)
    from_json = logs_to_ingested(_otlp_json(request), JSON, now=0)
    assert from_protobuf.accepted == 5
    assert from_json.batch.logs == from_protobuf.batch.logs


def _log_body(*records: dict[str, Any], scope: str = "app") -> bytes:
    return json.dumps(
        {"resourceLogs": [{"scopeLogs": [{"scope": {"name": scope}, "logRecords": list(records)}]}]}
    ).encode()


@pytest.mark.parametrize(
    ("number", "text", "level"),
    [
        (1, "TRACE", 10),
        (5, "DEBUG", 10),
        (8, "", 10),
        (9, "INFO", 20),
        (12, "", 20),
        (13, "WARN", 30),
        (16, "", 30),
        (17, "ERROR", 40),
        (20, "", 40),
        (21, "FATAL", 50),
        (24, "", 50),
        (0, "warning", 30),
        (0, "Fatal", 50),
        (0, "", 20),
        (0, "whatever", 20),
    ],
)
def test_severity_maps_to_python_levels(number: int, text: str, level: int) -> None:
    body = _log_body(
        {
            "timeUnixNano": "1544712660300000000",
            "severityNumber": number,
            "severityText": text,
            "body": {"stringValue": "m"},
        }
    )
    (row,) = logs_to_ingested(body, JSON, now=0).batch.logs
    assert row[1] == level


def test_log_records_without_times_bodies_or_ids() -> None:
    body = _log_body(
        {
            "observedTimeUnixNano": "1544712660000000000",
            "body": {"kvlistValue": {"values": [{"key": "a", "value": {"intValue": "1"}}]}},
        },
        {"eventName": "job.started"},
        {
            "body": {"stringValue": "nul\u0000byte"},
            "attributes": [{"key": "openlineage.run_id", "value": {"stringValue": "ol-run"}}],
        },
        {"body": {"stringValue": "bad id"}, "traceId": "abcd"},
    )
    result = logs_to_ingested(body, JSON, now=42.0)
    first, second, third = result.batch.logs
    assert (first[0], first[2], first[3]) == (1544712660.0, '{"a":1}', "app")
    assert (second[0], second[2]) == (42.0, "job.started")
    assert (third[2], third[4]) == ("nul\ufffdbyte", "ol-run")
    assert [r.reason for r in result.rejected] == ["log record 3: traceId must be 16 bytes, not 2"]


# -- malformed requests -----------------------------------------------------------------------


@pytest.mark.parametrize("convert", [traces_to_ingested, logs_to_ingested])
@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"{}", "text/plain", "Unsupported Content-Type"),
        (b"{}", "", "Unsupported Content-Type"),
        (b"\xff\xfe garbage", JSON, "not valid JSON"),
        (b"[1, 2]", JSON, "must be a JSON object"),
        (b'"x"', JSON, "must be a JSON object"),
        (b"[" * 100_000, JSON, "not valid JSON"),
        (b'{"resourceSpans": 5, "resourceLogs": 5}', JSON, "does not match"),
        (b'{"resourceSpans": [5], "resourceLogs": [5]}', JSON, "does not match"),
        (b"\x0a\xff\xff\xff\xff\x0f", PROTOBUF, "not a valid protobuf"),
        (b"\x0a\x05\x0a\x03", PROTOBUF, "not a valid protobuf"),
    ],
)
def test_malformed_requests_raise_invalid_argument(
    convert: Any, body: bytes, content_type: str, message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message) as caught:
        convert(body, content_type, now=0)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (_json_span(traceId="xyz1"), "traceId must be a hex string"),
        (_json_span(spanId=12), "spanId must be a hex string"),
        (_json_span(startTimeUnixNano="soon"), "does not match OTLP"),
        (_json_span(attributes={"a": 1}), "does not match OTLP"),
        ("not a span", "traceId is missing"),
    ],
)
def test_a_span_of_the_wrong_shape_is_rejected_alone(bad: Any, reason: str) -> None:
    """One malformed span no longer refuses the whole request: the others are kept."""
    result = traces_to_ingested(_trace_body(_json_span(), bad, _json_span()), JSON, now=0)
    assert result.accepted == 2
    (rejection,) = result.rejected
    assert rejection.index == 1
    assert rejection.reason.startswith("span 1: ") and reason in rejection.reason


def test_a_log_record_of_the_wrong_shape_is_rejected_alone() -> None:
    body = _log_body({"body": {"stringValue": "ok"}}, {"traceId": "nothex!"})
    result = logs_to_ingested(body, JSON, now=0)
    assert result.accepted == 1
    assert "traceId must be a hex string" in result.rejected[0].reason


def test_a_lone_surrogate_in_otlp_json_is_stored_as_the_replacement_character() -> None:
    result = logs_to_ingested(_log_body({"body": {"stringValue": "a\ud800b"}}), JSON, now=0)
    assert result.rejected == []
    assert result.batch.logs[0][2] == "a\ufffdb"


def test_every_truncation_of_a_real_request_is_refused_or_read() -> None:
    memory = InMemorySpanExporter()
    provider = _provider({"lakelens.run_id": RUN})
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _pipeline_spans(provider.get_tracer("glucose.pipeline"))
    provider.shutdown()
    body = encode_spans(memory.get_finished_spans()).SerializeToString()
    refused = 0
    for cut in range(len(body)):
        try:
            traces_to_ingested(body[:cut], PROTOBUF, now=0)
        except InvalidArgumentError:
            refused += 1
    assert refused > len(body) // 2


def test_empty_requests_are_fine() -> None:
    assert traces_to_ingested(b"", PROTOBUF, now=0) == Ingested()
    assert logs_to_ingested(b"{}", JSON, now=0) == Ingested()


@settings(max_examples=400, deadline=None)
@given(
    body=st.binary(max_size=300),
    content_type=st.sampled_from([PROTOBUF, JSON]),
    logs=st.booleans(),
)
def test_fuzz_random_bytes_raise_only_invalid_argument(
    body: bytes, content_type: str, logs: bool
) -> None:
    convert = logs_to_ingested if logs else traces_to_ingested
    try:
        result = convert(body, content_type, now=0)
    except InvalidArgumentError as exc:
        assert "\n" not in str(exc)
    else:
        assert result.accepted + len(result.rejected) >= 0


_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
_SPAN_FIELDS = st.sampled_from(
    [
        "traceId",
        "spanId",
        "parentSpanId",
        "name",
        "kind",
        "startTimeUnixNano",
        "endTimeUnixNano",
        "attributes",
        "events",
        "links",
        "status",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_SPAN_FIELDS, _json_value, max_size=4), _json_value)
def test_fuzz_json_shapes_raise_only_invalid_argument(changes: dict[str, Any], noise: Any) -> None:
    for body in (
        _trace_body(_json_span(**changes)),
        json.dumps({"resourceSpans": noise}).encode(),
        json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [changes]}]}]}).encode(),
    ):
        for convert in (traces_to_ingested, logs_to_ingested):
            with contextlib.suppress(InvalidArgumentError):
                convert(body, JSON, now=0)


_hostile_text = st.text(
    st.characters(exclude_categories=("Cs",)) | st.just("\x00"), max_size=40
) | st.just("x" * 600)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    name=_hostile_text,
    key=_hostile_text,
    value=_hostile_text,
    run_id=_hostile_text,
    trace_id=st.binary(min_size=16, max_size=16),
    span_id=st.binary(min_size=8, max_size=8),
    start=st.integers(min_value=0, max_value=2**64 - 1),
    end=st.integers(min_value=0, max_value=2**64 - 1),
)
def test_fuzz_accepted_spans_and_logs_always_store(
    store_url: str,
    name: str,
    key: str,
    value: str,
    run_id: str,
    trace_id: bytes,
    span_id: bytes,
    start: int,
    end: int,
) -> None:
    """NUL characters, long names, extreme times: what is accepted never fails the write."""
    traces = ExportTraceServiceRequest()
    span = traces.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = trace_id, span_id, name
    span.start_time_unix_nano, span.end_time_unix_nano = start, end
    span.status.message, span.status.code = value, 2
    for k, v in ((key, value), ("lakelens.run_id", run_id), ("lakelens.asset", name)):
        attribute = span.attributes.add()
        attribute.key = k
        attribute.value.string_value = v
    logs = ExportLogsServiceRequest()
    scope_logs = logs.resource_logs.add().scope_logs.add()
    scope_logs.scope.name = name
    record = scope_logs.log_records.add()
    record.time_unix_nano, record.trace_id, record.span_id = start, trace_id, span_id
    record.body.string_value = value
    record.severity_text = value
    attribute = record.attributes.add()
    attribute.key, attribute.value.string_value = "lakelens.run_id", run_id
    store = Store(store_url)
    try:
        store.write(traces_to_ingested(traces.SerializeToString(), PROTOBUF, now=0).batch)
        store.write(logs_to_ingested(logs.SerializeToString(), PROTOBUF, now=0).batch)
    finally:
        store.close()
