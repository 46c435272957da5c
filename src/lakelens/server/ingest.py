"""Ingest endpoints: native events, OpenLineage (Marquez path), OTLP/HTTP traces and logs, and
reported usage (dashboard views).

Every request is committed to the store before the response is sent (server/commit.py:
concurrent requests share one transaction). The body is read under the size limit and
converted (on the event loop when small, else in a worker thread), and the response says
how many events were accepted and which were rejected, with reasons.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from lakelens.errors import InvalidArgumentError
from lakelens.ingest import Ingested
from lakelens.server.commit import BATCH_ID_HEADER, GroupCommitter, parse_batch_id
from lakelens.server.context import ServerContext
from lakelens.server.security import clean, read_body, require_write

__all__ = ["LEAN_ROUTES", "router"]

log = logging.getLogger("lakelens.server")


# Every endpoint calls `require_write` first, itself: as a router dependency (a plain function)
# FastAPI ran it in a worker thread, and resolving dependencies cost ~7% of a small request.
router = APIRouter(tags=["ingest"])
# Bodies up to this size are converted on the event loop: a worker thread costs more than the
# work (one OpenLineage RunEvent converts in about 50 µs; 500 native events in about 1.5 ms).
INLINE_BODY_BYTES = 16 * 1024
# Native bodies are read by orjson (ingest/native_fast.py): 500 logs (88 KB) in about 0.8 ms,
# and a worker thread would hold the GIL for it all the same (it only lets the loop in every
# 5 ms, sys.getswitchinterval()); on the loop up to about 2 ms of work (1,500 logs), which
# saved 0.2-0.4 ms of server CPU per 500-log request (three interleaved pairs).
NATIVE_INLINE_BODY_BYTES = 256 * 1024
_COMMITTERS = threading.Lock()

_RESULT_SCHEMA = {
    "type": "object",
    "properties": {
        "accepted": {"type": "integer"},
        "rejected": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"index": {"type": "integer"}, "reason": {"type": "string"}},
            },
        },
        "duplicate": {"type": "boolean"},
    },
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed body; `detail` says what is wrong."},
    401: {"description": "Missing or wrong bearer token."},
    403: {"description": "The token lacks the 'ingest' scope."},
    408: {"description": "The body took too long to arrive."},
    413: {"description": "The body is larger than 20 MiB."},
    415: {"description": "Unsupported Content-Type or Content-Encoding."},
    503: {"description": "The store is not reachable; retry later."},
}
_RESULTS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Every event was stored.",
        "content": {"application/json": {"schema": _RESULT_SCHEMA}},
    },
    207: {
        "description": "Some events were stored; `rejected` lists the others with reasons.",
        "content": {"application/json": {"schema": _RESULT_SCHEMA}},
    },
    422: {
        "description": "No event could be stored; `rejected` says why.",
        "content": {"application/json": {"schema": _RESULT_SCHEMA}},
    },
    **_ERRORS,
}
_HEADER_DOC = {
    "name": BATCH_ID_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 128, "pattern": "^[A-Za-z0-9._:-]+$"},
    "description": "Batch id: a request repeated with the same id is stored once.",
}
_NATIVE_BODY = {
    "parameters": [_HEADER_DOC],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {
                            "type": {
                                "type": "string",
                                "enum": [
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
                                ],
                            }
                        },
                        "additionalProperties": True,
                    },
                }
            }
        },
    },
}
_OPENLINEAGE_BODY = {
    "parameters": [_HEADER_DOC],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "object", "description": "One OpenLineage RunEvent."},
                        {"type": "array", "items": {"type": "object"}},
                    ]
                }
            }
        },
    },
}


def _otlp_body(what: str) -> dict[str, Any]:
    return {
        "parameters": [_HEADER_DOC],
        "requestBody": {
            "required": True,
            "content": {
                "application/x-protobuf": {
                    "schema": {"type": "string", "format": "binary"},
                },
                "application/json": {
                    "schema": {"type": "object", "description": f"OTLP/JSON {what}."}
                },
            },
        },
    }


def _ctx(request: Request) -> ServerContext:
    return request.app.state.ctx


def _convert(convert: Callable[..., Ingested], *args: Any, now: float) -> Ingested:
    """Run a converter; anything it raises on bad input becomes a 400, never a 500."""
    try:
        return convert(*args, now=now)
    except InvalidArgumentError:
        raise
    except RecursionError:
        raise InvalidArgumentError("The body is nested too deeply.") from None
    except Exception as exc:
        # User input may be in the message: one cleaned line; the traceback only at DEBUG.
        log.error("cannot convert a request body: %s", clean(f"{type(exc).__name__}: {exc}"))
        log.debug("converter traceback", exc_info=True)
        raise InvalidArgumentError(
            f"The body could not be read: {clean(type(exc).__name__)}: {clean(exc, 160)}."
        ) from None


async def _converted(
    convert: Callable[..., Ingested], body: bytes, *args: Any, now: float
) -> Ingested:
    if len(body) <= INLINE_BODY_BYTES:
        return _convert(convert, body, *args, now=now)
    return await run_in_threadpool(_convert, convert, body, *args, now=now)


def _committer(request: Request) -> GroupCommitter:
    """The app's committer (one writer thread for the app's store)."""
    state = request.app.state
    committer: GroupCommitter | None = getattr(state, "committer", None)
    if committer is None:
        # Requests of one app can run on several event loops (a TestClient without `with`).
        with _COMMITTERS:
            committer = getattr(state, "committer", None)
            if committer is None:
                committer = state.committer = GroupCommitter(_ctx(request).store)
    return committer


async def _store(
    request: Request, ingested: Ingested, *, source: str, batch_id: str | None, now: float
) -> bool:
    """Commit (with other requests' events); True unless the batch id was already committed."""
    ctx = _ctx(request)
    if batch_id is None and not len(ingested.batch):
        fresh = True  # nothing to write, nothing to claim
    else:
        fresh = await _committer(request).commit(
            ingested, source=source, batch_id=batch_id, now=now
        )
    if fresh:
        ctx.counters.add(source, ingested.accepted, len(ingested.rejected))
        if ctx.alerts is not None and _has_failure(ingested):
            ctx.alerts.evaluate_now.set()
    if ingested.rejected:
        first = ingested.rejected[0]
        log.info(
            "%s: %d accepted, %d rejected (first: #%d %s)",
            source,
            ingested.accepted,
            len(ingested.rejected),
            first.index,
            clean(first.reason),
        )
    return fresh


def _has_failure(ingested: Ingested) -> bool:
    """Whether the batch holds something the alert evaluator should look at right away."""
    batch = ingested.batch
    return (
        any(r.status == "failure" for r in batch.runs)
        or any(m.status == "failure" for m in batch.materializations)
        or any(not c.passed for c in batch.checks)
        or bool(batch.schemas)
    )


class _Accepted(Response):
    """The usual answer, 200 with a JSON body: the headers Response would give, made directly."""

    media_type = "application/json"

    def __init__(self, body: bytes) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"content-length", b"%d" % len(body)),
            (b"content-type", b"application/json"),
        ]


