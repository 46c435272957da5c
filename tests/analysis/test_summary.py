"""`analysis.summary`: the numbers of `lakelens metrics summary`, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

import lakelens
from lakelens.analysis.summary import QUANTILES, percentiles, summary
from lakelens.store import Store
from lakelens.store import schema as tables
from lakelens.testing import FakeClock

T0 = 1_700_000_000.0


class Boom(Exception):
    pass


def _materialize(clock: FakeClock, name: str, seconds: float, rows: int | None = None) -> None:
    with lakelens.asset(name):
        clock.advance(seconds)
        if rows is None:
            raise Boom(f"{name} failed")
        lakelens.record(rows=rows, bytes=rows * 10)


def _record_scenario(clock: FakeClock) -> None:
    """Four runs; the last starts after T0+1000, outside the window the tests use."""
    lakelens.asset("d", kind="external").declare()
    with lakelens.run("job"):
        _materialize(clock, "a", 0.1, rows=10)
        _materialize(clock, "b", 0.2, rows=20)
        lakelens.check("c1", passed=True, asset="a")
    clock.set(T0 + 100)
    with pytest.raises(Boom), lakelens.run("job"):
        _materialize(clock, "a", 0.3, rows=30)
        lakelens.check("c2", passed=False, asset="b")
        _materialize(clock, "b", 0.4)
    clock.set(T0 + 200)
    with pytest.raises(Boom), lakelens.run("job"):
        _materialize(clock, "b", 0.5, rows=50)
        _materialize(clock, "c", 1.0)
    clock.set(T0 + 2000)
    with lakelens.run("job"):
        _materialize(clock, "a", 5.0, rows=1000)
    assert lakelens.flush()


def test_summary_of_a_known_window(recorder) -> None:
    store, clock = recorder
    _record_scenario(clock)
    result = summary(store, since=T0, until=T0 + 1000)

    assert (result.runs.total, result.runs.success, result.runs.failure) == (3, 1, 2)
    assert result.runs.success_rate == pytest.approx(100 / 3)
    assert result.runs.failure_rate == pytest.approx(200 / 3)
    assert (result.rows, result.bytes) == (110, 1100)
    # Durations 0.1 0.2 0.3 0.4 0.5 1.0; numpy's linear percentiles: h = 5q.
    assert result.latency.count == 6
    assert result.latency.p50 == pytest.approx(0.35, abs=1e-5)
    assert result.latency.p95 == pytest.approx(0.875, abs=1e-5)
    assert result.latency.p99 == pytest.approx(0.975, abs=1e-5)
    assets = result.assets
    assert (assets.total, assets.active, assets.healthy, assets.failing) == (4, 3, 2, 1)
    assert assets.freshest is not None and assets.stalest is not None
    assert assets.freshest.name == "b"
    assert assets.freshest.age_seconds == pytest.approx(1000 - 200.5, abs=1e-5)
    assert assets.stalest.name == "a"
    assert assets.stalest.age_seconds == pytest.approx(1000 - 100.3, abs=1e-5)
    assert (result.checks.total, result.checks.failed, result.checks.pass_rate) == (2, 1, 50.0)
    assert result.now == T0 + 1000


def test_a_failed_check_of_the_last_run_only_makes_a_warning(recorder) -> None:
    """A check that failed in an asset's latest run warns; one of an earlier run does not."""
    store, clock = recorder
    with lakelens.run("job"):
        _materialize(clock, "old_failure", 0.1, rows=1)
        lakelens.check("c", passed=False, asset="old_failure")
        _materialize(clock, "new_failure", 0.1, rows=1)
        lakelens.check("c", passed=True, asset="new_failure")
    clock.advance(60)
    with lakelens.run("job"):
        _materialize(clock, "old_failure", 0.1, rows=1)
        lakelens.check("c", passed=True, asset="old_failure")
        _materialize(clock, "new_failure", 0.1, rows=1)
        lakelens.check("c", passed=False, asset="new_failure")
    assert lakelens.flush()
    store.close()  # a new reader, as the CLI's: through sqlite3 or psycopg
    assets = summary(store, since=T0).assets  # the assets' state as of now
    assert assets.warning_assets == ("new_failure",)
    assert assets.healthy == 1


def test_the_window_is_half_open_on_start_times(recorder) -> None:
    store, clock = recorder
    _record_scenario(clock)
    later = summary(store, since=T0 + 100, until=T0 + 200)
    assert (later.runs.total, later.runs.failure) == (1, 1)
    assert later.latency.count == 2  # a (0.3s) and b (0.4s) of the second run
    assert later.latency.p50 == pytest.approx(0.35, abs=1e-5)
    # Only what happened before `until` decides health: b's failure at T0+100 is its last.
    assert (later.assets.healthy, later.assets.failing) == (1, 1)
    assert later.checks.total == 1 and later.checks.pass_rate == 0.0

    open_ended = summary(store, since=T0)
    assert open_ended.until is None and open_ended.runs.total == 4
    assert open_ended.rows == 1110 and open_ended.latency.count == 7
    assert abs(open_ended.now - time.time()) < 60
    assert open_ended.assets.freshest is not None and open_ended.assets.freshest.name == "a"


def test_summary_of_an_empty_store(store_url: str) -> None:
    store = Store(store_url)
    try:
        result = summary(store, since=0.0, until=T0)
    finally:
        store.close()
    assert (result.runs.total, result.runs.success_rate, result.runs.failure_rate) == (
        0,
        None,
        None,
    )
    assert (result.rows, result.bytes) == (0, 0)
    assert (result.latency.count, result.latency.p50, result.latency.p99) == (0, None, None)
    assert (result.assets.total, result.assets.active, result.assets.freshest) == (0, 0, None)
    assert (result.checks.total, result.checks.pass_rate) == (0, None)
    assert result.to_dict()["latency"] == {
        "count": 0,
        "p50": None,
        "p95": None,
        "p99": None,
        "approximate": True,  # a window of decades is read from the hourly rollups
    }


