"""`analysis.cost`: usage, estimated cost and storage growth per asset, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lakelens.analysis.cost import (
    DEFAULT_PRICE_PER_CPU_HOUR,
    DEFAULT_PRICE_PER_GB,
    Prices,
    cost_report,
    parse_price,
    resolve_prices,
)
from lakelens.errors import InvalidArgumentError
from lakelens.events import Batch
from lakelens.model import Asset, Materialization
from lakelens.store import Store

T = 1_700_000_000.0
DAY = 86400.0
GB = 1_000_000_000
PRICES = Prices(per_gb=0.02, per_cpu_hour=0.1)


def _mat(
    mid: str,
    asset: str,
    start: float,
    *,
    run: str | None = None,
    status: str = "success",
    rows: int | None = None,
    size: int | None = None,
    cpu: float | None = None,
    peak: int | None = None,
) -> Materialization:
    return Materialization(
        mid,
        run or f"run-{mid}",
        asset,
        status,
        start_time=start,  # type: ignore[arg-type]
        end_time=start + 60,  # type: ignore[arg-type]
        rows=rows,
        bytes=size,
        cpu_seconds=cpu,
        peak_memory_bytes=peak,
    )


def _write(store: Store, *events: object) -> None:
    batch = Batch()
    for event in events:
        batch.add(event)
    store.write(batch)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A store whose history starts at T-25d; periods end at T.

    a: three materializations in the last 10 days (runs r1, r2, r3; one failed), 2 GB the
       10 days before; b: one in r1, nothing before; c: only in the previous 10 days.
    """
    store = Store(store_url)
    _write(
        store,
        Asset("a", owner="team-a", layer="gold"),
        Asset("b", owner="team-b"),
        _mat("old", "old", T - 25 * DAY, size=1_000),
        _mat("a0", "a", T - 15 * DAY, size=2 * GB),
        _mat("a1", "a", T - 9 * DAY, run="r1", rows=100, size=2 * GB, cpu=1800, peak=1 * GB),
        _mat("a2", "a", T - 5 * DAY, run="r2", status="failure", size=GB, cpu=3600, peak=3 * GB),
        _mat("a3", "a", T - 1 * DAY, run="r3", rows=50, size=GB, peak=2 * GB),
        _mat("a4", "a", T, rows=1, size=9 * GB),  # starts at `until`: outside the half-open period
        _mat("b1", "b", T - 9 * DAY + 60, run="r1", rows=10, size=GB // 2, cpu=36_000),
        _mat("c0", "c", T - 12 * DAY, size=GB),
    )
    yield store
    store.close()


def test_usage_cost_and_growth_per_asset(store: Store) -> None:
    report = cost_report(store, period=10 * DAY, until=T, prices=PRICES)
    assert (report.since, report.previous_since) == (T - 10 * DAY, T - 20 * DAY)
    assert report.history_start == T - 25 * DAY and report.recorded
    assert not report.month_over_month
    # b: 0.5 GB × 0.02 + 10 CPU h × 0.1 = 1.01; a: 4 GB × 0.02 + 1.5 CPU h × 0.1 = 0.23.
    assert [item.asset for item in report.assets] == ["b", "a"]
    b, a = (item.usage for item in report.assets)
    assert (report.assets[1].owner, report.assets[1].layer) == ("team-a", "gold")
    assert (a.runs, a.materializations, a.rows, a.bytes) == (3, 3, 150, 4 * GB)
    assert (a.cpu_seconds, a.peak_memory_bytes) == (5400.0, 3 * GB)
    assert a.bytes_cost == pytest.approx(0.08)
    assert a.cpu_cost == pytest.approx(0.15)
    assert a.cost == pytest.approx(0.23)
    assert a.cost_per_gb == pytest.approx(0.23 / 4)
    assert (a.growth.previous_bytes, a.growth.state) == (2 * GB, "compared")
    assert a.growth.change == pytest.approx(1.0)  # 4 GB now against 2 GB before: +100%
    assert b.cost == pytest.approx(1.01) and b.peak_memory_bytes is None
    assert (b.growth.previous_bytes, b.growth.change, b.growth.state) == (0, None, "new")

    total = report.total
    assert (total.runs, total.materializations, total.rows) == (3, 4, 160)  # r1 holds a1 and b1
    assert (total.bytes, total.cpu_seconds, total.peak_memory_bytes) == (
        4 * GB + GB // 2,
        41_400.0,
        3 * GB,
    )
    assert total.cost == pytest.approx(4.5 * 0.02 + 11.5 * 0.1)
    assert total.cost_per_gb == pytest.approx((4.5 * 0.02 + 11.5 * 0.1) / 4.5)
    # The total compares with everything written before, c's 1 GB included: 4.5 / 3 - 1.
    assert total.growth.previous_bytes == 3 * GB
    assert total.growth.change == pytest.approx(0.5)


def test_growth_is_na_when_history_does_not_reach_back(store: Store) -> None:
    # The previous 13 days start at T-26d, before the first record (T-25d).
    report = cost_report(store, period=13 * DAY, until=T, prices=PRICES)
    assert report.assets and all(item.usage.growth.state == "n/a" for item in report.assets)
    assert all(item.usage.growth.previous_bytes is None for item in report.assets)
    assert (report.total.growth.state, report.total.growth.change) == ("n/a", None)
    # The period itself is unaffected: c's 1 GB at T-12d is now inside it.
    assert report.total.bytes == 5 * GB + GB // 2


def test_month_over_month_from_28_days(store: Store) -> None:
    assert cost_report(store, period=28 * DAY, until=T).month_over_month
    assert not cost_report(store, period=27 * DAY, until=T).month_over_month


def test_default_prices(store: Store) -> None:
    report = cost_report(store, period=10 * DAY, until=T)
    assert (
        report.prices
        == Prices(0.023, 0.05)
        == Prices(DEFAULT_PRICE_PER_GB, DEFAULT_PRICE_PER_CPU_HOUR)
    )
    assert report.total.cost == pytest.approx(4.5 * 0.023 + 11.5 * 0.05)


def test_empty_store(store_url: str) -> None:
    store = Store(store_url)
    try:
        report = cost_report(store, period=30 * DAY, until=T)
    finally:
        store.close()
    assert not report.recorded and report.assets == ()
    assert (report.total.bytes, report.total.cost, report.total.cost_per_gb) == (0, 0.0, None)
    assert report.total.growth.state == "n/a"


def test_prices_from_arguments_then_environment_then_defaults() -> None:
    env = {"LAKELENS_PRICE_PER_GB": "0.5", "LAKELENS_PRICE_PER_CPU_HOUR": " 2 "}
    assert resolve_prices(env={}) == Prices(0.023, 0.05)
    assert resolve_prices(env=env) == Prices(0.5, 2.0)
    assert resolve_prices("0.1", 0, env=env) == Prices(0.1, 0.0)
    assert resolve_prices(env={"LAKELENS_PRICE_PER_GB": ""}) == Prices(0.023, 0.05)


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", True, -0.5, ""])
def test_bad_prices_name_the_option(value: object) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^Invalid --price-per-gb="):
        parse_price(value, name="--price-per-gb")


def test_bad_price_in_the_environment_names_the_variable() -> None:
    with pytest.raises(InvalidArgumentError, match="LAKELENS_PRICE_PER_CPU_HOUR='cheap'"):
        resolve_prices(env={"LAKELENS_PRICE_PER_CPU_HOUR": "cheap"})
    with pytest.raises(InvalidArgumentError, match=r"^Invalid --gb="):
        resolve_prices("x", env={}, names=("--gb", "--cpu"))
