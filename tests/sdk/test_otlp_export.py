"""Telemetry out: with OTEL_EXPORTER_OTLP_ENDPOINT set, spans and logs reach an OTLP receiver."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

PIPELINE = textwrap.dedent(
    """
    import lakelens
    log = lakelens.get_logger("pipe")
    with lakelens.run("nightly", run_id="0123456789abcdef0123456789abcdef"):
        with lakelens.asset("raw.orders"):
            with lakelens.span("fetch", endpoint="/orders") as s:
                s.set("rows", 12)
                log.warning("slow response", ms=900)
            try:
                with lakelens.span("merge"):
                    raise ValueError("bad row")
            except ValueError:
                pass
    """
)


@pytest.fixture
def collector():  # type: ignore[no-untyped-def]
    """A local OTLP/HTTP receiver that keeps every body by path."""
    bodies: dict[str, list[tuple[dict[str, str], bytes]]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            bodies.setdefault(self.path, []).append(
                ({k.lower(): v for k, v in self.headers.items()}, body)
            )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    server.shutdown()


def test_spans_and_logs_are_exported_with_resource_attributes(collector, tmp_path) -> None:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    url, bodies = collector
    env = dict(
        os.environ,
        LAKELENS_HOME=str(tmp_path),
        LAKELENS_LOG_FORMAT="none",
        LAKELENS_ALERT_IN_PROCESS="0",
        OTEL_EXPORTER_OTLP_ENDPOINT=url,
        OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer%20s3cret",
        OTEL_SERVICE_NAME="orders-pipeline",
    )
    subprocess.run([sys.executable, "-c", PIPELINE], check=True, env=env, timeout=120)
    deadline = time.monotonic() + 10
    while ("/v1/traces" not in bodies or "/v1/logs" not in bodies) and time.monotonic() < deadline:
        time.sleep(0.05)
    headers, _ = bodies["/v1/traces"][0]
    assert (
        headers["content-type"] == "application/x-protobuf"
        and headers["authorization"] == "Bearer s3cret"
    )
    spans, resources = [], []
    for _, body in bodies["/v1/traces"]:
        request = ExportTraceServiceRequest.FromString(body)
        for rs in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in rs.resource.attributes}
            resources.append(attrs)
            spans += [(s, attrs) for ss in rs.scope_spans for s in ss.spans]
    by_name = {s.name: (s, attrs) for s, attrs in spans}
    assert set(by_name) == {"raw.orders", "fetch", "merge"}
    fetch, attrs = by_name["fetch"]
    assert attrs == {
        "service.name": "orders-pipeline",
        "lakelens.run_id": "0123456789abcdef0123456789abcdef",
        "lakelens.asset": "raw.orders",
    }
    assert fetch.trace_id.hex() == "0123456789abcdef0123456789abcdef"
    assert fetch.parent_span_id == by_name["raw.orders"][0].span_id
    assert {a.key: a.value.int_value or a.value.string_value for a in fetch.attributes} == {
        "endpoint": "/orders",
        "rows": 12,
    }
    merge = by_name["merge"][0]
    assert merge.status.code == merge.status.STATUS_CODE_ERROR and "bad row" in merge.status.message
    assert merge.end_time_unix_nano >= merge.start_time_unix_nano > 0
    records = []
    for _, body in bodies["/v1/logs"]:
        request = ExportLogsServiceRequest.FromString(body)
        for rl in request.resource_logs:
            records += [r for sl in rl.scope_logs for r in sl.log_records]
    warning = next(r for r in records if r.body.string_value == "slow response")
    assert (warning.severity_number, warning.severity_text) == (13, "WARN")
    assert warning.span_id == fetch.span_id and warning.trace_id == fetch.trace_id
    assert {a.key: a.value.int_value for a in warning.attributes if a.key == "ms"} == {"ms": 900}


def test_an_unreachable_collector_never_fails_the_pipeline(tmp_path) -> None:
    env = dict(
        os.environ,
        LAKELENS_HOME=str(tmp_path),
        LAKELENS_LOG_FORMAT="none",
        LAKELENS_ALERT_IN_PROCESS="0",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",  # nothing listens on the discard port
    )
    proc = subprocess.run(
        [sys.executable, "-c", PIPELINE], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        proc.stderr.count("OTLP export failed") == 1 and "the store has everything" in proc.stderr
    )
    import sqlite3

    with sqlite3.connect(tmp_path / "lakelens.db") as db:
        assert db.execute("SELECT count(*) FROM spans").fetchone()[0] == 3
