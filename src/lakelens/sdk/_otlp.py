"""Telemetry out: when OTEL_EXPORTER_OTLP_ENDPOINT is set, spans and logs also go to an OTLP
collector (Tempo, Jaeger, Loki through a collector), after the store has committed them.

Best effort: the store is the record; an unreachable collector is reported once on stderr
and never slows or fails the pipeline beyond the request timeout.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from lakelens.events import Batch

__all__ = ["OtlpExporter", "otlp_endpoints"]

_SEVERITY = {
    10: (5, "DEBUG"),
    20: (9, "INFO"),
    30: (13, "WARN"),
    40: (17, "ERROR"),
    50: (21, "FATAL"),
}


def otlp_endpoints(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(traces URL, logs URL) from the standard OTEL_EXPORTER_OTLP_* variables."""
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip().rstrip("/")
    traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip() or (
        f"{base}/v1/traces" if base else ""
    )
    logs = env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "").strip() or (
        f"{base}/v1/logs" if base else ""
    )
    return traces or None, logs or None


def _headers(env: Mapping[str, str]) -> dict[str, str]:
    """OTEL_EXPORTER_OTLP_HEADERS: `key=value,key2=value2`, values URL-encoded."""
    headers = {"Content-Type": "application/x-protobuf"}
    for part in env.get("OTEL_EXPORTER_OTLP_HEADERS", "").split(","):
        if "=" in part:
            key, value = part.split("=", 1)
            headers[key.strip()] = unquote(value.strip())
    return headers


def _value(value: Any) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    return AnyValue(string_value=json.dumps(value, default=str))


def _attributes(values: Mapping[str, Any] | None) -> list[Any]:
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    return [
        KeyValue(key=str(k), value=_value(v)) for k, v in (values or {}).items() if v is not None
    ]


def _ids(hex_text: str | None, size: int) -> bytes:
    try:
        raw = bytes.fromhex(hex_text or "")
    except ValueError:
        return b""
    return raw if len(raw) == size else b""


class OtlpExporter:
    """Wraps the store sink: write the batch, then send its spans and logs over OTLP/HTTP."""

    def __init__(
        self, sink: Callable[[Batch], object], env: Mapping[str, str] | None = None
    ) -> None:
        env = os.environ if env is None else env
        self.sink = sink
        self.traces_url, self.logs_url = otlp_endpoints(env)
        self.headers = _headers(env)
        self.service = env.get("OTEL_SERVICE_NAME") or "lakelens"
        self.timeout = float(env.get("OTEL_EXPORTER_OTLP_TIMEOUT", "10000")) / 1000
        self._client: Any = None
        self._reported: str | None = None

    def __call__(self, batch: Batch) -> object:
        result = self.sink(batch)  # the store first: an export never holds up the record
        try:
            if batch.spans and self.traces_url:
                self._post(self.traces_url, self._traces(batch))
            if batch.logs and self.logs_url:
                self._post(self.logs_url, self._logs(batch))
        except Exception as exc:  # best effort, reported once per distinct problem
            message = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            if message != self._reported:
                self._reported = message
                print(
                    f"lakelens: OTLP export failed ({message}); the store has everything.",
                    file=sys.stderr,
                )
        return result

    def _post(self, url: str, body: bytes) -> None:
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)
        response = self._client.post(url, content=body, headers=self.headers)
        if response.status_code >= 300:
            raise RuntimeError(f"the collector answered HTTP {response.status_code}")
        self._reported = None

    def _resource(self, run_id: str | None, asset: str | None) -> Any:
        from opentelemetry.proto.resource.v1.resource_pb2 import Resource

        return Resource(
            attributes=_attributes(
                {"service.name": self.service, "lakelens.run_id": run_id, "lakelens.asset": asset}
            )
        )

    def _traces(self, batch: Batch) -> bytes:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
        from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

        groups: dict[tuple[str | None, str | None], list[Any]] = {}
        for (
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
        ) in batch.spans:
            span = Span(
                trace_id=_ids(trace_id, 16),
                span_id=_ids(span_id, 8),
                parent_span_id=_ids(parent_id, 8),
                name=name,
                kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=int(start * 1e9),
                end_time_unix_nano=int((end if end is not None else start) * 1e9),
                attributes=_attributes(json.loads(attrs) if attrs else {}),
                status=Status(code=Status.STATUS_CODE_ERROR, message=error or "")
                if status == "error"
                else Status(code=Status.STATUS_CODE_OK),
            )
            for event in json.loads(events) if events else []:
                span.events.add(
                    time_unix_nano=int(float(event.get("time", start)) * 1e9),
                    name=str(event.get("name", "")),
                    attributes=_attributes(event.get("attributes")),
                )
            groups.setdefault((run_id, asset), []).append(span)
        request = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource=self._resource(run_id, asset), scope_spans=[ScopeSpans(spans=spans)]
                )
                for (run_id, asset), spans in groups.items()
            ]
        )
        for resource_spans in request.resource_spans:
            resource_spans.scope_spans[0].scope.name = "lakelens"
        return bytes(request.SerializeToString())

    def _logs(self, batch: Batch) -> bytes:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
        from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

        groups: dict[tuple[str | None, str | None], list[Any]] = {}
        for (
            time_,
            level,
            message,
            logger,
            run_id,
            asset,
            job,
            trace_id,
            span_id,
            attrs,
        ) in batch.logs:
            number, text = _SEVERITY.get(level, (9, "INFO"))
            extra = json.loads(attrs) if attrs else {}
            extra.update({"logger": logger, "job": job})
            groups.setdefault((run_id, asset), []).append(
                LogRecord(
                    time_unix_nano=int(time_ * 1e9),
                    observed_time_unix_nano=int(time_ * 1e9),
                    severity_number=number,  # type: ignore[arg-type]
                    severity_text=text,
                    body=_value(message),
                    attributes=_attributes(extra),
                    trace_id=_ids(trace_id, 16),
                    span_id=_ids(span_id, 8),
                )
            )
        request = ExportLogsServiceRequest(
            resource_logs=[
                ResourceLogs(
                    resource=self._resource(run_id, asset),
                    scope_logs=[ScopeLogs(log_records=records)],
                )
                for (run_id, asset), records in groups.items()
            ]
        )
        return bytes(request.SerializeToString())
