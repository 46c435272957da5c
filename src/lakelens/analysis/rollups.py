"""Long windows from the hourly rollups (schema revision 0006), exact except for percentiles.

A window [since, until) longer than `ROLLUP_MIN_SECONDS` is read as its whole hours from
`asset_hours` and `hour_durations` (kept by database triggers) plus its two partial hours
from the raw rows. Counts and sums are exact. Percentiles come from a log-scale histogram:
16 buckets per doubling from 1 ms, interpolated geometrically inside the bucket, so a
percentile is within one bucket (4.4 %) of the exact value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lakelens.store.sql import Reader

__all__ = [
    "BUCKETS",
    "ROLLUP_MIN_SECONDS",
    "AssetTotals",
    "WindowTotals",
    "bucket_lower",
    "bucket_of",
    "histogram_percentiles",
    "whole_hours",
    "window_totals",
]

HOUR = 3600.0
BUCKETS = 540  # the last bucket starts at 1 ms · 2^(539/16), about 160 days
PER_DOUBLING = 16
FIRST = 0.001
# Shorter windows are read from the raw rows: exact percentiles, and fast enough (24 h of a
# busy platform is about 0.1 s of SQL, bench/queries.py).
ROLLUP_MIN_SECONDS = 2 * 86400.0


def bucket_lower(k: int) -> float:
    """Where bucket k starts (the same bounds as the `duration_buckets` table)."""
    return 0.0 if k <= 0 else FIRST * 2 ** ((k - 1) / PER_DOUBLING)


def bucket_of(duration: float) -> int:
    """The bucket of a duration in seconds."""
    if duration < FIRST:
        return 0
    k = math.floor(math.log2(duration / FIRST) * PER_DOUBLING) + 1
    # Guard the floating-point edges so Python agrees with the table's `lower <= d`.
    while k > 1 and bucket_lower(k) > duration:
        k -= 1
    while k < BUCKETS and bucket_lower(k + 1) <= duration:
        k += 1
    return min(k, BUCKETS)


def whole_hours(since: float, until: float) -> tuple[float, float] | None:
    """The whole hours [h0, h1) inside [since, until), when the window is long enough."""
    if until - since < ROLLUP_MIN_SECONDS:
        return None
    h0 = math.ceil(since / HOUR) * HOUR
    h1 = math.floor(until / HOUR) * HOUR
    return (h0, h1) if h1 > h0 else None


@dataclass
class AssetTotals:
    materializations: int = 0
    successes: int = 0
    failures: int = 0
    rows: int = 0
    bytes: int = 0
    success_rows: int = 0
    checks: int = 0
    checks_failed: int = 0

    def add(self, values: Sequence[Any]) -> None:
        self.materializations += int(values[0] or 0)
        self.successes += int(values[1] or 0)
        self.failures += int(values[2] or 0)
        self.rows += int(values[3] or 0)
        self.bytes += int(values[4] or 0)
        self.success_rows += int(values[5] or 0)


@dataclass
class WindowTotals:
    """Per-asset totals and the duration histogram of a window."""

    assets: dict[str, AssetTotals] = field(default_factory=dict)
    histogram: dict[int, int] = field(default_factory=dict)

    def asset(self, name: str) -> AssetTotals:
        found = self.assets.get(name)
        if found is None:
            found = self.assets[name] = AssetTotals()
        return found


_RAW_MATERIALIZATIONS = (
    "SELECT asset, count(*), sum(CASE WHEN status = 'success' THEN 1 ELSE 0 END), "
    "sum(CASE WHEN status = 'failure' THEN 1 ELSE 0 END), "
    "sum(coalesce(rows, 0)), sum(coalesce(bytes, 0)), "
    "sum(CASE WHEN status = 'success' THEN coalesce(rows, 0) ELSE 0 END) "
    "FROM materializations WHERE {period} GROUP BY asset"
)
_RAW_CHECKS = (
    "SELECT asset, count(*), sum(CASE WHEN passed THEN 0 ELSE 1 END) "
    "FROM check_results WHERE {period} GROUP BY asset"
)


def window_totals(
    db: Reader, since: float, until: float | None, hours: tuple[float, float]
) -> WindowTotals:
    """Totals of [since, until) (until None: no upper bound) whose whole hours are `hours`."""
    h0, h1 = hours
    totals = WindowTotals()
    for asset, *values in db.rows(
        "SELECT asset, sum(materializations), sum(successes), sum(failures), sum(rows), "
        "sum(bytes), sum(success_rows), sum(checks), sum(checks_failed) FROM asset_hours "
        "WHERE hour >= :h0 AND hour < :h1 GROUP BY asset",
        {"h0": h0, "h1": h1},
    ):
        entry = totals.asset(asset)
        entry.add(values)
        entry.checks += int(values[6] or 0)
        entry.checks_failed += int(values[7] or 0)
    for bucket, n in db.rows(
        "SELECT bucket, sum(n) FROM hour_durations WHERE hour >= :h0 AND hour < :h1 "
        "GROUP BY bucket",
        {"h0": h0, "h1": h1},
    ):
        if n:
            totals.histogram[int(bucket)] = totals.histogram.get(int(bucket), 0) + int(n)
    # The partial hours at both ends, from the rows themselves.
    edges = [("{c} >= :since AND {c} < :h0", {"since": since, "h0": h0})]
    if until is None:
        # Bounded above all the same: with `>=` alone, SQLite without statistics walks the
        # (asset, time) index of every row to group by asset (110 ms on 1M rows, not 1 ms).
        edges.append(("{c} >= :h1 AND {c} < :until", {"h1": h1, "until": math.inf}))
    else:
        edges.append(("{c} >= :h1 AND {c} < :until", {"h1": h1, "until": until}))
    for condition, params in edges:
        period = condition.format(c="start_time")
        for asset, *values in db.rows(_RAW_MATERIALIZATIONS.format(period=period), params):
            totals.asset(asset).add(values)
        for (duration,) in db.rows(
            f"SELECT duration FROM materializations WHERE {period} AND duration IS NOT NULL",
            params,
        ):
            k = bucket_of(float(duration))
            totals.histogram[k] = totals.histogram.get(k, 0) + 1
        for asset, total, failed in db.rows(
            _RAW_CHECKS.format(period=condition.format(c="time")), params
        ):
            entry = totals.asset(asset)
            entry.checks += int(total or 0)
            entry.checks_failed += int(failed or 0)
    return totals


def histogram_percentiles(
    histogram: dict[int, int], quantiles: Sequence[float]
) -> tuple[int, list[float | None]]:
    """(count, [percentile per quantile]) of a bucket histogram.

    numpy's linear definition on estimated order statistics: the i-th smallest value is placed
    inside its bucket by its rank among the bucket's values (geometrically), and the result
    for h = (n-1)·q interpolates between the ⌊h⌋-th and the next, so each percentile stays
    within a bucket's width of the exact one.
    """
    n = sum(histogram.values())
    if n == 0:
        return 0, [None for _ in quantiles]
    ordered = sorted((k, c) for k, c in histogram.items() if c > 0)

    def order_statistic(i: int) -> float:
        seen = 0
        for k, count in ordered:
            if i < seen + count:
                share = (i - seen + 0.5) / count
                low, high = bucket_lower(k), bucket_lower(k + 1)
                return low + share * (high - low) if k == 0 else low * (high / low) ** share
            seen += count
        return bucket_lower(ordered[-1][0] + 1)

    result: list[float | None] = []
    for q in quantiles:
        h = (n - 1) * q
        low = math.floor(h)
        below = order_statistic(low)
        above = order_statistic(min(low + 1, n - 1))
        result.append(below + (h - low) * (above - below))
    return n, result
