"""Learned expectations in the evaluator: no configuration, real stores, a real receiver."""

from __future__ import annotations

import random
from typing import Any

import pytest

import lakelens
from lakelens.alerts.config import AlertingConfig, RuleSettings
from lakelens.alerts.destinations import create_destination
from lakelens.alerts.engine import AlertEngine
from lakelens.alerts.incidents import Policy
from lakelens.alerts.maintenance import Window
from lakelens.alerts.outbox import DeliveryWorker
from lakelens.alerts.replay import replay
from lakelens.testing import FakeClock

MONDAY = 1_799_625_600.0  # 2027-01-11 00:00 UTC
HOUR = 3600.0
DAY = 24 * HOUR


def config(receiver: Any, **extra: Any) -> AlertingConfig:
    return AlertingConfig(
        destinations={"hook": {"type": "webhook", "url": receiver.url_for("/hook")}},
        rules=RuleSettings(),
        incident_policy=Policy(group_wait=0),
        **extra,
    )


def load(clock: FakeClock, asset: str, rows: float, *, seconds: float = 30.0) -> None:
    with lakelens.run(f"{asset}_job"), lakelens.asset(asset):
        clock.advance(seconds)
        lakelens.record(rows=int(rows))


def weeks_of_history(
    clock: FakeClock, weeks: float, rng: random.Random, *, first_hour: int = 0
) -> None:
    """`orders` hourly, quieter at weekends; `ledger` at 02:00 on weekdays only."""
    for hour in range(first_hour, int(weeks * 7 * 24)):
        start = MONDAY + hour * HOUR
        day = (hour // 24) % 7
        clock.set(start + 60)
        load(clock, "orders", (300 if day >= 5 else 1000) * rng.uniform(0.95, 1.05))
        if hour % 24 == 2 and day < 5:
            clock.set(start + 300)
            load(clock, "ledger", 5000 * rng.uniform(0.98, 1.02), seconds=120)
    lakelens.flush()


def test_a_fourth_week_with_its_weekend_dip_tells_nothing(recorder, receiver) -> None:
    """Three weeks teach the rhythm and the weekly shape; the fourth, alike, is quiet."""
    store, clock = recorder
    weeks_of_history(clock, 4, random.Random(7))
    result = replay(
        store, config(receiver), since=MONDAY + 21 * DAY, until=MONDAY + 28 * DAY, step=900
    )
    assert result.notifications == [], [(n.action, n.title) for n in result.notifications]


def test_an_hourly_asset_gone_silent_is_one_message_within_its_tolerance(
    recorder, receiver
) -> None:
    store, clock = recorder
    weeks_of_history(clock, 3, random.Random(8))
    # Tuesday of week 4: orders stops after 10:01.
    weeks_of_history(clock, (22 * 24 + 11) / 168, random.Random(8), first_hour=21 * 24)
    last = clock()
    cfg = config(receiver)
    destinations = {"hook": create_destination("hook", cfg.destinations["hook"])}
    told = []
    moment = last
    while moment < last + 4 * HOUR:
        moment += 300
        AlertEngine(store, cfg).evaluate(now=moment)
        if DeliveryWorker(store, destinations, clock=lambda m=moment: m).run_once().delivered:
            told.append(moment)
    messages = [r.json()["data"] for r in receiver.requests]
    assert [m["kind"] for m in messages] == ["opened"], [(m["kind"], m["title"]) for m in messages]
    assert messages[0]["rule"] == "late" and messages[0]["asset"] == "orders"
    assert "updates hourly" in messages[0]["summary"]
    due = last + HOUR
    assert told[0] - due <= 1.5 * HOUR  # detected within 1.5 × the learned interval


def test_feedback_takes_a_run_out_of_the_baseline_and_clears_it(recorder, receiver) -> None:
    from lakelens.alerts.triage import feedback, incident

    store, clock = recorder
    weeks_of_history(clock, (21 * 24 + 10) / 168, random.Random(9))
    clock.set(MONDAY + 21 * DAY + 10 * HOUR + 60)
    load(clock, "orders", 400)  # −60 % on a Monday morning
    lakelens.flush()
    cfg = config(receiver)
    first = AlertEngine(store, cfg).evaluate(now=clock())
    (incident_id,) = first.opened
    with store.connect() as conn:
        view = incident(conn, incident_id)
    assert view.findings[0]["summary"].startswith("orders wrote 400 rows, below its expected")
    assert "at this hour on this weekday" in view.findings[0]["summary"]
    assert feedback(store, incident_id, kind="expected", reason="planned backfill", by="ana") == 1
    cleared = AlertEngine(store, cfg).evaluate(now=clock() + 60)
    assert cleared.notified == [(incident_id, "resolved")]
    with store.connect() as conn:
        timeline = incident(conn, incident_id).timeline
    assert any(e["event"] == "feedback" and "planned backfill" in e["text"] for e in timeline)


def test_a_maintenance_window_silences_and_its_end_tells(recorder, receiver) -> None:
    store, clock = recorder
    clock.set(MONDAY + 5 * DAY + 1 * HOUR)  # Saturday 01:00
    try:
        with lakelens.run("upgrade"), lakelens.asset("warehouse"):
            raise RuntimeError("warehouse in maintenance")
    except RuntimeError:
        pass
    lakelens.flush()
    window = Window.of("warehouse upgrade", "Sat 00:00-06:00", ["ware*"])
    cfg = config(receiver, maintenance=(window,))
    assert AlertEngine(store, cfg).evaluate(now=clock()).notifications == 0
    assert AlertEngine(store, cfg).evaluate(now=MONDAY + 5 * DAY + 5 * HOUR).notifications == 0
    after = AlertEngine(store, cfg).evaluate(now=MONDAY + 5 * DAY + 6 * HOUR + 60)
    assert [kind for _, kind in after.notified] == ["opened"]


def test_maintenance_schedules_parse_and_wrap_midnight() -> None:
    from lakelens.errors import ConfigError

    late = Window.of("nightly", "Mon-Fri 22:00-02:00")
    assert late.open_at(MONDAY + 23 * HOUR)  # Monday 23:00
    assert late.open_at(MONDAY + DAY + 1 * HOUR)  # Tuesday 01:00 (Monday's window)
    assert not late.open_at(MONDAY + 1 * HOUR)  # Monday 01:00 belongs to Sunday: closed
    assert late.open_at(MONDAY + 5 * DAY + 1 * HOUR)  # Saturday 01:00: Friday's window
    assert Window.of("d", "daily 02:00-03:00").open_at(MONDAY + 6 * DAY + 2.5 * HOUR)
    for bad in ("Sat", "Funday 00:00-01:00", "Sat 25:00-26:00", "Sat 01:00-01:00"):
        with pytest.raises(ConfigError):
            Window.of("x", bad)
