"""The dashboard pages: each renders, shows the API's numbers, escapes user text, sends a CSP."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import lakelens
from lakelens.testing import FakeClock, recording
from lakelens.units import format_duration

XSS_ASSET = "<img src=x onerror=alert(1)>"
XSS_MESSAGE = "</script><script>alert(1)</script>"


def metrics(page: str) -> dict[str, str]:
    """The `data-metric` figures of a page, unescaped (the first occurrence of each wins)."""
    found: dict[str, str] = {}
    for name, value in re.findall(r'data-metric="([^"]+)" data-value="([^"]*)"', page):
        found.setdefault(name, html.unescape(value))
    return found


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def assert_no_markup_injected(page: str, where: str) -> None:
    """Only our own elements: one external script, no event handlers, no injected tags."""
    parser = _Tags()
    parser.feed(page)
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert scripts == [[("src", scripts[0][0][1]), ("defer", None)]], where
    for tag, attrs in parser.tags:
        assert tag not in ("img", "iframe", "object", "embed", "style", "b", "i", "u"), where
        for name, value in attrs:
            assert not name.startswith("on"), (where, tag, name)
            assert name != "style", (where, tag)
            assert not (value or "").strip().lower().startswith("javascript:"), (where, tag)


def number(text: str) -> float | None:
    return None if text in ("", "None") else float(text)


def assert_html_page(response: Any, status: int = 200) -> str:
    assert response.status_code == status, response.text[-2000:]
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    return str(response.text)


def test_every_page_renders_with_a_csp(client: Any, pipeline: Any, odd_asset: str) -> None:
    _settings, _store, info = pipeline
    for path in (
        "/",
        "/?period=1h",
        "/?period=7d",
        "/assets/dlt_entries",
        f"/assets/{quote(odd_asset, safe='')}",
        "/lineage",
        "/lineage/stg_entries",
        "/logs",
        "/logs?level=error&asset=dlt_entries&since=24h&q=refused",
        f"/runs/{info['run_ids'][2]}",
        f"/runs/{info['run_ids'][0][:8]}",
        "/alerts",
    ):
        page = assert_html_page(client.get(path))
        assert '<script src="/static/lakelens.js' in page, path
        # No inline script, handler or style anywhere: the CSP would block them.
        assert_no_markup_injected(page, path)


def test_overview_figures_equal_the_summary_api(client: Any) -> None:
    for period in ("1h", "24h", "7d"):
        page = assert_html_page(client.get("/", params={"period": period}))
        api = client.get("/api/v1/summary", params={"period": period}).json()
        shown = metrics(page)
        assert shown["status"] == api["status"], period
        assert int(shown["runs"]) == api["runs"]["total"]
        assert int(shown["failures"]) == api["runs"]["failure"]
        assert number(shown["success_rate"]) == api["runs"]["success_rate"]
        assert number(shown["quality"]) == api["checks"]["pass_rate"]
        assert number(shown["p95"]) == api["latency"]["p95"]
    page = client.get("/", params={"period": "24h"}).text
    assert "FAILING" in page and "dlt_entries" in page
    assert "ApiTimeout" in page  # failures by error type


def test_overview_asset_rows_equal_the_asset_api(client: Any) -> None:
    page = client.get("/").text
    for name in ("dlt_entries", "stg_entries"):
        api = client.get(f"/api/v1/assets/{name}", params={"runs": 20}).json()
        row = re.search(rf'<tr data-asset="{name}">(.*?)</tr>', page, re.S)
        assert row is not None, name
        assert number(metrics(row.group(1))["avg_duration"]) == api["avg_duration"]
        assert f">{format_duration(api['avg_duration'])}<" in row.group(1)


def test_overview_caps_the_asset_table_with_failing_assets_first(client: Any) -> None:
    everything = client.get("/").text
    total = len(re.findall(r'<tr data-asset="', everything))
    assert total >= 3
    page = assert_html_page(client.get("/", params={"assets": 1}))
    rows = re.findall(r'<tr data-asset="([^"]+)"', page)
    assert rows == ["dlt_entries"]  # the failing asset, ahead of assets earlier in lineage
    assert f"1 of {total} assets" in page
    assert f"assets={total}" in page  # the "show all" link
    # Any larger request is served, at most 1,000 rows (5,000 took 6.6 s): never a 422.
    huge = assert_html_page(client.get("/", params={"assets": 100_000}))
    assert len(re.findall(r'<tr data-asset="', huge)) == total
    assert client.get("/", params={"assets": 0}).status_code == 400  # a clear error, not a 500


def test_asset_page_figures_equal_the_asset_api(client: Any) -> None:
    page = assert_html_page(client.get("/assets/dlt_entries", params={"runs": 20}))
    api = client.get("/api/v1/assets/dlt_entries", params={"runs": 20}).json()
    shown = metrics(page)
    assert shown["last_status"] == api["last_status"] == "failure"
    for key in ("avg_duration", "p95_duration", "p99_duration", "failure_rate", "avg_rows", "age"):
        expected = api["age_seconds" if key == "age" else key]
        assert number(shown[key]) == pytest.approx(expected), key
    for check in api["checks"]:
        assert f'data-check="{check["name"]}"' in page
    for neighbour in api["upstream_assets"] + api["downstream_assets"]:
        assert f'href="/assets/{neighbour}"' in page
    # The duration chart has one bar per run, failures marked, each linking to its trace.
    assert page.count('class="bar fail"') == 2  # duration and rows charts
    for run in api["runs"]:
        assert f'href="/runs/{run["run_id"]}"' in page
    assert "Duration per run" in page and "<svg" in page


def test_asset_page_shows_schema_and_run_links(client: Any, pipeline: Any) -> None:
    _settings, _store, info = pipeline
    page = client.get("/assets/dlt_entries").text
    assert "<code>value</code>" in page and "<code>float</code>" in page
    assert f"/logs?run_id={info['run_ids'][2]}" in page


def test_run_page_shows_error_traceback_waterfall_and_logs(client: Any, pipeline: Any) -> None:
    _settings, _store, info = pipeline
    run_id = info["run_ids"][2]
    page = assert_html_page(client.get(f"/runs/{run_id}"))
    api = client.get(f"/api/v1/runs/{run_id}").json()
    shown = metrics(page)
    assert shown["run_status"] == api["run"]["status"] == "failure"
    assert int(shown["span_count"]) == api["trace"]["span_count"]
    assert int(shown["error_count"]) == api["trace"]["error_count"]
    assert "ApiTimeout" in page and "Traceback (most recent call last)" in page
    for span in api["trace"]["spans"]:
        assert html.escape(span["name"]) in page
    assert page.count('class="span error') == api["trace"]["error_count"]
    assert "Connection refused to api.example" in page  # the run's logs
    assert "endpoint" in page and "/entries" in page  # span attributes


def test_logs_page_filters_like_the_api(client: Any) -> None:
    params = {"level": "error", "asset": "dlt_entries"}
    page = assert_html_page(client.get("/logs", params=params))
    api = client.get("/api/v1/logs", params=params).json()["records"]
    assert api
    for record in api:
        assert f'data-id="{record["id"]}"' in page
    assert page.count('<tr class="lvl-') == len(api)
    assert 'class="lvl-error"' in page
    assert "Fetched 487 rows" not in page
    # The live tail asks the SSE stream for what comes after the newest record shown.
    assert "/api/v1/logs/stream?asset=dlt_entries&amp;level=error&amp;after=" in page


def test_lineage_pages_draw_every_asset_and_the_impact(client: Any, odd_asset: str) -> None:
    page = assert_html_page(client.get("/lineage"))
    graph = client.get("/api/v1/lineage").json()
    drawn = {html.unescape(n) for n in re.findall(r'data-name="([^"]*)"', page)}
    assert drawn == {node["name"] for node in graph["nodes"]}
    assert page.count('<path class="edge') == len(graph["edges"])
    assert "node failing kind-asset" in page  # dlt_entries: coloured by health
    focus = assert_html_page(client.get("/lineage/dlt_entries"))
    impact = client.get("/api/v1/lineage/dlt_entries/impact").json()
    assert int(metrics(focus)["impact_assets"]) == impact["totals"]["assets"]
    assert impact["recommendation"] in focus
    assert 'selected" href="/assets/dlt_entries"' in focus


def test_unknown_names_are_404_pages_with_did_you_mean(client: Any) -> None:
    for path in ("/assets/dlt_entris", "/lineage/dlt_entris", "/logs?asset=dlt_entris"):
        page = assert_html_page(client.get(path), 404)
        assert "Did you mean &#39;dlt_entries&#39;?" in page, path
    page = assert_html_page(client.get("/runs/nope-nope"), 404)
    assert "No run id starts with" in page
    page = assert_html_page(client.get("/?period=yesterday-ish"), 400)
    assert "Invalid period" in page


def test_static_files_are_a_fixed_list(client: Any) -> None:
    js = client.get("/static/lakelens.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/lakelens.css").headers["content-type"].startswith("text/css")
    for path in ("/static/pages.py", "/static/..%2Fpages.py", "/static/%2e%2e%2fapp.py"):
        assert client.get(path).status_code == 404, path


def test_pages_need_the_token_when_reads_do(pipeline: Any, monkeypatch: Any) -> None:
    from dataclasses import replace

    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    settings, store, info = pipeline
    app = create_app(replace(settings, api_token="s3cret"), store, clock=lambda: info["now"])
    with TestClient(app) as test_client:
        page = assert_html_page(test_client.get("/"), 401)
        assert "LAKELENS_PUBLIC_READ" in page
        assert test_client.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    monkeypatch.setenv("LAKELENS_PUBLIC_READ", "1")
    app = create_app(replace(settings, api_token="s3cret"), store, clock=lambda: info["now"])
    with TestClient(app) as test_client:
        assert test_client.get("/lineage").status_code == 200


# -- XSS -------------------------------------------------------------------------------------------


@pytest.fixture
def hostile(pipeline: Any) -> dict[str, Any]:
    """The pipeline plus an asset, log, span, check and error made of markup."""
    settings, store, info = pipeline
    clock = FakeClock(info["now"] - 120)
    with recording(settings=settings, store=store, clock=clock, id_seed=11):
        log = lakelens.get_logger("hostile")
        evil = lakelens.asset(XSS_ASSET, deps=["stg_entries"], owner="<b>owner</b>")
        try:
            with lakelens.run("<script>job</script>") as run:
                run_id = run.run_id
                with evil:
                    with lakelens.span(
                        "<svg onload=alert(2)>", attr="<img src=y onerror=alert(3)>"
                    ):
                        clock.advance(0.02)
                        log.error(XSS_MESSAGE, payload="<iframe src=javascript:alert(4)>")
                    lakelens.check("<b>check</b>", passed=False, severity="error")
                    lakelens.schema({"<i>col</i>": "<u>type</u>"})
                    raise ValueError("<img src=z onerror=alert(5)>")
        except ValueError:
            pass
    return {"run_id": run_id}


def test_hostile_text_is_escaped_everywhere(client: Any, hostile: dict[str, Any]) -> None:
    pages = {
        "/": client.get("/"),
        "/assets": client.get(f"/assets/{quote(XSS_ASSET, safe='')}"),
        "/lineage": client.get("/lineage"),
        "/lineage/x": client.get(f"/lineage/{quote(XSS_ASSET, safe='')}"),
        "/logs": client.get("/logs"),
        "/logs?q": client.get("/logs", params={"q": XSS_MESSAGE, "asset": XSS_ASSET}),
        "/runs": client.get(f"/runs/{hostile['run_id']}"),
        "/runs list": client.get("/runs", params={"asset": XSS_ASSET}),
        "/assets list": client.get("/assets", params={"q": "<img src"}),
        "/alerts": client.get("/alerts"),
        "/404": client.get(f"/assets/{quote(XSS_ASSET + 'x', safe='')}"),
    }
    for path, response in pages.items():
        page = assert_html_page(response, 404 if path == "/404" else 200)
        for raw in (
            "<img",
            "<script>",
            "</script><script>",
            "<svg onload",
            "<iframe",
            "<b>",
            "<i>",
        ):
            assert raw not in page, (path, raw)
        assert_no_markup_injected(page, path)
    assert html.escape(XSS_ASSET) in pages["/assets"].text
    assert html.escape(XSS_ASSET) in pages["/lineage"].text
    assert html.escape(XSS_ASSET) in pages["/assets list"].text
    assert html.escape(XSS_ASSET) in pages["/runs list"].text
    assert html.escape(XSS_MESSAGE) in pages["/logs"].text
    assert html.escape(XSS_MESSAGE) in pages["/runs"].text
    assert "&lt;img src=z onerror=alert(5)&gt;" in pages["/runs"].text
    assert "&lt;svg onload=alert(2)&gt;" in pages["/runs"].text


# -- the demo store: timing, alerts --------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A store filled by `run_demo` (288 runs), its alerts evaluated once, a silence added."""
    import os

    from lakelens.alerts.service import AlertingService
    from lakelens.alerts.state import silence
    from lakelens.config import load_settings
    from lakelens.demo import run_demo
    from lakelens.store import Store

    home = tmp_path_factory.mktemp("demo") / "home"
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("LAKELENS_")]:
            patch.delenv(key)
        run_demo(home, runs=288)
        settings = load_settings(home=str(home), log_format="none")
        store = Store(settings=settings)
        service = AlertingService(store)
        service.run_once()
        silence(store, asset="mrt_glucose_readings", seconds=3600, reason="backfill <running>")
        yield {"settings": settings, "store": store, "home": Path(home)}
        store.close()


