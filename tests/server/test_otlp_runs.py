"""Runs and traces known only from OTLP, sent by the real OpenTelemetry SDK exporters
(protobuf and JSON) to a real `lakelens serve` on 127.0.0.1."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from lakelens.cli.main import app

runner = CliRunner()


def _emit(url: str, run_id: str | None, name: str) -> str:
    """A pipeline instrumented only with OpenTelemetry: a root span (with `lakelens.run_id`
    when given), a child span, and a `logging` line inside the child. Returns the trace id."""
    resource = Resource.create({"service.name": "otel_orders"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces"))
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs"))
    )
    handler = LoggingHandler(logger_provider=logger_provider)
    log = logging.getLogger(f"otel.{name}")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    tracer = tracer_provider.get_tracer("orders")
    attributes = {"lakelens.run_id": run_id} if run_id else {}
    try:
        with tracer.start_as_current_span(name, attributes=attributes) as root:
            with tracer.start_as_current_span("fetch"):
                log.warning("%s: 3 orders without customer", name)
            trace_id = f"{root.get_span_context().trace_id:032x}"
    finally:
        log.removeHandler(handler)
        tracer_provider.shutdown()
        logger_provider.shutdown()
    return trace_id


def test_runs_and_traces_known_only_from_otlp_can_be_opened(serve: Any, tmp_path: Path) -> None:
    home = tmp_path / "server-home"
    server = serve(home)
    trace_id = _emit(server.url, "otel-run-7", "load_orders")
    free_trace = _emit(server.url, None, "free_job")
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
