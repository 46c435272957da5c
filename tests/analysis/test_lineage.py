"""Lineage walks, impact analysis, cycles, and exports that other tools accept."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import time

import pytest

from lakelens.analysis.lineage import annotate, find_cycles, impact, load_graph, neighbourhood, tree
from lakelens.events import Batch
from lakelens.export.lineage import to_dot, to_json, to_mermaid
from lakelens.model import Asset, LineageEdge, Materialization
from lakelens.store import Store

GLUCOSE = [
    ("nightscout_api", "dlt_glucose_entries"),
    ("dlt_glucose_entries", "stg_glucose_entries"),
    ("stg_glucose_entries", "fct_glucose_readings"),
    ("fct_glucose_readings", "mrt_glucose_readings"),
    ("mrt_glucose_readings", "publish_glucose_marts"),
    ("publish_glucose_marts", "superset_glucose_dashboard"),
    ("fct_glucose_readings", "fct_daily_glucose_metrics"),
    ("fct_daily_glucose_metrics", "mrt_glucose_hourly_patterns"),
]


def _store(url: str, edges, assets=()) -> Store:
    store = Store(url)
    batch = Batch()
    for up, down in edges:
        batch.add(LineageEdge(up, down))
    for asset in assets:
        batch.add(asset)
    store.write(batch)
    return store


def _glucose(url: str) -> Store:
    return _store(
        url,
        GLUCOSE,
        [
            Asset("nightscout_api", kind="external"),
            Asset("superset_glucose_dashboard", kind="dashboard", owner="bi-team"),
            Asset("mrt_glucose_readings", kind="model", layer="marts", owner="analytics"),
            Asset("stg_glucose_entries", kind="model", owner="analytics"),
            Asset("publish_glucose_marts", owner="data-platform"),
        ],
    )


def test_impact_of_the_seed_pipeline(store_url: str) -> None:
    store = _glucose(store_url)
    with store.connect() as conn:
        graph = load_graph(conn)
    result = impact(graph, "dlt_glucose_entries")
    assert result.direct == ["stg_glucose_entries"]
    assert result.transitive == [
        ("fct_glucose_readings", 2),
        ("fct_daily_glucose_metrics", 3),
        ("mrt_glucose_readings", 3),
        ("mrt_glucose_hourly_patterns", 4),
        ("publish_glucose_marts", 4),
        ("superset_glucose_dashboard", 5),
    ]
    # The seed's totals: 6 assets affected, 2 publishing endpoints, 1 external dashboard.
    assert result.totals == {"assets": 6, "publishing_endpoints": 2, "external": 1}
    assert result.publishing == ["mrt_glucose_readings", "publish_glucose_marts"]
    assert result.owners == ["analytics", "bi-team", "data-platform"]
    assert result.cycles == [] and "Coordinate" in result.recommendation
    store.close()


def test_tree_in_both_directions_with_depth(tmp_path) -> None:
    store = _glucose(f"sqlite:///{tmp_path / 'l.db'}")
    with store.connect() as conn:
        graph = load_graph(conn)
    down = tree(graph, "fct_glucose_readings", "down")
    assert [c.name for c in down.children] == ["fct_daily_glucose_metrics", "mrt_glucose_readings"]
    assert down.children[1].children[0].children[0].name == "superset_glucose_dashboard"
    up = tree(graph, "fct_glucose_readings", "up", depth=2)
    assert up.children[0].name == "stg_glucose_entries"
    assert up.children[0].children[0].name == "dlt_glucose_entries"
    assert (
        up.children[0].children[0].truncated is True and up.children[0].children[0].children == []
    )
    store.close()


def test_cycles_are_reported_and_never_hang(tmp_path) -> None:
    store = _store(
        f"sqlite:///{tmp_path / 'l.db'}",
        [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "d")],
    )
    with store.connect() as conn:
        graph = load_graph(conn)
    assert find_cycles(graph) == [["a", "b", "c"], ["d"]]
    walk = tree(graph, "a", "down")
    c = walk.children[0].children[0]
    assert c.name == "c" and [(x.name, x.cycle) for x in c.children] == [("a", True), ("d", False)]
    assert c.children[1].children[0].cycle  # d -> d
    result = impact(graph, "a")
    assert [n for n in result.direct] == ["b"] and result.cycles == [["a", "b", "c"], ["d"]]
    store.close()


def test_annotate_reports_status_and_age(tmp_path) -> None:
    store = _glucose(f"sqlite:///{tmp_path / 'l.db'}")
    now = time.time()
    batch = Batch()
    batch.add(
        Materialization(
            "m1", "r1", "stg_glucose_entries", "success", start_time=now - 600, end_time=now - 590
        )
    )  # type: ignore[arg-type]
    batch.add(
        Materialization(
            "m2", "r2", "stg_glucose_entries", "failure", start_time=now - 60, end_time=now - 50
        )
    )  # type: ignore[arg-type]
    store.write(batch)
    with store.connect() as conn:
        graph = load_graph(conn)
        annotate(conn, graph, ["stg_glucose_entries", "fct_glucose_readings"], now=now)
    node = graph.nodes["stg_glucose_entries"]
    assert node.status == "failure" and node.age_seconds == pytest.approx(590, abs=1)
    assert graph.nodes["fct_glucose_readings"].status is None
    store.close()


NASTY = [
    'raw."quoted" table',
    "with space",
    "dots.in.name",
    "Ümlaut_äöü",
    "日本語",
    "back\\slash",
    "<b>html</b>",
    "a;b{c}",
]


def test_dot_export_renders_with_graphviz_for_any_name(tmp_path, require_tool) -> None:
    dot_command = require_tool("dot", "apt-get install graphviz")
    edges = list(itertools.pairwise(NASTY))
    store = _store(f"sqlite:///{tmp_path / 'l.db'}", edges, [Asset("日本語", kind="dashboard")])
    with store.connect() as conn:
        graph = load_graph(conn)
    dot = to_dot(graph, highlight="with space")
    proc = subprocess.run(
        [dot_command, "-Tsvg"], input=dot, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    svg = proc.stdout
    assert svg.count('<g id="node') == len(NASTY) and svg.count('<g id="edge') == len(edges)
    for name in [
        "with space",
        "dots.in.name",
        "Ümlaut_äöü",
        "日本語",
        "&lt;b&gt;html&lt;/b&gt;",
        "a;b{c}",
    ]:
        assert name in svg, name
    assert "raw.&quot;quoted&quot; table" in svg and "back\\slash" in svg
    store.close()


_MERMAID_LINE = re.compile(
    r'^    (n\d+(\[\(|\[/|\[)"[^"\n]*"(\)\]|/\]|\])'
    r"|n\d+ --> n\d+"
    r"|classDef \w+ [\w:#,]+"
    r"|class n\d+(,n\d+)* \w+)$"
)


def test_mermaid_export_is_valid_graph_lr_for_any_name(tmp_path) -> None:
    edges = list(itertools.pairwise(NASTY))
    store = _store(f"sqlite:///{tmp_path / 'l.db'}", edges)
    with store.connect() as conn:
        graph = load_graph(conn)
    text = to_mermaid(graph)
    lines = text.splitlines()
    assert lines[0] == "graph LR"
    for line in lines[1:]:
        assert _MERMAID_LINE.match(line), line
    assert '"raw.#quot;quoted#quot; table"' in text and '"#lt;b#gt;html#lt;/b#gt;"' in text
    assert sum(" --> " in line for line in lines) == len(edges)


def test_json_export_and_neighbourhood(tmp_path) -> None:
    store = _glucose(f"sqlite:///{tmp_path / 'l.db'}")
    with store.connect() as conn:
        graph = load_graph(conn)
    sub = neighbourhood(graph, "mrt_glucose_readings")
    data = to_json(sub)
    names = [n["name"] for n in data["nodes"]]
    assert "fct_daily_glucose_metrics" not in names and "nightscout_api" in names
    assert {
        "upstream": "publish_glucose_marts",
        "downstream": "superset_glucose_dashboard",
        "columns": None,
    } in data["edges"]
    assert json.loads(json.dumps(data)) == data
    store.close()


def test_graph_cache_reloads_only_when_lineage_changes(tmp_path) -> None:
    from lakelens.analysis.lineage import GraphCache

    store = _store(f"sqlite:///{tmp_path / 'l.db'}", [("a", "b")])
    cache = GraphCache()
    with store.connect() as conn:
        first = cache.get(conn)
        assert cache.get(conn) is first  # unchanged: the same graph
    batch = Batch()
    batch.add(LineageEdge("b", "c", updated_at=time.time()))  # type: ignore[arg-type]
    store.write(batch)
    with store.connect() as conn:
        second = cache.get(conn)
    assert second is not first and second.downstream["b"] == ["c"]
    later = Batch()
    later.add(Materialization("m1", "r1", "a", "success"))  # 'a' stops being a bare source
    store.write(later)
    with store.connect() as conn:
        third = cache.get(conn)
    assert third is not second and third.nodes["a"].kind == "asset"
    store.close()


def test_graph_cache_sees_columns_told_by_an_event_older_than_the_newest_edge(
    store_url: str,
) -> None:
    """A late event (or another producer's clock) moves no count and no newest time: before,
    every server kept showing the edge without its columns."""
    from datetime import datetime, timezone

    from lakelens.analysis.lineage import GraphCache

    def at(epoch: float) -> datetime:
        return datetime.fromtimestamp(epoch, timezone.utc)

    now = time.time()
    store = Store(store_url)
    batch = Batch()
    batch.add(LineageEdge("a", "b", updated_at=at(now - 60)))
    batch.add(LineageEdge("c", "d", updated_at=at(now)))
    store.write(batch)
    cache = GraphCache()
    with store.connect() as conn:
        assert cache.get(conn).columns == {}
    # An hour older; then, on PostgreSQL, other columns at that very time again.
    for columns in ({"id": ["key"]}, {"id": ["other"]}):
        late = Batch()
        late.add(LineageEdge("a", "b", columns=columns, updated_at=at(now - 3600)))
        store.write(late)
        with store.connect() as conn:
            assert cache.get(conn).columns == {("a", "b"): columns}
        if store.is_sqlite:
            break
    store.close()
