"""OTLP/HTTP traces and logs (`POST /v1/traces`, `POST /v1/logs`) as lakelens spans and log lines.

Both encodings are read: `application/x-protobuf` (ExportTraceServiceRequest /
ExportLogsServiceRequest) and `application/json` (OTLP JSON: lowerCamelCase keys, hex trace
and span ids, int64 as strings or numbers, enums as integers).

| OTLP                                        | lakelens                                        |
|---------------------------------------------|-------------------------------------------------|
| `lakelens.run_id`, else `openlineage.run_id` / `openlineage.run.id` attribute (span or log record, then scope, then resource) | run id |
| `lakelens.asset` attribute (same lookup)    | asset                                           |
| `lakelens.job` attribute (logs), else resource `service.name` | job                                |
| spans and logs of a run not yet stored     | a run (insert-if-missing, tag `lakelens.source: otlp`): job as above, start/end the earliest/latest span, status failure after an error span, success once the root span ended, else started |
| span / log attributes                       | attributes (the three `lakelens.*` keys above move to their columns) |
| resource `service.*` attributes             | copied into attributes; other resource attributes are not stored |
| scope name and version                      | `otel.scope.name` / `otel.scope.version` on spans; the log's logger is the scope name |
| span kind other than internal               | attribute `otel.span.kind` (server, client, producer, consumer) |
| span links                                  | attribute `otel.links`                          |
| span status ERROR                           | status "error"; its message, else the `exception` event's "Type: message" |
| span events                                 | events `{name, time, attributes}` (epoch seconds) |
| unix nanos                                  | epoch seconds                                   |
| severityNumber 1-8 / 9-12 / 13-16 / 17-20 / 21-24 | DEBUG 10 / INFO 20 / WARNING 30 / ERROR 40 / CRITICAL 50; 0 reads severityText, else INFO |
| log body                                    | message (non-string bodies as compact JSON; empty body → eventName) |

A run that an SDK or OpenLineage wrote is never changed by OTLP data; one that only OTLP
reported is replaced as soon as either writes it (store/statements.py).

There is no OpenTelemetry convention for an OpenLineage run id; `openlineage.run_id` is the
name in common use. Spans without a run id are kept as free traces. A malformed request raises
`InvalidArgumentError`; a span or log record that cannot be stored (bad ids, missing start
time, over-long run id) becomes a `Rejection` whose index counts spans or log records across
the whole request, in order.
"""

from __future__ import annotations

import base64
import json
import math
import re
import sys
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from lakelens import _clean
from lakelens.errors import InvalidArgumentError, LakelensError
from lakelens.events import dumps
from lakelens.ingest import OTLP_RUN_TAGS, Ingested, Rejection
from lakelens.model import Run, RunStatus

__all__ = ["ASSET_KEYS", "RUN_ID_KEYS", "logs_to_ingested", "traces_to_ingested"]

RUN_ID_KEYS = ("lakelens.run_id", "openlineage.run_id", "openlineage.run.id")
ASSET_KEYS = ("lakelens.asset",)
JOB_KEYS = ("lakelens.job",)
_MOVED = frozenset({"lakelens.run_id", "lakelens.asset", "lakelens.job"})
_SPAN_KINDS = {2: "server", 3: "client", 4: "producer", 5: "consumer"}
_STATUS_ERROR = 2
_SEVERITY_TEXT = {
    "TRACE": 10,
    "DEBUG": 10,
    "INFO": 20,
    "NOTICE": 20,
    "WARN": 30,
    "WARNING": 30,
    "ERROR": 40,
    "FATAL": 50,
    "CRITICAL": 50,
}
# Store column sizes (PostgreSQL enforces them).
_MAX_RUN_ID = 128
_MAX_NAME = 512
_MAX_LOGGER = 256
_MAX_DEPTH = 32
# protobuf's JSON parser refuses messages nested deeper than this (its default, which keeps
# the parse inside Python's recursion limit); a request's items sit len(path) messages down.
_PARSE_DEPTH = 100
_HEX = re.compile(r"[0-9a-fA-F]*")


