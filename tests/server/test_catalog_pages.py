"""The /runs and /assets pages and their API twins: filters, cursor paging, escaping."""

from __future__ import annotations

import re
from typing import Any

import lakelens
from lakelens.testing import recording

SCRIPT_ASSET = "<script>alert(1)</script>"


def test_runs_page_lists_filters_and_links(client: Any, pipeline: Any) -> None:
    _, _, info = pipeline
    first, second, failed = info["run_ids"]
    page = client.get("/runs")
    assert page.status_code == 200
    shown = re.findall(r'data-run="([^"]+)"', page.text)
    assert shown == [failed, second, first]
    assert f'href="/runs/{failed}"' in page.text
    assert "1 failed" in page.text and 'aria-current="page">Runs' in page.text
    failures = client.get("/runs", params={"status": "failure"}).text
    assert re.findall(r'data-run="([^"]+)"', failures) == [failed]
    assert re.findall(
        r'data-run="([^"]+)"', client.get("/runs", params={"partition": "p1"}).text
    ) == [second]
    stg = client.get("/runs", params={"asset": "stg_entries", "since": "7d"}).text
    assert re.findall(r'data-run="([^"]+)"', stg) == [second, first]
    assert client.get("/runs", params={"status": "exploded"}).status_code == 400
    assert client.get("/runs", params={"asset": "stg_entris"}).status_code == 404


def test_runs_page_next_link_walks_every_run_once(client: Any, pipeline: Any) -> None:
    _, _, info = pipeline
    seen: list[str] = []
    url = "/runs?limit=1"
    while url:
        text = client.get(url.replace("&amp;", "&")).text
        seen += re.findall(r'data-run="([^"]+)"', text)
        found = re.search(r'rel="next" href="([^"]+)"', text)
        url = found.group(1) if found else ""
    assert seen == list(reversed(info["run_ids"]))


def test_api_runs_cursor_and_partition(client: Any, pipeline: Any) -> None:
    _, _, info = pipeline
    body = client.get("/api/v1/runs", params={"limit": 2}).json()
    rest = client.get("/api/v1/runs", params={"limit": 2, "cursor": body["next_cursor"]}).json()
    ids = [r["run_id"] for r in body["runs"] + rest["runs"]]
    assert ids == list(reversed(info["run_ids"])) and rest["next_cursor"] is None
    assert body["runs"][0]["checks_passed"] == 0 and body["runs"][0]["checks_failed"] == 0
    p0 = client.get("/api/v1/runs", params={"partition": "p0"}).json()["runs"]
    assert [r["run_id"] for r in p0] == [info["run_ids"][0]]
    assert p0[0]["checks_passed"] == 1
    assert client.get("/api/v1/runs", params={"cursor": "junk"}).status_code == 400


def test_assets_page_catalog_filters_and_paging(client: Any) -> None:
    page = client.get("/assets")
    assert page.status_code == 200 and 'aria-current="page">Assets' in page.text
    rows = re.findall(r'<tr data-asset="([^"]+)"', page.text)
    assert rows[:4] == ["api", "dashboard", "dlt_entries", "odd &#34;quoted&#34; \\ name"]
    assert 'href="/assets/dlt_entries"' in page.text and "487" in page.text
    stale = client.get("/assets", params={"status": "failing"}).text
    assert re.findall(r'<tr data-asset="([^"]+)"', stale) == ["dlt_entries"]
    owned = client.get("/assets", params={"owner": "analytics", "kind": "model"}).text
    assert re.findall(r'<tr data-asset="([^"]+)"', owned) == ["stg_entries"]
    searched = client.get("/assets", params={"q": "DLT"}).text
    assert re.findall(r'<tr data-asset="([^"]+)"', searched) == ["dlt_entries"]
    first = client.get("/assets", params={"limit": 2}).text
    after = re.search(r'rel="next" href="([^"]+)"', first)
    assert after is not None
    second = client.get(after.group(1).replace("&amp;", "&")).text
    assert re.findall(r'<tr data-asset="([^"]+)"', second)[0] == "dlt_entries"
    assert client.get("/assets", params={"status": "sad"}).status_code == 400


def test_assets_page_shows_each_assets_row_trend_and_columns(client: Any, pipeline: Any) -> None:
    """Beside the latest row count: a sparkline of the latest materializations' rows, and the
    number of columns of the latest schema (their names and types in the title)."""
    from lakelens.analysis.assets import catalog_details

    _settings, store, _info = pipeline
    with store.connect() as conn:
        details = catalog_details(conn, ["dlt_entries", "api"])
    trend = details["dlt_entries"]["trend"]
    assert len(trend) >= 2 and trend[-1] == 487
    page = client.get("/assets").text
    row = page.split('<tr data-asset="dlt_entries">', 1)[1].split("</tr>", 1)[0]
    assert '<svg class="spark"' in row and 'aria-label="Rows of dlt_entries"' in row
    # `lakelens.schema({"id": "int", "value": "float"})` inside dlt_entries (tests/conftest.py).
    assert details["dlt_entries"]["columns"] == [("id", "int"), ("value", "float")]
    assert '<span class="col-count" title="id int, value float">2</span>' in row


def test_api_assets_filters(client: Any) -> None:
    body = client.get("/api/v1/assets", params={"status": "failing"}).json()
    assert [a["name"] for a in body["assets"]] == ["dlt_entries"] and body["total"] == 1
    assert body["assets"][0]["last_rows"] == 487
    assert client.get("/api/v1/assets", params={"status": "sad"}).status_code == 400


def test_hostile_asset_name_is_escaped_on_both_lists(client: Any, pipeline: Any) -> None:
    settings, store, _ = pipeline
    with (
        recording(settings=settings, store=store),
        lakelens.run("<script>job</script>", partition="<b>p</b>"),
        lakelens.asset(SCRIPT_ASSET, owner="<i>o</i>", description="<img src=x>"),
    ):
        lakelens.check("c", passed=True)
        lakelens.record(rows=1)
    for response in (
        client.get("/assets", params={"q": "script"}),
        client.get("/runs", params={"asset": SCRIPT_ASSET}),
        client.get("/runs"),
    ):
        assert response.status_code == 200
        for raw in ("<script>", "<b>p", "<i>o", "<img src"):
            assert raw not in response.text, raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get("/assets").text
    assert "&lt;script&gt;job&lt;/script&gt;" in client.get("/runs").text
