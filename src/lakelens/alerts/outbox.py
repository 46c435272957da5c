"""The delivery worker: sends outbox rows, retries with backoff and jitter, never loses one.

The policy: a notification is retried until it arrives or reaches the maximum age (24 h by
default); only a permanent failure (a 4xx other than 408/429, a redirect, a bad
configuration) stops it earlier. A `Retry-After` is a floor on the backoff, never a way to
wait past the maximum age. Each destination is delivered by its own thread, so one that is
slow or hangs never delays another.

Rows are claimed with a lease (`claimed_until`) that is renewed while the send runs: a
worker killed mid-send leaves its rows to the next worker once the lease ends, and a slow
send is never sent a second time concurrently. Delivery is at-least-once with the same
notification id (the idempotency key) on every attempt.
"""

from __future__ import annotations

import json
import math
import random
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lakelens.alerts.destinations.base import RETRY_AFTER_CAP, AlertMessage, DeliveryResult
from lakelens.alerts.engine import record_heartbeat
from lakelens.store import schema

if TYPE_CHECKING:
    from lakelens.store import Store

__all__ = [
    "BASE_DELAY",
    "LEASE_SECONDS",
    "MAX_AGE",
    "MAX_DELAY",
    "DeliveryWorker",
    "WorkerStats",
    "failing_destinations",
]

LEASE_SECONDS = 120.0
BASE_DELAY = 2.0
MAX_DELAY = 600.0
MAX_AGE = 86400.0
# Destinations `run_once` delivers at the same time.
PARALLEL = 8
_QUEUED = ("pending", "sending")


@dataclass
class WorkerStats:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    gave_up: int = 0
    results: list[tuple[str, str, DeliveryResult]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, row_id: str, destination: str, result: DeliveryResult, outcome: str) -> None:
        with self._lock:
            self.results.append((row_id, destination, result))
            setattr(self, outcome, getattr(self, outcome) + 1)


