"""Learned expectations of the data itself: how many rows a table holds, and per column how
many of its values are null, how many are distinct, and the range they fall in.

Pure: history in, expectation out. alerts/rules/data.py feeds these from column profiles
and warehouse observations; the tests feed them directly.

- **Size** (row counts): the seasonal band of analysis/baselines.py over the recent sizes,
  each first moved along the table's trend (a robust Theil–Sen slope), so a table that grows
  every day is not "above its usual size" every day, and one that is truncated is below it.
- **Null rate**: a rise of more than `max(min_change, k × scaled MAD)` above the median.
- **Distinct values**: the count (five statuses stay five as a table grows) or the share of
  distinct values (an id's distinct values grow with the table, their share stays 1),
  whichever was steadier in the history, within median ± k robust deviations.
- **Range**: a minimum below the smallest minimum seen (a maximum above the largest) by more
  than a tolerance; a bound that keeps moving one way (an id, a timestamp) is judged against
  where its trend puts it now instead.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from lakelens.analysis.baselines import BAND_MIN_SPAN, DAY, Band, band

__all__ = [
    "DistinctBand",
    "Limit",
    "Range",
    "SizeBand",
    "distinct_band",
    "null_rate_limit",
    "size_band",
    "slope",
    "value_range",
]

# Points the trend is fitted on at most (evenly chosen): Theil–Sen compares every pair.
SLOPE_POINTS = 50
# A bound "keeps moving" when at least this share of the steps between profiles go one way.
TRENDING = 0.8
# MAD × this estimates the standard deviation of normally distributed values.
_SCALE = 1.4826


def _mad(values: Sequence[float], center: float) -> float:
    return statistics.median(abs(v - center) for v in values) if values else 0.0


def _even(points: Sequence[tuple[float, float]], count: int) -> list[tuple[float, float]]:
    """At most `count` points, evenly spread over `points` (the first and last kept)."""
    if len(points) <= count:
        return list(points)
    step = (len(points) - 1) / (count - 1)
    return [points[round(i * step)] for i in range(count)]


def slope(points: Sequence[tuple[float, float]]) -> float:
    """The Theil–Sen slope of (time, value) points, per second: the median of the slopes
    between every two points. A step or a few outliers barely move it; 0 with fewer than two
    distinct times."""
    chosen = _even(points, SLOPE_POINTS)
    slopes = [
        (v2 - v1) / (t2 - t1)
        for (t1, v1), (t2, v2) in itertools.combinations(chosen, 2)
        if t2 != t1
    ]
    return statistics.median(slopes) if slopes else 0.0


@dataclass(frozen=True)
class SizeBand:
    """A table's expected size at one moment: the band, and the trend it was moved along."""

    band: Band
    per_day: float  # rows a day the table grows (negative: shrinks)

    @property
    def center(self) -> float:
        return self.band.center

    @property
    def low(self) -> float:
        return self.band.low

    @property
    def high(self) -> float:
        return self.band.high

    def describe(self) -> str:
        text = self.band.describe()
        if abs(self.per_day) >= 1:
            way = "growing" if self.per_day > 0 else "shrinking"
            text += f", {way} by about {_about(abs(self.per_day)):,.0f} a day"
        return text


def _about(value: float) -> float:
    """`value` to two significant digits (23,992 → 24,000)."""
    if value < 100:
        return round(value)
    digits = math.floor(math.log10(value)) - 1
    return round(value, -digits)


def size_band(
    history: Sequence[tuple[float, float]],
    at: float,
    *,
    k: float = 4.0,
    min_points: int = 10,
    relative_floor: float = 0.025,
    absolute_floor: float = 2.0,
    min_span: float = BAND_MIN_SPAN,
) -> SizeBand | None:
    """The expected size of a table at `at` from its (time, rows) `history` (oldest first):
    each size moved along the trend to `at`, then the seasonal band of those. None before
    `min_points` sizes over `min_span`."""
    if len(history) < min_points:
        return None
    rate = slope(history)
    moved = [(t, v + rate * (at - t)) for t, v in history]
    found = band(
        moved,
        at,
        k=k,
        min_points=min_points,
        relative_floor=relative_floor,
        min_span=min_span,
        absolute_floor=absolute_floor,
    )
    if found is None:
        return None
    return SizeBand(found, rate * DAY)


@dataclass(frozen=True)
class Limit:
    """How high a value may rise before it is news: above `high`."""

    center: float  # the median of the history
    high: float
    points: int


def null_rate_limit(
    history: Sequence[float], *, k: float = 4.0, min_change: float = 0.05, min_points: int = 5
) -> Limit | None:
    """The highest null rate that is not a shift, from the null rates of earlier profiles:
    their median plus `min_change` (absolute) or k scaled MADs, whichever is more."""
    if len(history) < min_points:
        return None
    center = statistics.median(history)
    spread = _SCALE * _mad(history, center)
    return Limit(center=center, high=center + max(min_change, k * spread), points=len(history))


@dataclass(frozen=True)
class DistinctBand:
    """The expected distinct values of a column: as a `count`, or as a `ratio` (distinct
    values per non-null value)."""

    metric: str  # count | ratio
    center: float
    low: float
    high: float
    points: int

    def value(self, distinct: float, count: float) -> float | None:
        """The latest profile's value in this band's metric (None: no values to judge)."""
        if self.metric == "count":
            return distinct
        return distinct / count if count > 0 else None

    def holds(self, value: float) -> bool:
        return self.low <= value <= self.high