def _items(signal: str) -> tuple[tuple[str, ...], Any]:
    """The JSON path to a request's items, and their message class."""
    if signal == "traces":
        from opentelemetry.proto.trace.v1 import trace_pb2

        return ("resourceSpans", "scopeSpans", "spans"), trace_pb2.Span
    from opentelemetry.proto.logs.v1 import logs_pb2

    return ("resourceLogs", "scopeLogs", "logRecords"), logs_pb2.LogRecord


def traces_to_ingested(body: bytes, content_type: str, *, now: float) -> Ingested:
    """Spans of an OTLP/HTTP traces request; `now` is unused (spans carry their times)."""
    request = _request("traces")
    refused = _decode(body, content_type, request, "traces")
    jobs: dict[str, str] = {}

    def row(span: Any, resource: dict[str, Any], scope: Any, attrs: dict[str, Any]) -> Any:
        values, job = _span_row(span, resource, scope, attrs)
        if values[3] is not None:
            jobs.setdefault(values[3], job)
        return values

    result = _collect(
        ((group, group.scope_spans, "spans") for group in request.resource_spans),
        row,
        "span",
        lambda result: result.batch.spans,
        refused,
    )
    result.batch.runs.extend(_runs_of_spans(result.batch.spans, jobs))
    return result


def logs_to_ingested(body: bytes, content_type: str, *, now: float) -> Ingested:
    """Log lines of an OTLP/HTTP logs request; records without any time get `now`."""
    request = _request("logs")
    refused = _decode(body, content_type, request, "logs")
    result = _collect(
        ((group, group.scope_logs, "log_records") for group in request.resource_logs),
        lambda record, resource, scope, attributes: _log_row(
            record, resource, scope, attributes, now
        ),
        "log record",
        lambda result: result.batch.logs,
        refused,
    )
    result.batch.runs.extend(_runs_of_logs(result.batch.logs))
    return result


# -- runs known only from OTLP --------------------------------------------------------------


def _runs_of_spans(spans: list[tuple[Any, ...]], jobs: dict[str, str]) -> list[Run]:
    """What this request's spans say about their runs: earliest start, latest end, failure
    after an error span, success once a root span (one without a parent) has ended."""
    runs: dict[str, Run] = {}
    for trace_id, _span, parent_id, run_id, _asset, _name, start, end, status, error, *_ in spans:
        if run_id is None:
            continue
        run = runs.get(run_id)
        if run is None:
            run = runs[run_id] = Run(run_id, jobs[run_id], tags=dict(OTLP_RUN_TAGS))
        run.start_time = _earliest(run.start_time, start)
        if end is not None and (run.end_time is None or _time(end) > run.end_time):
            run.end_time = _time(end)
        if status == "error":
            run.status = RunStatus.FAILURE
            run.error_message = run.error_message or error
        elif parent_id is None and end is not None and run.status != RunStatus.FAILURE:
            run.status = RunStatus.SUCCESS
        if parent_id is None:
            run.trace_id = trace_id
    return list(runs.values())


def _runs_of_logs(logs: list[tuple[Any, ...]]) -> list[Run]:
    """Runs named by log records: started (a log line does not say the run ended) at the
    earliest record."""
    runs: dict[str, Run] = {}
    for time, _level, _message, _logger, run_id, _asset, job, *_ in logs:
        if run_id is None:
            continue
        run = runs.get(run_id)
        if run is None:
            run = runs[run_id] = Run(run_id, job or _NO_SERVICE, tags=dict(OTLP_RUN_TAGS))
        run.start_time = _earliest(run.start_time, time)
    return list(runs.values())


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def _earliest(current: datetime | None, epoch: float) -> datetime:
    moment = _time(epoch)
    return moment if current is None or moment < current else current


def _job(job: str | None, resource: dict[str, Any]) -> str | None:
    """The `lakelens.job` attribute, else the program that sent it: OpenTelemetry's service."""
    if job is not None:
        return job
    service = resource.get("service.name")
    return _text(str(service))[:_MAX_NAME] if service not in (None, "") else None


# OpenTelemetry's own name for a service that did not say who it is.
_NO_SERVICE = "unknown_service"


