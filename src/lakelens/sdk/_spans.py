"""`lakelens.span(...)`: timed, nested operations inside a run's trace."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from lakelens.errors import InvalidArgumentError
from lakelens.events import dumps
from lakelens.sdk._runtime import FRAME, RT

__all__ = ["Span", "span"]

F = TypeVar("F", bound=Callable[..., Any])


class Span:
    """One span; `set()` adds attributes, `event()` adds timestamped events.

    Kept lean on purpose: entering and leaving a span is on the pipeline's hot path, so ids
    and timing are taken here and everything else (JSON, hex ids) waits for the writer thread.
    """

    __slots__ = (
        "_token",
        "asset",
        "attributes",
        "end",
        "error",
        "events",
        "name",
        "parent_id",
        "run_id",
        "span_id",
        "start",
        "status",
        "trace_id",
    )

    trace_id: str
    span_id: str
    parent_id: str | None
    run_id: str | None
    asset: str | None
    start: float

    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self.name = name
        self.attributes = attributes
        self.events: list[dict[str, Any]] | None = None
        self.status = "ok"
        self.error: str | None = None
        self.end: float | None = None

    def __enter__(self) -> Span:
        run, mat, parent = frame = FRAME.get()
        if parent is not None:
            self.trace_id = parent.trace_id
            self.parent_id = parent.span_id
        else:
            if run is None:
                run = RT.ambient_run()
            self.trace_id = run.trace_id if run is not None else f"{RT.rng.getrandbits(128):032x}"
            self.parent_id = None
        self.run_id = run.run_id if run is not None else None
        self.asset = mat.name if mat is not None else None
        self.span_id = RT.span_prefix + format(next(RT.span_counter) & 0xFFFFFFFF, "08x")
        self._token = FRAME.set((frame[0], mat, self))
        self.start = RT.clock()
        return self

    def set(self, key: str, value: Any) -> Span:
        """Set an attribute (`s.set("rows_fetched", 487)`); returns the span for chaining."""
        self.attributes[key] = value
        return self

    def event(self, name: str, **attributes: Any) -> None:
        """Record a point-in-time event inside the span."""
        if self.events is None:
            self.events = []
        self.events.append({"name": name, "time": RT.clock(), "attributes": attributes})

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.end = RT.clock()
        FRAME.reset(self._token)
        if exc_type is not None:
            self.status = "error"
            self.error = f"{exc_type.__name__}: {exc}"[:4000]
        RT.writer.put_other(self)

    @property
    def duration_seconds(self) -> float | None:
        return None if self.end is None else self.end - self.start

    def __call__(self, fn: F) -> F:
        """Use as a decorator: every call of `fn` runs in a fresh span with these attributes."""
        name, attributes = self.name, self.attributes
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with Span(name, dict(attributes)):
                    return await fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with Span(name, dict(attributes)):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def row(self) -> tuple[Any, ...]:
        """The stored row (called on the writer thread)."""
        return (
            self.trace_id,
            self.span_id,
            self.parent_id,
            self.run_id,
            self.asset,
            self.name,
            self.start,
            self.end,
            self.status,
            self.error,
            dumps(self.attributes),
            dumps(self.events),
        )


def span(name: str, **attributes: Any) -> Span:
    """Time an operation: `with lakelens.span("fetch_from_api", endpoint=url) as s: s.set("rows", 487)`.

    Spans nest (the enclosing span is the parent), belong to the current run's trace, and are
    marked as errors when an exception leaves them. Also usable as a decorator.
    """
    if type(name) is not str or not name:
        raise InvalidArgumentError(f"Invalid span name {name!r}: expected a non-empty string.")
    return Span(name, attributes)
