"""End to end: headless Chromium (driven by Playwright) against `lakelens serve` on a demo store.

Screenshots of every page land in test-artifacts/dashboard/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _support import serving

XSS_ASSET = "<img src=x onerror=alert(1)>"
XSS_MESSAGE = "</script><script>alert(1)</script>"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Writes a log record from another process, as a pipeline would.
WRITER = """
import sys, lakelens
from lakelens.config import load_settings
lakelens.configure(settings=load_settings(home=sys.argv[1], log_format="none"))
lakelens.get_logger("e2e").warning(sys.argv[2], source="another process")
assert lakelens.flush(10)
"""


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LAKELENS_")}


def _record_hostile(home: Path) -> None:
    """An asset and a log made of markup, next to the demo's data."""
    import lakelens
    from lakelens.config import load_settings
    from lakelens.testing import recording

    settings = load_settings(home=str(home), log_format="none")
    with (
        recording(settings=settings),
        lakelens.run("hostile"),
        lakelens.asset(XSS_ASSET, deps=["stg_glucose_entries"]),
    ):
        lakelens.get_logger("hostile").error(XSS_MESSAGE, html="<b onmouseover=alert(2)>")
        lakelens.record(rows=1)


def _record_columns(home: Path) -> None:
    """Column mappings on the demo's edges: stg_glucose_entries.glucose_mg_dl flows two hops
    down; fct_daily_glucose_metrics reads another column; mrt → publish has no mapping."""
    from lakelens.config import load_settings
    from lakelens.events import Batch
    from lakelens.model import LineageEdge
    from lakelens.store import Store

    store = Store(settings=load_settings(home=str(home), log_format="none"))
    try:
        store.write(
            Batch(
                edges=[
                    LineageEdge(
                        "dlt_glucose_entries",
                        "stg_glucose_entries",
                        "manual",
                        {"glucose_mg_dl": ["sgv"], "device": ["device"], "read_at": ["date"]},
                    ),
                    LineageEdge(
                        "stg_glucose_entries",
                        "fct_glucose_readings",
                        "manual",
                        {"glucose_mg_dl": ["glucose_mg_dl"], "read_at": ["read_at"]},
                    ),
                    LineageEdge(
                        "fct_glucose_readings",
                        "mrt_glucose_readings",
                        "manual",
                        {"glucose_mg_dl": ["glucose_mg_dl"]},
                    ),
                    LineageEdge(
                        "fct_glucose_readings",
                        "fct_daily_glucose_metrics",
                        "manual",
                        {"readings": ["read_at"]},
                    ),
                ]
            )
        )
    finally:
        store.close()


