"""Server-side SVG: the layered lineage layout, escaping inside SVG, and run charts."""

from __future__ import annotations

import random
import re
from urllib.parse import quote
from xml.etree import ElementTree

from lakelens.analysis.lineage import LineageGraph, LineageNode
from lakelens.server import charts


def graph_of(edges: list[tuple[str, str]], **kinds: str) -> LineageGraph:
    names = {n for edge in edges for n in edge}
    up: dict[str, list[str]] = {}
    down: dict[str, list[str]] = {}
    for a, b in edges:
        down.setdefault(a, []).append(b)
        up.setdefault(b, []).append(a)
    return LineageGraph(
        nodes={n: LineageNode(n, kind=kinds.get(n, "asset")) for n in names},
        upstream={k: sorted(v) for k, v in up.items()},
        downstream={k: sorted(v) for k, v in down.items()},
    )


def test_layers_follow_the_longest_path_and_sources_sit_next_to_their_consumer() -> None:
    graph = graph_of([("a", "b"), ("b", "c"), ("a", "c"), ("c", "d"), ("late_source", "d")])
    layout = charts.layout_dag(graph)
    assert layout.layer == {"a": 0, "b": 1, "c": 2, "d": 3, "late_source": 2}
    xs = {n: layout.position[n][0] for n in graph.nodes}
    assert xs["a"] < xs["b"] < xs["c"] < xs["d"]
    # The long edge a → c is routed through a point in layer 1, not over node b.
    assert len(layout.routes[("a", "c")]) == 3


def test_ordering_uncrosses_a_simple_swap() -> None:
    graph = graph_of([("a1", "z2"), ("a2", "z1")])
    layout = charts.layout_dag(graph)
    y = {n: layout.position[n][1] for n in graph.nodes}
    assert (y["a1"] < y["a2"]) == (y["z2"] < y["z1"])


def test_cycles_are_drawn_without_looping() -> None:
    graph = graph_of([("a", "b"), ("b", "c"), ("c", "a"), ("c", "c")])
    svg = charts.lineage_svg(graph)
    assert svg.count('<path class="edge"') == 4
    ElementTree.fromstring(str(svg))  # well-formed


def test_names_are_escaped_in_svg_text_titles_and_attributes() -> None:
    evil = "<img src=x onerror=alert(1)>\"'&"
    graph = graph_of([(evil, "b")])
    svg = str(charts.lineage_svg(graph, selected=evil, impacted={"b"}))
    assert "<img" not in svg
    root = ElementTree.fromstring(svg)
    assert evil in [a.get("data-name") for a in root.iter("a")]
    assert any(evil in (t.text or "") for t in root.iter("title"))
    assert f'href="/assets/{quote(evil, safe="")}"' in svg


def test_a_500_node_graph_lays_out_quickly() -> None:
    rng = random.Random(7)
    names = [f"layer{i // 50}.asset_{i:03d}" for i in range(500)]
    edges = [
        (rng.choice(names[max(0, i - 120) : i - i % 50]), names[i])
        for i in range(50, 500)
        for _ in range(rng.randint(1, 3))
    ]
    graph = graph_of(edges)
    svg = charts.lineage_svg(graph)
    assert svg.count('class="node ') == len(graph.nodes)
    assert len(set(re.findall(r'data-id="(n\d+)"', svg))) == len(graph.nodes)


def test_bar_chart_marks_failures_and_clips_outliers_to_the_successful_scale() -> None:
    bars = [charts.Bar(0.1, href="/runs/a", title="ok") for _ in range(10)]
    bars.append(charts.Bar(30.0, failed=True, href="/runs/b", title="<timeout>"))
    svg = str(charts.bar_chart(bars, label="d", reference=2.8))
    assert svg.count('class="bar fail"') == 1 and svg.count('class="fail-mark"') == 1
    assert 'class="clip-mark"' in svg
    assert "above the scale" in svg
    assert "&lt;timeout&gt;" in svg and "<timeout>" not in svg
    ElementTree.fromstring(svg)


def test_waterfall_of_an_empty_trace_says_so() -> None:
    from lakelens.analysis.trace import Trace

    svg = str(charts.waterfall_svg(Trace(None, None, [], 0, 0, None)))
    assert "No spans were recorded" in svg