def _numpy_linear(values: list[float], q: float) -> float:
    """numpy.percentile's default, written out: x[⌊h⌋] + (h-⌊h⌋)(x[⌊h⌋+1]-x[⌊h⌋]), h=(n-1)q."""
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    low = int(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


@pytest.mark.parametrize("n", [1, 2, 3, 7, 100, 101, 1000])
def test_percentiles_match_numpys_linear_definition(store_url: str, n: int) -> None:
    rng = random.Random(n)
    values = [round(rng.expovariate(5), 6) for _ in range(n)]
    values[: n // 4] = [values[0]] * (n // 4)  # ties too
    store = Store(store_url)
    t = tables.materializations
    try:
        with store.engine.begin() as conn:
            conn.execute(
                t.insert(),
                [
                    {
                        "id": f"m{i}",
                        "run_id": "r",
                        "asset": "x",
                        "status": "success",
                        "start_time": T0 + i,
                        "duration": v,
                    }
                    for i, v in enumerate(values)
                ],
            )
        with store.reader() as db:
            count, found = percentiles(
                db, "materializations", "duration", "asset = :a", {"a": "x"}, QUANTILES
            )
    finally:
        store.close()
    assert count == n
    if n >= 2:  # statistics.quantiles(method="inclusive") is the same definition
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        assert found == pytest.approx([cuts[49], cuts[94], cuts[98]], rel=1e-9, abs=1e-12)
    assert found == pytest.approx([_numpy_linear(values, q) for q in QUANTILES], abs=1e-12)


def test_percentiles_of_nothing_are_none(store_url: str) -> None:
    store = Store(store_url)
    try:
        with store.reader() as db:
            assert percentiles(db, "materializations", "duration", "", {}, (0.5,)) == (0, [None])
    finally:
        store.close()


def _fetch(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Raw SQL through the plain driver (sqlite3 or psycopg), bypassing lakelens and SQLAlchemy."""
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as con:
            return con.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(url) as con:
        return con.execute(sql).fetchall()


def test_the_summary_of_a_demo_day_matches_raw_sql(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakelens.demo import run_demo

    monkeypatch.setenv("LAKELENS_DATABASE_URL", store_url)
    demo = run_demo(tmp_path / "unused-home", runs=288, seed=42)
    assert demo.location == Store(store_url).location
    since, until = demo.since, demo.until + 300
    store = Store(store_url)
    try:
        result = summary(store, since=since, until=until)
    finally:
        store.close()
    window = f"start_time >= {since!r} AND start_time < {until!r}"

    statuses = [s for (s,) in _fetch(store_url, f"SELECT status FROM runs WHERE {window}")]
    assert result.runs.total == len(statuses) == 288
    assert result.runs.success == statuses.count("success")
    assert result.runs.failure == statuses.count("failure") == demo.failures > 0
    assert result.runs.success_rate == pytest.approx(100 * statuses.count("success") / 288)

    mats = _fetch(
        store_url,
        "SELECT asset, status, start_time, end_time, rows, bytes, id "
        f"FROM materializations WHERE {window}",
    )
    assert result.rows == sum(m[4] or 0 for m in mats) > 500_000
    assert result.bytes == sum(m[5] or 0 for m in mats)
    durations = [m[3] - m[2] for m in mats if m[3] is not None]
    cuts = statistics.quantiles(durations, n=100, method="inclusive")
    assert result.latency.count == len(durations)
    assert result.latency.p50 == pytest.approx(cuts[49], abs=1e-5)
    assert result.latency.p95 == pytest.approx(cuts[94], abs=1e-5)
    assert result.latency.p99 == pytest.approx(cuts[98], abs=1e-5)
    assert 0.05 < result.latency.p50 < 0.3 < result.latency.p95 < 1.0 < result.latency.p99 < 2.0

    last: dict[str, tuple[float, str, str]] = {}
    for asset, status, start, *_, mat_id in mats:
        if status in ("success", "failure") and (
            asset not in last or (start, mat_id) > last[asset][:2]
        ):
            last[asset] = (start, mat_id, status)
    outcomes = [status for *_, status in last.values()]
    assets = _fetch(store_url, "SELECT name FROM assets")
    assert result.assets.total == len(assets) == 9
    assert result.assets.active == len({m[0] for m in mats}) == 7
    assert result.assets.healthy == outcomes.count("success")
    assert result.assets.failing == outcomes.count("failure")

    ends: dict[str, float] = {}
    for asset, status, _, end, *_ in mats:
        if status == "success":
            ends[asset] = max(end, ends.get(asset, end))
    freshest = max(ends, key=lambda a: ends[a])
    stalest = min(ends, key=lambda a: ends[a])
    assert result.assets.freshest is not None and result.assets.stalest is not None
    assert result.assets.freshest.name == freshest
    assert result.assets.freshest.age_seconds == pytest.approx(until - ends[freshest])
    assert result.assets.stalest.name == stalest == "mrt_glucose_hourly_patterns"

    checks = _fetch(
        store_url, f"SELECT passed FROM check_results WHERE time >= {since!r} AND time < {until!r}"
    )
    failed = sum(1 for (passed,) in checks if not passed)
    assert (result.checks.total, result.checks.failed) == (len(checks), failed)
    assert result.checks.pass_rate == pytest.approx(100 * (len(checks) - failed) / len(checks))