def _open_incidents(home: Path) -> None:
    """Evaluate once more (no group wait) and acknowledge one of the demo's open incidents
    with a note, as someone on call would."""
    from lakelens.alerts import triage
    from lakelens.alerts.config import load_alerting
    from lakelens.alerts.engine import AlertEngine
    from lakelens.config import load_settings
    from lakelens.store import Store

    settings = load_settings(home=str(home), log_format="none")
    store = Store(settings=settings)
    try:
        config = load_alerting(settings)
        AlertEngine(store, config).evaluate(group_wait=0)  # the hostile asset recorded since
        with store.connect() as conn:
            opened = [i.id for i in triage.incidents(conn)]  # the demo evaluated at its end
        assert opened, "the demo should leave something broken"
        triage.acknowledge(store, opened[0], config=config, by="alice")
        triage.note(store, opened[0], "Looking at the API; vendor ticket 4411.", by="alice")
    finally:
        store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`lakelens serve` on 127.0.0.1 over a store filled by the demo (plus hostile names)."""
    import httpx

    from lakelens.demo import run_demo

    home = tmp_path_factory.mktemp("browser") / "home"
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("LAKELENS_")]:
            patch.delenv(key)
        run_demo(home, runs=288)
        _record_hostile(home)
        _record_columns(home)
        _open_incidents(home)
    with _serving(home, home.parent / "serve.log") as url:
        failed = httpx.get(url + "/api/v1/runs", params={"status": "failure", "limit": 1}).json()
        yield {"url": url, "home": home, "failed_run": failed["runs"][0]["run_id"]}


@contextlib.contextmanager
def _serving(
    home: Path, log_path: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> Iterator[str]:
    """`lakelens serve` on a free port of 127.0.0.1 over `home`; yields its URL."""
    argv = [sys.executable, "-m", "lakelens", "serve", "--home", str(home), *args, "--port"]
    log_path.write_bytes(b"")
    with serving(
        lambda port: [*argv, str(port)],
        log_path,
        env={**_clean_env(), "LAKELENS_LOG_FORMAT": "json", **(env or {})},
    ) as (_, url):
        yield url


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "Playwright is not installed (pip install playwright; no `playwright install`)"
        if os.environ.get("LAKELENS_TEST_STRICT") == "1":
            pytest.fail(f"{reason} (LAKELENS_TEST_STRICT=1 turns this skip into a failure)")
        pytest.skip(reason)
    with sync_playwright() as pw:
        yield pw


@pytest.fixture
def browser(require_tool: Callable[[str, str], str], playwright: Any) -> Iterator[Any]:
    path = require_tool("chromium", "apt-get install chromium")
    instance = playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
    yield instance
    instance.close()


class Watched:
    """A page that remembers console errors, page errors and dialogs."""

    def __init__(self, browser: Any, width: int = 1280, height: int = 800) -> None:
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

        def dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        self.page.on("dialog", dialog)

    def open(self, url: str) -> Any:
        response = self.page.goto(url)
        self.page.wait_for_load_state("networkidle")
        return response

    def shot(self, name: str, *, full_page: bool = True) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def _pages(server: dict[str, Any]) -> dict[str, str]:
    from urllib.parse import quote

    return {
        "overview": "/",
        "overview-7d": "/?period=7d",
        "asset": "/assets/dlt_glucose_entries",
        "asset-healthy": "/assets/publish_glucose_marts",
        "lineage": "/lineage",
        "lineage-asset": "/lineage/stg_glucose_entries",
        "logs": "/logs",
        "logs-errors": "/logs?level=warning",
        "run": f"/runs/{server['failed_run']}",
        "alerts": "/alerts",
        "incidents": "/incidents",
        "xss-asset": f"/assets/{quote(XSS_ASSET, safe='')}",
    }


def test_every_page_loads_without_console_errors(server: dict[str, Any], browser: Any) -> None:
    wide = Watched(browser)
    for name, path in _pages(server).items():
        response = wide.open(server["url"] + path)
        assert response.status == 200, path
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        wide.shot(name, full_page=not name.startswith("logs"))
        assert wide.errors == [], (path, wide.errors)
    narrow = Watched(browser, 390, 844)
    for name in ("overview", "asset", "lineage", "logs", "run"):
        narrow.open(server["url"] + _pages(server)[name])
        # Nothing but the scroll boxes (tables, graphs) is wider than the screen.
        width = narrow.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 1, (name, width)
        narrow.shot(f"{name}-narrow", full_page=name != "logs")
        assert narrow.errors == [], (name, narrow.errors)
    missing = wide.open(server["url"] + "/assets/dlt_glucose_entris")
    assert missing.status == 404
    assert "Did you mean" in wide.page.inner_text("main")
    wide.shot("not-found")
    assert wide.dialogs == [] and narrow.dialogs == []


def test_narrow_overview_cuts_no_asset_cell_and_chart_labels_are_readable(
    server: dict[str, Any], browser: Any
) -> None:
    """At 420 px the asset table reflows (no cell hides in a scroll box or past the screen);
    chart labels render at 11 px or more however wide the chart is drawn."""
    narrow = Watched(browser, 420, 900)
    page = narrow.page
    narrow.open(server["url"] + "/")
    wrap = page.locator("#assets .table-wrap")
    assert wrap.evaluate("el => el.scrollWidth - el.clientWidth") <= 1
    cut = page.evaluate(
        """() => [...document.querySelectorAll('#assets .assets-table tbody tr > *')]
        .filter(c => { const r = c.getBoundingClientRect();
                       return r.width > 0 && (r.left < 0 || r.right > window.innerWidth + 1); })
        .map(c => c.textContent.trim())"""
    )
    assert cut == []
    statuses = page.locator('#assets td[data-label="Last status"]')
    assert statuses.count() >= 8
    for i in range(statuses.count()):
        assert statuses.nth(i).is_visible(), i
    narrow.shot("overview-420")
    smallest = """() => Math.min(...[...document.querySelectorAll('.chart text.axis')]
        .map(t => t.getScreenCTM().a * parseFloat(getComputedStyle(t).fontSize)))"""
    for width, height in ((1280, 800), (420, 900)):
        w = Watched(browser, width, height)
        w.open(server["url"] + "/assets/dlt_glucose_entries")
        assert w.page.locator(".chart text.axis").count() >= 8
        assert w.page.evaluate(smallest) >= 11, width
        w.page.locator(".columns").first.screenshot(
            path=str(ARTIFACTS / f"asset-charts-{width}.png")
        )
        assert w.errors == []
    assert narrow.errors == []


def test_lineage_page_marks_the_assets_at_risk_below_the_failing_one(
    server: dict[str, Any], browser: Any
) -> None:
    w = Watched(browser, 1500, 900)
    page = w.page
    w.open(server["url"] + "/lineage")
    risky = page.locator("svg.dag a.node.at-risk")
    names = risky.evaluate_all("els => els.map(e => e.dataset.name)")
    assert {"stg_glucose_entries", "superset_glucose_dashboard"} <= set(names)
    assert "dlt_glucose_entries" not in names
    assert set(risky.evaluate_all("els => els.map(e => e.dataset.risk)")) == {"dlt_glucose_entries"}
    for i in range(risky.count()):
        node = risky.nth(i)
        assert node.is_visible(), i
        assert node.locator("tspan.risk-tag").is_visible(), i
        dashes = node.locator(".shape").evaluate("el => getComputedStyle(el).strokeDasharray")
        assert dashes not in ("", "none"), i
    assert "downstream of the failing dlt_glucose_entries" in (
        risky.first.locator("title").inner_html()
    )
    assert "dlt_glucose_entries" in page.inner_text("#at-risk")
    w.shot("lineage-at-risk", full_page=False)
    w.open(server["url"] + "/assets/stg_glucose_entries")
    assert "At risk: reads from dlt_glucose_entries" in page.inner_text("#at-risk")
    w.shot("asset-at-risk", full_page=False)
    assert w.errors == [] and w.dialogs == []


def test_click_from_overview_to_asset_lineage_and_trace(
    server: dict[str, Any], browser: Any
) -> None:
    w = Watched(browser)
    page = w.page
    w.open(server["url"] + "/")
    page.click("#assets a.asset >> text=dlt_glucose_entries")
    page.wait_for_url("**/assets/dlt_glucose_entries")
    assert "duration per run" in page.inner_text("main").lower()
    page.click("text=Lineage & impact")
    page.wait_for_url("**/lineage/dlt_glucose_entries")
    # Selecting a node highlights everything downstream of it, without leaving the page.
    node = page.locator('svg.dag a.node[data-name="fct_glucose_readings"]')
    node.click()
    assert "selected" in (node.get_attribute("class") or "")
    impacted = page.locator("svg.dag a.node.impacted")
    names = sorted(impacted.evaluate_all("els => els.map(e => e.dataset.name)"))
    assert names == [
        "fct_daily_glucose_metrics",
        "mrt_glucose_hourly_patterns",
        "mrt_glucose_readings",
        "publish_glucose_marts",
        "superset_glucose_dashboard",
    ]
    assert page.locator("svg.dag path.edge.hot").count() == 5
    assert page.inner_text("#sel-count") == "5"
    w.shot("lineage-selected", full_page=False)
    # The second click follows the node's link.
    node.click()
    page.wait_for_url("**/assets/fct_glucose_readings")
    page.click(".runs-table a >> text=trace")
    page.wait_for_url("**/runs/**")
    spans = page.locator("svg.waterfall g.span")
    assert spans.count() >= 2
    spans.nth(1).click()
    opened = page.locator("details.span-detail[open]")
    assert opened.count() == 1
    assert "dbt.run_model" in page.inner_text("main") or opened.count() == 1
    w.shot("run-span-selected", full_page=False)
    assert w.errors == [] and w.dialogs == []


def test_lineage_page_draws_a_columns_path_and_the_form_traces_another(
    server: dict[str, Any], browser: Any
) -> None:
    from urllib.parse import quote

    def names(selector: str) -> list[str]:
        found = page.locator(f"svg.dag a.node{selector}")
        for i in range(found.count()):
            assert found.nth(i).is_visible(), (selector, i)
        return sorted(found.evaluate_all("els => els.map(e => e.dataset.name)"))

    w = Watched(browser, 1500, 900)
    page = w.page
    w.open(server["url"] + "/assets/stg_glucose_entries")
    w.shot("asset-columns")
    page.click('#columns a.col-name >> text="glucose_mg_dl"')
    page.wait_for_url("**/lineage/stg_glucose_entries?column=glucose_mg_dl")
    assert names(".selected") == ["stg_glucose_entries"]
    assert names(".impacted") == ["fct_glucose_readings", "mrt_glucose_readings"]
    assert names(".feeds") == ["dlt_glucose_entries"]
    assert names(".maybe") == sorted(["publish_glucose_marts", XSS_ASSET])
    assert page.locator("svg.dag path.edge.hot").count() == 3
    # Nodes on the path name their columns where kind and age were.
    note = page.locator('svg.dag a.node[data-name="fct_glucose_readings"] text.note')
    assert note.is_visible() and note.inner_html() == "glucose_mg_dl"
    assert not page.locator(
        'svg.dag a.node[data-name="fct_glucose_readings"] text.meta'
    ).is_visible()
    listed = page.inner_text("#column-path")
    assert "depth 2" in listed and "May depend" in listed and XSS_ASSET in listed
    w.shot("lineage-column")
    # Choosing another column in the form traces it (lakelens.js submits on change).
    page.select_option("#column-select", "read_at")
    page.wait_for_url("**/lineage/stg_glucose_entries?column=read_at")
    assert names(".impacted") == ["fct_daily_glucose_metrics", "fct_glucose_readings"]
    # Selecting a node by hand replaces the column's path with that node's downstream.
    page.locator('svg.dag a.node[data-name="fct_glucose_readings"]').click()
    assert page.locator("svg.dag.column-path").count() == 0
    assert page.locator("svg.dag a.node.feeds, svg.dag a.node.maybe").count() == 0
    narrow = Watched(browser, 390, 844)
    narrow.open(server["url"] + "/lineage/stg_glucose_entries?column=glucose_mg_dl")
    assert narrow.page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    narrow.shot("lineage-column-narrow")
    assert w.errors == [] and narrow.errors == []
    # An unknown column: the page still renders, with the close names (the 404 is logged).
    missing = narrow.open(
        server["url"] + "/lineage/stg_glucose_entries?column=" + quote("glucose_mgdl")
    )
    assert missing.status == 404
    assert "Did you mean 'glucose_mg_dl'?" in narrow.page.inner_text("#column-problem")
    assert narrow.page.locator("svg.dag a.node.selected").is_visible()
    assert w.dialogs == [] and narrow.dialogs == []


def _write_log(home: Path, message: str) -> float:
    """Write one record from another process; returns when it was committed (monotonic)."""
    subprocess.run(
        [sys.executable, "-c", WRITER, str(home), message],
        env=_clean_env(),
        check=True,
        timeout=60,
    )
    return time.monotonic()


def test_live_tail_shows_records_from_another_process(server: dict[str, Any], browser: Any) -> None:
    w = Watched(browser)
    page = w.page
    w.open(server["url"] + "/logs")
    before = page.locator("#log-rows tr").count()
    page.check("#live-tail")
    page.locator("#live-status.live").wait_for(timeout=5000)
    marker = f"e2e marker {time.time():.6f}"
    written = _write_log(server["home"], marker)
    page.locator("#log-rows tr").first.get_by_text(marker).wait_for(timeout=2000)
    assert time.monotonic() - written < 2.0
    assert page.locator("#log-rows tr").count() == before + 1
    assert page.locator("#log-rows tr.lvl-warning").first.inner_text().count(marker) == 1
    # Hostile text through the stream is appended as text too.
    _write_log(server["home"], XSS_MESSAGE)
    page.locator("#log-rows tr").first.get_by_text(XSS_MESSAGE).wait_for(timeout=2000)
    w.shot("logs-live", full_page=False)
    page.uncheck("#live-tail")
    assert page.inner_text("#live-status") == ""
    assert w.errors == [] and w.dialogs == []


def test_hostile_names_render_as_text_and_no_dialog_fires(
    server: dict[str, Any], browser: Any
) -> None:
    from urllib.parse import quote

    w = Watched(browser)
    page = w.page
    for path in (
        f"/assets/{quote(XSS_ASSET, safe='')}",
        f"/lineage/{quote(XSS_ASSET, safe='')}",
        "/lineage",
        "/logs?level=error",
        "/",
    ):
        w.open(server["url"] + path)
        page.wait_for_timeout(100)
        assert page.locator("main img, main iframe").count() == 0, path
    w.open(server["url"] + f"/assets/{quote(XSS_ASSET, safe='')}")
    assert XSS_ASSET in page.inner_text("h1")
    w.open(server["url"] + "/logs?level=error")
    assert XSS_MESSAGE in page.inner_text("#log-rows")
    assert w.dialogs == []
    assert w.errors == []


def test_overview_refreshes_in_place_keeping_scroll_and_period(
    server: dict[str, Any], browser: Any
) -> None:
    w = Watched(browser, 1280, 600)
    page = w.page
    w.open(server["url"] + "/?period=7d&refresh=1")
    page.evaluate("window.scrollTo(0, 500)")
    page.evaluate("document.querySelector('.tiles').setAttribute('data-probe', '1')")
    page.evaluate("window.lakelensProbe = 'same document'")
    # The content is replaced (the probe disappears) by a fetch, not a reload.
    page.locator("[data-probe]").wait_for(state="detached", timeout=5000)
    assert page.evaluate("window.scrollY") == 500
    assert page.url.endswith("/?period=7d&refresh=1")
    assert page.locator('.segmented a[aria-current="true"]').inner_text() == "7d"
    assert page.evaluate("window.lakelensProbe") == "same document"  # never reloaded
    page.select_option("#refresh-select", "0")
    assert page.url.endswith("refresh=0")
    assert w.errors == []


def test_incident_list_to_incident_page_wide_and_narrow(
    server: dict[str, Any], browser: Any
) -> None:
    for width, height, suffix in ((1280, 800, ""), (420, 900, "-narrow")):
        w = Watched(browser, width, height)
        page = w.page
        w.open(server["url"] + "/incidents")
        rows = page.locator(".incidents-table tbody tr")
        assert rows.count() >= 1
        assert "acknowledged" in rows.first.inner_text()  # acknowledged ones come first
        w.shot(f"incidents{suffix}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        rows.first.locator(".incident-title a").click()
        page.wait_for_url("**/incidents/**")
        main = page.inner_text("main")
        lowered = main.lower()
        for heading in ("What broke", "Findings", "Timeline", "Deliveries"):
            assert heading.lower() in lowered, heading
        assert "vendor ticket 4411" in main and "by alice" in main
        w.shot(f"incident{suffix}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        # The root asset is a link to its page.
        page.click(".incident-facts a.asset")
        page.wait_for_url("**/assets/**")
        assert w.errors == [] and w.dialogs == []
    missing = Watched(browser)
    assert missing.open(server["url"] + "/incidents/nope").status == 404
    assert "No incident id starts with" in missing.page.inner_text("main")


def _fail_and_open(home: Path, asset: str) -> str:
    """A failing run of `asset` recorded and evaluated: its open incident's id."""
    import lakelens
    from lakelens.alerts import triage
    from lakelens.alerts.config import load_alerting
    from lakelens.alerts.engine import AlertEngine
    from lakelens.config import load_settings
    from lakelens.store import Store
    from lakelens.testing import recording

    settings = load_settings(home=str(home), log_format="none")
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("LAKELENS_")]:
            patch.delenv(key)
        try:
            with recording(settings=settings), lakelens.run("e2e"), lakelens.asset(asset):
                raise RuntimeError("loader timed out after 30s")
        except RuntimeError:
            pass
    store = Store(settings=settings)
    try:
        AlertEngine(store, load_alerting(settings)).evaluate(group_wait=0)
        with store.connect() as conn:
            (incident,) = triage.incidents(conn, statuses=("open",), asset=asset)
    finally:
        store.close()
    return incident.id


