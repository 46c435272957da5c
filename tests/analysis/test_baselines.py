"""Learned expectations, history in and expectation out: rhythms and seasonal bands."""

from __future__ import annotations

import random

from lakelens.analysis.baselines import DAY, HOUR, WEEK, band, hour_of_week, learn_rhythm

MONDAY = 1_799_625_600.0  # 2027-01-11 00:00 UTC, a Monday
assert hour_of_week(MONDAY) == 0


def _jitter(rng: random.Random, seconds: float = 20.0) -> float:
    return rng.uniform(0, seconds)


def test_every_five_minutes_is_due_five_minutes_after_the_last() -> None:
    rng = random.Random(1)
    times = [MONDAY + i * 300 + _jitter(rng) for i in range(2000)]
    rhythm = learn_rhythm(times)
    assert rhythm is not None
    assert 280 <= rhythm.gap <= 320 and rhythm.description.startswith("every 5")
    assert rhythm.due - times[-1] == rhythm.gap
    assert 60 <= rhythm.tolerance <= rhythm.gap  # late within 1.5 × the gap after due
    assert not rhythm.is_late(times[-1] + 300)
    assert rhythm.is_late(times[-1] + 300 + 1.5 * rhythm.gap)


def test_a_daily_load_at_two_is_due_the_next_night() -> None:
    rng = random.Random(2)
    times = [MONDAY + d * DAY + 2 * HOUR + 300 + _jitter(rng, 120) for d in range(28)]
    rhythm = learn_rhythm(times)
    assert rhythm is not None and rhythm.description.startswith("daily")
    assert abs(rhythm.due - (times[-1] + DAY)) < 300
    assert not rhythm.is_late(times[-1] + DAY + 600)
    assert rhythm.is_late(times[-1] + 1.5 * DAY)


def test_weekdays_only_is_not_late_on_saturday_but_is_on_monday_morning() -> None:
    times = [
        MONDAY + w * WEEK + d * DAY + 6 * HOUR + 120 for w in range(3) for d in range(5)
    ]  # Mon–Fri 06:02, three weeks; the last is a Friday
    rhythm = learn_rhythm(times)
    assert rhythm is not None and rhythm.seasonal == "weekly"
    friday = times[-1]
    monday = friday + 3 * DAY
    assert abs(rhythm.due - monday) < 60  # Monday 06:02, not Saturday
    assert not rhythm.is_late(friday + 2 * DAY)  # Sunday
    assert rhythm.is_late(monday + 12 * HOUR)


def test_hourly_loads_with_quiet_weekends() -> None:
    times = [
        MONDAY + w * WEEK + h * HOUR + 90
        for w in range(3)
        for h in range(5 * 24)  # Monday 00:00 to Friday 23:00
    ]
    rhythm = learn_rhythm(times)
    assert rhythm is not None and rhythm.gap == HOUR
    assert not rhythm.is_late(times[-1] + DAY)  # Saturday
    assert rhythm.is_late(times[-1] + 2 * DAY + 3 * HOUR)  # Monday 03:00, nothing since Friday


def test_too_little_history_learns_nothing() -> None:
    assert learn_rhythm([MONDAY + i * HOUR for i in range(5)]) is None


def test_a_weekend_dip_is_within_the_weekly_band_and_a_weekday_drop_is_not() -> None:
    rng = random.Random(3)
    history = []
    for hour in range(21 * 24):
        t = MONDAY + hour * HOUR
        weekend = (hour // 24) % 7 >= 5
        history.append((t, (300 if weekend else 1000) * rng.uniform(0.95, 1.05)))
    saturday = MONDAY + 26 * DAY + 10 * HOUR  # week 4, Saturday 10:00
    weekly = band(history, saturday, k=4)
    assert weekly is not None and weekly.seasonal == "weekly"
    assert weekly.low <= 300 <= weekly.high
    tuesday = MONDAY + 22 * DAY + 10 * HOUR
    usual = band(history, tuesday, k=4)
    assert usual is not None and usual.low <= 1000 <= usual.high
    assert usual.low > 400  # −60 % on a weekday is outside
    # Under a week of history nothing is judged: a first weekend would look like a drop.
    assert band(history[-100:], tuesday, k=4) is None
    daily = band(history[-100:], tuesday, k=4, min_span=0)
    assert daily is not None and daily.seasonal == "daily"


def test_a_constant_series_keeps_a_minimum_spread() -> None:
    history = [(MONDAY + i * HOUR, 500.0) for i in range(200)]
    expected = band(history, MONDAY + 200 * HOUR, k=4)
    assert expected is not None
    assert expected.low < 500 - 1 and expected.high > 500 + 1  # +1 row is not an anomaly
    assert expected.low > 200  # −60 % is
