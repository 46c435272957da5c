"""The ASGI application: `create_app()` wires settings, the store and the routers together.

    uvicorn --factory lakelens.server.app:create_app

Errors are converted once, here: an unknown asset or run is a 404 whose `detail` suggests
close names, bad input a 400 naming what is wrong, an unreachable store a 503; anything
else is a 500 whose details stay in the server log (one line with the traceback), on a
connection that stays open for the client's next request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from lakelens._version import __version__
from lakelens.server.context import ServerContext
from lakelens.server.limits import InFlight, busy
from lakelens.server.security import clean

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from lakelens.config import Settings
    from lakelens.store import Store

__all__ = ["LakelensAPI", "create_app"]

log = logging.getLogger("lakelens.server")
access_log = logging.getLogger("lakelens.server.access")
# Set in the scope when the client went away before it was answered (logged as 499).
_GONE = "lakelens.client_gone"


class AccessLog:
    """One line per request: client, method, path, status, milliseconds (values cleaned)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        record = _Recorded(send)
        try:
            await self.app(scope, receive, record)
        finally:
            _log_access(scope, record.status, began)


class _Recorded:
    """`send`, remembering the status of the response it started (0 until then)."""

    __slots__ = ("send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


def _log_access(scope: Scope, status: int, began: float) -> None:
    """The access log line; no status means the client went away (499) or an error (500)."""
    if not access_log.isEnabledFor(logging.INFO):
        return  # its values cost a few microseconds to clean: not for a line nobody keeps
    status = status or (499 if scope.get(_GONE) else 500)
    client = scope.get("client")
    access_log.info(
        '%s "%s %s" %d %.1fms',
        clean(client[0] if client else "-", 64),
        clean(scope.get("method", "-"), 16),
        clean(scope.get("path", "-")),
        status,
        (time.perf_counter() - began) * 1000,
    )


class ErrorBoundary:
    """What no exception handler converted: a 500 and one ERROR line with the traceback.

    Starlette's own last resort answers and then re-raises, so uvicorn logs the traceback a
    second time and closes the kept-alive connection under the client's next request. A
    client that went away before it was answered is one INFO line and no answer.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.requests import ClientDisconnect

        tracked = _Recorded(send)
        try:
            await self.app(scope, receive, tracked)
        except ClientDisconnect:
            scope[_GONE] = True
            _log_gone(scope)
        except Exception as exc:
            await _internal_error(scope, receive, send, exc, started=bool(tracked.status))


def _where(scope: Scope) -> str:
    return f"{clean(scope.get('method', '-'), 16)} {clean(scope.get('path', '-'))}"


def _log_gone(scope: Scope) -> None:
    log.info("the client went away during %s before it was answered", _where(scope))


async def _internal_error(
    scope: Scope, receive: Receive, send: Send, exc: Exception, *, started: bool
) -> None:
    """Log what no handler converted; answer 500 unless the response had begun (uvicorn then
    closes the connection, cutting it short)."""
    log.error(
        "internal error on %s: %s",
        _where(scope),
        clean(f"{type(exc).__name__}: {exc}"),
        exc_info=exc,
    )
    if not started:
        response = _error(500, "Internal server error; the server log has the details.")
        await response(scope, receive, send)


class IngestFront:
    """The ingest paths' one layer: what AccessLog, InFlightLimit, ErrorBoundary and FastAPI's
    exception handling do for them, in that order, with the same answers and log lines.

    A one-event ingest request passed ten ASGI layers (FastAPI's error, telemetry, body-limit,
    exception and exit-stack middleware, lakelens' three, the router): about an eighth of the
    event loop's time, and 8-17% of the server's CPU per request once gone. `LakelensAPI` hands the exact POST paths of `ingest.LEAN_ROUTES`
    here and every other request to FastAPI unchanged. FastAPI's native OpenTelemetry spans
    (off unless a provider is configured) are not made for these paths.
    """

    def __init__(
        self, app: FastAPI, gate: InFlight, routes: list[tuple[str, Callable[..., Any]]]
    ) -> None:
        self.app = app
        self.gate = gate
        self.routes = dict(routes)
        self._tables: tuple[dict[Any, Any], dict[int, Any]] | None = None

    def endpoint(self, scope: Scope) -> Callable[..., Any] | None:
        """The ingest endpoint that serves this request, or None (FastAPI serves it)."""
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("root_path"):
            return None
        return self.routes.get(scope["path"])

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, endpoint: Callable[..., Any]
    ) -> None:
        from starlette.requests import ClientDisconnect

        began = time.perf_counter()
        record = _Recorded(send)
        gate = self.gate
        try:
            if gate.full():
                await busy(record)
                return
            gate.count += 1  # one event loop: no lock needed
            try:
                await self._answer(scope, receive, record, endpoint)
            except ClientDisconnect:
                scope[_GONE] = True
                _log_gone(scope)
            except Exception as exc:
                await _internal_error(scope, receive, record, exc, started=bool(record.status))
            finally:
                gate.count -= 1
        finally:
            _log_access(scope, record.status, began)

    async def _answer(
        self, scope: Scope, receive: Receive, tracked: _Recorded, endpoint: Callable[..., Any]
    ) -> None:
        """The endpoint's response, or what the app's exception handlers make of its error
        (as Starlette's `wrap_app_handling_exceptions` does)."""
        from starlette.requests import Request

        request = Request(scope, receive, tracked)
        try:
            response = await endpoint(request)
            await response(scope, receive, tracked)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            if tracked.status:
                raise RuntimeError(
                    "Caught handled exception, but response already started."
                ) from exc
            response = await handler(request, exc)
            if response is not None:
                await response(scope, receive, tracked)
            exc.__traceback__ = None  # a reused exception would collect tracebacks

    def _handler(self, exc: Exception) -> Callable[..., Any] | None:
        """The app's handler for `exc`: by status for an HTTPException, else by class."""
        from starlette.exceptions import HTTPException

        if self._tables is None:
            handlers = {
                k: v for k, v in self.app.exception_handlers.items() if k not in (500, Exception)
            }
            by_status = {k: v for k, v in handlers.items() if isinstance(k, int)}
            self._tables = (
                {k: v for k, v in handlers.items() if not isinstance(k, int)},
                by_status,
            )
        by_class, by_status = self._tables
        if isinstance(exc, HTTPException) and exc.status_code in by_status:
            return by_status[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in by_class:
                return by_class[cls]
        return None


class LakelensAPI(FastAPI):
    """The FastAPI app, with its ingest paths served by `front` (see IngestFront)."""

    front: IngestFront | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self.front
        endpoint = None if front is None else front.endpoint(scope)
        if front is None or endpoint is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        await front(scope, receive, send, endpoint)


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        location = [str(p) for p in error.get("loc", ())]
        where = location[0] if location else "request"
        name = ".".join(location[1:]) or "body"
        parts.append(f"{where} parameter {name!r}: {error.get('msg', 'invalid')}")
    return "Invalid " + "; ".join(parts) + "."


def _install_error_handlers(app: FastAPI) -> None:
    import sqlalchemy as sa

    from lakelens.analysis.assets import UnknownAssetError
    from lakelens.analysis.runs import UnknownRunError
    from lakelens.errors import LakelensError, StoreError

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return _error(404, str(exc))

    async def bad_request(request: Request, exc: Exception) -> JSONResponse:
        return _error(400, str(exc))

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.error("store unavailable: %s", clean(str(exc).splitlines()[0] if str(exc) else exc))
        return _error(
            503, "The store is not reachable right now; retry later.", {"Retry-After": "5"}
        )

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _error(400, _validation_message(exc))

    app.add_exception_handler(UnknownAssetError, not_found)
    app.add_exception_handler(UnknownRunError, not_found)
    app.add_exception_handler(StoreError, unavailable)
    app.add_exception_handler(sa.exc.OperationalError, unavailable)
    app.add_exception_handler(LakelensError, bad_request)
    app.add_exception_handler(RequestValidationError, invalid)
    # Anything else: ErrorBoundary (not an `Exception` handler, which Starlette re-raises).


def create_app(
    settings: Settings | None = None,
    store: Store | None = None,
    *,
    clock: Callable[[], float] | None = None,
    run_alerts: bool = True,
) -> LakelensAPI:
    """The lakelens HTTP API over `store` (default: the store named by `settings`).

    `clock` (epoch seconds) is what "now" means for ages and ingest defaults; `run_alerts`
    is False on ingest-only replicas (`lakelens serve --no-alerts`).
    """
    from lakelens.config import load_settings
    from lakelens.display import display_zone
    from lakelens.server import (
        api,
        asset_data_api,
        asset_pages,
        catalog_pages,
        incident_api,
        incident_pages,
        ingest,
        lineage_pages,
        metrics,
        pages,
        probes,
        run_diff_pages,
        signin,
        stream,
    )

    settings = settings or load_settings()
    # The dashboard's zone: a bad LAKELENS_TIMEZONE stops the server here, before anything
    # opens, with one line (`lakelens serve` prints it; UTC when unset).
    zone = display_zone()
    owns_store = store is None
    if store is None:
        from lakelens.store import Store

        store = Store(settings=settings)
        store.background_indexes = True  # a long-lived process: see Store.maintain_partitions
    ctx = ServerContext.build(settings, store, clock=clock, zone=zone)
    ctx.run_alerts = run_alerts

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {}
        ctx.stopping.set()
        if owns_store:
            ctx.store.close()

    app = LakelensAPI(
        title="lakelens",
        version=__version__,
        description=(
            "Observability for data pipelines: ingest (native, OpenLineage, OTLP), the read "
            "API over the same analysis as the CLI, Prometheus metrics and health."
        ),
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    _install_error_handlers(app)
    from lakelens.server.limits import InFlightLimit

    # The last added runs first: the access log sees the 503s of the limit and the 500s.
    gate = InFlight(settings.http_max_requests)
    app.add_middleware(ErrorBoundary)
    app.add_middleware(InFlightLimit, gate=gate)
    app.add_middleware(AccessLog)
    # The ingest paths skip all of that and FastAPI's own layers: one front does the same for
    # them (the path taken thousands of times a second). The router documents them.
    app.front = IngestFront(app, gate, ingest.LEAN_ROUTES)
    app.include_router(ingest.router)
    # The stream's fixed path must come before /logs/{…}-like patterns.
    app.include_router(stream.router)
    # Before the API's /assets/{name:path}, which would take "NAME/profiles" (or "NAME/usage")
    # for a name.
    app.include_router(asset_data_api.router)
    app.include_router(api.router)
    app.include_router(incident_api.router)
    app.include_router(incident_api.actions)
    app.include_router(metrics.router)
    app.include_router(probes.router)
    # The dashboard's HTML pages under / (after the API, so /api/... and /health win).
    # /runs/diff and /runs/partitions before the run page's /runs/{run_id:path}.
    app.include_router(run_diff_pages.router)
    app.include_router(signin.router)
    app.include_router(pages.router)
    app.include_router(asset_pages.router)
    app.include_router(incident_pages.router)
    app.include_router(catalog_pages.router)
    app.include_router(lineage_pages.router)
    return app
