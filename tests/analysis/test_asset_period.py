"""period_figures(): the overview's figures for many assets at once, aggregated in the
database, equal asset_metrics' over the same runs (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lakelens.analysis.asset_metrics import asset_metrics
from lakelens.analysis.asset_period import period_figures
from lakelens.config import load_settings
from lakelens.store import Store

NAMES = ["api", "dlt_entries", "stg_entries", "dashboard", "unknown_name"]


@pytest.fixture
def recorded(
    store_url: str, tmp_path: Path, record_pipeline: Callable[..., dict[str, Any]]
) -> Iterator[tuple[Store, float]]:
    settings = load_settings(home=str(tmp_path / "home"), database_url=store_url, log_format="none")
    store = Store(settings=settings)
    info = record_pipeline(settings, store)
    yield store, info["now"]
    store.close()


def test_a_day_of_runs_gives_the_figures_of_asset_metrics(recorded: tuple[Store, float]) -> None:
    store, now = recorded
    with store.connect() as conn:
        found = period_figures(conn, NAMES, since=now - 86400, until=now)
        assert sorted(found) == ["dlt_entries", "stg_entries"]  # the others never ran
        for name, figures in found.items():
            expected = asset_metrics(conn, name, runs=1000, now=now)
            assert figures.runs == len(expected.runs)
            assert figures.avg_duration == pytest.approx(expected.avg_duration)
            assert figures.last_duration == pytest.approx(expected.last_duration)
            assert figures.failure_rate == pytest.approx(expected.failure_rate)
            assert figures.checks == expected.checks
            assert len(figures.duration_trend) == len(figures.failure_trend) <= 48
            assert any(figures.failure_trend) == (expected.failure_rate != 0)


def test_the_last_hour_holds_only_its_runs(recorded: tuple[Store, float]) -> None:
    store, now = recorded
    with store.connect() as conn:
        found = period_figures(conn, NAMES, since=now - 3600, until=now)
    # Only the last run (10 minutes ago) is in the hour: it failed in dlt_entries, before
    # stg_entries ran.
    assert sorted(found) == ["dlt_entries"]
    dlt = found["dlt_entries"]
    assert (dlt.runs, dlt.failure_rate) == (1, 100.0)
    assert dlt.failure_trend == [True]
    assert dlt.checks == []  # the failing run did not reach its check
