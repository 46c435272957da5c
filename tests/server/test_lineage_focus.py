"""/lineage on a graph too big to draw whole: what is failing and what it puts at risk, a way
to any asset, and `?all=1` for everything."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest

from _support import load_module
from lakelens.analysis.lineage import nearest_below
from lakelens.server import lineage_pages

pages_tests = load_module("lakelens_tests_server_pages", Path(__file__).with_name("test_pages.py"))
graph_of = load_module(
    "lakelens_tests_server_charts", Path(__file__).with_name("test_charts.py")
).graph_of


def drawn(page: str) -> set[str]:
    return {html.unescape(n) for n in re.findall(r'data-name="([^"]*)"', page)}


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorded pipeline counts as a big graph."""
    monkeypatch.setattr(lineage_pages, "DRAW_ALL_MAX", 2)


def test_a_big_graph_draws_the_failing_assets_and_what_they_put_at_risk(
    client: Any, small_limit: None
) -> None:
    graph = client.get("/api/v1/lineage").json()
    impact = client.get("/api/v1/lineage/dlt_entries/impact").json()
    below = {d["name"] for d in impact["direct"]} | {d["name"] for d in impact["transitive"]}
    page = pages_tests.assert_html_page(client.get("/lineage"))
    assert drawn(page) == {"dlt_entries", *below}  # dlt_entries is the one failing asset
    assert len(drawn(page)) < len(graph["nodes"])
    assert pages_tests.metrics(page)["focus_roots"] == "1"
    assert f"Draw all {len(graph['nodes'])} assets" in page
    # Every asset is offered to go to, drawn or not.
    offered = {html.unescape(n) for n in re.findall(r'<option value="([^"]*)">', page)}
    assert offered == {node["name"] for node in graph["nodes"]}
    whole = pages_tests.assert_html_page(client.get("/lineage?all=1"))
    assert drawn(whole) == {node["name"] for node in graph["nodes"]}
    assert 'id="lineage-focus"' not in whole


def test_the_go_to_form_opens_the_assets_lineage(client: Any, small_limit: None) -> None:
    response = client.get("/lineage", params={"asset": "stg_entries"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/lineage/stg_entries"
    odd = client.get("/lineage", params={"asset": "a/b c"}, follow_redirects=False)
    assert odd.headers["location"] == "/lineage/a%2Fb%20c"
    page = pages_tests.assert_html_page(client.get("/lineage/stg_entries"))
    assert 'id="go-asset"' not in page  # an asset's page draws the levels around it


def test_a_big_lineage_of_an_asset_draws_the_levels_nearest_to_it(
    client: Any, small_limit: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakelens.analysis.lineage import neighbourhood
    from lakelens.server.context import ServerContext

    ctx: ServerContext = client.app.state.ctx
    with ctx.store.connect() as conn:
        graph = ctx.graph(conn)
    whole = neighbourhood(graph, "dlt_entries")
    near = neighbourhood(graph, "dlt_entries", depth=1)
    assert len(near.nodes) < len(whole.nodes)
    page = pages_tests.assert_html_page(client.get("/lineage/dlt_entries"))
    assert drawn(page) == set(near.nodes)
    assert pages_tests.metrics(page)["focus_depth"] == "1"
    assert f"holds {len(whole.nodes)} assets" in page
    # The impact still counts everything downstream, and lists up to IMPACT_LISTED of each kind.
    impact = client.get("/api/v1/lineage/dlt_entries/impact").json()
    assert int(pages_tests.metrics(page)["impact_assets"]) == impact["totals"]["assets"]
    everything = pages_tests.assert_html_page(client.get("/lineage/dlt_entries?all=1"))
    assert drawn(everything) == set(whole.nodes)
    monkeypatch.setattr(lineage_pages, "IMPACT_LISTED", 1)
    page = pages_tests.assert_html_page(client.get("/lineage/dlt_entries"))
    further = len(impact["transitive"])
    assert f"and {further - 1} more" in page


def test_small_graphs_are_drawn_whole(client: Any) -> None:
    page = pages_tests.assert_html_page(client.get("/lineage"))
    graph = client.get("/api/v1/lineage").json()
    assert drawn(page) == {node["name"] for node in graph["nodes"]}
    assert 'id="lineage-focus"' not in page


def test_nearest_below_takes_every_roots_nearest_consumers_first() -> None:
    graph = graph_of([("a", "a1"), ("a1", "a2"), ("a2", "a3"), ("b", "b1"), ("b1", "b2")])
    assert nearest_below(graph, ["a", "b"], 4) == ["a", "b", "a1", "b1"]
    assert nearest_below(graph, ["a", "b"], 100) == ["a", "b", "a1", "b1", "a2", "b2", "a3"]
    assert nearest_below(graph, ["gone", "b"], 2) == ["b", "b1"]


def test_with_nothing_failing_the_stale_assets_are_drawn(
    client: Any, small_limit: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakelens.analysis import lineage

    monkeypatch.setattr(lineage, "failing_assets", lambda conn: {})
    stale = {a["name"] for a in client.get("/api/v1/assets").json()["assets"] if a["stale"]}
    assert stale == {"dlt_entries"}
    impact = client.get("/api/v1/lineage/dlt_entries/impact").json()
    below = {d["name"] for d in impact["direct"]} | {d["name"] for d in impact["transitive"]}
    page = pages_tests.assert_html_page(client.get("/lineage"))
    assert drawn(page) == stale | below
    assert "the 1 stale asset (past its freshness SLA)" in page
