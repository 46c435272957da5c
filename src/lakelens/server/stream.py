"""`GET /api/v1/logs/stream`: a live tail of the logs as Server-Sent Events.

A worker thread runs `analysis.logs.follow()` (commit order, no gaps, no repeats) and hands
records to the response through a small bounded queue; the response sends a comment every
few seconds so proxies keep the connection, and stops when the client goes away or the
server shuts down. Each event's `id` is the log id: a reconnecting client sends it back as
`Last-Event-ID` and resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from lakelens.server.api import log_filter
from lakelens.server.context import ServerContext
from lakelens.server.security import require_read
from lakelens.server.shapes import log_dict

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_read)], tags=["read"])
KEEPALIVE_SECONDS = 10.0
_QUEUE = 1000
_DONE = object()


@router.get(
    "/logs/stream",
    summary="Live tail of the logs (Server-Sent Events; resume with Last-Event-ID)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        503: {"description": "Too many streams."},
    },
)
async def stream_logs(
    request: Request,
    asset: str | None = Query(None),
    job: str | None = Query(None),
    run_id: str | None = Query(None),
    level: str | None = Query(None),
    q: str | None = Query(None),
    after: int | None = Query(
        None, ge=0, le=2**63 - 1, description="Start after this log id (default: now)."
    ),
) -> StreamingResponse:
    from starlette.concurrency import run_in_threadpool

    ctx: ServerContext = request.app.state.ctx
    resume = request.headers.get("last-event-id")
    if resume is not None and resume.strip().isdigit() and len(resume.strip()) < 19:
        after = int(resume.strip())

    def prepare() -> tuple[Any, int]:
        from lakelens.analysis.logs import last_id

        with ctx.store.connect() as conn:
            where = log_filter(
                conn,
                now=ctx.clock(),
                asset=asset,
                job=job,
                run_id=run_id,
                level=level,
                since=None,
                until=None,
                q=q,
            )
            return where, last_id(conn) if after is None else after

    if ctx.streams >= ctx.max_streams:
        raise HTTPException(503, "Too many live log streams are open; retry later.")
    where, position = await run_in_threadpool(prepare)
    return StreamingResponse(
        _events(request, ctx, where, position),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    request: Request, ctx: ServerContext, where: Any, position: int
) -> AsyncIterator[bytes]:
    from lakelens.analysis.logs import follow

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue(_QUEUE)
    stop = threading.Event()

    def stopped() -> bool:
        return stop.is_set() or ctx.stopping.is_set()

    def tail() -> None:
        try:
            for record in follow(ctx.store.connect, where, after_id=position, stop=stopped):
                # Wait for room (a slow client), but never past a stop.
                future = asyncio.run_coroutine_threadsafe(queue.put(record), loop)
                while not stopped():
                    try:
                        future.result(timeout=0.5)
                        break
                    except TimeoutError:
                        continue
                else:
                    future.cancel()
                    return
        except Exception as exc:  # the store went away: end the stream, say why
            if not stopped():
                loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            if not stop.is_set():
                loop.call_soon_threadsafe(_offer_done, queue)

    with ctx.streams_lock:
        ctx.streams += 1
    worker = threading.Thread(target=tail, name="lakelens-log-stream", daemon=True)
    worker.start()
    idle = 0.0
    try:
        yield b"retry: 2000\n\n"
        while not ctx.stopping.is_set():
            try:
                item = await asyncio.wait_for(queue.get(), timeout=1.0)
            except asyncio.TimeoutError:
                if await request.is_disconnected():
                    break
                idle += 1.0
                if idle >= KEEPALIVE_SECONDS:
                    idle = 0.0
                    yield b": keepalive\n\n"
                continue
            idle = 0.0
            if item is _DONE:
                break
            if isinstance(item, Exception):
                message = json.dumps(
                    {"detail": "The log stream stopped: the store is not reachable."}
                )
                yield f"event: error\ndata: {message}\n\n".encode()
                break
            data = json.dumps(log_dict(item), default=str, ensure_ascii=False)
            yield f"id: {item.id}\nevent: log\ndata: {data}\n\n".encode()
    finally:
        stop.set()
        with ctx.streams_lock:
            ctx.streams -= 1


def _offer_done(queue: asyncio.Queue[Any]) -> None:
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(_DONE)
