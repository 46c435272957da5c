"""The background writer: a bounded in-memory queue drained in batches, one transaction each."""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from lakelens.events import Batch, dumps

__all__ = ["Writer"]

_DEBUG = 10
_MAX_BACKOFF = 5.0


class Writer:
    """Accepts events from any thread without blocking; a daemon thread writes them.

    Runs, materializations, checks and definitions are never dropped. When the queue of
    droppable events (logs, spans, metrics) is full, the oldest DEBUG log goes first, then
    the oldest span or metric, then the oldest log; every drop is counted.
    """

    def __init__(
        self,
        sink: Callable[[], Callable[[Batch], None]],
        *,
        queue_size: int = 100_000,
        batch_size: int = 5_000,
        flush_interval: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sink_factory = sink
        self._sink: Callable[[Batch], None] | None = None
        self._capacity = queue_size
        self._batch_size = batch_size
        self._interval = flush_interval
        self._clock = clock
        self._critical: deque[Any] = deque()
        self._logs: deque[tuple[Any, ...]] = deque()
        self._debug: deque[tuple[Any, ...]] = deque()
        self._other: deque[Any] = deque()
        self._retry: Batch | None = None
        self._seq = itertools.count()
        self._committed = -1
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closing = False
        self.dropped = {"debug_logs": 0, "logs": 0, "spans": 0, "metrics": 0}
        self._dropped_reported = 0
        self.written = 0
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
        """Queue a log row (see store.writes.LOG_COLUMNS)."""
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
        self._other.append(event)
        if len(self._logs) + len(self._debug) + len(self._other) > self._capacity:
            self._drop()
        if self._thread is None:
            self._start()

    def _drop(self) -> None:
        try:
            if self._debug:
                self._debug.popleft()
                self.dropped["debug_logs"] += 1
            elif self._other:
                victim = self._other.popleft()
                self.dropped["metrics" if type(victim).__name__ == "MetricPoint" else "spans"] += 1
            elif self._logs:
                self._logs.popleft()
                self.dropped["logs"] += 1
        except IndexError:  # the writer thread emptied it meanwhile
            pass

    def pending(self) -> int:
        retry = len(self._retry) if self._retry is not None else 0
        return len(self._critical) + len(self._logs) + len(self._debug) + len(self._other) + retry

    # -- flushing --------------------------------------------------------------------------
    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every event queued before this call is committed; False on timeout."""
        if self._thread is None:
            return self.pending() == 0
        if threading.current_thread() is self._thread:
            return False
        target = next(self._seq)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._committed <= target:
                self._wake.set()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                if self._thread is None or not self._thread.is_alive():
                    return False
                self._cond.wait(0.05 if remaining is None else min(remaining, 0.05))
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
                batch, mark, complete = self._retry, -1, False
            else:
                mark = next(self._seq)
                batch, complete = self._take()
            if batch is not None:
                try:
                    if self._sink is None:
                        self._sink = self._sink_factory()
                    self._sink(batch)
                except Exception as exc:
                    # Keep the batch and retry: a locked or briefly unreachable store loses nothing.
                    self._retry = batch
                    self._report(exc)
                    if self._closing:
                        return
                    time.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF)
                    continue
                self._retry = None
                self.written += len(batch)
                if self.last_error is not None:
                    print(
                        "lakelens: the store is writable again; queued events were written.",
                        file=sys.stderr,
                    )
                    self.last_error = None
            if complete:
                # Everything queued before `mark` is now committed: release flush() callers.
                with self._cond:
                    self._committed = mark
                    self._cond.notify_all()
                if batch is None:
                    return

    def _take(self) -> tuple[Batch | None, bool]:
        """Take up to one batch; `complete` is True when every queue was seen empty."""
        batch = Batch()
        critical, logs, debug, other = self._critical, self._logs, self._debug, self._other
        try:
            while critical:
                batch.add(critical.popleft())
        except IndexError:
            pass
        budget = self._batch_size
        log_rows = batch.logs
        for source in (logs, debug):
            try:
                while source and budget > 0:
                    row = source.popleft()
                    attrs = row[9]
                    log_rows.append(row if attrs is None else (*row[:9], dumps(attrs)))
                    budget -= 1
            except IndexError:
                pass
        try:
            while other and budget > 0:
                event = other.popleft()
                if hasattr(event, "row"):
                    batch.spans.append(event.row())
                else:
                    batch.add(event)
                budget -= 1
        except IndexError:
            pass
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
        complete = budget > 0
        if not len(batch):
            return None, complete
        if log_rows:
            # Debug and other logs were queued separately; restore time order.
            log_rows.sort(key=_row_time)
        return batch, complete

    def _report(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        if message != self.last_error:
            self.last_error = message
            print(f"lakelens: cannot write to the store ({message}); retrying.", file=sys.stderr)


def _row_time(row: tuple[Any, ...]) -> float:
    return float(row[0])
