"""Health endpoints: `/health`, `/health/{component}`, `/livez` and `/readyz`.

`/livez` and `/readyz` answer anyone (orchestrators probe them without credentials) and say
nothing about the data; `/health` follows the read rules.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from lakelens.server.context import ServerContext
from lakelens.server.security import clean, require_read

__all__ = ["router"]

# Seconds /readyz waits for the store to answer before it says not ready.
READY_TIMEOUT = 3.0

router = APIRouter(tags=["health"])
_UNHEALTHY: dict[int | str, dict[str, Any]] = {
    503: {"description": "Unhealthy: at least one critical component is failing."}
}


def _ctx(request: Request) -> ServerContext:
    return request.app.state.ctx


@router.get(
    "/health",
    summary="Overall health with each component",
    dependencies=[Depends(require_read)],
    responses=_UNHEALTHY,
)
async def health(request: Request) -> Response:
    report = await run_in_threadpool(_ctx(request).health.check_all)
    status = 503 if report["status"] == "unhealthy" else 200
    if _wants_html(request):
        from lakelens.server.pages import _html

        return _html(
            request, "health.html", {"title": "Health", "report": report, "nav": ""}, status=status
        )
    return JSONResponse(report, status_code=status)


def _wants_html(request: Request) -> bool:
    """A browser asking for a page (clients and probes get JSON, as before)."""
    if request.query_params.get("format") == "json":
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept


@router.get(
    "/health/{component}",
    summary="One component's health",
    dependencies=[Depends(require_read)],
    responses={**_UNHEALTHY, 404: {"description": "No such component."}},
)
async def health_component(request: Request, component: str) -> JSONResponse:
    checker = _ctx(request).health
    if component not in checker:
        raise HTTPException(
            404,
            f"Unknown component {clean(component, 80)!r}; known: {', '.join(checker.names())}.",
        )
    result = await run_in_threadpool(checker.check, component)
    body = {"component": component, **result.to_dict()}
    return JSONResponse(body, status_code=503 if result.status == "unhealthy" else 200)


@router.get("/livez", summary="The process is up")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


class _SchemaProbe:
    """`schema_state` in a thread of its own, one at a time: while the store does not answer,
    every probe waits on the same attempt instead of taking one more thread each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: Future[tuple[str | None, str | None]] | None = None

    def start(self, ctx: ServerContext) -> Future[tuple[str | None, str | None]]:
        with self._lock:
            if self._running is None or self._running.done():
                future: Future[tuple[str | None, str | None]] = Future()
                self._running = future
                threading.Thread(
                    target=self._run, args=(ctx, future), name="lakelens-readyz", daemon=True
                ).start()
            return self._running

    @staticmethod
    def _run(ctx: ServerContext, future: Future[tuple[str | None, str | None]]) -> None:
        from lakelens.server.health import schema_state

        try:
            future.set_result(schema_state(ctx.store))
        except BaseException as exc:
            future.set_exception(exc)


_PROBES_LOCK = threading.Lock()


def _probe(request: Request) -> _SchemaProbe:
    state = request.app.state
    with _PROBES_LOCK:
        probe = getattr(state, "schema_probe", None)
        if probe is None:
            probe = state.schema_probe = _SchemaProbe()
    return probe


def _not_ready(reason: str) -> JSONResponse:
    return JSONResponse({"status": "not ready", "reason": reason}, 503, {"Retry-After": "5"})


@router.get(
    "/readyz",
    summary="The store is reachable, its migrations are applied and ingest commits",
    responses={503: {"description": "Not ready."}},
)
async def readyz(request: Request) -> JSONResponse:
    ctx = _ctx(request)
    committer = getattr(request.app.state, "committer", None)
    if committer is not None:
        stalled = committer.stalled_for()
        if stalled > ctx.settings.ready_write_stall:
            return _not_ready(f"an ingest commit has waited {stalled:.0f}s for the store")
    attempt = asyncio.wrap_future(_probe(request).start(ctx))
    attempt.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved
    try:
        current, head = await asyncio.wait_for(asyncio.shield(attempt), READY_TIMEOUT)
    except asyncio.TimeoutError:
        return _not_ready(f"the store did not answer within {READY_TIMEOUT:g}s")
    except Exception:
        return _not_ready("the store is not reachable")
    if current != head:
        return _not_ready(f"store at revision {current}, expected {head}")
    integrity = ctx.health.integrity
    if integrity is not None:
        problem, _ = integrity.latest()  # the scheduled quick_check; never waits for it
        if problem is not None:
            return _not_ready("the store file is damaged (PRAGMA quick_check); see /health")
    return JSONResponse({"status": "ready"})
