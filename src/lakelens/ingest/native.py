"""lakelens' own events as JSON: a Batch ⇄ a list of `{"type": "run", ...fields}` objects.

The shapes are those of the model (lakelens.model) and the SDK's log and span rows. Times
are epoch seconds or ISO 8601 strings (UTC unless they say otherwise). Each event is checked
on its own: a bad one becomes a Rejection with the reason, the good ones go into the Batch,
and nothing that passes here can fail in the store (lengths, NUL characters, ranges).

This module reads and checks events (field checks, one converter per event type, the
dispatch); writing a Batch back out as events is native_write.py (re-exported here).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from lakelens import _clean
from lakelens.errors import InvalidArgumentError
from lakelens.events import Batch, dumps
from lakelens.ingest import Ingested, Rejection
from lakelens.ingest.native_write import batch_to_events, dumps_batch
from lakelens.model import (
    LEVELS,
    Asset,
    AssetUsage,
    CheckResult,
    LineageEdge,
    Materialization,
    MetricPoint,
    Profile,
    Run,
    RunStatus,
    SchemaSnapshot,
    from_epoch,
)

__all__ = [
    "EVENT_TYPES",
    "batch_to_events",
    "dumps_batch",
    "ingest_body",
    "loads",
    "to_ingested",
    "usage_to_ingested",
]

EVENT_TYPES = (
    "asset",
    "run",
    "materialization",
    "check",
    "log",
    "span",
    "lineage",
    "schema",
    "metric",
    "profile",
    "usage",
)
_ALIASES = {
    "check_result": "check",
    "lineage_edge": "lineage",
    "edge": "lineage",
    "schema_snapshot": "schema",
    "metric_point": "metric",
}
# Column widths of store/schema.py (a test keeps them in step).
LIMITS = {
    "id": 128,
    "name": 512,
    "short": 256,
    "layer": 128,
    "kind": 32,
    "status": 16,
    "trace_id": 64,
    "span_id": 32,
    "hash": 64,
}
# Whatever the database and datetime can hold: year 1970 to 9999.
_MAX_TIME = 253_402_300_799.0
_MAX_COUNT = 2**63 - 1
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class _Bad(Exception):
    """One field of one event is unacceptable; the message is the reason."""


# -- reading JSON ---------------------------------------------------------------------------


def loads(body: bytes | str) -> Any:
    """Parse a request body; InvalidArgumentError says what is wrong and where.

    A number no event can hold (NaN, 1e999, 10**400) does not fail the body: it rejects the
    event it is in (see _clean), and the other events are stored.
    """
    try:
        return _clean.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(
            f"Malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from None
    except UnicodeDecodeError:
        raise InvalidArgumentError("The body is not UTF-8 encoded JSON.") from None
    except RecursionError:
        raise InvalidArgumentError("The JSON body is nested too deeply.") from None
    except ValueError as exc:
        raise InvalidArgumentError(f"Malformed JSON: {exc}.") from None


# -- field converters -----------------------------------------------------------------------


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _identifier(value: Any, field: str, limit: int) -> str:
    # Text was cleaned at the boundary (to_ingested): no NUL, no lone surrogate is left.
    if type(value) is str and 0 < len(value) <= limit:
        return value
    if not isinstance(value, str) or not value:
        raise _Bad(f"{field}: expected a non-empty string, got {_show(value)}")
    raise _Bad(f"{field}: longer than {limit} characters")


def _opt_identifier(value: Any, field: str, limit: int) -> str | None:
    return None if value is None else _identifier(value, field, limit)


def _opt_text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Bad(f"{field}: expected a string, got {_show(value)}")
    return value


def _time(value: Any, field: str) -> float:
    if isinstance(value, bool):
        raise _Bad(f"{field}: expected epoch seconds or an ISO 8601 time, got {_show(value)}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise _Bad(
                f"{field}: {_show(value)} is not an ISO 8601 time (e.g. 2024-10-15T10:00:00Z)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = moment.timestamp()
    else:
        raise _Bad(f"{field}: expected epoch seconds or an ISO 8601 time, got {_show(value)}")
    if not math.isfinite(seconds) or not 0 <= seconds <= _MAX_TIME:
        raise _Bad(f"{field}: {_show(value)} is outside the years 1970-9999")
    return seconds


def _opt_time(value: Any, field: str) -> float | None:
    return None if value is None else _time(value, field)


def _opt_count(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"{field}: expected a whole number, got {_show(value)}")
    if not 0 <= value <= _MAX_COUNT:
        raise _Bad(f"{field}: {value} is out of range (0 to 2^63-1)")
    return value


def _opt_number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(f"{field}: expected a number, got {_show(value)}")
    number = float(value)
    if not math.isfinite(number) or abs(number) > 1e300:
        raise _Bad(f"{field}: expected a finite number, got {_show(value)}")
    return number


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"{field}: expected true or false, got {_show(value)}")
    return value


def _object(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Bad(f"{field}: expected an object, got {_show(value)}")
    return value


def _string_map(value: Any, field: str) -> dict[str, str]:
    items = _object(value, field)
    out: dict[str, str] = {}
    for key, item in items.items():
        if isinstance(item, (dict, list)):
            raise _Bad(f"{field}.{key}: expected a string, got {_show(item)}")
        out[key] = item if isinstance(item, str) else json.dumps(item)
    return out


def _json_text(value: Any) -> str | None:
    """An attributes column: bounded JSON (its text was cleaned at the boundary)."""
    return dumps(value)


def _status(value: Any, field: str, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or value not in RunStatus.ALL:
        raise _Bad(
            f"{field}: expected one of {', '.join(sorted(RunStatus.ALL))}, got {_show(value)}"
        )
    return str(value)


def _level(value: Any) -> int:
    if value is None:
        return LEVELS["INFO"]
    if isinstance(value, str):
        key = value.strip().upper()
        key = {"WARN": "WARNING", "FATAL": "CRITICAL", "ERR": "ERROR"}.get(key, key)
        if key in LEVELS:
            return LEVELS[key]
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100:
        return value
    raise _Bad(
        f"level: expected DEBUG, INFO, WARNING, ERROR, CRITICAL or 0-100, got {_show(value)}"
    )


def _derived_id(*parts: Any) -> str:
    """A stable id for an event sent without one, so that sending it twice stores it once."""
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).hexdigest()


# -- one converter per event type -----------------------------------------------------------


def _asset(e: Mapping[str, Any], now: float, batch: Batch) -> None:
    from lakelens.units import parse_duration, parse_percent

    freshness = e.get("freshness_seconds", e.get("freshness"))
    target = e.get("availability_target")
    try:
        fresh = None if freshness is None else parse_duration(freshness, name="freshness_seconds")
        availability = None if target is None else parse_percent(target, name="availability_target")
    except InvalidArgumentError as exc:
        raise _Bad(str(exc).rstrip(".")) from None
    updated = _opt_time(e.get("updated_at"), "updated_at")
    batch.assets.append(
        Asset(
            name=_identifier(e.get("name"), "name", LIMITS["name"]),
            kind=_opt_identifier(e.get("kind"), "kind", LIMITS["kind"]) or "asset",
            owner=_opt_identifier(e.get("owner"), "owner", LIMITS["short"]),
            layer=_opt_identifier(e.get("layer"), "layer", LIMITS["layer"]),
            group=_opt_identifier(e.get("group"), "group", LIMITS["short"]),
            description=_opt_text(e.get("description"), "description"),
            freshness_seconds=fresh,
            availability_target=availability,
            expected_rows=_opt_count(e.get("expected_rows"), "expected_rows"),
            critical=None if e.get("critical") is None else _bool(e["critical"], "critical"),
            tags=_string_map(e.get("tags"), "tags"),
            updated_at=from_epoch(now if updated is None else updated),
        )
    )


def _run(e: Mapping[str, Any], now: float, batch: Batch) -> None:
    batch.runs.append(
        Run(
            run_id=_identifier(e.get("run_id"), "run_id", LIMITS["id"]),
            job=_identifier(e.get("job"), "job", LIMITS["name"]),
            status=_status(e.get("status"), "status", RunStatus.STARTED),
            start_time=from_epoch(_opt_time(e.get("start_time"), "start_time")),
            end_time=from_epoch(_opt_time(e.get("end_time"), "end_time")),
            partition=_opt_identifier(e.get("partition"), "partition", LIMITS["short"]),
            trigger=_opt_identifier(e.get("trigger"), "trigger", LIMITS["layer"]),
            tags=_string_map(e.get("tags"), "tags"),
            correlation_id=_opt_identifier(e.get("correlation_id"), "correlation_id", LIMITS["id"]),
            trace_id=_opt_identifier(e.get("trace_id"), "trace_id", LIMITS["trace_id"]),
            parent_run_id=_opt_identifier(e.get("parent_run_id"), "parent_run_id", LIMITS["id"]),
            error_type=_opt_identifier(e.get("error_type"), "error_type", LIMITS["short"]),
            error_message=_opt_text(e.get("error_message"), "error_message"),
            error_traceback=_opt_text(e.get("error_traceback"), "error_traceback"),
        )
    )


def _materialization(e: Mapping[str, Any], now: float, batch: Batch) -> None:
    run_id = _identifier(e.get("run_id"), "run_id", LIMITS["id"])
    asset = _identifier(e.get("asset"), "asset", LIMITS["name"])
    mat_id = _opt_identifier(e.get("id"), "id", LIMITS["id"]) or _derived_id(run_id, asset)
    batch.materializations.append(
        Materialization(
            id=mat_id,
            run_id=run_id,
            asset=asset,
            status=_status(e.get("status"), "status", RunStatus.STARTED),
            start_time=from_epoch(_opt_time(e.get("start_time"), "start_time")),
            end_time=from_epoch(_opt_time(e.get("end_time"), "end_time")),
            partition=_opt_identifier(e.get("partition"), "partition", LIMITS["short"]),
            rows=_opt_count(e.get("rows"), "rows"),
            bytes=_opt_count(e.get("bytes"), "bytes"),
            inserts=_opt_count(e.get("inserts"), "inserts"),
            updates=_opt_count(e.get("updates"), "updates"),
            cpu_seconds=_opt_number(e.get("cpu_seconds"), "cpu_seconds"),
            peak_memory_bytes=_opt_count(e.get("peak_memory_bytes"), "peak_memory_bytes"),
            error_type=_opt_identifier(e.get("error_type"), "error_type", LIMITS["short"]),
            error_message=_opt_text(e.get("error_message"), "error_message"),
            error_traceback=_opt_text(e.get("error_traceback"), "error_traceback"),
            attributes=_object(e.get("attributes"), "attributes"),
        )
    )


def _check(e: Mapping[str, Any], now: float, batch: Batch) -> None:
    from lakelens.units import parse_severity

    asset = _identifier(e.get("asset"), "asset", LIMITS["name"])
    name = _identifier(e.get("name"), "name", LIMITS["short"])
    run_id = _opt_identifier(e.get("run_id"), "run_id", LIMITS["id"])
    when = _opt_time(e.get("time"), "time")
    when = now if when is None else when
    try:
        severity = parse_severity(e.get("severity", "warning"))
    except InvalidArgumentError as exc:
        raise _Bad(str(exc).rstrip(".")) from None
    valid = _opt_count(e.get("valid_rows"), "valid_rows")
    total = _opt_count(e.get("total_rows"), "total_rows")
    if valid is not None and total is not None and valid > total:
        raise _Bad(f"valid_rows: {valid} is more than total_rows={total}")
    batch.checks.append(
        CheckResult(
            id=_opt_identifier(e.get("id"), "id", LIMITS["id"])
            or _derived_id(asset, name, run_id, when),
            asset=asset,
            name=name,
            passed=_bool(e.get("passed"), "passed"),
            severity=severity,
            time=from_epoch(when),
            run_id=run_id,
            value=_opt_number(e.get("value"), "value"),
            threshold=_opt_number(e.get("threshold"), "threshold"),
            valid_rows=valid,
            total_rows=total,
            message=_opt_text(e.get("message"), "message"),
            attributes=_object(e.get("attributes"), "attributes"),
        )
    )


def _log(e: Mapping[str, Any], now: float, batch: Batch) -> None:
    message = e.get("message")
    if not isinstance(message, str):
        raise _Bad(f"message: expected a string, got {_show(message)}")
    when = _opt_time(e.get("time"), "time")
    batch.logs.append(
        (
            now if when is None else when,
            _level(e.get("level")),
            message,
            _opt_identifier(e.get("logger"), "logger", LIMITS["short"]),
            _opt_identifier(e.get("run_id"), "run_id", LIMITS["id"]),
            _opt_identifier(e.get("asset"), "asset", LIMITS["name"]),
            _opt_identifier(e.get("job"), "job", LIMITS["name"]),
            _opt_identifier(e.get("trace_id"), "trace_id", LIMITS["trace_id"]),
            _opt_identifier(e.get("span_id"), "span_id", LIMITS["span_id"]),
            _json_text(_object(e.get("attributes"), "attributes")),
        )
    )


def _span(e: Mapping[str, Any], now: float, batch: Batch) -> None:
    events = e.get("events")
    if events is not None and not isinstance(events, list):
        raise _Bad(f"events: expected a list, got {_show(events)}")
    start = _time(e.get("start_time"), "start_time")
    end = _opt_time(e.get("end_time"), "end_time")
    if end is not None and end < start:
        raise _Bad("end_time: before start_time")
    batch.spans.append(
        (
            _identifier(e.get("trace_id"), "trace_id", LIMITS["trace_id"]),
            _identifier(e.get("span_id"), "span_id", LIMITS["span_id"]),
            _opt_identifier(e.get("parent_id"), "parent_id", LIMITS["span_id"]),
            _opt_identifier(e.get("run_id"), "run_id", LIMITS["id"]),
            _opt_identifier(e.get("asset"), "asset", LIMITS["name"]),
            _identifier(e.get("name"), "name", LIMITS["name"]),
            start,
            end,
            _opt_identifier(e.get("status"), "status", LIMITS["status"]) or "ok",
            _opt_text(e.get("error_message"), "error_message"),
            _json_text(_object(e.get("attributes"), "attributes")),
            _json_text(events),
        )
    )


def _lineage(e: Mapping[str, Any], now: float, batch: Batch) -> None:
    columns = e.get("columns")
    well_formed = isinstance(columns, dict) and all(
        isinstance(v, list) and all(isinstance(c, str) for c in v) for v in columns.values()
    )
    if columns is not None and not well_formed:
        raise _Bad("columns: expected an object of downstream column → [upstream columns]")
    updated = _opt_time(e.get("updated_at"), "updated_at")
    batch.edges.append(
        LineageEdge(
            upstream=_identifier(e.get("upstream"), "upstream", LIMITS["name"]),
            downstream=_identifier(e.get("downstream"), "downstream", LIMITS["name"]),
            source=_opt_identifier(e.get("source"), "source", LIMITS["kind"]) or "manual",
            columns=columns or None,
            updated_at=from_epoch(now if updated is None else updated),
        )
    )


def _schema(e: Mapping[str, Any], now: float, batch: Batch) -> None:
    raw = e.get("columns")
    items = list(raw.items()) if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise _Bad(f"columns: expected [[name, type], ...] or an object, got {_show(raw)}")
    columns: list[tuple[str, str]] = []
    for item in items:
        if (
            not isinstance(item, (list, tuple))
            or len(item) != 2
            or not all(isinstance(part, str) for part in item)
        ):
            raise _Bad(f"columns: expected [name, type] pairs of strings, got {_show(item)}")
        columns.append((item[0], item[1]))
    digest = _opt_identifier(e.get("hash"), "hash", LIMITS["hash"])
    if digest is None:
        # The SDK's hash (sdk/_quality.py), so drift detection compares like with like.
        digest = hashlib.sha256(json.dumps(sorted(columns)).encode()).hexdigest()[:32]
    when = _opt_time(e.get("time"), "time")
    batch.schemas.append(
        SchemaSnapshot(
            asset=_identifier(e.get("asset"), "asset", LIMITS["name"]),
            columns=columns,
            time=from_epoch(now if when is None else when),
            hash=digest,
            run_id=_opt_identifier(e.get("run_id"), "run_id", LIMITS["id"]),
        )
    )


def _metric(e: Mapping[str, Any], now: float, batch: Batch) -> None:
    name = e.get("name")
    if not isinstance(name, str) or len(name) > LIMITS["short"] or not _METRIC_NAME.fullmatch(name):
        raise _Bad(f"name: {_show(name)} is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
    kind = e.get("kind", "gauge")
    if kind not in ("gauge", "counter"):
        raise _Bad(f"kind: expected 'gauge' or 'counter', got {_show(kind)}")
    value = _opt_number(e.get("value"), "value")
    if value is None:
        raise _Bad("value: missing")
    if kind == "counter" and value < 0:
        raise _Bad(f"value: a counter only goes up, got {value}")
    labels = _string_map(e.get("labels"), "labels")
    for label in labels:
        if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
            raise _Bad(f"labels: {_show(label)} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)")
    when = _opt_time(e.get("time"), "time")
    batch.metrics.append(
        MetricPoint(
            name=name,
            value=value,
            kind=kind,
            time=from_epoch(now if when is None else when),
            labels=labels,
            run_id=_opt_identifier(e.get("run_id"), "run_id", LIMITS["id"]),
            asset=_opt_identifier(e.get("asset"), "asset", LIMITS["name"]),
        )
    )


def _profile(e: Mapping[str, Any], now: float, batch: Batch) -> None:
    from lakelens.ingest.profile_event import profile_columns

    when = _opt_time(e.get("time"), "time")
    batch.profiles.append(
        Profile(
            asset=_identifier(e.get("asset"), "asset", LIMITS["name"]),
            columns=profile_columns(e.get("columns")),
            time=from_epoch(now if when is None else when),
            run_id=_opt_identifier(e.get("run_id"), "run_id", LIMITS["id"]),
            row_count=_opt_count(e.get("row_count"), "row_count"),
            sampled_rows=_opt_count(e.get("sampled_rows"), "sampled_rows"),
            source=_opt_identifier(e.get("source"), "source", LIMITS["kind"]) or "sdk",
            error=_opt_text(e.get("error"), "error"),
        )
    )


_USAGE_SOURCES = ("sdk", "api", "openlineage")
# Reads or views in one report: sums over years of them stay far inside 64-bit integers.
_MAX_USES = 10**12


def _usage(e: Mapping[str, Any], now: float, batch: Batch) -> None:
    """A use of an asset: `{"asset", "views": N | "reads": N, "reader", "time", "run_id"}`, or
    `kind` ("read" or "view") and `count` (default 1) as the SDK sends them. Views without a
    reader are the asset's own (a dashboard reporting its views)."""
    asset = _identifier(e.get("asset"), "asset", LIMITS["name"])
    given = [k for k in ("views", "reads") if e.get(k) is not None]
    if len(given) > 1:
        raise _Bad("give views or reads, not both")
    if given:
        if e.get("kind") is not None or e.get("count") is not None:
            raise _Bad(f"{given[0]}: give either {given[0]} or kind and count")
        kind = "view" if given[0] == "views" else "read"
        count = _opt_count(e.get(given[0]), given[0])
    elif e.get("kind") is None:
        raise _Bad("give views (a dashboard's) or reads (a job's): a number of at least 1")
    else:
        kind = e["kind"]
        if kind not in ("read", "view"):
            raise _Bad(f"kind: expected 'read' or 'view', got {_show(kind)}")
        count = _opt_count(e.get("count", 1), "count")
    if not count or count > _MAX_USES:
        raise _Bad(f"{given[0] if given else 'count'}: expected 1 to {_MAX_USES:,}, got {count}")
    reader = _opt_identifier(e.get("reader"), "reader", LIMITS["name"])
    if reader is None:
        if kind == "read":
            raise _Bad("reader: name the job that read the asset")
        reader = asset
    source = e.get("source", "sdk")
    if source not in _USAGE_SOURCES:
        raise _Bad(f"source: expected one of {', '.join(_USAGE_SOURCES)}, got {_show(source)}")
    when = _opt_time(e.get("time"), "time")
    batch.usage.append(
        AssetUsage(
            asset=asset,
            reader=reader,
            kind=kind,
            count=count,
            time=from_epoch(now if when is None else when),
            run_id=_opt_identifier(e.get("run_id"), "run_id", LIMITS["id"]),
            source=str(source),
        )
    )


