"""HTTP limits that idle sockets cannot exhaust: a request-head timeout and in-flight requests;
and failed sign-ins per client address.

uvicorn's `limit_concurrency` counts connections, so 1,000 clients that connect and send
nothing turn every request into a 503; and it has no timeout before the first request, so
they stay forever. Here connections are closed when their request head is late, and the
bound counts requests being handled, not sockets.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["FailureLimit", "InFlight", "InFlightLimit", "busy", "header_timeout_protocol"]

log = logging.getLogger("lakelens.server")

_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 33\r\n\r\nThe request head took too long.\r\n"
)


def header_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request head has not fully arrived
    `seconds` after it connected (or after it began sending a request on a kept-alive
    connection). Idle kept-alive connections are uvicorn's `timeout_keep_alive`."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutProtocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm()  # a whole request head arrived
            elif self._head_timer is None and self.conn.trailing_data[0]:
                self._arm()  # the next request on a kept-alive connection has begun

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(seconds, self._expire)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _expire(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            if self.conn.trailing_data[0]:
                self.transport.write(_TIMED_OUT)  # half a head: say why
            self.transport.close()

    return HeaderTimeoutProtocol


class InFlight:
    """How many HTTP requests are being handled, against how many may be at once: one count
    shared by every layer that admits requests (the app's middleware and its ingest front)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def full(self) -> bool:
        return self.count >= self.limit


class InFlightLimit:
    """At most `limit` HTTP requests handled at once; more get 503 with Retry-After at once.

    `/livez` is exempt: an overloaded server is still alive, and restarting it helps no one.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int | None = None,
        exempt: tuple[str, ...] = ("/livez",),
        *,
        gate: InFlight | None = None,
    ) -> None:
        if gate is None:
            if limit is None:
                raise TypeError("InFlightLimit needs a limit or a gate")
            gate = InFlight(limit)
        self.app = app
        self.gate = gate
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        gate = self.gate
        if gate.full():
            await busy(send)
            return
        gate.count += 1  # one event loop: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            gate.count -= 1


async def busy(send: Send) -> None:
    """The 503 a request gets when the server handles as many as it may already."""
    body = b'{"detail":"The server is handling too many requests; retry later."}'
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class FailureLimit:
    """At most `limit` failures per key (a client address) in any `window` seconds.

    `retry_after(key)` says how long a key that used them up must wait. At most `max_keys`
    keys are remembered (the least recently failing are forgotten first), so a flood of
    addresses costs bounded memory.
    """

    def __init__(
        self,
        limit: int = 5,
        window: float = 60.0,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FailureLimit({self.limit} per {self.window:g}s, {len(self._failures)} keys)"

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        while times and times[0] <= now - self.window:
            times.popleft()
        if times is not None and not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, key: str) -> float | None:
        """Seconds until `key` may try again, or None when it may now."""
        with self._lock:
            now = self._clock()
            times = self._recent(key, now)
            if times is None or len(times) < self.limit:
                return None
            return max(0.0, times[-self.limit] + self.window - now)

    def fail(self, key: str) -> None:
        """Count one failure of `key`."""
        with self._lock:
            now = self._clock()
            times = self._recent(key, now)
            if times is None:
                times = self._failures[key] = deque(maxlen=self.limit)
            times.append(now)
            self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)
