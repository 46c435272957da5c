"""Learned expectations: when an asset's next update is due, and what its rows, bytes and
duration usually are at this hour of the day and day of the week.

Pure: history in, expectation out. The alert rules feed these from the store; the
benchmark and the tests feed them directly.

- **Rhythm** (freshness without a declared SLA): the typical gap between successful
  updates, and which hours of the week (or of the day, with less history) see updates at
  all, so a weekday-only or a nightly asset is not "late" on a Saturday or at noon.
- **Band** (volume and duration): median ± k robust deviations of the values recorded at
  the same hour of the week (≥ 2 weeks of history) or of the day (≥ 2 days), else of the
  recent values; with a floor on the spread so a constant series does not page on +1 row.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Band",
    "Rhythm",
    "band",
    "describe_gap",
    "learn_rhythm",
]

HOUR = 3600.0
DAY = 24 * HOUR
WEEK = 7 * DAY
# Weekly seasonality needs a whole week of history; daily needs two days. Values are judged
# only after a week: before it, a first weekend or a first month-end is not yet known.
WEEKLY_SPAN = WEEK
DAILY_SPAN = 2 * DAY
BAND_MIN_SPAN = WEEK
# 1970-01-01 was a Thursday: shift so that hour-of-week 0 is Monday 00:00 UTC.
_MONDAY_OFFSET_HOURS = 3 * 24


def hour_of_week(t: float) -> int:
    return int((t // HOUR + _MONDAY_OFFSET_HOURS) % 168)


def hour_of_day(t: float) -> int:
    return int((t // HOUR) % 24)


def _mad(values: Sequence[float], center: float) -> float:
    return statistics.median(abs(v - center) for v in values) if values else 0.0


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def describe_gap(seconds: float) -> str:
    """'every 5m', 'hourly', 'every 6h', 'daily', 'weekly'."""
    for label, value in (("hourly", HOUR), ("daily", DAY), ("weekly", WEEK)):
        if abs(seconds - value) <= 0.1 * value:
            return label
    from lakelens.units import format_duration

    return f"every {format_duration(seconds)}"


@dataclass(frozen=True)
class Rhythm:
    """When the update after `last` is due, and how late it may be before it is news."""

    last: float
    due: float
    tolerance: float
    gap: float  # the typical gap between updates
    updates: int
    seasonal: str | None  # "weekly" or "daily" when quiet hours were learned
    description: str

    @property
    def late_after(self) -> float:
        return self.due + self.tolerance

    def is_late(self, now: float) -> bool:
        return now > self.late_after


def learn_rhythm(times: Sequence[float], *, min_updates: int = 10) -> Rhythm | None:
    """The rhythm of successful updates at `times` (ascending), or None with too little history."""
    if len(times) < min_updates:
        return None
    gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
    if len(gaps) < min_updates - 1:
        return None
    gap = statistics.median(gaps)
    if gap <= 0:
        return None
    last = times[-1]
    span = last - times[0]
    # Gaps across quiet hours (nights, weekends) say nothing about lateness within a day.
    regular = [g for g in gaps if g <= 2 * gap] or gaps
    spread = max(_quantile(regular, 0.95) - gap, 3 * 1.4826 * _mad(regular, gap), 0.25 * gap, 60.0)
    tolerance = min(spread, gap)
    due = last + gap
    seasonal = None
    if gap < DAY and span >= DAILY_SPAN:
        period, slots, slot_of = (
            (WEEK, 168, hour_of_week) if span >= WEEKLY_SPAN else (DAY, 24, hour_of_day)
        )
        seasonal = "weekly" if period == WEEK else "daily"
        due = _next_active(times, due, period, slots, slot_of, span)
    elif gap >= DAY and span >= WEEKLY_SPAN:
        seasonal = "weekly"
        due = _next_active(times, due, WEEK, 168, hour_of_week, span)
    description = describe_gap(gap)
    if seasonal:
        description += f", with quiet hours learned {seasonal}"
    return Rhythm(
        last=last,
        due=due,
        tolerance=tolerance,
        gap=gap,
        updates=len(times),
        seasonal=seasonal,
        description=description,
    )


def _next_active(
    times: Sequence[float],
    due: float,
    period: float,
    slots: int,
    slot_of: object,
    span: float,
) -> float:
    """`due`, or the first hour slot after it in which updates usually happen (at the minute
    they usually happen) when `due` falls in quiet hours."""
    assert callable(slot_of)
    periods = max(1, int(span // period))
    seen: dict[int, set[int]] = {}
    minutes: dict[int, list[float]] = {}
    for t in times:
        slot = slot_of(t)
        seen.setdefault(slot, set()).add(int(t // period))
        minutes.setdefault(slot, []).append(t % HOUR)
    needed = max(1, math.ceil(0.5 * periods))
    active = {slot for slot, which in seen.items() if len(which) >= needed}
    if not active or slot_of(due) in active:
        return due
    start = due - (due % HOUR)
    for step in range(1, slots + 1):
        candidate = start + step * HOUR
        slot = slot_of(candidate)
        if slot in active:
            return candidate + statistics.median(minutes[slot])
    return due


@dataclass(frozen=True)
class Band:
    """The expected range of a value at one moment."""

    center: float
    low: float
    high: float
    points: int
    seasonal: str | None  # "weekly", "daily" or None

    def describe(self) -> str:
        where = {"weekly": "at this hour on this weekday", "daily": "at this hour"}.get(
            self.seasonal or "", "recently"
        )
        return f"usually {self.center:,.0f} {where}"


def band(
    history: Sequence[tuple[float, float]],
    at: float,
    *,
    k: float = 4.0,
    min_points: int = 10,
    min_seasonal: int = 3,
    relative_floor: float = 0.05,
    min_span: float = BAND_MIN_SPAN,
    absolute_floor: float = 1e-9,
) -> Band | None:
    """The band for a value recorded at `at`, from (time, value) `history` before it; None
    before `min_points` values over `min_span` of history. The spread is at least
    `relative_floor` of the center and at least `absolute_floor`."""
    if len(history) < min_points:
        return None
    span = at - history[0][0]
    if span < min_span:
        return None
    values: list[float] = []
    seasonal = None
    if span >= WEEKLY_SPAN:
        values = _same_time(history, at, WEEK)
        seasonal = "weekly"
    if len(values) < min_seasonal and span >= DAILY_SPAN:
        values = _same_time(history, at, DAY)
        seasonal = "daily"
    if len(values) < min_seasonal:
        values = [v for _, v in history[-200:]]
        seasonal = None
    center = statistics.median(values)
    spread = max(1.4826 * _mad(values, center), relative_floor * abs(center), absolute_floor)
    return Band(
        center=center,
        low=center - k * spread,
        high=center + k * spread,
        points=len(values),
        seasonal=seasonal,
    )


def _same_time(history: Sequence[tuple[float, float]], at: float, period: float) -> list[float]:
    """The values recorded within 90 minutes of `at`'s time of the week (or day)."""
    near, far = 1.5 * HOUR, period - 1.5 * HOUR
    return [v for t, v in history if not near < (at - t) % period < far]