def _relative_spread(values: Sequence[float]) -> float:
    center = statistics.median(values)
    return _SCALE * _mad(values, center) / abs(center) if center else math.inf


def distinct_band(
    history: Sequence[tuple[float, float]],
    *,
    k: float = 4.0,
    min_points: int = 5,
    relative_floor: float = 0.05,
    count_floor: float = 0.2,
) -> DistinctBand | None:
    """The band of a column's distinct values from (distinct, non-null count) pairs of
    earlier profiles: median ± k robust deviations of the count or of the ratio, whichever
    varied less relative to its median. The spread is at least `relative_floor` of the
    median (and `count_floor` of a count: two values collapsing into one is news)."""
    usable = [(float(d), float(n)) for d, n in history if n > 0]
    if len(usable) < min_points:
        return None
    counts = [d for d, _ in usable]
    ratios = [d / n for d, n in usable]
    if _relative_spread(counts) <= _relative_spread(ratios):
        metric, values, floor = "count", counts, count_floor
    else:
        metric, values, floor = "ratio", ratios, 1e-9
    center = statistics.median(values)
    spread = max(_SCALE * _mad(values, center), relative_floor * abs(center), floor)
    return DistinctBand(
        metric=metric,
        center=center,
        low=center - k * spread,
        high=center + k * spread,
        points=len(values),
    )


@dataclass(frozen=True)
class Range:
    """The values a column may hold before it is news: a minimum below `low`, a maximum
    above `high`. `seen_low`/`seen_high` are the extremes of the history."""

    low: float
    high: float
    seen_low: float
    seen_high: float
    points: int
    # The bound keeps moving (an id, a timestamp): judged against its trend.
    trending_low: bool = False
    trending_high: bool = False


def _direction(values: Sequence[float]) -> int:
    """+1 when the values keep rising, -1 when they keep falling, else 0."""
    steps = [b - a for a, b in itertools.pairwise(values)]
    if len(steps) < 2:
        return 0
    if sum(1 for s in steps if s > 0) >= TRENDING * len(steps):
        return 1
    if sum(1 for s in steps if s < 0) >= TRENDING * len(steps):
        return -1
    return 0


def _along_trend(points: Sequence[tuple[float, float]], at: float, k: float) -> tuple[float, float]:
    """(where the trend puts the bound at `at`, the tolerance around it): k robust deviations
    of the moved values, and at least k typical steps between profiles."""
    rate = slope(points)
    moved = [v + rate * (at - t) for t, v in points]
    center = statistics.median(moved)
    steps = [abs(b - a) for (_, a), (_, b) in itertools.pairwise(points)]
    tolerance = max(k * _SCALE * _mad(moved, center), k * statistics.median(steps))
    return center, tolerance


def value_range(
    history: Sequence[tuple[float, float, float]],
    at: float,
    *,
    k: float = 4.0,
    min_points: int = 5,
    relative_floor: float = 0.1,
) -> Range | None:
    """The allowed range of a column at `at` from (time, min, max) of earlier profiles
    (oldest first). A bound is allowed beyond the extreme seen by k robust deviations of that
    bound or `relative_floor` of the whole range seen, whichever is more; a column never
    negative is not allowed below 0 (never positive: above 0). A bound that keeps moving one
    way is allowed up to where its trend puts it, plus k robust deviations or k typical steps.

    A profile that was outside the range of the profiles before it is left out, so a bad load
    does not widen the range and its repeat is news again; once such profiles are as many as
    the others, they are the new normal and count."""
    if len(history) < min_points:
        return None
    trending_high = _direction([hi for _, _, hi in history]) > 0
    trending_low = _direction([lo for _, lo, _ in history]) < 0
    accepted: list[tuple[float, float, float]] = []
    rejected = 0
    for point in history:
        if len(accepted) >= min_points:
            low, high = _static(accepted, k, relative_floor)
            if (not trending_low and point[1] < low) or (not trending_high and point[2] > high):
                rejected += 1
                continue
        accepted.append(point)
    usable = accepted if rejected < len(accepted) else list(history)
    times = [t for t, _, _ in usable]
    mins = [lo for _, lo, _ in usable]
    maxes = [hi for _, _, hi in usable]
    low, high = _static(usable, k, relative_floor)
    if trending_high:
        center, slack = _along_trend(list(zip(times, maxes, strict=True)), at, k)
        high = center + slack
    if trending_low:
        center, slack = _along_trend(list(zip(times, mins, strict=True)), at, k)
        low = center - slack
    return Range(
        low=low,
        high=high,
        seen_low=min(mins),
        seen_high=max(maxes),
        points=len(usable),
        trending_low=trending_low,
        trending_high=trending_high,
    )


def _static(
    history: Sequence[tuple[float, float, float]], k: float, relative_floor: float
) -> tuple[float, float]:
    """(low, high) around the extremes seen, with the sign rule (see value_range)."""
    mins = [lo for _, lo, _ in history]
    maxes = [hi for _, _, hi in history]
    seen_low, seen_high = min(mins), max(maxes)
    width = seen_high - seen_low

    def tolerance(values: Sequence[float]) -> float:
        center = statistics.median(values)
        return max(k * _SCALE * _mad(values, center), relative_floor * width)

    high = seen_high + tolerance(maxes)
    if seen_high <= 0:
        high = min(high, 0.0)
    low = seen_low - tolerance(mins)
    if seen_low >= 0:
        low = max(low, 0.0)
    return low, high
