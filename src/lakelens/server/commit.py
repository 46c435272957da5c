"""Committing what requests brought: at most once per batch id, and together when they overlap.

Group commit: every ingest request hands its events to the store's committer and waits. One
writer thread takes everything queued, writes it in one transaction and only then answers
each request, so an acknowledged request is in the store (even after kill -9) and concurrent
small requests share one transaction instead of queueing for one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakelens.errors import InvalidArgumentError
from lakelens.server.security import clean

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelens.ingest import Ingested
    from lakelens.store import Store
    from lakelens.store.writes import Part

__all__ = ["BATCH_ID_HEADER", "GroupCommitter", "commit", "parse_batch_id"]

log = logging.getLogger("lakelens.server")

BATCH_ID_HEADER = "Idempotency-Key"
# The writer keeps its connection for this long after taking it from the pool, for the groups
# that follow: the pool's check of a PostgreSQL connection (a round trip, about as long as a
# small transaction) then runs once a second instead of once a transaction.
HOLD_SECONDS = 1.0
_BATCH_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def parse_batch_id(value: str | None) -> str | None:
    """The batch id of the Idempotency-Key header (letters, digits, . _ : -; up to 128)."""
    if value is None:
        return None
    value = value.strip()
    if not _BATCH_ID.fullmatch(value):
        raise InvalidArgumentError(
            f"Invalid {BATCH_ID_HEADER} header: use 1-128 letters, digits, '.', '_', ':' or '-'."
        )
    return value


# SQLite has one writer at a time: writers of this process queue on a lock rather than on
# SQLite's busy handler, which polls with sleeps of up to 100 ms.
_SQLITE_WRITERS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


def _writer_lock(store: Store) -> Any:
    if not store.is_sqlite:
        return nullcontext()
    with _GUARD:
        return _SQLITE_WRITERS.setdefault(store.url, threading.Lock())


def _part(ingested: Ingested, *, source: str, batch_id: str | None, now: float) -> Part:
    from lakelens.store.writes import Part

    return Part(
        ingested.batch,
        batch_id=batch_id,
        source=source,
        accepted=ingested.accepted,
        rejected=len(ingested.rejected),
        now=now,
    )


def _write(
    store: Store,
    parts: list[Part],
    *,
    deadline: float | None = None,
    connection: sa.Connection | None = None,
) -> list[bool]:
    from lakelens.store.engine import answer_deadline
    from lakelens.store.writes import write_batches

    with _writer_lock(store), answer_deadline(deadline):
        return write_batches(store.engine, parts, connection=connection)


def commit(
    store: Store, ingested: Ingested, *, source: str, batch_id: str | None, now: float
) -> bool:
    """Write the accepted events in one transaction; False (and nothing written) for a batch id
    that was committed before.

    The batch id row is inserted first in the same transaction, so two concurrent requests
    with one id serialize on it, and a crash leaves either both or neither.
    """
    return _write(store, [_part(ingested, source=source, batch_id=batch_id, now=now)])[0]


@dataclass
class _Waiting:
    """A request's events in the queue, and how to answer the request once they are written."""

    part: Part
    size: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[bool]