def _result(ingested: Ingested, *, duplicate: bool) -> Response:
    if not ingested.rejected:
        # The usual answer, without a JSON encoder: {"accepted":N,"rejected":[]}.
        extra = b',"duplicate":true' if duplicate else b""
        return _Accepted(b'{"accepted":%d,"rejected":[]%s}' % (ingested.accepted, extra))
    status = 207 if ingested.accepted else 422
    body: dict[str, Any] = {
        "accepted": ingested.accepted,
        "rejected": [{"index": r.index, "reason": r.reason} for r in ingested.rejected],
    }
    if duplicate:
        body["duplicate"] = True
    return JSONResponse(body, status_code=status)


def _batch_id(request: Request) -> str | None:
    return parse_batch_id(request.headers.get(BATCH_ID_HEADER))


@router.post(
    "/api/v1/events",
    summary="Native lakelens events (what the SDK sends)",
    responses=_RESULTS,
    openapi_extra=_NATIVE_BODY,
)
async def post_events(request: Request) -> Response:
    """A JSON array of events `{"type": "run"|"materialization"|..., ...fields}`."""
    from lakelens.ingest import native

    return await _native_json(request, native.ingest_body, source="native")


def _usage_body(body: bytes, *, now: float) -> Ingested:
    from lakelens.ingest import native

    return native.usage_to_ingested(native.loads(body), now=now)


async def _native_json(
    request: Request, convert: Callable[..., Ingested], *, source: str
) -> Response:
    """Read a JSON body of native events, convert it with `convert(body, now=)`, store it."""
    require_write(request)
    ctx = _ctx(request)
    batch_id = _batch_id(request)
    body = await read_body(request, limit=ctx.max_body_bytes, timeout=ctx.body_timeout)
    now = ctx.clock()
    if len(body) <= NATIVE_INLINE_BODY_BYTES:
        ingested = _convert(convert, body, now=now)
    else:
        ingested = await _converted(convert, body, now=now)
    fresh = await _store(request, ingested, source=source, batch_id=batch_id, now=now)
    return _result(ingested, duplicate=not fresh)


@router.post(
    "/api/v1/lineage",
    summary="OpenLineage RunEvents (Marquez-compatible path)",
    responses=_RESULTS,
    openapi_extra=_OPENLINEAGE_BODY,
)
async def post_openlineage(request: Request) -> Response:
    """One OpenLineage RunEvent or an array of them."""
    require_write(request)
    converter = _load("lakelens.ingest.openlineage", "body_to_ingested")
    ctx = _ctx(request)
    batch_id = _batch_id(request)
    body = await read_body(request, limit=ctx.max_body_bytes, timeout=ctx.body_timeout)
    now = ctx.clock()
    ingested = await _converted(converter, body, now=now)
    fresh = await _store(request, ingested, source="openlineage", batch_id=batch_id, now=now)
    return _result(ingested, duplicate=not fresh)


