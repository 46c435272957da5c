"""Learned expectations of the data, history in and expectation out: sizes, null rates,
distinct values and ranges."""

from __future__ import annotations

import random

from lakelens.analysis.baselines import DAY, HOUR
from lakelens.analysis.data_baselines import (
    distinct_band,
    null_rate_limit,
    size_band,
    slope,
    value_range,
)

MONDAY = 1_799_625_600.0  # 2027-01-11 00:00 UTC, a Monday


def test_the_slope_ignores_a_few_wild_points_and_a_single_step() -> None:
    rng = random.Random(1)
    points = [(MONDAY + i * HOUR, 1000.0 + 50 * i + rng.uniform(-5, 5)) for i in range(200)]
    points[50] = (points[50][0], 10**9)
    points[120] = (points[120][0], 0.0)
    assert abs(slope(points) * HOUR - 50) < 1
    flat = [(MONDAY + i * HOUR, 500.0) for i in range(100)]
    assert slope(flat) == 0.0
    assert slope([(MONDAY, 1.0)]) == 0.0 and slope([]) == 0.0


def test_a_growing_table_is_within_its_band_and_a_truncated_one_is_below() -> None:
    rng = random.Random(2)
    history = [
        (MONDAY + i * HOUR, 100_000 + 1_000 * i + rng.uniform(-200, 200)) for i in range(10 * 24)
    ]
    at = MONDAY + 240 * HOUR
    expected = size_band(history, at)
    assert expected is not None
    assert expected.low < 340_000 < expected.high  # the next hour's size, on its trend
    # ± 4 × 2.5 % of the size at the least: hourly jitter is far inside it.
    assert expected.low > 300_000 and expected.high < 380_000
    assert 23_000 < expected.per_day < 25_000 and "growing by about 24,000 a day" in (
        expected.describe()
    )
    assert expected.low > 170_000  # half of it deleted is far below


def test_a_steady_table_tolerates_its_noise_and_an_estimate_more() -> None:
    rng = random.Random(3)
    history = [(MONDAY + i * HOUR, 50_000 + rng.uniform(-100, 100)) for i in range(10 * 24)]
    at = MONDAY + 240 * HOUR
    exact = size_band(history, at)
    estimated = size_band(history, at, relative_floor=0.05)
    assert exact is not None and estimated is not None
    # ± 4 × 2.5 % of 50,000 for exact counts, ± 4 × 5 % for estimates.
    assert 44_000 < exact.low < 46_000 and 54_000 < exact.high < 56_000
    assert 39_000 < estimated.low < 41_000 and 59_000 < estimated.high < 61_000
    tiny = size_band([(MONDAY + i * HOUR, 3.0) for i in range(240)], at)
    assert tiny is not None and tiny.low <= -4 and tiny.high >= 10  # ± 4 × 2 rows


def test_too_little_or_too_short_a_history_gives_no_size_band() -> None:
    points = [(MONDAY + i * HOUR, 100.0) for i in range(9)]
    assert size_band(points, MONDAY + 9 * HOUR) is None  # fewer than 10 sizes
    day = [(MONDAY + i * 600, 100.0) for i in range(100)]
    assert size_band(day, MONDAY + 100 * 600) is None  # not a week yet
    assert size_band(day, MONDAY + 100 * 600, min_span=0) is not None


def test_a_null_rate_may_wobble_but_not_jump() -> None:
    assert null_rate_limit([0.0] * 4) is None
    limit = null_rate_limit([0.0] * 10)
    assert limit is not None and limit.center == 0.0 and limit.high == 0.05
    noisy = null_rate_limit([0.10, 0.12, 0.08, 0.11, 0.09, 0.10, 0.13, 0.07])
    assert noisy is not None and noisy.center == 0.10
    assert 0.15 < noisy.high < 0.2  # k × 1.4826 × MAD (0.015) = 0.089 > 0.05
    assert null_rate_limit([0.0] * 10, min_change=0.2) == type(limit)(0.0, 0.2, 10)


def test_distinct_values_are_judged_as_a_count_or_as_a_share_whichever_is_steadier() -> None:
    # Five statuses however many rows: a count.
    statuses = distinct_band([(5, n) for n in (1000, 1300, 900, 2000, 1500, 1100)])
    assert statuses is not None and statuses.metric == "count" and statuses.center == 5
    assert statuses.value(5, 99) == 5 and statuses.holds(4) and not statuses.holds(1)
    # An id: as many distinct values as rows, however many rows: a share.
    ids = distinct_band([(n, n) for n in (1000, 1300, 900, 2000, 1500, 1100)])
    assert ids is not None and ids.metric == "ratio" and ids.center == 1.0
    assert ids.holds(ids.value(2500, 2500) or 0)
    assert not ids.holds(ids.value(10, 2500) or 0)  # collapsed: many rows share ids
    two = distinct_band([(2, 100)] * 6)  # a yes/no column that became all one value
    assert two is not None and not two.holds(1) and two.holds(2)
    assert distinct_band([(5, 100)] * 4) is None
    assert distinct_band([(0, 0)] * 10) is None  # all null: the null rate tells


def test_a_range_allows_a_margin_and_flags_a_value_far_outside() -> None:
    rng = random.Random(4)
    history = [(MONDAY + d * DAY, rng.uniform(0, 5), rng.uniform(900, 1000)) for d in range(10)]
    allowed = value_range(history, MONDAY + 10 * DAY)
    assert allowed is not None and not (allowed.trending_low or allowed.trending_high)
    assert allowed.low == 0.0  # never negative: a negative value is news
    assert 1000 < allowed.high < 1300
    assert value_range(history[:4], MONDAY) is None  # fewer than 5 profiles


def test_a_bound_that_keeps_rising_is_judged_against_its_trend() -> None:
    # Each day's batch of ids follows the last: min and max both rise by ~1,000 a day.
    history = [(MONDAY + d * DAY, 1_000.0 * d + 1, 1_000.0 * (d + 1) + (d % 3)) for d in range(10)]
    allowed = value_range(history, MONDAY + 10 * DAY)
    assert allowed is not None and allowed.trending_high and not allowed.trending_low
    assert 11_000 < allowed.high < 16_000  # tomorrow's ids pass, a billion does not
    assert allowed.low == 0.0
    constant = value_range([(MONDAY + d * DAY, 1.0, 1.0) for d in range(6)], MONDAY + 6 * DAY)
    assert constant is not None and (constant.low, constant.high) == (1.0, 1.0)


def test_a_bad_load_does_not_widen_the_range_until_it_is_the_new_normal() -> None:
    rng = random.Random(5)
    days = [(MONDAY + d * DAY, rng.uniform(0, 5), rng.uniform(900, 1000)) for d in range(8)]
    bad = (MONDAY + 8 * DAY, 1.0, 1e6)
    allowed = value_range([*days, bad], MONDAY + 9 * DAY)
    assert allowed is not None and allowed.high < 1300 and allowed.points == 8
    assert allowed.seen_high < 1000  # the bad load was left out: its repeat is news
    # As many big loads as normal ones: the range has changed, and they count.
    big = [(MONDAY + (9 + d) * DAY, 1.0, rng.uniform(9e5, 1e6)) for d in range(8)]
    relearned = value_range([*days, bad, *big], MONDAY + 20 * DAY)
    assert relearned is not None and relearned.seen_high == 1e6 and relearned.points == 17