def _collect(
    groups: Iterable[tuple[Any, Any, str]],
    make_row: Callable[[Any, dict[str, Any], Any, dict[str, Any]], Any],
    label: str,
    rows_of: Callable[[Ingested], list[Any]],
    refused: dict[int, str],
) -> Ingested:
    """Rows of every item of every scope of every resource; an item that cannot be stored is
    rejected with its index (counted across the whole request) and the reason. `refused`
    holds the items that could not even be decoded (their index → why)."""
    result = Ingested()
    rows = rows_of(result)
    index = 0
    for group, scopes, items in groups:
        resource = _attributes(group.resource.attributes)
        for scoped in scopes:
            scope = scoped.scope
            scope_attributes = _attributes(scope.attributes)
            for item in getattr(scoped, items):
                try:
                    if index in refused:
                        raise _Rejected(refused[index])
                    row = make_row(item, resource, scope, scope_attributes)
                except _Rejected as exc:
                    result.rejected.append(Rejection(index, f"{label} {index}: {exc}"))
                else:
                    rows.append(row)
                    result.accepted += 1
                index += 1
    return result


class _Rejected(Exception):
    """Why one span or log record cannot be stored; becomes a `Rejection`."""


# -- decoding -------------------------------------------------------------------------------


def _request(signal: str) -> Any:
    """An empty Export*ServiceRequest (imported here: protobuf is heavy and optional)."""
    try:
        if signal == "traces":
            from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

            return trace_service_pb2.ExportTraceServiceRequest()
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

        return logs_service_pb2.ExportLogsServiceRequest()
    except ImportError:
        raise LakelensError(
            "OTLP ingest needs the OpenTelemetry protobuf classes: pip install opentelemetry-proto"
        ) from None


def _decode(body: bytes, content_type: str, request: Any, signal: str) -> dict[int, str]:
    """Fill `request` from the body and return the items (spans or log records, by index)
    that could not be decoded alone, with why; InvalidArgumentError when the body itself
    cannot be read."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    message = type(request).__name__
    if media == "application/x-protobuf":
        try:
            request.ParseFromString(bytes(body))
        except Exception as exc:  # DecodeError, or whatever a hostile body provokes
            raise InvalidArgumentError(
                f"The OTLP {signal} body is not a valid protobuf {message}: {_line(exc)}."
            ) from None
        return {}
    if media != "application/json":
        raise InvalidArgumentError(
            f"Unsupported Content-Type {content_type!r} for OTLP {signal}: "
            "send application/x-protobuf or application/json."
        )
    raw = bytes(body)
    try:
        data = json.loads(raw)
        if not raw.isascii() or b"\\u" in raw:
            # Lone surrogates (legal in JSON) would fail ParseDict for the whole request.
            data = _clean.data(data, max_depth=sys.getrecursionlimit(), numbers=False)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgumentError(
            f"The OTLP {signal} body is not valid JSON: {_line(exc)}."
        ) from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(
            f"The OTLP {signal} body must be a JSON object ({message}), not {type(data).__name__}."
        )
    from google.protobuf import json_format

    path, item_type = _items(signal)
    items = list(_walk(data, path, ""))
    refused: dict[int, str] = {}
    for index, (where, siblings, position) in enumerate(items):
        try:
            _hex_ids_to_base64(siblings[position], signal, where)
        except InvalidArgumentError as exc:
            refused[index] = str(exc)
    try:
        json_format.ParseDict(
            _without(data, items, refused),
            request,
            ignore_unknown_fields=True,
            max_recursion_depth=_PARSE_DEPTH,
        )
    except Exception:  # ParseError, or whatever a hostile body provokes: find the bad items
        for index, (_where, siblings, position) in enumerate(items):
            if index not in refused:
                try:
                    # As deep as the item may go where it sits: an item that fits alone but
                    # not in the request failed the whole request again (fuzz, 33 levels).
                    json_format.ParseDict(
                        siblings[position],
                        item_type(),
                        ignore_unknown_fields=True,
                        max_recursion_depth=_PARSE_DEPTH - len(path),
                    )
                except Exception as exc:
                    refused[index] = f"does not match OTLP: {_line(exc)}"
        request.Clear()
        try:
            json_format.ParseDict(
                _without(data, items, refused),
                request,
                ignore_unknown_fields=True,
                max_recursion_depth=_PARSE_DEPTH,
            )
        except Exception as exc:
            raise InvalidArgumentError(
                f"The OTLP {signal} JSON does not match {message}: {_line(exc)}."
            ) from None
    return refused


def _without(
    data: dict[str, Any], items: list[tuple[str, list[Any], int]], refused: dict[int, str]
) -> dict[str, Any]:
    """`data` with each refused item made empty (in place, so the indices stay the same)."""
    for index in refused:
        _where, siblings, position = items[index]
        siblings[position] = {}
    return data


def _hex_ids_to_base64(item: Any, signal: str, where: str) -> None:
    """OTLP JSON writes ids as hex; protobuf's JSON mapping of bytes wants base64."""
    if not isinstance(item, dict):
        return  # ParseDict says what is wrong with it
    keys = ("traceId", "spanId", "parentSpanId") if signal == "traces" else ("traceId", "spanId")
    _convert_ids(item, keys, where)
    links = item.get("links")
    if signal == "traces" and isinstance(links, list):
        for position, link in enumerate(links):
            if isinstance(link, dict):
                _convert_ids(link, ("traceId", "spanId"), f"{where}.links[{position}]")