@pytest.fixture
def demo_client(demo: dict[str, Any]) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    app = create_app(demo["settings"], demo["store"], run_alerts=False)
    with TestClient(app) as test_client:
        yield test_client


def test_every_page_renders_on_the_demo_store(demo_client: Any) -> None:
    """Render time is measured by bench/pages.py (a timed assertion would flake on shared machines)."""
    run_id = demo_client.get("/api/v1/runs", params={"status": "failure"}).json()["runs"][0]
    paths = [
        "/",
        "/?period=7d",
        "/assets/dlt_glucose_entries",
        "/assets/fct_glucose_readings?runs=288",
        "/lineage",
        "/lineage/stg_glucose_entries",
        "/logs",
        f"/runs/{run_id['run_id']}",
        "/alerts",
    ]
    for path in paths:
        assert_html_page(demo_client.get(path))


def test_demo_overview_equals_the_api(demo_client: Any) -> None:
    page = demo_client.get("/").text
    api = demo_client.get("/api/v1/summary").json()
    shown = metrics(page)
    assert int(shown["runs"]) == api["runs"]["total"] > 250
    assert number(shown["success_rate"]) == api["runs"]["success_rate"]
    assert number(shown["quality"]) == api["checks"]["pass_rate"]
    assert number(shown["p95"]) == api["latency"]["p95"]
    assert shown["status"] == api["status"]
    for check in ("glucose_range_check", "statistical_bounds_check", "validation_pass_rate"):
        assert check in page