_USAGE_ITEM = {
    "type": "object",
    "required": ["asset"],
    "properties": {
        "asset": {"type": "string", "description": "The asset used, e.g. a mart."},
        "views": {"type": "integer", "minimum": 1, "description": "Views of a dashboard."},
        "reads": {"type": "integer", "minimum": 1, "description": "Reads by a job."},
        "reader": {
            "type": "string",
            "description": "The dashboard or job; views without one are the asset's own.",
        },
        "time": {"description": "Epoch seconds or ISO 8601; default: when received."},
        "run_id": {"type": "string", "description": "A run's use is counted once."},
    },
}
_USAGE_BODY = {
    "parameters": [_HEADER_DOC],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [_USAGE_ITEM, {"type": "array", "items": _USAGE_ITEM}]}
            }
        },
    },
}


@router.post(
    "/api/v1/usage",
    summary="Report views of a dashboard (or reads by a job) of an asset",
    responses=_RESULTS,
    openapi_extra=_USAGE_BODY,
)
async def post_usage(request: Request) -> Response:
    """`{"asset": "mrt_glucose_readings", "views": 450, "reader": "Superset: Glucose Monitoring"}`
    or an array of them; shown as downstream usage of the asset."""
    return await _native_json(request, _usage_body, source="usage")


_OTLP_TYPES = ("application/x-protobuf", "application/protobuf", "application/json")


async def _otlp(request: Request, what: str) -> Response:
    require_write(request)
    converter = _load("lakelens.ingest.otlp", f"{what}_to_ingested")
    content_type = request.headers.get("content-type", "")
    base = content_type.split(";")[0].strip().lower()
    if base not in _OTLP_TYPES:
        raise HTTPException(
            415,
            f"Unsupported Content-Type {clean(base or 'none', 60)!r}: OTLP/HTTP takes "
            "application/x-protobuf or application/json.",
        )
    ctx = _ctx(request)
    batch_id = _batch_id(request)
    body = await read_body(request, limit=ctx.max_body_bytes, timeout=ctx.body_timeout)
    now = ctx.clock()
    ingested = await _converted(converter, body, content_type, now=now)
    await _store(request, ingested, source=f"otlp_{what}", batch_id=batch_id, now=now)
    return _otlp_response(what, ingested, protobuf=base != "application/json")


def _otlp_response(what: str, ingested: Ingested, *, protobuf: bool) -> Response:
    """OTLP's Export*ServiceResponse: empty on full success, partial_success otherwise."""
    rejected = len(ingested.rejected)
    message = "; ".join(f"#{r.index}: {r.reason}" for r in ingested.rejected[:5])
    field = "rejected_spans" if what == "traces" else "rejected_log_records"
    if not protobuf:
        body: dict[str, Any] = {}
        if rejected:
            camel = "rejectedSpans" if what == "traces" else "rejectedLogRecords"
            body["partialSuccess"] = {camel: rejected, "errorMessage": message}
        return JSONResponse(body)
    payload = b""
    if rejected:
        try:
            if what == "traces":
                from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb
            else:
                from opentelemetry.proto.collector.logs.v1 import (  # type: ignore[no-redef]
                    logs_service_pb2 as pb,
                )
        except ImportError:
            pass
        else:
            kind = "Trace" if what == "traces" else "Logs"
            response = getattr(pb, f"Export{kind}ServiceResponse")()
            partial = response.partial_success
            setattr(partial, field, rejected)
            partial.error_message = message
            payload = response.SerializeToString()
    return Response(payload, media_type="application/x-protobuf")


@router.post(
    "/v1/traces",
    summary="OTLP/HTTP traces (protobuf or JSON)",
    responses={200: {"description": "Stored; partial_success counts rejected spans."}, **_ERRORS},
    openapi_extra=_otlp_body("ExportTraceServiceRequest"),
)
async def post_traces(request: Request) -> Response:
    return await _otlp(request, "traces")


@router.post(
    "/v1/logs",
    summary="OTLP/HTTP logs (protobuf or JSON)",
    responses={
        200: {"description": "Stored; partial_success counts rejected log records."},
        **_ERRORS,
    },
    openapi_extra=_otlp_body("ExportLogsServiceRequest"),
)
async def post_logs(request: Request) -> Response:
    return await _otlp(request, "logs")


def _load(module: str, name: str) -> Callable[..., Ingested]:
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        log.exception("cannot load %s.%s", module, name)
        raise HTTPException(
            501, f"This server cannot convert this format ({module} is missing)."
        ) from None


# The ingest endpoints served by the app's front (server/app.py IngestFront), before and
# without FastAPI's stack: its request handling (dependency resolution, exception wrapping,
# five middleware layers) cost a good part of a one-event OpenLineage request, and these
# endpoints take nothing from it, only a Request. Errors reach the app's exception handlers
# the same way. `router` still declares them, for the OpenAPI schema.
LEAN_ROUTES: list[tuple[str, Callable[[Request], Any]]] = [
    ("/api/v1/events", post_events),
    ("/api/v1/lineage", post_openlineage),
    ("/api/v1/usage", post_usage),
    ("/v1/traces", post_traces),
    ("/v1/logs", post_logs),
]
