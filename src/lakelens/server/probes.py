"""Health endpoints: `/health`, `/health/{component}`, `/livez` and `/readyz`.

`/livez` and `/readyz` answer anyone (orchestrators probe them without credentials) and say
nothing about the data; `/health` follows the read rules.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from lakelens.server.context import ServerContext
from lakelens.server.security import clean, require_read

__all__ = ["router"]

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
async def health(request: Request) -> JSONResponse:
    report = await run_in_threadpool(_ctx(request).health.check_all)
    return JSONResponse(report, status_code=503 if report["status"] == "unhealthy" else 200)


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


@router.get(
    "/readyz",
    summary="The store is reachable and its migrations are applied",
    responses={503: {"description": "Not ready."}},
)
async def readyz(request: Request) -> JSONResponse:
    from lakelens.server.health import schema_state

    ctx = _ctx(request)
    try:
        current, head = await run_in_threadpool(schema_state, ctx.store)
    except Exception:
        return JSONResponse({"status": "not ready", "reason": "the store is not reachable"}, 503)
    if current != head:
        return JSONResponse(
            {"status": "not ready", "reason": f"store at revision {current}, expected {head}"},
            503,
        )
    return JSONResponse({"status": "ready"})
