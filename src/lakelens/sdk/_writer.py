"""The background writer: a bounded in-memory queue drained in batches, one transaction each."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from lakelens import _clean
from lakelens.events import Batch, log_attributes
from lakelens.model import MetricPoint

__all__ = ["Writer"]

_DEBUG = 10
_MAX_BACKOFF = 5.0


class _FlushMarker:
    """Placed in the queue by flush(); set once everything queued before it is committed.

    `need` holds, per droppable queue, the removal count at which every item queued before
    the marker has been taken (or dropped).
    """

    __slots__ = ("done", "need")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.need = [0, 0, 0]


class Writer:
    """Accepts events from any thread without blocking; a daemon thread writes them.

    Runs, materializations, checks and definitions are never dropped. When the queue of
    droppable events (logs, spans, metrics) is full, the oldest DEBUG log goes first, then
    the oldest span or metric, then the oldest log; every drop is counted.
    """

    def __init__(
        self,
        sink: Callable[[], Callable[[Batch], object]],
        *,
        queue_size: int = 100_000,
        batch_size: int = 5_000,
        flush_interval: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sink_factory = sink
        self._sink: Callable[[Batch], object] | None = None
        self._capacity = queue_size
        self._batch_size = batch_size
        self._interval = flush_interval
        self._clock = clock
        self._critical: deque[Any] = deque()
        self._logs: deque[tuple[Any, ...]] = deque()
        self._debug: deque[tuple[Any, ...]] = deque()
        self._other: deque[Any] = deque()
        self._retry: Batch | None = None
        self._retry_markers: list[_FlushMarker] = []
        self._markers: list[_FlushMarker] = []
        # Items removed so far from the logs, debug and other queues (taken or dropped).
        self._removed = [0, 0, 0]
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closing = False
        self.dropped = {"debug_logs": 0, "logs": 0, "spans": 0, "metrics": 0}
        self._dropped_reported = 0
        self.written = 0
        self.refused = 0
        self._refusals: set[str] = set()
        self.last_error: str | None = None

    # -- producers (any thread; must stay cheap) ------------------------------------------
    def _start(self) -> None:
        with self._cond:
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(
                    target=self._loop, name="lakelens-writer", daemon=True
                )
                self._thread.start()

    def put(self, event: Any) -> None:
        """Queue an event that must never be dropped (run, materialization, check, definition)."""
        self._critical.append(event)
        if self._thread is None:
            self._start()
        self._wake.set()

    def put_log(self, row: tuple[Any, ...]) -> None:
        """Queue a log row (see events.LOG_COLUMNS)."""
        if row[1] <= _DEBUG:
            self._debug.append(row)
        else:
            self._logs.append(row)
        if len(self._logs) + len(self._debug) + len(self._other) > self._capacity:
            self._drop()
        if self._thread is None:
            self._start()
        elif len(self._logs) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def put_other(self, event: Any) -> None:
        """Queue a span or a metric point."""
        other = self._other
        other.append(event)
        if len(self._logs) + len(self._debug) + len(other) > self._capacity:
            self._drop()
        if self._thread is None:
            self._start()
        elif len(other) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def _drop(self) -> None:
        try:
            if self._debug:
                self._debug.popleft()
                self.dropped["debug_logs"] += 1
                self._removed[1] += 1
            elif self._other:
                victim = self._other.popleft()
                self.dropped["metrics" if type(victim) is MetricPoint else "spans"] += 1
                self._removed[2] += 1
            elif self._logs:
                self._logs.popleft()
                self.dropped["logs"] += 1
                self._removed[0] += 1
        except IndexError:  # the writer thread emptied it meanwhile
            pass

    def pending(self) -> int:
        """Events queued or awaiting a retry (flush markers excluded)."""
        retry = len(self._retry) if self._retry is not None else 0
        critical = sum(1 for event in list(self._critical) if type(event) is not _FlushMarker)
        return critical + len(self._logs) + len(self._debug) + len(self._other) + retry

    # -- flushing --------------------------------------------------------------------------
    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every event queued before this call is committed; False on timeout."""
        if self._thread is None:
            return self.pending() == 0
        if threading.current_thread() is self._thread:
            return False
        marker = _FlushMarker()
        self._critical.append(marker)
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not marker.done.wait(0.05):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if not self._thread.is_alive():
                return False
        return True

    def close(self, timeout: float = 30.0) -> bool:
        ok = self.flush(timeout)
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        return ok

    def abandon(self) -> None:
        """Forget everything (used in a forked child: the parent's thread owns these events)."""
        self._closing = True
        self._thread = None

    # -- the writer thread -----------------------------------------------------------------
    def _loop(self) -> None:
        while not self._closing:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self._cycle()
            except Exception as exc:  # never let the thread die
                self._report(exc)
                time.sleep(0.5)

    def _cycle(self) -> None:
        backoff = 0.05
        while True:
            batch: Batch | None
            if self._retry is not None:
                batch, markers = self._retry, self._retry_markers
            else:
                batch, markers = self._take()
            if batch is not None:
                try:
                    if self._sink is None:
                        self._sink = self._sink_factory()
                    self._write(self._sink, batch)
                except Exception as exc:
                    # Keep the batch and retry: a locked or briefly unreachable store loses nothing.
                    self._retry, self._retry_markers = batch, markers
                    self._report(exc)
                    if self._closing:
                        return
                    time.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF)
                    continue
                self._retry, self._retry_markers = None, []
                self.written += len(batch)
                if self.last_error is not None:
                    print(
                        "lakelens: the store is writable again; queued events were written.",
                        file=sys.stderr,
                    )
                    self.last_error = None
            for marker in markers:
                marker.done.set()
            if batch is None:
                return

    def _write(self, sink: Callable[[Batch], object], batch: Batch) -> None:
        """Write `batch`; when the store refuses its data (not the connection), clean its text
        and write what it can, so one bad event never blocks the queue for good."""
        try:
            sink(batch)
            return
        except Exception as exc:
            if not _refused(exc):
                raise  # the store is locked or unreachable: the caller retries the batch
        # Nested too deeply to clean: the split in _isolate finds that event.
        with contextlib.suppress(RecursionError):
            _clean.batch_text(batch)
        self._isolate(sink, batch)

    def _isolate(self, sink: Callable[[Batch], object], batch: Batch) -> None:
        try:
            sink(batch)
            return
        except Exception as exc:
            if not _refused(exc):
                raise
            error = exc
        parts = _split(batch)
        if not parts:
            self.refused += 1
            message = f"{type(error).__name__}: {error}".splitlines()[0][:300]
            if type(error).__name__ not in self._refusals:
                self._refusals.add(type(error).__name__)
                print(
                    f"lakelens: the store refused an event ({message}); dropped it and kept "
                    "the others.",
                    file=sys.stderr,
                )
            return
        for part in parts:
            self._isolate(sink, part)

    def _take(self) -> tuple[Batch | None, list[_FlushMarker]]:
        """Take up to one batch, and the flush markers that this batch completes."""
        batch = Batch()
        critical, logs, debug, other = self._critical, self._logs, self._debug, self._other
        waiting = self._markers
        removed = self._removed
        try:
            while critical:
                event = critical.popleft()
                if type(event) is _FlushMarker:
                    # Everything the flushing thread queued is removed once these counts are reached.
                    event.need = [
                        removed[0] + len(logs),
                        removed[1] + len(debug),
                        removed[2] + len(other),
                    ]
                    waiting.append(event)
                else:
                    batch.add(event)
        except IndexError:
            pass
        budget = self._batch_size
        taken = [0, 0, 0]
        drained = [False, False, False]
        log_rows = batch.logs
        for index, source in ((0, logs), (1, debug)):
            try:
                while budget > 0:
                    row = source.popleft()
                    attrs = row[9]
                    log_rows.append(row if attrs is None else (*row[:9], log_attributes(attrs)))
                    budget -= 1
                    taken[index] += 1
            except IndexError:
                drained[index] = True
        try:
            while budget > 0:
                event = other.popleft()
                if type(event) is MetricPoint:
                    batch.add(event)
                else:
                    batch.spans.append(event.row())
                budget -= 1
                taken[2] += 1
        except IndexError:
            drained[2] = True
        for index in range(3):
            removed[index] += taken[index]
        done = [m for m in waiting if all(drained[i] or removed[i] >= m.need[i] for i in range(3))]
        if done:
            self._markers = [m for m in waiting if m not in done]
        dropped = sum(self.dropped.values())
        if dropped > self._dropped_reported:
            newly = dropped - self._dropped_reported
            self._dropped_reported = dropped
            log_rows.append(
                (
                    self._clock(),
                    30,
                    f"lakelens dropped {newly} events because its queue was full "
                    f"({self.dropped}); raise LAKELENS_QUEUE_SIZE or log less at DEBUG",
                    "lakelens",
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                )
            )
        if not len(batch):
            return None, done
        if log_rows:
            # Debug and other logs were queued separately; restore time order.
            log_rows.sort(key=_row_time)
        return batch, done

    def _report(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        if message != self.last_error:
            self.last_error = message
            print(f"lakelens: cannot write to the store ({message}); retrying.", file=sys.stderr)


_TABLES = (
    "assets",
    "runs",
    "materializations",
    "checks",
    "logs",
    "spans",
    "edges",
    "schemas",
    "metrics",
    "profiles",
)


def _refused(exc: BaseException) -> bool:
    """Whether the store refused the data itself, so retrying the same batch cannot help."""
    if isinstance(exc, (ValueError, TypeError, OverflowError, RecursionError)):
        return True  # UnicodeEncodeError (a lone surrogate), NUL for psycopg, ...
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"DataError", "IntegrityError"})


def _split(batch: Batch) -> list[Batch]:
    """`batch` in smaller parts, in table order (a run before its materializations); [] for one event."""
    filled = [name for name in _TABLES if getattr(batch, name)]
    if len(filled) > 1:
        parts = []
        for name in filled:
            part = Batch()
            setattr(part, name, getattr(batch, name))
            parts.append(part)
        return parts
    if not filled or len(getattr(batch, filled[0])) < 2:
        return []
    events = getattr(batch, filled[0])
    middle = len(events) // 2
    first, second = Batch(), Batch()
    setattr(first, filled[0], events[:middle])
    setattr(second, filled[0], events[middle:])
    return [first, second]


def _row_time(row: tuple[Any, ...]) -> float:
    return float(row[0])
