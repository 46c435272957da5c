"""The usage series on `/metrics`: reads and views per day and readers by reader kind, the
same numbers `asset_usage` gives one asset at a time, with a bounded number of series."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import lakelens
from lakelens.analysis.usage import asset_usage
from lakelens.config import load_settings
from lakelens.export import usage_metrics
from lakelens.store import Store
from lakelens.testing import FakeClock

DAY = 86400.0
T0 = 1_700_000_000.0
NOW = T0 + 6 * DAY + 3600
ASSETS = ("raw", "mart", "board", "quiet")


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """raw → mart → board (a dashboard): a nightly job reads raw and mart, the board reports
    its views daily, a BI tool reports views of mart under its own name, a job read `quiet`
    once two weeks ago (outside the window)."""
    settings = load_settings(home=str(tmp_path / "home"), database_url=store_url, log_format="none")
    store = Store(settings=settings)
    lakelens.configure(settings=settings, store=store, clock=FakeClock(T0))
    try:
        lakelens.asset("raw", kind="table").declare()
        lakelens.asset("mart", deps=["raw"]).declare()
        lakelens.asset("board", kind="dashboard", deps=["mart"]).declare()
        lakelens.usage("quiet", reads=1, reader="old", time=T0 - 8 * DAY)
        for day in range(7):
            at = T0 + day * DAY
            for asset in ("raw", "mart"):
                lakelens.usage(asset, reads=1, reader="nightly", time=at)
            lakelens.usage("raw", reads=1, reader="adhoc", time=at + 60)
            lakelens.usage("board", views=450, time=at + 600)
            lakelens.usage("mart", views=30, reader="Superset", time=at + 600)
        lakelens.flush()
        yield store
    finally:
        lakelens.configure(settings=load_settings(home=str(tmp_path / "after"), log_format="none"))
        store.close()


def _text(store: Store) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    with store.connect() as conn:
        families = usage_metrics.usage_families(conn, now=NOW)

    class Families:
        def collect(self) -> Iterator[Any]:
            return iter(families)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families())
    return generate_latest(registry).decode()


def _samples(text: str) -> dict[tuple[str, ...], float]:
    return {
        (s.name, *(s.labels[k] for k in ("asset_name", "reader_kind") if k in s.labels)): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_usage_gauges_are_the_asset_pages_numbers_by_reader_kind(store: Store) -> None:
    samples = _samples(_text(store))
    with store.reader() as db:
        for name in ("raw", "mart", "board"):
            usage = asset_usage(db, name, now=NOW)
            assert samples[("asset_usage_per_day", name, "job")] == pytest.approx(
                usage.reads_per_day
            )
            assert samples[("asset_usage_per_day", name, "dashboard")] == pytest.approx(
                usage.views_per_day
            )
            assert samples[("asset_usage_readers", name, "job")] == usage.jobs
            assert samples[("asset_usage_readers", name, "dashboard")] == usage.dashboards
    # Known answers: the board's own views count for mart, which it reads.
    assert samples[("asset_usage_per_day", "raw", "job")] == pytest.approx(2.0)
    assert samples[("asset_usage_per_day", "raw", "dashboard")] == 0.0
    assert samples[("asset_usage_per_day", "mart", "dashboard")] == pytest.approx(480.0)
    assert samples[("asset_usage_readers", "mart", "dashboard")] == 2
    assert samples[("asset_usage_per_day", "board", "dashboard")] == pytest.approx(450.0)
    # Unused in the window: no series. Readers never become labels.
    assert not any(key[1] == "quiet" for key in samples if len(key) > 1)
    assert samples[("lakelens_usage_series_dropped",)] == 0


def test_the_asset_cap_keeps_the_busiest_and_counts_the_rest(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(usage_metrics, "MAX_USAGE_ASSETS", 1)
    samples = _samples(_text(store))
    shown = {key[1] for key in samples if key[0] == "asset_usage_per_day"}
    assert shown == {"mart"}  # 480 views and 1 read a day
    assert samples[("lakelens_usage_series_dropped",)] == 2


def test_the_server_scrape_has_the_usage_series_and_promtool_accepts_them(
    store: Store, require_tool: Any
) -> None:
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    with TestClient(create_app(store.settings, store, clock=lambda: NOW)) as client:
        text = client.get("/metrics").text
    assert 'asset_usage_per_day{asset_name="board",reader_kind="dashboard"} 450.0' in text
    assert "lakelens_usage_series_dropped 0.0" in text
    promtool = require_tool("promtool", "apt-get install prometheus")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=_text(store), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
