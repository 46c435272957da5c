"""Profiles on the dashboard (asset page Data distribution), in the API and in /metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lakelens
from lakelens.config import load_settings
from lakelens.store import Store
from lakelens.testing import FakeClock, recording

START = 1_730_000_000.0
ODD_COLUMN = '<script>alert("x")</script>'


def _rows(n: int, *, nulls: bool) -> list[dict[str, Any]]:
    return [
        {
            "amount": None if nulls and i % 2 else float(i),
            "status": "paid" if i % 3 else "new",
            ODD_COLUMN: i % 5,
        }
        for i in range(n)
    ]


@pytest.fixture
def client(store_url: str, tmp_path: Path) -> Iterator[Any]:
    """A TestClient over a store where `orders` has two profiles and `plain` only row counts."""
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    settings = load_settings(home=str(tmp_path / "home"), database_url=store_url, log_format="none")
    store = Store(settings=settings)
    clock = FakeClock(START)
    with recording(settings=settings, store=store, clock=clock, id_seed=5):
        for n, nulls in ((40, False), (50, True)):
            with lakelens.run("shop"):
                with lakelens.asset("orders"):
                    lakelens.profile(_rows(n, nulls=nulls))
                with lakelens.asset("plain"):
                    lakelens.record(rows=n, bytes=n * 100)
            clock.advance(3600)
    app = create_app(settings, store, clock=lambda: START + 7200)
    with TestClient(app) as test_client:
        yield test_client
    store.close()


def test_the_asset_page_shows_the_profile_histograms_and_changes(client: Any) -> None:
    page = client.get("/assets/orders")
    assert page.status_code == 200
    html = page.text
    section = html[html.index('id="data-distribution"') :]
    section = section[: section.index("</section>")]
    assert "Data distribution" in section and "50 rows" in section
    amount = re.search(r'<tr data-column="amount".*?</tr>', section, re.S)
    assert amount is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", amount.group(0), re.S)
    assert cells[1:5] == ["50.0%", "25", "0", "48"]  # nulls, distinct, min, max
    assert '<svg class="histo"' in amount.group(0)  # a histogram for a numeric column
    assert "nulls 0.0% → 50.0%" in amount.group(0)  # the change against the previous profile
    # Column names are data: escaped, never markup.
    assert ODD_COLUMN not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in section
    # Row count trend: the two profiles.
    assert "Row count of orders: profiles and materializations" in section
    assert section.count("rows (profile)") == 2


def test_an_asset_with_only_row_counts_shows_the_trend(client: Any) -> None:
    html = client.get("/assets/plain").text
    section = html[html.index('id="data-distribution"') :]
    assert "no column profile recorded" in section
    assert section.count("rows (materialization)") == 2


def test_the_profiles_api_lists_profiles_and_the_latest_change(client: Any) -> None:
    response = client.get("/api/v1/assets/orders/profiles", params={"limit": 1})
    assert response.status_code == 200
    data = response.json()
    assert data["asset"] == "orders" and len(data["profiles"]) == 1
    latest = data["profiles"][0]
    assert latest["row_count"] == 50 and latest["source"] == "sdk"
    assert latest["columns"]["amount"]["null_rate"] == 0.5
    assert data["latest_id"] == latest["id"] and data["previous_id"] is not None
    change = next(c for c in data["changes"] if c["column"] == "amount")
    assert change["null_rate_shift"] == 0.5
    missing = client.get("/api/v1/assets/ordrs/profiles")
    assert missing.status_code == 404 and "Did you mean 'orders'?" in missing.json()["detail"]
    # The asset itself is still served by the API's asset route.
    assert client.get("/api/v1/assets/orders").json()["name"] == "orders"


def test_metrics_expose_row_counts_and_null_rates_with_capped_series(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakelens.export import profile_metrics

    text = client.get("/metrics").text
    assert 'asset_profile_rows{asset_name="orders"} 50.0' in text
    assert 'asset_column_null_ratio{asset_name="orders",column="amount"} 0.5' in text
    assert 'asset_column_null_ratio{asset_name="orders",column="status"} 0.0' in text
    assert "lakelens_profile_series_dropped 0.0" in text
    assert 'asset_size_bytes{asset_name="plain"} 5000.0' in text
    monkeypatch.setattr(profile_metrics, "MAX_COLUMNS_PER_ASSET", 2)
    capped = client.get("/metrics").text
    assert capped.count("asset_column_null_ratio{") == 2
    assert "lakelens_profile_series_dropped 1.0" in capped
