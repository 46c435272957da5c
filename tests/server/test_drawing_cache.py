"""What charts.py keeps per graph object (layers, layout, the drawing's fixed text): reused
while the same graph is drawn again, recomputed for a changed graph, never stale."""

from __future__ import annotations

from pathlib import Path

from _support import load_module
from lakelens.analysis import lineage
from lakelens.analysis.lineage import neighbourhood
from lakelens.server import charts

graph_of = load_module(
    "lakelens_tests_server_charts", Path(__file__).with_name("test_charts.py")
).graph_of


def test_the_layout_is_reused_for_the_same_graph_and_not_for_a_changed_one() -> None:
    graph = graph_of([("a", "b"), ("b", "c")])
    first = charts.layout_dag(graph)
    assert charts.layout_dag(graph) is first
    # The graph cache hands out a new object once assets or edges change.
    changed = graph_of([("a", "b"), ("b", "c"), ("c", "d")])
    assert charts.layout_dag(changed) is not first
    assert charts.layout_dag(changed).layer["d"] == 3
    assert charts.dag_layers(changed)["d"] == 3


def test_a_neighbourhood_drawn_in_between_keeps_the_whole_graphs_layout() -> None:
    graph = graph_of([("a", "b"), ("b", "c"), ("x", "y")])
    whole = charts.layout_dag(graph)
    svg = charts.lineage_svg(graph)
    for _ in range(lineage._REMEMBERED_MAX + 2):
        part = neighbourhood(graph, "x")
        charts.lineage_svg(part, selected="x", impacted={"y"})
        del part  # as after a /lineage/ASSET request
    assert charts.layout_dag(graph) is whole
    assert charts.lineage_svg(graph) == svg


def test_layers_alone_are_the_layouts_layers() -> None:
    edges = [("a", "b"), ("b", "c"), ("a", "c"), ("c", "d"), ("late", "d"), ("d", "b")]
    assert charts.dag_layers(graph_of(edges)) == charts.layout_dag(graph_of(edges)).layer


def test_the_drawing_follows_health_while_its_fixed_text_is_kept() -> None:
    graph = graph_of([("a", "b")])
    before = str(charts.lineage_svg(graph))
    assert 'data-name="a" data-health="unknown"' in before
    graph.nodes["a"].status = "failure"  # annotate() on the next request
    after = str(charts.lineage_svg(graph, at_risk={"b": ["a"]}))
    assert 'data-name="a" data-health="failing"' in after
    assert 'data-name="b" data-health="unknown" data-risk="a"' in after


def test_the_least_recently_used_entries_go_first() -> None:
    graph = graph_of([("a", "b")])
    whole = charts.layout_dag(graph)
    kept = [graph_of([("x", f"y{i}")]) for i in range(lineage._REMEMBERED_MAX * 2)]
    for other in kept:  # alive, unlike a request's neighbourhood: they fill the memory
        charts.dag_layers(other)
        assert charts.layout_dag(graph) is whole  # used again each time: never the oldest
    first = lineage.remember(kept[0], ("layers",), lambda: "computed again")
    assert first == "computed again"  # the oldest entry went
