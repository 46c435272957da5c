"""The dashboard reads the way people talk (issue 14, "The first hour"): durations in s/m/h,
times in a display zone (UTC by default, the API and data-value attributes always UTC),
assets at risk below a failing one, and the smaller things a first user tripped over.

Every test runs the real app over a store recorded through the SDK, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import lakelens
from lakelens.config import Settings
from lakelens.store import Store
from lakelens.testing import FakeClock, recording

PARIS = ZoneInfo("Europe/Paris")
# The long run: 45.006 s, after two runs of 1 s (its average is 15.7 s: it is slow).
LONG = 45.006


def _record_long_runs(settings: Settings, store: Store, now: float) -> dict[str, str]:
    """slow_load: 1 s, 1 s, then 45.006 s (spans of 30 s and 15 s); follow_asset: sub-
    millisecond runs, the last 1 ms (slower than 1.5x its average, but by nothing)."""
    clock = FakeClock(now - 1800)
    ids: dict[str, str] = {}
    with recording(settings=settings, store=store, clock=clock, id_seed=8):
        for n, seconds in enumerate((1.0, 1.0, LONG)):
            clock.set(now - 1800 + 600 * n)
            with lakelens.run("long_job") as run, lakelens.asset("slow_load", owner="ops"):
                if seconds == LONG:
                    ids["long"] = run.run_id
                    with lakelens.span("extract"):
                        clock.advance(30.0)
                    with lakelens.span("load"):
                        clock.advance(LONG - 30.0)
                else:
                    clock.advance(seconds)
                lakelens.record(rows=100)
        for seconds in (0.0004, 0.0004, 0.001):
            clock.advance(5)
            with lakelens.run("follow_job"), lakelens.asset("follow_asset"):
                clock.advance(seconds)
                lakelens.record(rows=1)
    return ids


@pytest.fixture
def world(
    pipeline: tuple[Settings, Store, dict[str, Any]],
) -> dict[str, Any]:
    """The recorded pipeline (dlt_entries failed last, 10 minutes ago) plus the long runs."""
    settings, store, info = pipeline
    ids = _record_long_runs(settings, store, info["now"])
    return {"settings": settings, "store": store, **info, **ids}


def _client(world: dict[str, Any]) -> Any:
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    app = create_app(world["settings"], world["store"], clock=lambda: world["now"])
    return TestClient(app)


@pytest.fixture
def client(world: dict[str, Any]) -> Iterator[Any]:
    with _client(world) as test_client:
        yield test_client


def _row(page: str, asset: str) -> str:
    found = re.search(rf'<tr data-asset="{re.escape(asset)}">(.*?)</tr>', page, re.S)
    assert found is not None, asset
    return found.group(1)


def _cell(row: str, label: str) -> str:
    found = re.search(rf'data-label="{re.escape(label)}"[^>]*>(.*?)</td>', row, re.S)
    assert found is not None, label
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def _moment(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


# -- display zone ---------------------------------------------------------------------------------


def test_display_zone_shows_paris_times_while_data_values_and_the_api_stay_utc(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = world["run_ids"][2]
    with _client(world) as default:  # no LAKELENS_TIMEZONE: UTC, as stored
        api = default.get(f"/api/v1/runs/{run_id}").json()
        started = _moment(api["run"]["start_time"])
        page = default.get(f"/runs/{run_id}").text
        assert started.strftime("%Y-%m-%d %H:%M:%S UTC") in page
        assert "times in UTC" in page
    assert started.utcoffset() is not None and started.utcoffset().total_seconds() == 0
    monkeypatch.setenv("LAKELENS_TIMEZONE", "Europe/Paris")
    with _client(world) as paris:
        page = paris.get(f"/runs/{run_id}").text
        local = started.astimezone(PARIS)
        assert local.strftime("%Y-%m-%d %H:%M:%S %Z") in page  # CET or CEST, as the date has it
        assert started.strftime("%Y-%m-%d %H:%M:%S UTC") not in page
        # Machine-readable: the <time> element and the JSON keep UTC.
        assert f'datetime="{started.strftime("%Y-%m-%dT%H:%M:%SZ")}"' in page
        assert paris.get(f"/api/v1/runs/{run_id}").json() == api
        assert "times in Europe/Paris" in page
        overview = paris.get("/").text
    now = datetime.fromtimestamp(world["now"], tz=timezone.utc).astimezone(PARIS)
    assert f"updated {now:%H:%M:%S} {now:%Z}" in overview
    values = re.findall(r'data-value="([^"]*)"', page + overview)
    assert values and not any(v.endswith(("CET", "CEST")) for v in values)


def test_a_viewer_picks_a_zone_kept_in_a_cookie_and_a_bad_one_is_ignored(
    client: Any, world: dict[str, Any]
) -> None:
    tokyo = datetime.fromtimestamp(world["now"], tz=ZoneInfo("Asia/Tokyo"))
    picked = client.get("/", params={"tz": "Asia/Tokyo"})
    assert picked.status_code == 200
    assert "lakelens_tz=" in picked.headers["set-cookie"]
    assert f"updated {tokyo:%H:%M:%S} JST" in picked.text
    # The cookie keeps the choice on the next pages; the footer's picker keeps their query.
    assert f"updated {tokyo:%H:%M:%S} JST" in client.get("/").text
    hourly = client.get("/", params={"period": "1h"}).text
    assert 'href="/?period=1h&amp;tz=Europe%2FParis"' in hourly
    assert 'href="/?period=1h&amp;tz=Asia%2FTokyo" aria-current="true"' in hourly
    assert "times in Asia/Tokyo" in client.get("/alerts").text
    # An unknown or hostile zone: the page, a notice, the kept zone; never a 500.
    for bad in ("Mars/Base", "../../etc/passwd", "<script>", "x" * 300):
        page = client.get("/", params={"tz": bad})
        assert page.status_code == 200, bad
        assert 'id="tz-notice"' in page.text and "Unknown time zone" in page.text
        assert f"updated {tokyo:%H:%M:%S} JST" in page.text
        assert "<script>" not in page.text.split('id="tz-notice"')[1].split("</p>")[0]
    # ?tz= alone goes back to the server's zone and forgets the cookie.
    reset = client.get("/", params={"tz": ""})
    assert "updated" in reset.text and "times in UTC" in reset.text
    assert client.cookies.get("lakelens_tz") is None
    # A tampered cookie is dropped with a notice.
    client.cookies.set("lakelens_tz", "Nowhere/Atall")
    page = client.get("/")
    assert page.status_code == 200
    assert "Unknown time zone 'Nowhere/Atall'" in html.unescape(page.text)
    assert "times in UTC" in page.text


def test_a_bad_lakelens_timezone_stops_the_server_at_start_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakelens.errors import InvalidArgumentError
    from lakelens.server import create_app

    monkeypatch.setenv("LAKELENS_TIMEZONE", "Mars/Base")
    with pytest.raises(InvalidArgumentError, match="Unknown time zone 'Mars/Base'"):
        create_app()
    done = subprocess.run(
        [sys.executable, "-m", "lakelens", "serve", "--home", str(tmp_path / "h"), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Unknown time zone 'Mars/Base' in LAKELENS_TIMEZONE" in lines[0]


# -- durations -----------------------------------------------------------------------------------


def test_a_45_second_run_reads_45s_not_milliseconds(client: Any, world: dict[str, Any]) -> None:
    run_page = client.get(f"/runs/{world['long']}").text
    asset_page = client.get("/assets/slow_load").text
    overview = client.get("/").text
    for where, page in (("run", run_page), ("asset", asset_page), ("overview", overview)):
        assert "45,006 ms" not in page and " ms<" not in page, where
    assert '<p class="big">45s</p>' in run_page  # the duration tile
    assert ">extract <span" in run_page and "30s at +0ms" in run_page
    assert "last 45s" in asset_page and ">45s</td>" in asset_page
    assert _cell(_row(overview, "slow_load"), "Last").startswith("45s vs 16s avg")


def test_the_waterfall_ticks_fall_on_round_values(client: Any, world: dict[str, Any]) -> None:
    page = client.get(f"/runs/{world['long']}").text
    waterfall = page[page.index('<svg class="waterfall"') :]
    waterfall = waterfall[: waterfall.index("</svg>")]
    ticks = re.findall(r'<text class="axis"[^>]*>([^<]*)</text>', waterfall)
    assert ticks == ["0", "10s", "20s", "30s", "40s"]


def test_a_run_slower_by_a_millisecond_is_not_flagged_slow(client: Any) -> None:
    overview = client.get("/").text
    follow = _row(overview, "follow_asset")
    assert 'class="slow"' not in follow  # 1ms vs 0.6ms: 1.7x, but 0.4 ms is noise
    assert _cell(follow, "Last") == "1ms"
    assert 'class="slow"' in _row(overview, "slow_load")  # 45 s after 1 s runs is news


# -- at risk -------------------------------------------------------------------------------------


def test_lineage_pages_mark_assets_below_a_failing_one_at_risk(client: Any, odd_asset: str) -> None:
    page = client.get("/lineage").text
    nodes = {
        html.unescape(name): attrs
        for attrs, name in re.findall(
            r'<a (class="node [^"]*"[^>]*data-name="([^"]*)"[^>]*)>', page
        )
    }
    at_risk = {name for name, attrs in nodes.items() if " at-risk" in attrs.split('"')[1]}
    assert at_risk == {"stg_entries", "dashboard", odd_asset}
    for name in at_risk:
        assert 'data-risk="dlt_entries"' in nodes[name]
    assert "at risk: downstream of the failing dlt_entries" in page  # the tooltip
    assert '<tspan class="risk-tag">at risk</tspan>' in page
    legend = page[page.index('id="at-risk"') :].split("</p>")[0]
    assert "3 assets at risk" in legend and "dlt_entries" in legend
    # A neighbourhood shows the same marks.
    focus = client.get("/lineage/stg_entries").text
    assert re.search(r'class="node [^"]*at-risk[^"]*"[^>]*data-name="stg_entries"', focus)
    assert not re.search(r'class="node [^"]*at-risk[^"]*"[^>]*data-name="dlt_entries"', focus)


def test_asset_pages_say_which_failing_asset_puts_them_at_risk(
    client: Any, world: dict[str, Any]
) -> None:
    failed_run = world["run_ids"][2]
    stg = client.get("/assets/stg_entries").text
    banner = stg[stg.index('id="at-risk"') :].split("</p>")[0]
    text = re.sub(r"<[^>]+>", "", banner)
    assert "At risk: reads from dlt_entries, which failed at " in text
    assert f'href="/runs/{failed_run}"' in banner
    dashboard = client.get("/assets/dashboard").text
    assert "At risk: downstream of dlt_entries" in re.sub(r"<[^>]+>", "", dashboard)
    for healthy_or_failing in ("dlt_entries", "api", "slow_load"):
        assert 'id="at-risk"' not in client.get(f"/assets/{healthy_or_failing}").text


# -- the smaller things --------------------------------------------------------------------------


def test_the_period_selector_changes_the_asset_table_and_says_so(client: Any) -> None:
    day = client.get("/", params={"period": "24h"}).text
    hour = client.get("/", params={"period": "1h"}).text
    assert "runs of the last 24h" in day and "runs of the last 1h" in hour
    assert "last 20 runs" not in day + hour
    # dlt_entries ran three times in 3 h; only the last (failed) run is in the last hour.
    assert _cell(_row(day, "dlt_entries"), "Failure rate") == "33.3%"
    assert _cell(_row(hour, "dlt_entries"), "Failure rate") == "100.0%"
    # stg_entries did not run in the last hour.
    assert _cell(_row(hour, "stg_entries"), "Avg") == "—"
    assert _cell(_row(day, "stg_entries"), "Avg") != "—"


def test_resolved_rows_on_the_alerts_page_say_what_resolved(
    client: Any, world: dict[str, Any]
) -> None:
    import sqlalchemy as sa

    from lakelens.alerts.config import load_alerting
    from lakelens.alerts.engine import AlertEngine
    from lakelens.store import schema

    settings, store, now = world["settings"], world["store"], world["now"]
    engine = AlertEngine(store, load_alerting(settings))
    engine.evaluate(now=now, group_wait=0)
    with (
        recording(settings=settings, store=store, clock=FakeClock(now + 60), id_seed=9),
        lakelens.run("pipeline"),
        lakelens.asset("dlt_entries"),
    ):
        lakelens.record(rows=487)
    result = engine.evaluate(now=now + 120, group_wait=0)
    assert result.resolved, "the failure should resolve once dlt_entries succeeds"
    # And one resolve recorded the old way (no summary or severity on the event).
    with store.connect() as conn:
        alert = conn.execute(
            sa.select(schema.alerts).where(schema.alerts.c.fingerprint == result.resolved[0])
        ).one()
        conn.execute(
            schema.alert_events.insert().values(
                fingerprint=alert.fingerprint, time=now + 130, event="resolved"
            )
        )
        conn.commit()
    page = client.get("/alerts").text
    rows = re.findall(r"<tr><td class=\"t\">.*?</tr>", page, re.S)
    resolved = [r for r in rows if "ev-resolved" in r]
    assert len(resolved) >= 2
    for row in resolved:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        severity, summary = cells[2], re.sub(r"<[^>]+>", "", cells[3]).strip()
        assert 'class="sev sev-' in severity, row
        assert summary, row
    assert html.escape(alert.summary) in "".join(resolved)


def test_the_downstream_count_matches_the_listed_assets(client: Any) -> None:
    page = client.get("/lineage/dlt_entries").text
    panel = page[page.index('id="panel-default"') :].split("</div>")[0]
    listed = re.findall(r"<li>", panel.split("Owners to tell")[0])
    shown = int(re.search(r'data-metric="impact_listed" data-value="(\d+)"', panel).group(1))
    assert shown == len(listed) == 3  # stg_entries, dashboard, the odd asset
    text = re.sub(r"<[^>]+>", "", panel)
    assert "3 downstream assets: 2 in the platform and 1 external" in text
    assert text.count("external") >= 2  # the count says so, and the dashboard is marked