class DeliveryWorker:
    """Delivers pending notifications to their destinations (a mapping name → Destination)."""

    def __init__(
        self,
        store: Store,
        destinations: Mapping[str, Any],
        *,
        max_age: float = MAX_AGE,
        base_delay: float = BASE_DELAY,
        max_delay: float = MAX_DELAY,
        lease: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.destinations = dict(destinations)
        self.max_age = max_age
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.lease = lease
        self.clock = clock
        self.sleep = sleep
        self._last_send: dict[str, float] = {}
        # After a transient failure a destination waits for that row's retry before the
        # next row is tried, so an outage or a 429 is not hammered row after row.
        self._hold: dict[str, float] = {}
        self._rng = random.Random()

    # --- one pass -------------------------------------------------------------------------

    def run_once(self, *, limit: int = 500, deadline: float | None = None) -> WorkerStats:
        """Send everything due now (up to `limit` rows), destinations side by side; return
        what happened.

        With a `deadline` (a time.monotonic() value) no send starts, and no pacing wait ends,
        after it: those rows stay pending, unclaimed, for the next worker.
        """
        stats = WorkerStats()
        now = self.clock()
        with self.store.connect() as conn:
            self._expire(conn, now)
            conn.commit()
            due = self._due(conn, now, limit)
        by_destination: dict[str, list[Any]] = {}
        for row in due:
            by_destination.setdefault(row.destination, []).append(row)
        batches = list(by_destination.values())
        if len(batches) == 1:
            self._deliver_rows(batches[0], stats, deadline)
        elif batches:
            # Plain threads rather than concurrent.futures: this also runs at interpreter
            # exit (the SDK's in-process alerts), where that module can no longer be imported.
            queue = list(reversed(batches))
            lock = threading.Lock()
            errors: list[Exception] = []

            def work() -> None:
                while True:
                    with lock:
                        if not queue:
                            return
                        rows = queue.pop()
                    try:
                        self._deliver_rows(rows, stats, deadline)
                    except Exception as exc:  # raised below, as a sequential pass would
                        errors.append(exc)

            workers = [
                threading.Thread(target=work, name="lakelens-delivery", daemon=True)
                for _ in range(min(PARALLEL, len(batches)))
            ]
            for thread in workers:
                thread.start()
            for thread in workers:
                thread.join()
            if errors:
                raise errors[0]
        self._heartbeat({"delivered": stats.delivered, "failed": stats.failed})
        return stats

    def deliver_destination(self, destination: str, *, limit: int = 100) -> WorkerStats:
        """Send what is due for one destination only (the per-destination threads' pass)."""
        stats = WorkerStats()
        now = self.clock()
        with self.store.connect() as conn:
            self._expire(conn, now, destination)
            conn.commit()
            due = self._due(conn, now, limit, destination)
        self._deliver_rows(due, stats)
        return stats

    def _due(
        self, conn: sa.Connection, now: float, limit: int, destination: str | None = None
    ) -> list[Any]:
        n = schema.notifications
        query = (
            sa.select(n.c.id, n.c.destination, n.c.payload, n.c.attempts, n.c.created_at)
            .where(_claimable(now))
            .order_by(n.c.created_at, n.c.id)
            .limit(limit)
        )
        if destination is not None:
            query = query.where(n.c.destination == destination)
        return list(conn.execute(query).all())

    def _deliver_rows(
        self, rows: list[Any], stats: WorkerStats, deadline: float | None = None
    ) -> None:
        """Deliver one destination's rows in order; stop at its first transient failure."""
        for row in rows:
            if self._hold.get(row.destination, -math.inf) > self.clock():
                return
            if deadline is not None and time.monotonic() + self._pacing(row) >= deadline:
                return
            outcome = self._deliver(row, stats)
            if outcome == "retried":
                return

    def _deliver(self, row: Any, stats: WorkerStats) -> str | None:
        with self.store.connect() as conn:
            if not self._claim(conn, row.id, self.clock()):
                return None  # another worker has it
        done = threading.Event()
        renewer = threading.Thread(
            target=self._renew, args=(row.id, done), name="lakelens-lease", daemon=True
        )
        renewer.start()
        try:
            result = self._send(row)
        finally:
            done.set()
            renewer.join()
        with self.store.connect() as conn:
            outcome = self._record(conn, row, result)
            conn.commit()
        stats.add(row.id, row.destination, result, outcome)
        return outcome

    def _claim(self, conn: sa.Connection, notification_id: str, now: float) -> bool:
        n = schema.notifications
        result = conn.execute(
            n.update()
            .where(n.c.id == notification_id, _claimable(now))
            .values(status="sending", claimed_until=now + self.lease)
        )
        conn.commit()
        return result.rowcount == 1

    def _renew(self, notification_id: str, done: threading.Event) -> None:
        """Extend the lease while a send runs, so a send slower than the lease is not taken
        over (and sent again) by another worker; a killed worker stops renewing."""
        n = schema.notifications
        while not done.wait(self.lease / 4):
            try:
                with self.store.connect() as conn:
                    conn.execute(
                        n.update()
                        .where(n.c.id == notification_id, n.c.status == "sending")
                        .values(claimed_until=self.clock() + self.lease)
                    )
                    conn.commit()
            except Exception:  # the next renewal tries again; the lease still has 3/4 left
                continue

    def _pacing(self, row: Any) -> float:
        """Seconds `_send` would wait before sending `row` (its destination's rate limit)."""
        destination = self.destinations.get(row.destination)
        interval = float(getattr(destination, "min_interval", 0.0) or 0.0)
        last = self._last_send.get(row.destination)
        if not interval or last is None:
            return 0.0
        return max(interval - (time.monotonic() - last), 0.0)

    def _send(self, row: Any) -> DeliveryResult:
        destination = self.destinations.get(row.destination)
        if destination is None:
            return DeliveryResult(
                ok=False, error=f"destination {row.destination!r} is no longer configured"
            )
        try:
            message = AlertMessage.from_dict(json.loads(row.payload))
        except (ValueError, TypeError) as exc:
            return DeliveryResult(ok=False, error=f"unreadable notification: {exc}")
        # Pace sends to the service's rate limit (Slack ~1/s per webhook, PagerDuty 120/min).
        interval = float(getattr(destination, "min_interval", 0.0) or 0.0)
        last = self._last_send.get(row.destination)
        if interval and last is not None:
            wait = interval - (time.monotonic() - last)
            if wait > 0:
                self.sleep(wait)
        self._last_send[row.destination] = time.monotonic()
        try:
            result: DeliveryResult = destination.send(message)
            return result
        except Exception as exc:  # a destination must not raise; if one does, retry it
            return DeliveryResult(
                ok=False, retry=True, error=f"{type(exc).__name__} in destination"
            )

    def _record(self, conn: sa.Connection, row: Any, result: DeliveryResult) -> str:
        n = schema.notifications
        now = self.clock()
        common = {
            "attempts": row.attempts + 1,
            "claimed_until": None,
            "last_status_code": result.status_code,
            "last_error": None if result.ok else _bounded(result.error, result.response),
        }
        mine = n.update().where(n.c.id == row.id, n.c.status == "sending")
        if result.ok:
            conn.execute(
                mine.values(status="delivered", delivered_at=now, finished_at=now, **common)
            )
            return "delivered"
        deadline = row.created_at + self.max_age
        if result.retry and now < deadline:
            delay = self.retry_delay(row.attempts + 1, result.retry_after)
            # Never wait past the maximum age: the row is given up at it, not later.
            next_attempt = min(now + delay, deadline)
            conn.execute(mine.values(status="pending", next_attempt_at=next_attempt, **common))
            self._hold[row.destination] = next_attempt
            return "retried"
        status = "gave_up" if result.retry else "failed"
        conn.execute(mine.values(status=status, finished_at=now, **common))
        return status

    def retry_delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds before the next attempt: exponential backoff with jitter, at least the
        server's Retry-After (itself capped, so a huge or infinite one cannot stall a row)."""
        nominal = min(self.max_delay, self.base_delay * 2 ** min(attempts - 1, 60))
        delay = nominal * self._rng.uniform(0.5, 1.5)
        if retry_after is not None and math.isfinite(retry_after):
            delay = max(delay, min(max(retry_after, 0.0), RETRY_AFTER_CAP))
        elif retry_after is not None and retry_after > 0:  # +inf
            delay = max(delay, RETRY_AFTER_CAP)
        return delay

    def _expire(self, conn: sa.Connection, now: float, destination: str | None = None) -> None:
        """Give up rows past the maximum age that no attempt reached in time (a destination
        held by an outage, a worker that was down): the age applies whatever happened."""
        n = schema.notifications
        # Pending whenever its next attempt is (an older version could store +inf there).
        waiting = sa.or_(
            n.c.status == "pending", sa.and_(n.c.status == "sending", n.c.claimed_until < now)
        )
        expired = sa.and_(waiting, n.c.created_at <= now - self.max_age)
        if destination is not None:
            expired = sa.and_(expired, n.c.destination == destination)
        # Look before writing: this runs every pass, and an UPDATE takes SQLite's write lock
        # even when it matches nothing.
        if conn.execute(sa.select(n.c.id).where(expired).limit(1)).first() is None:
            return
        conn.execute(
            n.update().where(expired).values(status="gave_up", finished_at=now, claimed_until=None)
        )

    def _heartbeat(self, details: dict[str, Any]) -> None:
        with self.store.connect() as conn:
            record_heartbeat(conn, "worker", self.clock(), details)
            conn.commit()

    # --- the loop -------------------------------------------------------------------------

    def run_forever(
        self, stop: threading.Event, *, interval: float = 1.0, wake: threading.Event | None = None
    ) -> None:
        """Deliver until `stop` is set: one thread per destination, so a slow or hanging one
        delays no other. `wake` (set on new outbox rows) cuts every thread's wait short."""
        threads: dict[str, tuple[threading.Thread, threading.Event]] = {}
        last_error = None
        while not stop.is_set():
            try:
                with self.store.connect() as conn:
                    queued = _queued_destinations(conn)
                # Rows for a destination no longer configured get a thread too: it fails them.
                for name in sorted((set(self.destinations) | queued) - threads.keys()):
                    nudge = threading.Event()
                    thread = threading.Thread(
                        target=self._destination_loop,
                        args=(name, stop, nudge, interval),
                        name=f"lakelens-delivery-{name}",
                        daemon=True,
                    )
                    threads[name] = (thread, nudge)
                    thread.start()
                self._heartbeat({"destinations": len(threads)})
                last_error = None
            except Exception as exc:  # keep delivering; the heartbeat shows a stalled loop
                last_error = _report(exc, last_error)
            (wake or stop).wait(interval)
            if wake is not None and wake.is_set():
                wake.clear()
                for _, nudge in threads.values():
                    nudge.set()
        for _, nudge in threads.values():
            nudge.set()
        deadline = time.monotonic() + 5
        for thread, _ in threads.values():
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _destination_loop(
        self, name: str, stop: threading.Event, nudge: threading.Event, interval: float
    ) -> None:
        last_error = None
        while not stop.is_set():
            try:
                self.deliver_destination(name)
                last_error = None
            except Exception as exc:
                last_error = _report(exc, last_error)
            nudge.wait(interval)
            nudge.clear()


def failing_destinations(conn: sa.Connection, now: float) -> dict[str, float]:
    """Destinations whose latest attempt failed, with since when (epoch seconds): the later
    of their last delivery and the first attempt of the oldest notification still failing.

    For the `alert_delivery_failed` rule and /metrics: a destination is failing from its
    first failed retry, long before anything is given up. Test sends are left out.
    """
    n = schema.notifications
    last_ok = dict(
        conn.execute(
            sa.select(n.c.destination, sa.func.max(n.c.delivered_at))
            .where(n.c.status == "delivered", n.c.action != "test")
            .group_by(n.c.destination)
        ).all()
    )
    retrying = sa.and_(n.c.status.in_(_QUEUED), n.c.attempts > 0)
    rows = conn.execute(
        sa.select(n.c.destination, n.c.status, n.c.created_at, n.c.finished_at).where(
            n.c.action != "test",
            sa.or_(
                retrying,
                sa.and_(n.c.status.in_(("failed", "gave_up")), n.c.finished_at >= now - 86400),
            ),
        )
    ).all()
    since: dict[str, float] = {}
    for destination, status, created_at, finished_at in rows:
        ok = last_ok.get(destination)
        ended = finished_at if status in ("failed", "gave_up") else now
        if ok is not None and ended is not None and ended <= ok:
            continue  # failed before the last delivery: the destination has recovered since
        start = float(created_at) if ok is None else max(float(created_at), float(ok))
        since[destination] = min(since.get(destination, start), start)
    return since


def _claimable(now: float) -> Any:
    n = schema.notifications
    return sa.or_(
        sa.and_(n.c.status == "pending", n.c.next_attempt_at <= now),
        # A worker died holding these: its lease has run out.
        sa.and_(n.c.status == "sending", n.c.claimed_until < now),
    )


def _queued_destinations(conn: sa.Connection) -> set[str]:
    n = schema.notifications
    query = sa.select(n.c.destination).where(n.c.status.in_(_QUEUED)).distinct()
    return {str(name) for name in conn.execute(query).scalars()}


def _report(exc: Exception, last_error: str | None) -> str:
    """Print a delivery-loop failure once (not once a second while it lasts)."""
    message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    if message != last_error:
        print(f"lakelens: alert delivery failed ({message}); retrying.", file=sys.stderr)
    return message


def _bounded(error: str | None, response: str | None) -> str:
    text = error or "failed"
    if response:
        text += f": {response}"
    return text[:2000]
