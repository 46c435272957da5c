"""Running alerting: build the destinations, evaluate, deliver — once or in a loop."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lakelens.alerts.config import AlertingConfig, load_alerting
from lakelens.alerts.engine import AlertEngine, Evaluation
from lakelens.alerts.outbox import DeliveryWorker, WorkerStats
from lakelens.errors import LakelensError
from lakelens.store import schema

if TYPE_CHECKING:
    from lakelens.store import Store

__all__ = ["POLL_SECONDS", "AlertingService", "Leadership", "build_destinations"]

# How often the evaluator looks for new failures between full evaluations.
POLL_SECONDS = 0.25


def build_destinations(config: AlertingConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """(destinations by name, configuration errors by name): one bad destination does not stop the others."""
    from lakelens.alerts.destinations import create_destination

    built: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, mapping in config.destinations.items():
        try:
            built[name] = create_destination(name, mapping)
        except LakelensError as exc:
            errors[name] = str(exc)
    return built, errors


@dataclass
class Cycle:
    evaluation: Evaluation
    delivery: WorkerStats


# Held for as long as one server is the evaluator; PostgreSQL releases it when that server's
# session ends (crash included), and the next server to ask becomes the evaluator.
_PG_LEADER_LOCK = 0x1A6E1E47


class Leadership:
    """Who evaluates alerts when several servers share a PostgreSQL store: the holder of a
    session-level advisory lock on a dedicated connection. On SQLite everyone may (it is one
    machine, and evaluations serialize on the write lock anyway)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._conn: sa.Connection | None = None
        self.held = False

    def acquire(self) -> bool:
        if self.store.is_sqlite:
            return True
        try:
            if self._conn is None:
                self._conn = self.store.engine.connect()
            if self.held:
                self._conn.execute(sa.text("SELECT 1"))  # still alive, still ours
            else:
                self.held = bool(
                    self._conn.execute(
                        sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": _PG_LEADER_LOCK}
                    ).scalar()
                )
            self._conn.commit()  # never idle in a transaction; the session lock survives commits
        except Exception:
            self.release()
        return self.held

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # the connection may already be gone
                self._conn.close()
        self._conn = None
        self.held = False


class AlertingService:
    """The evaluator and the delivery worker for one store."""

    def __init__(self, store: Store, config: AlertingConfig | None = None) -> None:
        self.store = store
        self.config = config or load_alerting(store.settings)
        self.destinations, self.errors = build_destinations(self.config)
        self.engine = AlertEngine(store, self.config)
        # Retried until delivered or max_age: `alerts.max_attempts` is accepted but ignored.
        self.worker = DeliveryWorker(store, self.destinations, max_age=self.config.max_age)
        self.wake = threading.Event()
        # Set by the server after it commits an ingested batch with a failure in it.
        self.evaluate_now = threading.Event()

    def run_once(self, *, now: float | None = None, group_wait: float | None = None) -> Cycle:
        evaluation = self.engine.evaluate(now=now, group_wait=group_wait)
        return Cycle(evaluation, self.worker.run_once())

    def change_marker(self) -> tuple[Any, ...]:
        """Cheap reads that move when something alert-worthy is committed, by any process."""
        a, c, s = schema.assets, schema.check_results, schema.schema_snapshots
        with self.store.connect() as conn:
            return (
                conn.execute(sa.select(sa.func.max(a.c.last_failure_time))).scalar(),
                conn.execute(sa.select(sa.func.max(c.c.time))).scalar(),
                conn.execute(sa.select(sa.func.max(s.c.id))).scalar(),
            )

    def run_forever(self, stop: threading.Event, *, poll: float = POLL_SECONDS) -> None:
        """Evaluate every evaluation_interval, and within `poll` seconds of a new failure,
        check result or schema change; deliver continuously in a second thread (which runs
        one thread per destination)."""
        for problem in self.config.route_errors:
            print(f"lakelens: {problem} That route is skipped.", file=sys.stderr)
        delivery = threading.Thread(
            target=self.worker.run_forever,
            args=(stop,),
            kwargs={"interval": 1.0, "wake": self.wake},
            name="lakelens-alert-delivery",
            daemon=True,
        )
        delivery.start()
        last_error = None
        marker: tuple[Any, ...] | None = None
        next_full = 0.0
        leadership = Leadership(self.store)
        while not stop.is_set():
            try:
                if not leadership.acquire():
                    # Another server evaluates; this one still delivers (rows are leased).
                    marker = None
                    stop.wait(poll)
                    continue
                current = self.change_marker()
                if current != marker or time.monotonic() >= next_full or self.evaluate_now.is_set():
                    self.evaluate_now.clear()
                    result = self.engine.evaluate()
                    if result.notifications:
                        self.wake.set()
                    marker = current
                    next_full = time.monotonic() + self.config.evaluation_interval
                    if result.due_at is not None:  # an incident's group wait ends sooner
                        next_full = min(next_full, time.monotonic() + result.due_at - time.time())
                last_error = None
            except Exception as exc:  # the heartbeat shows a stalled evaluator; keep trying
                message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                if message != last_error:
                    print(
                        f"lakelens: alert evaluation failed ({message}); retrying.", file=sys.stderr
                    )
                last_error = message
            stop.wait(poll)
        leadership.release()
        delivery.join(timeout=5)

    def close(self) -> None:
        for destination in self.destinations.values():
            closer = getattr(destination, "close", None)
            if closer is not None:
                closer()