class GroupCommitter:
    """The store's single ingest writer: requests queue, the writer commits them in groups.

    A group is everything queued when the writer is free (up to `max_events` events, at least
    one request), written as one transaction by `store.writes.write_batches`. When that
    transaction fails, each request of the group is retried in a transaction of its own, so a
    request that cannot be stored fails alone and the others are stored or see their own
    error: none is answered before its events are committed, none silently dropped.

    The writer thread starts with the first request and ends after `idle_seconds` without one.
    On PostgreSQL a transaction that gets no answer for `write_timeout` seconds (default:
    the store's `db_write_timeout`) fails and closes its connection, so a half-open
    connection costs one timeout, not the kernel's quarter of an hour.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_events: int = 20_000,
        idle_seconds: float = 5.0,
        write_timeout: float | None = None,
    ) -> None:
        self.store = store
        self.max_events = max_events
        self.idle_seconds = idle_seconds
        self.write_timeout = write_timeout or store.settings.db_write_timeout
        # time.monotonic() when the transaction being written began (None when idle), and
        # when one last committed: what /readyz looks at.
        self.writing_since: float | None = None
        self.last_commit: float | None = None
        self._wake = threading.Condition()
        self._queue: list[_Waiting] = []
        self._running = False
        # SQLite: wake an idle writer once the loop has queued what it read in this turn, not
        # at each request. The SQLite writer's work is Python holding the GIL: woken mid-burst,
        # it contends with the loop that still parses the others, and takes a smaller group
        # (6 pairs of bench runs: 5 faster, server CPU per request lower in all 6). A PostgreSQL
        # writer mostly waits for the server without the GIL, and starting it later was slower
        # (4 of 6 pairs).
        self._defer_wake = store.is_sqlite
        self._kicking = False  # a wake of the writer is scheduled on a loop
        # Transactions and the requests they held, and the seconds spent in them (/metrics:
        # a writer busy nearly all the time is what ingest waits for).
        self.groups = 0
        self.requests = 0
        self.busy_seconds = 0.0
        # The writer thread's connection, and when it was taken from the pool.
        self._held: sa.Connection | None = None
        self._held_since = 0.0

    async def commit(
        self, ingested: Ingested, *, source: str, batch_id: str | None, now: float
    ) -> bool:
        """Wait until the events are committed; False for a batch id committed before."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(
            _part(ingested, source=source, batch_id=batch_id, now=now),
            max(1, len(ingested.batch)),
            loop,
            loop.create_future(),
        )
        with self._wake:
            self._queue.append(waiting)
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="lakelens-commit", daemon=True).start()
            elif not self._defer_wake:
                self._wake.notify()
            elif not self._kicking:
                self._kicking = True
                loop.call_soon(self._kick)
        return await waiting.future

    def _kick(self) -> None:
        with self._wake:
            self._kicking = False
            self._wake.notify()

    def busy_so_far(self) -> float:
        """Seconds spent in transactions, the one being written included: a transaction that
        hangs shows as a busy writer while it hangs, not only once it ends."""
        since = self.writing_since
        return self.busy_seconds + (0.0 if since is None else time.monotonic() - since)

    def stalled_for(self) -> float:
        """Seconds the transaction being written has waited so far (0 when none is)."""
        since = self.writing_since
        return 0.0 if since is None else time.monotonic() - since

    def _run(self) -> None:
        while True:
            with self._wake:
                if not self._queue and not self._wake.wait_for(
                    lambda: bool(self._queue), self.idle_seconds
                ):
                    self._running = False
                    self._release()
                    return
                group = self._take()
            try:
                self._commit(group)
            except BaseException as exc:  # never leave a request waiting
                for waiting in group:
                    _answer(waiting, None, exc)
                if not isinstance(exc, Exception):
                    self._release()
                    with self._wake:
                        self._running = False  # the next request starts a new writer
                    raise

    def _take(self) -> list[_Waiting]:
        """The oldest queued requests, up to `max_events` events (at least one request)."""
        self._kicking = False  # awake: a wake still scheduled (or lost with its loop) is moot
        taken, events = 0, 0
        for waiting in self._queue:
            if taken and events + waiting.size > self.max_events:
                break
            taken += 1
            events += waiting.size
        group, self._queue = self._queue[:taken], self._queue[taken:]
        return group

    def _commit(self, group: list[_Waiting]) -> None:
        began = self.writing_since = time.monotonic()
        try:
            # A process that only ingests over HTTP still makes the coming days' partitions
            # (once an hour; `lakelens serve` also runs it on the clock, and one at a time).
            # The group waits for it, so it counts as writing: busy on /metrics, and a stall
            # on /readyz when it hangs.
            self.store.upkeep_when_due()
            results = _write(
                self.store,
                [w.part for w in group],
                deadline=self.write_timeout,
                connection=self._connection(),
            )
        except Exception as exc:
            self.writing_since = None
            self.busy_seconds += time.monotonic() - began
            if self._held is not None and self._held.invalidated:
                self._release()
            if len(group) == 1 or not self._alone_may_succeed(exc):
                self._count(1, len(group))
                for waiting in group:
                    _answer(waiting, None, exc)
                return
            log.warning(
                "group commit of %d requests failed (%s); committing them one by one",
                len(group),
                clean(f"{type(exc).__name__}: {exc}", 300),
            )
            for waiting in group:
                self._commit([waiting])
            return
        self.writing_since = None
        self.last_commit = time.monotonic()
        self.busy_seconds += self.last_commit - began
        self._count(1, len(group))
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Waiting, bool]]] = {}
        for waiting, fresh in zip(group, results, strict=True):
            by_loop.setdefault(waiting.loop, []).append((waiting, fresh))
        for loop, answers in by_loop.items():
            _call_soon(loop, _resolve_all, answers)

    def _connection(self) -> sa.Connection:
        """The writer's connection: the one it holds, unless held for HOLD_SECONDS already."""
        if self._held is not None and time.monotonic() - self._held_since > HOLD_SECONDS:
            self._release()
        if self._held is None:
            self._held = self.store.engine.connect()
            self._held_since = time.monotonic()
        return self._held

    def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(Exception):  # a broken connection is dropped all the same
                held.close()

    def _alone_may_succeed(self, exc: Exception) -> bool:
        """Whether the failure may come from one request's events (or a deadlock with another
        writer), not from the store itself: SQLite's operational errors (locked past the busy
        timeout, disk full, I/O) and a lost PostgreSQL connection would only repeat for every
        request, one timeout each."""
        import sqlalchemy as sa

        if getattr(exc, "connection_invalidated", False):
            return False
        return not (self.store.is_sqlite and isinstance(exc, sa.exc.OperationalError))

    def _count(self, groups: int, requests: int) -> None:
        self.groups += groups
        self.requests += requests


def _resolve_all(answers: list[tuple[_Waiting, bool]]) -> None:
    for waiting, fresh in answers:
        if not waiting.future.done():  # a cancelled request (the client went away)
            waiting.future.set_result(fresh)


def _answer(waiting: _Waiting, fresh: bool | None, exc: BaseException | None) -> None:
    def resolve() -> None:
        if waiting.future.done():
            return
        if exc is not None:
            waiting.future.set_exception(exc)
        else:
            waiting.future.set_result(bool(fresh))

    _call_soon(waiting.loop, resolve)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    # A closed loop raises RuntimeError: nobody is waiting for the answer any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)
