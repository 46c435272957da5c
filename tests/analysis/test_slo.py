"""`analysis.slo`: availability, freshness compliance and error budgets, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lakelens.analysis.slo import (
    AT_RISK,
    BREACHED,
    NO_DATA,
    OK,
    error_budget,
    fresh_seconds,
    slo_report,
)
from lakelens.events import Batch
from lakelens.model import Asset, Materialization
from lakelens.store import Store

T = 1_700_000_000.0
H = 3600.0
PERIOD = 10 * H  # the period is [T - 10h, T)


def _mat(mid: str, asset: str, end: float, status: str = "success") -> Materialization:
    """A one-minute materialization that ends at `end`."""
    return Materialization(
        mid,
        f"run-{mid}",
        asset,
        status,
        start_time=end - 60,  # type: ignore[arg-type]
        end_time=end,  # type: ignore[arg-type]
    )


def test_fresh_seconds_is_the_union_of_sla_windows_after_each_success() -> None:
    # SLA 1h over [0, 10h): successes end at -0.5h (before the period), 0.5h, 1h, 4h, 9.5h.
    # Fresh: [0, 0.5] ∪ [0.5, 1.5] ∪ [1, 2] = [0, 2]; [4, 5]; [9.5, 10) → 3.5h.
    ends = [4 * H, -0.5 * H, 9.5 * H, 0.5 * H, 1 * H]
    assert fresh_seconds(ends, H, 0.0, 10 * H) == pytest.approx(3.5 * H)
    # Before the first success the asset is not fresh; a success after the period counts nothing.
    assert fresh_seconds([], H, 0.0, 10 * H) == 0.0
    assert fresh_seconds([11 * H, 3 * H, 3 * H], H, 0.0, 10 * H) == pytest.approx(H)
    # A long-ago success: stale for the whole period.
    assert fresh_seconds([-5 * H], H, 0.0, 10 * H) == 0.0


def test_error_budget() -> None:
    half = error_budget(0.995, 0.99)  # 0.5% bad of 1% allowed
    assert half.allowed == pytest.approx(0.01) and half.bad == pytest.approx(0.005)
    assert half.consumed == pytest.approx(0.5) and half.remaining == pytest.approx(0.5)
    assert half.burn_rate == pytest.approx(0.5) and not half.exhausted
    over = error_budget(0.97, 0.99)
    assert over.consumed == pytest.approx(3.0) and over.remaining == pytest.approx(-2.0)
    assert over.exhausted
    # A 100% target allows nothing: perfect is within it, anything else exhausts it.
    perfect = error_budget(1.0, 1.0)
    assert (perfect.consumed, perfect.remaining, perfect.exhausted) == (0.0, 1.0, False)
    spent = error_budget(0.5, 1.0)
    assert (spent.consumed, spent.remaining, spent.burn_rate, spent.exhausted) == (
        None,
        None,
        None,
        True,
    )


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = Store(store_url)
    events: list[object] = [
        Asset("fresh", owner="ops", layer="gold", freshness_seconds=H, availability_target=0.9),
        Asset("exact", availability_target=0.95),
        Asset("risky", availability_target=0.9),
        Asset("newbie", freshness_seconds=H),
        Asset("idle", availability_target=0.99),
        Asset("steady", freshness_seconds=2 * H),
        Asset("plain"),
        Asset("api", kind="external"),
    ]
    # fresh: the timeline of the pure test above, shifted to end at T, plus two failures.
    for i, hours in enumerate([30, 10.5, 9.5, 9, 6, 0.5]):
        events.append(_mat(f"fresh-{i}", "fresh", T - hours * H))
    events += [_mat("fresh-f1", "fresh", T - 8 * H, "failure")]
    events += [_mat("fresh-f2", "fresh", T - 7 * H, "failure")]
    # exact: 19 of 20 = its 95% target; risky: 10 of 11 against 90%.
    for i in range(20):
        events.append(
            _mat(f"exact-{i}", "exact", T - 9 * H + i * 60, "failure" if i == 3 else "success")
        )
    for i in range(11):
        events.append(
            _mat(f"risky-{i}", "risky", T - 9 * H + i * 60, "failure" if i == 5 else "success")
        )
    # newbie: first recorded 2h ago; its first success ends a minute later.
    events += [_mat("newbie-1", "newbie", T - 2 * H + 60), _mat("newbie-2", "newbie", T - H)]
    events += [_mat("idle-1", "idle", T - 20 * H)]
    events += [_mat(f"steady-{h}", "steady", T - h * H) for h in range(1, 13)]
    events += [_mat("plain-1", "plain", T - H)]
    batch = Batch()
    for event in events:
        batch.add(event)
    store.write(batch)
    yield store
    store.close()


def test_slo_report(store: Store) -> None:
    report = slo_report(store, period=PERIOD, until=T)
    assert (report.since, report.until, report.recorded) == (T - PERIOD, T, True)
    assert [(s.asset, s.status) for s in report.assets] == [
        ("fresh", BREACHED),
        ("exact", AT_RISK),  # exactly on target: budget used up, not breached
        ("risky", AT_RISK),
        ("newbie", AT_RISK),
        ("idle", NO_DATA),
        ("steady", OK),
    ]
    assert report.undeclared == ("plain",)  # the external api is nobody's pipeline output
    by_name = {s.asset: s for s in report.assets}

    fresh = by_name["fresh"]
    assert (fresh.owner, fresh.layer, fresh.target, fresh.target_is_default) == (
        "ops",
        "gold",
        0.9,
        False,
    )
    availability = fresh.availability
    assert (availability.good, availability.total) == (4, 6)
    assert availability.actual == pytest.approx(4 / 6)
    assert availability.budget is not None
    assert availability.budget.consumed == pytest.approx((1 / 3) / 0.1)
    assert availability.budget.remaining == pytest.approx(1 - (1 / 3) / 0.1)
    assert availability.budget.burn_rate == pytest.approx((1 / 3) / 0.1)
    assert availability.status == BREACHED
    freshness = fresh.freshness
    assert freshness is not None and freshness.status == BREACHED
    assert freshness.good == pytest.approx(3.5 * H) and freshness.total == PERIOD
    assert freshness.actual == pytest.approx(0.35)
    assert freshness.budget is not None and freshness.budget.consumed == pytest.approx(6.5)

    exact = by_name["exact"].availability
    assert exact.actual == pytest.approx(0.95) and exact.budget is not None
    assert exact.budget.remaining == pytest.approx(0.0, abs=1e-9) and exact.budget.exhausted
    assert by_name["exact"].freshness is None

    risky = by_name["risky"].availability
    assert risky.budget is not None
    assert risky.budget.remaining == pytest.approx(1 - (1 / 11) / 0.1)

    # Measured from newbie's first record (T-2h): fresh from T-2h+60s on.
    newbie = by_name["newbie"]
    assert newbie.target == 0.99 and newbie.target_is_default
    assert newbie.availability.status == OK and newbie.availability.actual == 1.0
    assert newbie.freshness is not None
    assert newbie.freshness.since == T - 2 * H and newbie.freshness.total == 2 * H
    assert newbie.freshness.actual == pytest.approx((2 * H - 60) / (2 * H))
    assert newbie.freshness.budget is not None
    assert newbie.freshness.budget.remaining == pytest.approx(1 - (60 / (2 * H)) / 0.01)

    idle = by_name["idle"].availability
    assert (idle.actual, idle.budget, idle.total) == (None, None, 0)

    steady = by_name["steady"]
    # Successes that started in the period: those ending T-9h … T-1h (T-10h's started before).
    assert (steady.availability.good, steady.availability.total) == (9, 9)
    assert steady.freshness is not None and steady.freshness.actual == pytest.approx(1.0)
    assert steady.target_is_default and steady.status == OK


def test_a_shorter_period_sees_only_its_own_runs(store: Store) -> None:
    report = slo_report(store, period=H, until=T)
    fresh = next(s for s in report.assets if s.asset == "fresh")
    # [T-1h, T): fresh after the success at T-0.5h only; no failures in the period.
    assert fresh.freshness is not None and fresh.freshness.actual == pytest.approx(0.5)
    assert (fresh.availability.good, fresh.availability.total) == (1, 1)


def test_empty_store(store_url: str) -> None:
    store = Store(store_url)
    try:
        report = slo_report(store, period=PERIOD, until=T)
    finally:
        store.close()
    assert (report.recorded, report.assets, report.undeclared) == (False, (), ())
    assert report.default_target == 0.99