def usage_to_ingested(payload: object, *, now: float) -> Ingested:
    """The body of `POST /api/v1/usage`: one use (see `_usage`) or a list of them, each
    stored with source "api"."""
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list):
        got = "null" if payload is None else type(payload).__name__
        raise InvalidArgumentError(
            'Expected a JSON object like {"asset": "orders", "views": 450, "reader": '
            f'"Superset: Orders"}} or an array of them, got {got}.'
        )
    events = [
        {**e, "type": "usage", "source": "api"} if isinstance(e, dict) else e for e in payload
    ]
    return to_ingested(events, now=now)


_CONVERTERS: dict[str, Callable[[Mapping[str, Any], float, Batch], None]] = {
    "asset": _asset,
    "run": _run,
    "materialization": _materialization,
    "check": _check,
    "log": _log,
    "span": _span,
    "lineage": _lineage,
    "schema": _schema,
    "metric": _metric,
    "profile": _profile,
    "usage": _usage,
}


def to_ingested(payload: object, *, now: float) -> Ingested:
    """Check each event of `payload` (a list of event objects, or one) and file the good ones.

    Raises InvalidArgumentError when the payload is neither a list nor an object.
    """
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list):
        raise InvalidArgumentError(
            f"Expected a JSON array of events, got {type(payload).__name__ if payload is not None else 'null'}."
        )
    result = Ingested()
    batch = result.batch
    for index, event in enumerate(payload):
        if not isinstance(event, dict):
            result.rejected.append(
                Rejection(index, f"expected an event object, got {_show(event)}")
            )
            continue
        kind = event.get("type")
        kind = _ALIASES.get(kind, kind) if isinstance(kind, str) else kind
        convert = _CONVERTERS.get(kind) if isinstance(kind, str) else None
        if convert is None:
            result.rejected.append(
                Rejection(
                    index,
                    f"type: expected one of {', '.join(EVENT_TYPES)}, got {_show(kind)}",
                )
            )
            continue
        try:
            # The boundary: clean text, bounded nesting, numbers the store can hold.
            convert(_clean.data(event, level=0), now, batch)
        except (_Bad, _clean.Unfit) as exc:
            result.rejected.append(Rejection(index, f"{kind}: {exc}"))
            continue
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            # A shape no check above foresaw: this event is refused, not the whole body.
            line = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
            result.rejected.append(Rejection(index, f"{kind}: cannot be read ({line})"))
            continue
        result.accepted += 1
    return result


def ingest_body(body: bytes | str, *, now: float) -> Ingested:
    """The body of `POST /api/v1/events`: `to_ingested(loads(body))`, by a faster way when
    every event is fine (native_fast.py), else by that one. Raises InvalidArgumentError."""
    from lakelens.ingest import native_fast

    payload = native_fast.parse(body)
    if payload is not None:
        fast = native_fast.to_ingested(payload, now=now, convert=_CONVERTERS.get, aliases=_ALIASES)
        if fast is not None:
            return fast
    return to_ingested(loads(body), now=now)
