"""Runs and traces known only from OTLP, sent by the real OpenTelemetry SDK exporters
(protobuf and JSON) to a real `lakelens serve` on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import (
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import lakelens
from lakelens.cli.main import app

runner = CliRunner()
ENCODINGS = ["protobuf", "json"]


def _post_json(url: str, message: Any) -> None:
    """POST an Export*ServiceRequest as OTLP/JSON: protobuf's JSON mapping with hex ids."""

    def hex_ids(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: base64.b64decode(v).hex()
                if k in ("traceId", "spanId", "parentSpanId")
                else hex_ids(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [hex_ids(item) for item in node]
        return node

    body = hex_ids(json_format.MessageToDict(message))
    httpx.post(url, json=body, timeout=10).raise_for_status()


class _JsonSpanExporter(SpanExporter):
    """The SDK's own OTLP encoding, sent as JSON (the Python exporter speaks only protobuf)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        _post_json(self.endpoint, encode_spans(spans))
        return SpanExportResult.SUCCESS


class _JsonLogExporter(LogRecordExporter):
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        _post_json(self.endpoint, encode_logs(batch))
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _emit(
    url: str,
    run_id: str | None,
    name: str,
    *,
    encoding: str = "protobuf",
    fail: bool = False,
) -> str:
    """A pipeline instrumented only with OpenTelemetry: a root span (with `lakelens.run_id`
    when given), a child span, and a `logging` line inside the child; with `fail`, the child
    raises. Returns the trace id."""
    resource = Resource.create({"service.name": "otel_orders"})
    tracer_provider = TracerProvider(resource=resource)
    logger_provider = LoggerProvider(resource=resource)
    if encoding == "json":
        span_exporter: SpanExporter = _JsonSpanExporter(f"{url}/v1/traces")
        log_exporter: LogRecordExporter = _JsonLogExporter(f"{url}/v1/logs")
    else:
        span_exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces")
        log_exporter = OTLPLogExporter(endpoint=f"{url}/v1/logs")
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    handler = LoggingHandler(logger_provider=logger_provider)
    log = logging.getLogger(f"otel.{name}")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    tracer = tracer_provider.get_tracer("orders")
    attributes = {"lakelens.run_id": run_id} if run_id else {}
    try:
        with tracer.start_as_current_span(name, attributes=attributes) as root:
            trace_id = f"{root.get_span_context().trace_id:032x}"
            with tracer.start_as_current_span("fetch"):
                log.warning("%s: 3 orders without customer", name)
                if fail:
                    raise ValueError("orders table is locked")
    except ValueError:
        assert fail
    finally:
        log.removeHandler(handler)
        tracer_provider.shutdown()
        logger_provider.shutdown()
    return trace_id


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_runs_and_traces_known_only_from_otlp_can_be_opened(
    serve: Any, tmp_path: Path, encoding: str
) -> None:
    home = tmp_path / "server-home"
    server = serve(home)
    trace_id = _emit(server.url, "otel-run-7", "load_orders", encoding=encoding)
    free_trace = _emit(server.url, None, "free_job", encoding=encoding)
    args = ["--home", str(home)]

    # The run that only OTLP reported: `lakelens trace RUN_ID`, as the docs promise.
    traced = runner.invoke(app, ["trace", "otel-run-7", *args])
    assert traced.exit_code == 0, traced.output
    assert "load_orders" in traced.output and "fetch" in traced.output
    assert "2 spans" in traced.output

    # A log emitted inside a span of that run belongs to the run, with the service as its job.
    logged = runner.invoke(app, ["logs", "--run-id", "otel-run-7", "--json", *args])
    assert logged.exit_code == 0, logged.output
    (record,) = [json.loads(line) for line in logged.output.splitlines()]
    assert record["message"] == "load_orders: 3 orders without customer"
    assert (record["run_id"], record["trace_id"], record["job"]) == (
        "otel-run-7",
        trace_id,
        "otel_orders",
    )
    by_job = runner.invoke(app, ["logs", "--job", "otel_orders", *args])
    assert by_job.output.count("orders without customer") == 2

    # A trace without a run id opens by its trace id, or a unique prefix of it.
    for text in (free_trace, free_trace[:12]):
        opened = runner.invoke(app, ["trace", text, *args])
        assert opened.exit_code == 0, opened.output
        assert "free_job" in opened.output and "fetch" in opened.output
    unknown = runner.invoke(app, ["trace", "ffffffffffff", *args])
    assert unknown.exit_code == 1 and "No run id or trace id starts with" in unknown.output


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_runs_known_only_from_otlp_are_first_class_runs(
    serve: Any,
    sdk: Any,
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    encoding: str,
) -> None:
    """Runs that only OTLP reported are rows of the run list, the API, the summary totals and
    the run page; a run the SDK also wrote keeps the SDK's job and status, whichever of the
    two arrived first."""
    server = serve(tmp_path / "server-home", env={"LAKELENS_DATABASE_URL": store_url})
    ok_trace = _emit(server.url, "otel-ok", "load_orders", encoding=encoding)
    _emit(server.url, "otel-failed", "load_refunds", encoding=encoding, fail=True)
    # OTLP first: the SDK's run is still open when its OpenTelemetry root span has ended.
    with pytest.raises(RuntimeError), lakelens.run("sdk_orders", run_id="sdk-late"):
        _emit(server.url, "sdk-late", "inside_sdk_run", encoding=encoding)
        lakelens.flush()
        raise RuntimeError("the SDK run fails after its OpenTelemetry spans succeeded")
    # The SDK first: its run is finished when OpenTelemetry reports an error span for it.
    with lakelens.run("sdk_orders", run_id="sdk-early"):
        pass
    lakelens.flush()
    _emit(server.url, "sdk-early", "after_sdk_run", encoding=encoding, fail=True)
    lakelens.flush()

    answer = httpx.get(f"{server.url}/api/v1/runs", params={"since": "1h"}, timeout=10)
    assert answer.status_code == 200, answer.text
    runs = {r["run_id"]: r for r in answer.json()["runs"]}
    assert {k: (runs[k]["job"], runs[k]["status"]) for k in sorted(runs)} == {
        "otel-failed": ("otel_orders", "failure"),
        "otel-ok": ("otel_orders", "success"),
        "sdk-early": ("sdk_orders", "success"),
        "sdk-late": ("sdk_orders", "failure"),
    }
    ok = runs["otel-ok"]
    assert ok["trace_id"] == ok_trace
    assert ok["start_time"] is not None and ok["end_time"] is not None
    assert ok["start_time"] <= ok["end_time"]
    assert "orders table is locked" in (runs["otel-failed"]["error_message"] or "")
    assert "SDK run fails" in (runs["sdk-late"]["error_message"] or "")
    assert runs["sdk-late"]["tags"] in ({}, None)

    monkeypatch.setenv("LAKELENS_DATABASE_URL", store_url)
    summary = runner.invoke(app, ["metrics", "summary", "--period", "1h", "--json"])
    assert summary.exit_code == 0, summary.output
    totals = json.loads(summary.output)["runs"]
    assert (totals["total"], totals["success"], totals["failure"]) == (4, 2, 2)

    page = httpx.get(f"{server.url}/runs/otel-ok", timeout=10)
    assert page.status_code == 200, page.text[:500]
    assert "otel_orders" in page.text and "load_orders" in page.text


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_run_named_only_by_log_records_says_no_end_is_reported(
    serve: Any, tmp_path: Path, encoding: str
) -> None:
    """A log line never says a run ended: a run known only from OpenTelemetry log records is
    listed as started with no end reported and the time of its latest record, not as running."""
    server = serve(tmp_path / "server-home")
    resource = Resource.create({"service.name": "otel_logs_only"})
    provider = LoggerProvider(resource=resource)
    exporter: LogRecordExporter = (
        _JsonLogExporter(f"{server.url}/v1/logs")
        if encoding == "json"
        else OTLPLogExporter(endpoint=f"{server.url}/v1/logs")
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=provider)
    log = logging.getLogger("otel.logs_only")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("starting", extra={"lakelens.run_id": "logs-only-1"})
        time.sleep(0.05)
        log.info("done with 12 rows", extra={"lakelens.run_id": "logs-only-1"})
    finally:
        log.removeHandler(handler)
        provider.shutdown()
    answer = httpx.get(f"{server.url}/api/v1/runs", params={"since": "1h"}, timeout=10)
    assert answer.status_code == 200, answer.text
    (run,) = [r for r in answer.json()["runs"] if r["run_id"] == "logs-only-1"]
    assert (run["job"], run["status"], run["end_time"]) == ("otel_logs_only", "started", None)
    assert run["end_reported"] is False
    logged = runner.invoke(
        app, ["logs", "--run-id", "logs-only-1", "--json", "--home", str(tmp_path / "server-home")]
    )
    times = [json.loads(line)["time"] for line in logged.output.splitlines()]
    assert len(times) == 2 and run["last_record_time"] == max(times) != run["start_time"]
    # Where people look: `lakelens runs` and the Runs page.
    listed = runner.invoke(
        app, ["runs", "--job", "otel_logs_only", "--home", str(tmp_path / "server-home")]
    )
    assert listed.exit_code == 0, listed.output
    assert "no end reported" in " ".join(listed.output.split())
    page = httpx.get(f"{server.url}/runs", params={"job": "otel_logs_only"}, timeout=10)
    assert page.status_code == 200 and 'data-metric="end_reported"' in page.text
    own = httpx.get(f"{server.url}/runs/logs-only-1", timeout=10)
    assert own.status_code == 200 and "no end reported" in own.text