def _walk(
    node: dict[str, Any], path: tuple[str, ...], where: str
) -> Iterable[tuple[str, list[Any], int]]:
    """(where, list, position) of each item at the end of `path` (through lists of dicts;
    other shapes are left for ParseDict to refuse)."""
    items = node.get(path[0])
    if not isinstance(items, list):
        return
    for position, item in enumerate(items):
        here = f"{where}{'.' if where else ''}{path[0]}[{position}]"
        if len(path) == 1:
            yield here, items, position
        elif isinstance(item, dict):
            yield from _walk(item, path[1:], here)


def _convert_ids(item: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        value = item.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) % 2 or not _HEX.fullmatch(value):
            raise InvalidArgumentError(
                f"The OTLP JSON field {where}.{key} must be a hex string, not {_short(value)}."
            )
        item[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")


# -- mapping --------------------------------------------------------------------------------


def _span_row(
    span: Any, resource: dict[str, Any], scope: Any, scope_attributes: dict[str, Any]
) -> tuple[tuple[Any, ...], str]:
    """The span's row, and the job of its run."""
    trace_id = _id(span.trace_id, 16, "traceId", required=True)
    span_id = _id(span.span_id, 8, "spanId", required=True)
    parent_id = _id(span.parent_span_id, 8, "parentSpanId")
    if not span.start_time_unix_nano:
        raise _Rejected("startTimeUnixNano is missing")
    own = _attributes(span.attributes)
    run_id, asset, job = _context(own, scope_attributes, resource)
    attributes = _stored(own, resource)
    if scope.name:
        attributes["otel.scope.name"] = _text(scope.name)
    if scope.version:
        attributes["otel.scope.version"] = _text(scope.version)
    if span.kind in _SPAN_KINDS:
        attributes["otel.span.kind"] = _SPAN_KINDS[span.kind]
    if span.links:
        attributes["otel.links"] = [
            {
                "trace_id": bytes(link.trace_id).hex(),
                "span_id": bytes(link.span_id).hex(),
                "attributes": _attributes(link.attributes),
            }
            for link in span.links
        ]
    events = [
        {
            "name": _text(event.name),
            "time": event.time_unix_nano / 1e9,
            "attributes": _attributes(event.attributes),
        }
        for event in span.events
    ]
    status, error = "ok", None
    if span.status.code == _STATUS_ERROR:
        status = "error"
        error = _text(span.status.message) or _exception_message(events)
    row = (
        trace_id,
        span_id,
        parent_id,
        run_id,
        asset,
        _text(span.name)[:_MAX_NAME],
        span.start_time_unix_nano / 1e9,
        span.end_time_unix_nano / 1e9 if span.end_time_unix_nano else None,
        status,
        error,
        dumps(attributes),
        dumps(events),
    )
    return row, _job(job, resource) or _NO_SERVICE


def _exception_message(events: list[dict[str, Any]]) -> str | None:
    """'Type: message' from the span's `exception` event (how the SDKs record a raised error)."""
    for event in events:
        if event["name"] == "exception":
            attrs = event["attributes"]
            kind, text = attrs.get("exception.type"), attrs.get("exception.message")
            parts = [str(p) for p in (kind, text) if p not in (None, "")]
            if parts:
                return ": ".join(parts)
    return None


def _log_row(
    record: Any, resource: dict[str, Any], scope: Any, scope_attributes: dict[str, Any], now: float
) -> tuple[Any, ...]:
    trace_id = _id(record.trace_id, 16, "traceId")
    span_id = _id(record.span_id, 8, "spanId")
    own = _attributes(record.attributes)
    run_id, asset, job = _context(own, scope_attributes, resource)
    job = _job(job, resource)
    nanos = record.time_unix_nano or record.observed_time_unix_nano
    body = _value(record.body, 0) if record.HasField("body") else None
    if isinstance(body, str):
        message = body
    elif body is None:
        message = _text(getattr(record, "event_name", ""))
    else:
        message = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return (
        nanos / 1e9 if nanos else now,
        _level(record.severity_number, record.severity_text),
        message,
        _text(scope.name)[:_MAX_LOGGER] or None,
        run_id,
        asset,
        job,
        trace_id,
        span_id,
        dumps(_stored(own, resource)),
    )


def _level(number: int, text: str) -> int:
    if number <= 0:
        return _SEVERITY_TEXT.get(text.strip().upper(), 20)
    if number <= 8:
        return 10
    if number <= 12:
        return 20
    if number <= 16:
        return 30
    if number <= 20:
        return 40
    return 50


def _context(*layers: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(run id, asset, job): the first layer (record, scope, resource) that names each wins."""
    found: list[str | None] = []
    for keys, limit, label in (
        (RUN_ID_KEYS, _MAX_RUN_ID, "run id"),
        (ASSET_KEYS, _MAX_NAME, "asset"),
        (JOB_KEYS, _MAX_NAME, "job"),
    ):
        value = next(
            (layer[k] for layer in layers for k in keys if layer.get(k) not in (None, "")), None
        )
        if value is not None:
            if isinstance(value, (dict, list)):
                raise _Rejected(f"the {label} attribute must be a string, not {_short(value)}")
            value = str(value)
            if len(value) > limit:
                raise _Rejected(f"the {label} attribute is longer than {limit} characters")
        found.append(value)
    return found[0], found[1], found[2]


def _stored(own: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    """A span's or record's attributes as stored: its own, plus the resource's service.* ones."""
    stored = {k: v for k, v in own.items() if k not in _MOVED}
    for key, value in resource.items():
        if key.startswith("service.") and key not in stored:
            stored[key] = value
    return stored


def _id(raw: bytes, size: int, field: str, *, required: bool = False) -> str | None:
    """Hex of a trace (16 bytes) or span (8 bytes) id; empty or all-zero ids are absent."""
    if not raw or not any(raw):
        if required:
            raise _Rejected(f"{field} is missing")
        return None
    if len(raw) != size:
        raise _Rejected(f"{field} must be {size} bytes, not {len(raw)}")
    return bytes(raw).hex()


def _attributes(pairs: Iterable[Any]) -> dict[str, Any]:
    return {_text(kv.key): _value(kv.value, 0) for kv in pairs}


def _value(value: Any, depth: int) -> Any:
    """An AnyValue as plain JSON data (bytes as base64, non-finite doubles as strings)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return _text(value.string_value)
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else str(number)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind in ("array_value", "kvlist_value") and depth >= _MAX_DEPTH:
        return "…"
    if kind == "array_value":
        return [_value(item, depth + 1) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {_text(kv.key): _value(kv.value, depth + 1) for kv in value.kvlist_value.values}
    return None


def _text(text: str) -> str:
    # Protobuf strings are valid UTF-8 but may hold NUL, which PostgreSQL cannot store.
    return _clean.text(text)


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
