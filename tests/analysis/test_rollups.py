"""Hourly rollups: the triggers keep them equal to the rows, and long summaries read them."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Any

import pytest

import lakelens
from lakelens.analysis.rollups import BUCKETS, bucket_lower, bucket_of, histogram_percentiles
from lakelens.analysis.summary import QUANTILES, summary
from lakelens.store import Store
from lakelens.testing import FakeClock

T0 = 1_700_000_000.0 + 1234.5  # not on an hour boundary
DAY = 86400.0


class Boom(Exception):
    pass


def _record(clock: FakeClock, days: float = 3.0) -> None:
    """Materializations of three assets every ~50 minutes for `days`, some failing, with checks;
    every fifth one is committed as started before it finishes (an UPDATE of its row)."""
    rng = random.Random(7)
    lakelens.asset("c", expected_rows=100).declare()
    i = 0
    while clock() < T0 + days * DAY:
        for name in ("a", "b", "c"):
            fail = rng.random() < 0.1
            try:
                with lakelens.run("job"), lakelens.asset(name):
                    if i % 5 == 0:
                        assert lakelens.flush()  # the START is committed on its own
                    clock.advance(rng.lognormvariate(0, 1.5))
                    if fail:
                        raise Boom("no")
                    lakelens.record(rows=rng.randint(50, 150), bytes=rng.randint(1, 10**6))
                    lakelens.check("not_null", passed=rng.random() > 0.2, asset=name)
            except Boom:
                pass
            i += 1
        clock.advance(3000 + rng.random() * 200)
    assert lakelens.flush()


def _hour(t: float) -> float:
    return math.floor(t / 3600) * 3600


def _expected(db: Any) -> dict[tuple[str, float], tuple[int, ...]]:
    """asset_hours computed in Python from the rows."""
    out: dict[tuple[str, float], list[float]] = defaultdict(lambda: [0] * 9)
    for asset, start, status, rows, size, cpu in db.rows(
        "SELECT asset, start_time, status, rows, bytes, cpu_seconds FROM materializations "
        "WHERE start_time IS NOT NULL"
    ):
        entry = out[(asset, _hour(start))]
        entry[0] += 1
        entry[1] += status == "success"
        entry[2] += status == "failure"
        entry[3] += rows or 0
        entry[4] += size or 0
        entry[5] += (rows or 0) if status == "success" else 0
        entry[6] += cpu or 0
    for asset, at, passed in db.rows("SELECT asset, time, passed FROM check_results"):
        entry = out[(asset, _hour(at))]
        entry[7] += 1
        entry[8] += not passed
    return {key: tuple(round(v, 6) for v in values) for key, values in out.items() if any(values)}


def _rollups(db: Any) -> dict[tuple[str, float], tuple[int, ...]]:
    rows = db.rows(
        "SELECT asset, hour, materializations, successes, failures, rows, bytes, success_rows, "
        "cpu_seconds, checks, checks_failed FROM asset_hours"
    )
    return {
        (asset, float(hour)): tuple(round(float(v), 6) for v in values)
        for asset, hour, *values in rows
        if any(values)
    }


def _histogram(db: Any) -> dict[tuple[float, int], int]:
    expected: dict[tuple[float, int], int] = defaultdict(int)
    for start, duration in db.rows(
        "SELECT start_time, duration FROM materializations "
        "WHERE start_time IS NOT NULL AND duration IS NOT NULL"
    ):
        expected[(_hour(start), bucket_of(duration))] += 1
    return dict(expected)


def test_triggers_keep_the_rollups_equal_to_the_rows(recorder) -> None:
    store, clock = recorder
    _record(clock)
    with store.reader() as db:
        assert db.value("SELECT count(*) FROM materializations WHERE status = 'started'") == 0
        expected = _expected(db)
        assert len(expected) > 100
        assert _rollups(db) == expected
        stored = {
            (float(h), int(k)): int(n)
            for h, k, n in db.rows("SELECT hour, bucket, n FROM hour_durations WHERE n <> 0")
        }
        assert stored == _histogram(db)
    # Deleting (prune) takes the rows' share out again.
    store.prune(older_than_days=1.5, now=T0 + 3 * DAY)
    with store.reader() as db:
        assert db.value("SELECT min(start_time) FROM materializations") >= T0 + 1.5 * DAY
        assert _rollups(db) == _expected(db)
        assert {
            (float(h), int(k)): int(n)
            for h, k, n in db.rows("SELECT hour, bucket, n FROM hour_durations WHERE n <> 0")
        } == _histogram(db)


def test_a_long_summary_reads_the_rollups_and_agrees_with_the_rows(recorder, tmp_path) -> None:
    store, clock = recorder
    _record(clock)
    since, until = T0 + 1000.0, T0 + 2.9 * DAY  # partial hours at both ends
    result = summary(store, since=since, until=until)
    with store.reader() as db:
        rows = db.rows(
            "SELECT asset, status, rows, bytes, duration FROM materializations "
            "WHERE start_time >= :s AND start_time < :u",
            {"s": since, "u": until},
        )
        checks = db.rows(
            "SELECT passed FROM check_results WHERE time >= :s AND time < :u",
            {"s": since, "u": until},
        )
    assert result.latency.approximate is True
    assert result.rows == sum(r[2] or 0 for r in rows)
    assert result.bytes == sum(r[3] or 0 for r in rows)
    assert result.assets.active == len({r[0] for r in rows})
    assert result.checks.total == len(checks)
    assert result.checks.failed == sum(1 for (p,) in checks if not p)
    successes_c = [r for r in rows if r[0] == "c" and r[1] == "success"]
    assert result.completeness.by_asset["c"] == pytest.approx(
        100.0 * sum(r[2] for r in successes_c) / (100 * len(successes_c))
    )
    durations = sorted(r[4] for r in rows if r[4] is not None)
    assert result.latency.count == len(durations)
    for q, found in zip(
        QUANTILES, (result.latency.p50, result.latency.p95, result.latency.p99), strict=True
    ):
        h = (len(durations) - 1) * q
        exact = durations[math.floor(h)] + (h - math.floor(h)) * (
            durations[min(math.floor(h) + 1, len(durations) - 1)] - durations[math.floor(h)]
        )
        assert found == pytest.approx(exact, rel=0.05), q  # within a bucket (4.4 %)
    # A day is read from the rows: exact percentiles.
    short = summary(store, since=T0, until=T0 + DAY)
    assert short.latency.approximate is False


def test_python_buckets_match_the_bucket_table(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'lakelens.db'}")
    try:
        with store.reader() as db:
            table = dict(db.rows("SELECT bucket, lower FROM duration_buckets"))
            assert sorted(table) == list(range(BUCKETS + 1))
            for k, lower in table.items():
                assert bucket_lower(k) == lower
            rng = random.Random(3)
            for d in [0.0, 0.0005, 0.001, 1.0, 3600.0, 1e9] + [
                rng.lognormvariate(0, 4) for _ in range(500)
            ]:
                in_sql = db.value(
                    "SELECT coalesce(max(bucket), 0) FROM duration_buckets WHERE lower <= :d",
                    {"d": d},
                )
                assert bucket_of(d) == in_sql, d
    finally:
        store.close()


def test_histogram_percentiles_stay_inside_the_right_bucket() -> None:
    rng = random.Random(5)
    values = sorted(rng.lognormvariate(1, 2) for _ in range(5000))
    histogram: dict[int, int] = defaultdict(int)
    for v in values:
        histogram[bucket_of(v)] += 1
    n, found = histogram_percentiles(dict(histogram), QUANTILES)
    assert n == len(values)
    for q, value in zip(QUANTILES, found, strict=True):
        exact = values[round((n - 1) * q)]
        assert value is not None and bucket_of(value) in {
            bucket_of(exact) - 1,
            bucket_of(exact),
            bucket_of(exact) + 1,
        }
        assert value == pytest.approx(exact, rel=0.05)
    assert histogram_percentiles({}, QUANTILES) == (0, [None, None, None])


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_concurrent_writers_on_postgresql_neither_deadlock_nor_lose_counts(store_url: str) -> None:
    """Four writers, each transaction five materializations of random assets: the rollup rows
    they share must not deadlock them (without a common lock: 269 deadlocks in 600
    transactions), and every materialization counts once."""
    import threading
    from datetime import datetime, timezone

    from lakelens.events import Batch
    from lakelens.model import Materialization

    store = Store(store_url)
    errors: list[str] = []

    def writer(k: int) -> None:
        rng = random.Random(k)
        for i in range(60):
            batch = Batch()
            for asset in rng.sample([f"a{j}" for j in range(12)], 5):
                start = T0 + rng.random() * 60
                batch.materializations.append(
                    Materialization(
                        f"{k}-{i}-{asset}",
                        f"r{k}-{i}",
                        asset,
                        "success",
                        start_time=datetime.fromtimestamp(start, timezone.utc),
                        end_time=datetime.fromtimestamp(
                            start + rng.lognormvariate(0, 2), timezone.utc
                        ),
                    )
                )
            try:
                store.write(batch)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}".splitlines()[0])

    try:
        threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with store.reader() as db:
            assert db.value("SELECT count(*) FROM materializations") == 4 * 60 * 5
            assert db.value("SELECT sum(materializations) FROM asset_hours") == 4 * 60 * 5
            assert db.value("SELECT sum(n) FROM hour_durations") == 4 * 60 * 5
    finally:
        store.close()