def test_acknowledge_and_add_a_note_from_the_incident_page(
    server: dict[str, Any], browser: Any
) -> None:
    """The page's buttons are plain forms: a click posts, the server acts and sends the
    browser back to the incident, which shows the new status, a notice and the timeline."""
    import httpx

    opened = [_fail_and_open(server["home"], f"e2e_loader_{n}") for n in (1, 2)]
    for width, height, suffix, incident_id in (
        (1280, 900, "", opened[0]),
        (420, 900, "-narrow", opened[-1]),
    ):
        w = Watched(browser, width, height)
        page = w.page
        w.open(f"{server['url']}/incidents/{incident_id}")
        w.shot(f"incident-actions{suffix}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        tile = page.locator('[data-metric="status"]')
        if tile.get_attribute("data-value") == "open":
            page.click("form.act-acknowledge button")
            page.wait_for_url("**/incidents/*?done=acknowledge")
            assert tile.get_attribute("data-value") == "acknowledged"
            assert "Acknowledged: no reminders" in page.inner_text("#notice")
            assert page.locator("form.act-acknowledge").count() == 0
            last = page.locator(".timeline li").last.inner_text()
            assert "acknowledged" in last and "by web" in last
        note = f"Checked the loader at {width}px; vendor ticket 4412 <b>"
        page.fill("form.act-note input[name=text]", note)
        page.click("form.act-note button")
        page.wait_for_url("**/incidents/*?done=note")
        assert page.inner_text("#notice") == "Note added to the timeline."
        last = page.locator(".timeline li").last.inner_text()
        assert note in last and "by web" in last
        w.shot(f"incident-acted{suffix}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        assert w.errors == [] and w.dialogs == []
    after = httpx.get(f"{server['url']}/api/v1/incidents/{opened[0]}").json()
    assert after["status"] == "acknowledged" and after["acknowledged_by"] == "web"
    assert [e["event"] for e in after["timeline"]][-2:] == ["acknowledged", "note"]


def test_runs_and_assets_lists_link_to_their_pages_wide_and_narrow(
    server: dict[str, Any], browser: Any
) -> None:
    for width, height, suffix in ((1280, 800, ""), (420, 900, "-narrow")):
        w = Watched(browser, width, height)
        page = w.page
        w.open(server["url"] + "/runs")
        rows = page.locator(".runs-table tbody tr")
        assert rows.count() >= 1
        w.shot(f"runs{suffix}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        page.select_option("select[name=status]", "failure")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**/runs?*status=failure*")
        assert "failure" in page.locator(".runs-table tbody tr").first.inner_text()
        page.locator(".runs-table tbody tr th a").first.click()
        page.wait_for_url("**/runs/**")
        w.open(server["url"] + "/assets")
        assert page.locator(".catalog-table tbody tr").count() >= 1
        w.shot(f"assets{suffix}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        page.fill("input[name=q]", "glucose")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**/assets?*q=glucose*")
        page.locator(".catalog-table tbody tr th a").first.click()
        page.wait_for_url("**/assets/**")
        assert w.errors == [] and w.dialogs == []


def test_run_diff_and_partition_grid_wide_and_narrow(server: dict[str, Any], browser: Any) -> None:
    """From a failed run to its comparison with the previous run; two ticked runs on the Runs
    page; a hostile run compared across jobs; the partition grid and a cell's run."""
    import httpx

    hostile = httpx.get(f"{server['url']}/api/v1/runs", params={"job": "hostile"}).json()
    hostile_run = hostile["runs"][0]["run_id"]
    for width, height, suffix in ((1280, 800, ""), (420, 900, "-narrow")):
        w = Watched(browser, width, height)
        page = w.page
        w.open(f"{server['url']}/runs/{server['failed_run']}")
        page.click("#compare-previous")
        page.wait_for_url("**/runs/diff?*")
        page.wait_for_load_state("networkidle")
        assert page.locator(".diff-side").count() == 2
        assert page.locator(".diff-side").nth(1).get_attribute("data-run") == server["failed_run"]
        assert page.locator("#assets tbody tr").count() >= 1
        w.shot(f"run-diff{suffix}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1

        w.open(f"{server['url']}/runs?job=glucose_pipeline")
        picks = page.locator(".run-pick")
        newest, older = picks.nth(0).get_attribute("value"), picks.nth(2).get_attribute("value")
        picks.nth(0).check()
        picks.nth(2).check()
        page.click("#compare button[type=submit]")
        page.wait_for_url("**/runs/diff?run=*")
        sides = page.locator(".diff-side")
        # Ticked newest first, compared in time order.
        assert [sides.nth(i).get_attribute("data-run") for i in (0, 1)] == [older, newest]

        w.open(f"{server['url']}/runs/diff?a={server['failed_run']}&b={hostile_run}")
        assert (
            page.locator(".diff-warning")
            .first.inner_text()
            .startswith("The runs are of different jobs")
        )
        assert page.locator(f"#assets tr[data-asset='{XSS_ASSET}']").count() == 1
        w.shot(f"run-diff-hostile{suffix}")

        w.open(f"{server['url']}/runs/partitions?job=glucose_pipeline")
        cells = page.locator(".partition-grid .pcell")
        assert cells.count() == 288
        assert "every 5m" in page.locator("#partition-count").inner_text()
        w.shot(f"partitions{suffix}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        failed = page.locator(".partition-grid a.o-failure").first
        partition = failed.get_attribute("data-partition")
        failed.click()
        page.wait_for_url("**/runs/**")
        assert partition in page.locator(".tiles").first.inner_text()
        assert w.errors == [] and w.dialogs == []


TEAM_TOKEN = "llk_browser-team-token-0123456789abcdefghijklmnopq"


@pytest.fixture(scope="module")
def secured_server(server: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A second `lakelens serve` over the same store, protected by a read + admin token
    declared (as its hash) in lakelens.yaml."""
    from lakelens.server.tokens import hash_token

    config = server["home"].parent / "secured.yaml"
    config.write_text(
        "server:\n  tokens:\n    - name: team\n"
        f"      hash: {hash_token(TEAM_TOKEN)}\n      scopes: [read, admin]\n",
        encoding="utf-8",
    )
    log_path = server["home"].parent / "serve-secured.log"
    # The first server evaluates alerts; this one only serves.
    env = {"LAKELENS_CONFIG": str(config), "LAKELENS_LOG_LEVEL": "INFO"}
    with _serving(server["home"], log_path, env, ("--no-alerts",)) as url:
        yield {**server, "url": url, "log": log_path}


def test_sign_in_browse_acknowledge_and_sign_out(
    secured_server: dict[str, Any], browser: Any
) -> None:
    """Through the form with a token: the overview and runs, an incident acknowledged from
    its page, then sign out and be back at the form."""
    url = secured_server["url"]
    incident_id = _fail_and_open(secured_server["home"], "e2e_signin_loader")
    w = Watched(browser)
    page = w.page
    w.open(url + "/?period=7d")
    assert page.url == url + "/signin?next=%2F%3Fperiod%3D7d"
    assert page.locator("nav[aria-label=Main]").count() == 0
    w.shot("signin")
    page.fill("#signin-token", "not-the-token")
    page.click(".signin-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.inner_text("#signin-problem") == "That token is not valid."
    assert page.input_value("#signin-token") == ""  # the guess is not sent back
    w.shot("signin-error")
    narrow = Watched(browser, 390, 844)
    narrow.open(url + "/signin")
    assert narrow.page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    narrow.shot("signin-narrow")

    page.fill("#signin-token", TEAM_TOKEN)
    page.click(".signin-form button[type=submit]")
    page.wait_for_url(url + "/?period=7d")
    assert "Operations overview" in page.title()
    assert page.inner_text(".signout .who") == "team"
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "lakelens_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > time.time()
    assert page.evaluate("document.cookie") == ""  # scripts cannot read it
    w.shot("signed-in-overview")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    assert page.locator(".signout button").is_visible()
    w.shot("signed-in-overview-narrow", full_page=False)
    page.set_viewport_size({"width": 1280, "height": 800})

    page.click("nav[aria-label=Main] >> text=Runs")
    page.wait_for_url("**/runs")
    assert page.locator(".runs-table tbody tr").count() >= 1
    page.locator(".runs-table tbody tr th a").first.click()
    page.wait_for_url("**/runs/**")

    w.open(f"{url}/incidents/{incident_id}")
    page.click("form.act-acknowledge button")
    page.wait_for_url("**/incidents/*?done=acknowledge")
    assert page.locator('[data-metric="status"]').get_attribute("data-value") == "acknowledged"
    assert "Acknowledged: no reminders" in page.inner_text("#notice")
    w.shot("signed-in-incident-acknowledged")

    page.click(".signout button")
    page.wait_for_url(url + "/signin")
    assert page.locator("#signin-token").is_visible()
    assert [c for c in page.context.cookies() if c["name"] == "lakelens_session"] == []
    w.shot("signed-out")
    w.open(url + "/runs")
    assert page.url == url + "/signin?next=%2Fruns"
    # The one wrong token's 401 is the only failed load the console saw.
    assert [e for e in w.errors if "401" not in e] == [] and narrow.errors == []
    assert w.dialogs == []
    log = secured_server["log"].read_text()
    assert "signed in with token team" in log and TEAM_TOKEN not in log
    assert cookie["value"] not in log and cookie["value"].rsplit(".", 1)[1] not in log