def test_alerts_page_lists_firing_history_deliveries_and_silences(
    demo: dict[str, Any], demo_client: Any
) -> None:
    from lakelens.alerts.state import alerts, history, status

    page = assert_html_page(demo_client.get("/alerts"))
    with demo["store"].connect() as conn:
        firing = alerts(conn)
        events = history(conn, since=time.time() - 7 * 86400)
        counts = status(conn, now=time.time())
    assert firing and events
    assert int(metrics(page)["firing"]) == counts["firing"]
    for alert in firing:
        assert html.escape(alert.summary) in page
        assert alert.fingerprint[:12] in page
    assert page.count('<span class="event ev-') == len(events)
    assert "backfill &lt;running&gt;" in page
    assert "active" in page


def test_overview_refresh_interval_defaults_to_30s_and_is_configurable(client: Any) -> None:
    assert 'id="content" data-refresh="30"' in client.get("/").text
    page = client.get("/", params={"refresh": 0, "period": "1h"}).text
    assert 'id="content" data-refresh="0"' in page
    # Period links keep the chosen interval.
    assert 'href="?period=7d&amp;refresh=0"' in page


def test_an_empty_store_greets_with_how_to_record_instead_of_healthy(
    store_url: str, tmp_path: Path
) -> None:
    """A green HEALTHY for 0 assets said nothing true."""
    from fastapi.testclient import TestClient

    from lakelens.config import load_settings
    from lakelens.server import create_app
    from lakelens.store import Store

    settings = load_settings(home=str(tmp_path / "home"), database_url=store_url, log_format="none")
    store = Store(settings=settings)
    try:
        with TestClient(create_app(settings, store, run_alerts=False)) as client:
            page = assert_html_page(client.get("/"))
    finally:
        store.close()
    assert 'data-empty-store="true"' in page and "Nothing recorded yet" in page
    assert "lakelens demo" in page and "/api/v1/lineage" in page
    assert ">NO DATA<" in page and ">HEALTHY<" not in page


def test_assets_below_a_failing_one_are_marked_at_risk(client: Any) -> None:
    page = assert_html_page(client.get("/"))
    row = re.search(r'<tr data-asset="stg_entries">(.*?)</tr>', page, re.S)
    assert row is not None
    assert (
        'class="pill s-stale at-risk" title="Downstream of the failing dlt_entries"' in row.group(1)
    )
    failing = re.search(r'<tr data-asset="dlt_entries">(.*?)</tr>', page, re.S)
    assert failing is not None and "at-risk" not in failing.group(1)
