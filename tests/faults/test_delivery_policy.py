"""The delivery policy against a real HTTP receiver and real stores: retry until the maximum
age, Retry-After as a floor, destinations side by side, leases that outlive slow sends."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

from lakelens.alerts.destinations import create_destination
from lakelens.alerts.destinations.base import RETRY_AFTER_CAP, AlertMessage, DeliveryResult
from lakelens.alerts.engine import queue_notification
from lakelens.alerts.outbox import DeliveryWorker, failing_destinations
from lakelens.export.alerting_metrics import exposition
from lakelens.store import Store, schema

T0 = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def queue(store: Store, destination: str, now: float, count: int = 1) -> list[str]:
    """`count` trigger notifications for `destination`, created at `now`; their ids."""
    ids = []
    with store.connect() as conn:
        for _ in range(count):
            message = AlertMessage(
                notification_id=uuid.uuid4().hex,
                fingerprint=f"asset_failed:{uuid.uuid4().hex[:8]}",
                action="trigger",
                rule="asset_failed",
                severity="error",
                title="Asset Materialization Failed",
                summary="loader failed",
                time=now,
                first_seen=now,
            )
            queue_notification(conn, message, destination, now)
            ids.append(message.notification_id)
        conn.commit()
    return ids


def rows(store: Store) -> list[dict[str, Any]]:
    n = schema.notifications
    with store.connect() as conn:
        query = sa.select(n).order_by(n.c.created_at, n.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]


def webhook(receiver: Any, name: str = "hook", **config: Any) -> Any:
    return create_destination(name, {"type": "webhook", "url": receiver.url_for("/hook"), **config})


def always(
    receiver: Any, status: int, headers: dict[str, str] | None = None, delay: float = 0.0
) -> None:
    """Answer every request from now on with `status` (after `delay` seconds)."""
    receiver.default = replace(receiver.default, status=status, headers=headers or {}, delay=delay)


# --- retry until the maximum age ----------------------------------------------------------


def test_429_with_retry_after_keeps_retrying_past_eight_attempts_until_it_arrives(
    store, receiver
) -> None:
    """Issue 13.4: a 429 with `Retry-After: 1` gave up after 8 tries (7.4 s); it must wait."""
    clock = Clock()
    queue(store, "hook", clock.now)
    worker = DeliveryWorker(
        store, {"hook": webhook(receiver)}, clock=clock, base_delay=1, max_delay=8
    )
    always(receiver, 429, {"Retry-After": "1"})
    delays = []
    for _ in range(20):
        worker.run_once()
        (row,) = rows(store)
        assert row["status"] == "pending", row["last_error"]
        delays.append(row["next_attempt_at"] - clock.now)
        clock.now = row["next_attempt_at"]
    # Retry-After is a floor: the backoff still grows past it (to max_delay, with jitter).
    assert min(delays) >= 1.0 and max(delays[5:]) >= 4.0
    always(receiver, 200)
    assert worker.run_once().delivered == 1
    assert rows(store)[0]["attempts"] == 21


def test_retry_after_is_a_floor_on_the_backoff_and_capped() -> None:
    worker = DeliveryWorker(None, {}, base_delay=2, max_delay=600)  # type: ignore[arg-type]
    assert worker.retry_delay(6, retry_after=1.0) >= 32  # 2 s doubled five times, jittered
    assert worker.retry_delay(1, retry_after=30.0) >= 30
    assert worker.retry_delay(1, retry_after=1e12) <= RETRY_AFTER_CAP
    assert worker.retry_delay(1, retry_after=float("inf")) <= RETRY_AFTER_CAP


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("inf", RETRY_AFTER_CAP), ("1e12", RETRY_AFTER_CAP), ("-5", 0.0), ("nan", None), ("7", 7.0)],
)
def test_retry_after_values_are_clamped(header: str, seconds: float | None) -> None:
    assert DeliveryResult.from_http(429, "", header).retry_after == seconds


@pytest.mark.parametrize("retry_after", ["inf", "1e12"])
def test_an_absurd_retry_after_gives_up_at_the_max_age(store, receiver, retry_after) -> None:
    """Issue 13.7: `Retry-After: inf` left the row pending forever."""
    clock = Clock()
    queue(store, "hook", clock.now)
    worker = DeliveryWorker(store, {"hook": webhook(receiver)}, clock=clock, max_age=100)
    always(receiver, 429, {"Retry-After": retry_after})
    for _ in range(5):
        worker.run_once()
        (row,) = rows(store)
        if row["status"] != "pending":
            break
        assert row["next_attempt_at"] <= T0 + 100
        clock.now = row["next_attempt_at"]
    assert row["status"] == "gave_up" and row["finished_at"] == T0 + 100


def test_a_row_whose_next_attempt_lies_beyond_the_max_age_is_given_up_at_it(
    store, receiver
) -> None:
    """A row stored with next_attempt_at = +inf (as an older version did) or past the
    maximum age by any route is given up once the age is reached, not later."""
    clock = Clock()
    queue(store, "hook", clock.now)
    with store.connect() as conn:
        conn.execute(schema.notifications.update().values(next_attempt_at=float("inf")))
        conn.commit()
    worker = DeliveryWorker(store, {"hook": webhook(receiver)}, clock=clock, max_age=60)
    clock.now = T0 + 59
    worker.run_once()
    assert rows(store)[0]["status"] == "pending"
    clock.now = T0 + 60
    worker.run_once()
    assert rows(store)[0]["status"] == "gave_up" and receiver.requests == []


def test_a_permanent_4xx_is_the_only_early_stop(store, receiver) -> None:
    clock = Clock()
    queue(store, "hook", clock.now, count=2)
    worker = DeliveryWorker(store, {"hook": webhook(receiver)}, clock=clock)
    receiver.respond(403, "forbidden")
    receiver.respond(503)
    worker.run_once()
    first, second = rows(store)
    assert (first["status"], first["attempts"]) == ("failed", 1)
    assert second["status"] == "pending"


# --- destinations side by side ------------------------------------------------------------


def test_a_hanging_destination_does_not_delay_a_healthy_one(store, make_receiver) -> None:
    """Issue 13.6: while one destination hung, a healthy webhook got its alerts after
    0.2, 30, 40 and 100 s. Each destination now has its own delivery thread."""
    slow, fast = make_receiver(), make_receiver()
    always(slow, 200, delay=4.0)
    destinations = {"slow": webhook(slow, "slow", timeout=30), "fast": webhook(fast, "fast")}
    now = time.time()
    queue(store, "slow", now - 1, count=3)  # queued first: a sequential worker sends them first
    fast_ids = queue(store, "fast", now, count=4)
    worker = DeliveryWorker(store, destinations)
    stop = threading.Event()
    started = time.time()
    loop = threading.Thread(target=worker.run_forever, args=(stop,), kwargs={"interval": 0.1})
    loop.start()
    try:
        arrived = fast.wait_for(4, timeout=3.0)
        assert {r.headers["webhook-id"] for r in arrived} == set(fast_ids)
        assert max(r.received_at for r in arrived) - started < 2.0
    finally:
        stop.set()
        loop.join(timeout=10)
    assert not loop.is_alive()


def test_run_once_delivers_destinations_side_by_side(store, make_receiver) -> None:
    slow, fast = make_receiver(), make_receiver()
    slow.respond(200, delay=3.0)
    destinations = {"slow": webhook(slow, "slow", timeout=30), "fast": webhook(fast, "fast")}
    now = time.time()
    queue(store, "slow", now - 1)
    queue(store, "fast", now, count=3)
    started = time.time()
    stats = DeliveryWorker(store, destinations).run_once()
    assert stats.delivered == 4
    assert max(r.received_at for r in fast.requests) - started < 1.5


# --- leases -------------------------------------------------------------------------------


def test_a_send_slower_than_the_lease_is_not_sent_twice(store, receiver) -> None:
    """The lease is renewed while a send runs: a second worker does not take the row over."""
    receiver.respond(200, delay=2.5)
    queue(store, "hook", time.time())
    destinations = {"hook": webhook(receiver, timeout=10)}
    first = DeliveryWorker(store, destinations, lease=0.6)
    second = DeliveryWorker(store, destinations, lease=0.6)
    sending = threading.Thread(target=first.run_once)
    sending.start()
    try:
        receiver.wait_for(1)  # the first worker is sending
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # the lease would have run out three times over
            assert second.run_once().delivered == 0
            time.sleep(0.2)
    finally:
        sending.join(timeout=10)
    assert len(receiver.requests) == 1 and rows(store)[0]["status"] == "delivered"


# --- failing since ------------------------------------------------------------------------


def test_failing_destinations_say_since_when_and_metrics_show_it(store, make_receiver) -> None:
    broken, healthy = make_receiver(), make_receiver()
    always(broken, 500)
    clock = Clock()
    queue(store, "broken", clock.now, count=2)
    queue(store, "healthy", clock.now)
    destinations = {"broken": webhook(broken, "broken"), "healthy": webhook(healthy, "healthy")}
    worker = DeliveryWorker(store, destinations, clock=clock, base_delay=1, max_delay=5)
    worker.run_once()
    clock.now = T0 + 30
    with store.connect() as conn:
        assert failing_destinations(conn, clock.now) == {"broken": T0}
        text = exposition(conn, now=clock.now)
    assert 'lakelens_alert_destination_failing_seconds{destination="broken"} 30.0' in text
    assert 'failing_seconds{destination="healthy"}' not in text
    always(broken, 200)
    worker.run_once()
    with store.connect() as conn:
        assert failing_destinations(conn, clock.now) == {}
