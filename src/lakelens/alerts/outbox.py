"""The delivery worker: sends outbox rows, retries with backoff and jitter, never loses one.

Rows are claimed with a lease (`claimed_until`): a worker killed mid-send leaves its rows to
be picked up by the next worker once the lease ends, so delivery is at-least-once with the
same notification id (the idempotency key) on every attempt.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lakelens.alerts.destinations.base import AlertMessage, DeliveryResult
from lakelens.alerts.engine import record_heartbeat
from lakelens.store import schema

if TYPE_CHECKING:
    from lakelens.store import Store

__all__ = ["DeliveryWorker", "WorkerStats"]

LEASE_SECONDS = 120.0
BASE_DELAY = 2.0
MAX_DELAY = 600.0


@dataclass
class WorkerStats:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    gave_up: int = 0
    results: list[tuple[str, str, DeliveryResult]] = field(default_factory=list)


class DeliveryWorker:
    """Delivers pending notifications to their destinations (a mapping name → Destination)."""

    def __init__(
        self,
        store: Store,
        destinations: Mapping[str, Any],
        *,
        max_attempts: int = 8,
        max_age: float = 86400.0,
        base_delay: float = BASE_DELAY,
        max_delay: float = MAX_DELAY,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.destinations = dict(destinations)
        self.max_attempts = max_attempts
        self.max_age = max_age
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.clock = clock
        self.sleep = sleep
        self._last_send: dict[str, float] = {}
        self._rng = random.Random()

    def _due(self, conn: sa.Connection, now: float, limit: int) -> list[Any]:
        n = schema.notifications
        return list(
            conn.execute(
                sa.select(n.c.id, n.c.destination, n.c.payload, n.c.attempts, n.c.created_at)
                .where(
                    sa.or_(
                        sa.and_(n.c.status == "pending", n.c.next_attempt_at <= now),
                        # A worker died holding these: its lease has run out.
                        sa.and_(n.c.status == "sending", n.c.claimed_until < now),
                    )
                )
                .order_by(n.c.created_at, n.c.id)
                .limit(limit)
            ).all()
        )

    def _claim(self, conn: sa.Connection, notification_id: str, now: float) -> bool:
        n = schema.notifications
        result = conn.execute(
            n.update()
            .where(
                n.c.id == notification_id,
                sa.or_(
                    sa.and_(n.c.status == "pending", n.c.next_attempt_at <= now),
                    sa.and_(n.c.status == "sending", n.c.claimed_until < now),
                ),
            )
            .values(status="sending", claimed_until=now + LEASE_SECONDS)
        )
        conn.commit()
        return result.rowcount == 1

    def run_once(self, *, limit: int = 500, deadline: float | None = None) -> WorkerStats:
        """Send everything due now (up to `limit` rows); return what happened.

        With a `deadline` (a time.monotonic() value) no send starts, and no pacing wait ends,
        after it: those rows stay pending, unclaimed, for the next worker.
        """
        stats = WorkerStats()
        now = self.clock()
        with self.store.connect() as conn:
            due = self._due(conn, now, limit)
        for row in due:
            if deadline is not None and time.monotonic() + self._pacing(row) >= deadline:
                continue
            with self.store.connect() as conn:
                if not self._claim(conn, row.id, self.clock()):
                    continue  # another worker has it
            result = self._send(row)
            stats.results.append((row.id, row.destination, result))
            with self.store.connect() as conn:
                outcome = self._record(conn, row, result)
                conn.commit()
            setattr(stats, outcome, getattr(stats, outcome) + 1)
        with self.store.connect() as conn:
            record_heartbeat(
                conn, "worker", self.clock(), {"delivered": stats.delivered, "failed": stats.failed}
            )
            conn.commit()
        return stats

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
        attempts = row.attempts + 1
        common = {
            "attempts": attempts,
            "claimed_until": None,
            "last_status_code": result.status_code,
            "last_error": None if result.ok else _bounded(result.error, result.response),
        }
        if result.ok:
            conn.execute(
                n.update()
                .where(n.c.id == row.id)
                .values(status="delivered", delivered_at=now, finished_at=now, **common)
            )
            return "delivered"
        too_old = now - row.created_at >= self.max_age
        if result.retry and attempts < self.max_attempts and not too_old:
            delay = self._backoff(attempts)
            if result.retry_after is not None:
                delay = max(result.retry_after, 0.0)
            conn.execute(
                n.update()
                .where(n.c.id == row.id)
                .values(status="pending", next_attempt_at=now + delay, **common)
            )
            return "retried"
        status = "gave_up" if result.retry else "failed"
        conn.execute(
            n.update().where(n.c.id == row.id).values(status=status, finished_at=now, **common)
        )
        return status

    def _backoff(self, attempts: int) -> float:
        """Exponential backoff with full jitter around the nominal delay."""
        nominal = min(self.max_delay, self.base_delay * 2 ** (attempts - 1))
        return nominal * self._rng.uniform(0.5, 1.5)

    def run_forever(
        self, stop: threading.Event, *, interval: float = 1.0, wake: threading.Event | None = None
    ) -> None:
        """Deliver until `stop` is set; `wake` (set on new outbox rows) cuts the wait short."""
        last_error = None
        while not stop.is_set():
            try:
                self.run_once()
                last_error = None
            except Exception as exc:  # keep delivering; the heartbeat shows a stalled loop
                message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                if message != last_error:
                    print(
                        f"lakelens: alert delivery failed ({message}); retrying.", file=sys.stderr
                    )
                last_error = message
            (wake or stop).wait(interval)
            if wake is not None:
                wake.clear()


def _bounded(error: str | None, response: str | None) -> str:
    text = error or "failed"
    if response:
        text += f": {response}"
    return text[:2000]
