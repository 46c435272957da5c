"""Server-side SVG charts for the dashboard: run bars, sparklines, the lineage DAG and waterfalls.

Every function returns `Markup` built only from numbers and `escape()`d text, so asset names,
span names and attributes can never become markup. No inline styles (the pages' CSP forbids
them): colours come from classes in lakelens.css or from presentation attributes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from markupsafe import Markup, escape

from lakelens.analysis.lineage import remember
from lakelens.server.ticks import duration_label, duration_ticks
from lakelens.units import format_duration

if TYPE_CHECKING:
    from lakelens.analysis.lineage import LineageGraph
    from lakelens.analysis.trace import Trace

__all__ = [
    "Bar",
    "ColumnMarks",
    "DagLayout",
    "asset_url",
    "bar_chart",
    "dag_layers",
    "layout_dag",
    "lineage_svg",
    "name_list",
    "sparkline",
    "waterfall_svg",
]


def asset_url(name: str) -> str:
    """The page of an asset; any name (slashes, quotes, spaces) survives the round trip."""
    return "/assets/" + quote(name, safe="")


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Bar:
    """One run in a bar chart: its value (None: unknown), whether it failed, a link and a tooltip."""

    value: float | None
    failed: bool = False
    href: str | None = None
    title: str = ""


# The bar chart's frame in CSS pixels; lakelens.css places the bars' own SVG by the same numbers.
CHART_HEIGHT, CHART_LEFT, CHART_RIGHT, CHART_TOP, CHART_PLOT = 180, 56, 10, 12, 146
_SLOT = 10.0  # one run's width in the bars' own coordinates


def bar_chart(
    bars: Sequence[Bar],
    *,
    label: str,
    fmt: Callable[[float], str] = format_duration,
    ticks: Callable[..., list[float]] = duration_ticks,
    tick_fmt: Callable[[float], str] = duration_label,
    reference: float | None = None,
    reference_label: str = "avg",
    start_label: str = "",
    end_label: str = "",
) -> Markup:
    """Bars oldest → newest; failed runs drawn red with a marker, a dashed reference line (average).

    Text is drawn at its CSS size whatever the chart's width: the axes are an SVG in pixels,
    and only the bars' own SVG stretches to the width (text there would stretch with it).
    """
    top, plot_h, left = CHART_TOP, CHART_PLOT, CHART_LEFT
    values = [b.value for b in bars if b.value is not None]
    healthy = [b.value for b in bars if b.value is not None and not b.failed]
    peak = max([*values, reference or 0.0, 0.0])
    # Failed runs that hit a timeout would flatten every other bar: scale to the successful
    # runs and draw taller failures clipped (their real value is in the tooltip).
    if healthy and max(healthy) > 0 and peak > 3 * max(healthy):
        peak = 1.25 * max(healthy)
    marks = ticks(peak, most=4, cover=True) if peak > 0 else [0.0]
    peak = marks[-1] if marks[-1] > 0 else 1.0
    axes = [
        f'<svg class="axes" width="100%" height="{CHART_HEIGHT}" aria-hidden="true" '
        'focusable="false">'
    ]
    for mark in marks:
        y = top + plot_h * (1 - mark / peak)
        axes.append(
            f'<line class="grid" x1="{left}" x2="100%" y1="{_num(y)}" y2="{_num(y)}"/>'
            f'<text class="axis" x="{left - 6}" y="{_num(y + 4)}" text-anchor="end">'
            f"{escape(tick_fmt(mark))}</text>"
        )
    out = [f'<div class="chart bar-chart" role="group" aria-label="{escape(label)}">']
    if not bars:
        axes.append(
            f'<text class="empty" x="50%" y="{CHART_HEIGHT / 2}" text-anchor="middle">'
            "No runs recorded yet</text></svg>"
        )
        return Markup("".join([*out, *axes, "</div>"]))
    for text, at, anchor in ((start_label, f"{left}", "start"), (end_label, "100%", "end")):
        if text:
            axes.append(
                f'<text class="axis" x="{at}" y="{CHART_HEIGHT - 2}" text-anchor="{anchor}">'
                f"{escape(text)}</text>"
            )
    if reference is not None and reference > 0:
        off_scale = reference > peak
        y = top + plot_h * (1 - min(reference, peak) / peak)
        text = f"{reference_label} {fmt(reference)}" + (" ↑ above the scale" if off_scale else "")
        axes.append(
            f'<line class="ref" x1="{left}" x2="100%" y1="{_num(y)}" y2="{_num(y)}"/>'
            f'<text class="ref-label" x="100%" dx="-{CHART_RIGHT + 4}" y="{_num(y - 4)}" '
            f'text-anchor="end">{escape(text)}</text>'
        )
    axes.append("</svg>")
    width = _SLOT * len(bars)
    gap = 2.0
    # The bars' strip: the plot, then a band below it for the failure marks.
    plot = [
        f'<svg class="bars" viewBox="0 0 {_num(width)} {plot_h + 8}" preserveAspectRatio="none">'
    ]
    for i, bar in enumerate(bars):
        x = i * _SLOT + gap / 2
        w = _SLOT - gap
        value = bar.value or 0.0
        clipped = value > peak
        h = max(plot_h * min(value, peak) / peak, 1.5 if bar.value is not None else 0)
        y = plot_h - h
        cls = "bar fail" if bar.failed else "bar"
        piece = (
            f'<rect class="{cls}" x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}">'
            f"<title>{escape(bar.title)}</title></rect>"
        )
        if clipped:
            piece += (
                f'<rect class="clip-mark" x="{_num(x)}" y="{_num(y + 5)}" width="{_num(w)}" '
                'height="3"/>'
            )
        if bar.failed:
            piece += (
                f'<rect class="fail-mark" x="{_num(x)}" y="{plot_h + 3}" width="{_num(w)}" '
                f'height="5"><title>{escape(bar.title)}</title></rect>'
            )
        if bar.href:
            piece = f'<a href="{escape(bar.href)}">{piece}</a>'
        plot.append(piece)
    plot.append("</svg>")
    return Markup("".join([*out, *axes, *plot, "</div>"]))


def sparkline(
    values: Sequence[float | None],
    failures: Sequence[bool],
    *,
    width: int = 120,
    height: int = 28,
    label: str = "",
) -> Markup:
    """A tiny line of durations (oldest → newest) with failed runs as red dots."""
    known = [v for v in values if v is not None]
    out = [
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(label)}">'
    ]
    if not known:
        out.append("</svg>")
        return Markup("".join(out))
    peak = max(known) or 1.0
    step = (width - 6) / max(len(values) - 1, 1)
    points: list[tuple[float, float]] = []
    for i, value in enumerate(values):
        if value is None:
            continue
        points.append((3 + i * step, height - 3 - (height - 6) * value / peak))
    path = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
    out.append(f'<polyline class="spark-line" points="{path}"/>')
    for i, failed in enumerate(failures):
        if failed:
            value = values[i] if i < len(values) else None
            y = height - 3 - (height - 6) * (value or 0.0) / peak
            out.append(
                f'<circle class="spark-fail" cx="{_num(3 + i * step)}" cy="{_num(y)}" r="2.6"/>'
            )
    out.append("</svg>")
    return Markup("".join(out))


# -- lineage -----------------------------------------------------------------------------------

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 156, 52, 30, 16, 14
# Graphs up to this wide shrink to fit their box; wider ones scroll at full size.
FIT_WIDTH = 1700


@dataclass
class DagLayout:
    """Positions of a layered left-to-right drawing; dummies carry long edges across layers."""

    layer: dict[str, int]
    position: dict[str, tuple[float, float]]
    # Each edge (up, down) as the points it passes through, left to right.
    routes: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    width: float = 0.0
    height: float = 0.0


def _acyclic_edges(names: list[str], downstream: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The edges minus those that close a cycle (found by an iterative DFS), as (up, down)."""
    state: dict[str, int] = {}
    kept: list[tuple[str, str]] = []
    for start in names:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(downstream.get(start, [])))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                continue
            if child == node or state.get(child) == 1:
                continue  # a back edge: drawing it is fine, layering by it is not
            kept.append((node, child))
            if child not in state:
                state[child] = 1
                stack.append((child, iter(downstream.get(child, []))))
    return kept


def dag_layers(graph: LineageGraph) -> dict[str, int]:
    """Each asset's column in the lineage drawing (what `layout_dag(graph).layer` holds),
    without the ordering sweeps: the overview sorts its table by it."""
    return remember(graph, ("layers",), lambda: _layers(graph))


def layout_dag(graph: LineageGraph, *, sweeps: int = 6) -> DagLayout:
    """The layout of `graph`, reused while the same (unchanged) graph object is drawn again."""
    return remember(graph, ("layout", sweeps), lambda: _layout_dag(graph, sweeps=sweeps))


def _downstream_of(graph: LineageGraph) -> tuple[list[str], dict[str, list[str]]]:
    """The sorted names and each one's children within the graph."""
    names = sorted(graph.nodes)
    return names, {n: [d for d in graph.downstream.get(n, []) if d in graph.nodes] for n in names}


def _layers(graph: LineageGraph) -> dict[str, int]:
    """Longest-path layering from the sources (cycles broken), sources pulled right."""
    names, downstream = _downstream_of(graph)
    edges = _acyclic_edges(names, downstream)
    parents: dict[str, list[str]] = {n: [] for n in names}
    children: dict[str, list[str]] = {n: [] for n in names}
    for up, down in edges:
        parents[down].append(up)
        children[up].append(down)
    # Longest path from the sources, in topological order (Kahn).
    indegree = {n: len(parents[n]) for n in names}
    queue = [n for n in names if indegree[n] == 0]
    layer = dict.fromkeys(names, 0)
    head = 0
    while head < len(queue):
        node = queue[head]
        head += 1
        for child in children[node]:
            layer[child] = max(layer[child], layer[node] + 1)
            indegree[child] -= 1
            if indegree[child] == 0:
                queue.append(child)
    # Pull sources right next to their first consumer (an API feeding layer 3 sits in layer 2).
    for name in names:
        if not parents[name] and children[name]:
            layer[name] = max(layer[name], min(layer[c] for c in children[name]) - 1)
    return layer


def _layout_dag(graph: LineageGraph, *, sweeps: int) -> DagLayout:
    """Longest-path layering, dummy nodes for long edges, barycentric ordering in both directions."""
    names, downstream = _downstream_of(graph)
    layer = dict(dag_layers(graph))

    # Chains of dummies for edges that skip layers, so ordering sees them and edges route around.
    up_of: dict[str, list[str]] = {n: [] for n in names}
    chains: dict[tuple[str, str], list[str]] = {}
    dummy_layer: dict[str, int] = {}
    all_edges = [(u, d) for u in names for d in downstream[u]]
    for up, down in all_edges:
        chain: list[str] = []
        if layer[down] - layer[up] > 1:
            for step in range(layer[up] + 1, layer[down]):
                dummy = f"\x00{len(dummy_layer)}"
                dummy_layer[dummy] = step
                up_of[dummy] = []
                chain.append(dummy)
        chains[(up, down)] = chain
        path = [up, *chain, down]
        for a, b in itertools.pairwise(path):
            if layer.get(b, dummy_layer.get(b, 0)) > layer.get(a, dummy_layer.get(a, 0)):
                up_of[b].append(a)
    levels: dict[str, int] = {**layer, **dummy_layer}
    count = max(levels.values(), default=-1) + 1
    rows: list[list[str]] = [[] for _ in range(count)]
    for name in [*names, *dummy_layer]:
        rows[levels[name]].append(name)
    down_of: dict[str, list[str]] = {n: [] for n in levels}
    for node, ups in up_of.items():
        for up in ups:
            down_of[up].append(node)

    def order(row: list[str], neighbours: dict[str, list[str]], index: dict[str, int]) -> None:
        keyed = []
        for i, node in enumerate(row):
            around = [index[n] for n in neighbours[node] if n in index]
            keyed.append((sum(around) / len(around) if around else float(i), i, node))
        keyed.sort()
        row[:] = [node for _, _, node in keyed]

    for sweep in range(sweeps):
        forward = sweep % 2 == 0
        span = range(1, count) if forward else range(count - 2, -1, -1)
        for level in span:
            other = rows[level - 1] if forward else rows[level + 1]
            index = {n: i for i, n in enumerate(other)}
            order(rows[level], up_of if forward else down_of, index)

    def slot(node: str) -> float:
        return NODE_H if node in layer else 8.0

    tallest = max((sum(slot(n) + GAP_Y for n in row) for row in rows), default=0.0)
    position: dict[str, tuple[float, float]] = {}
    for level, row in enumerate(rows):
        used = sum(slot(n) + GAP_Y for n in row)
        y = PAD + (tallest - used) / 2
        x = PAD + level * (NODE_W + GAP_X)
        for node in row:
            position[node] = (x, y + (slot(node) - NODE_H) / 2 if node not in layer else y)
            y += slot(node) + GAP_Y
    routes: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for (up, down), chain in chains.items():
        ux, uy = position[up]
        dx, dy = position[down]
        if layer[down] > layer[up]:
            points = [(ux + NODE_W, uy + NODE_H / 2)]
            points += [(position[d][0] + NODE_W / 2, position[d][1] + NODE_H / 2) for d in chain]
            points.append((dx, dy + NODE_H / 2))
        else:  # a back edge or a same-layer edge: loop out on the right and come back
            points = [(ux + NODE_W, uy + NODE_H / 2), (dx, dy + NODE_H / 2)]
        routes[(up, down)] = points
    return DagLayout(
        layer=layer,
        position={n: position[n] for n in names},
        routes=routes,
        width=PAD * 2 + max(count, 1) * (NODE_W + GAP_X) - GAP_X,
        height=PAD * 2 + max(tallest - GAP_Y, NODE_H),
    )


def _curve(points: list[tuple[float, float]]) -> str:
    """A smooth path through points left to right (horizontal tangents at each point)."""
    (x0, y0), rest = points[0], points[1:]
    parts = [f"M{_num(x0)} {_num(y0)}"]
    px, py = x0, y0
    for x, y in rest:
        if x > px:
            mid = (x - px) / 2
            parts.append(
                f"C{_num(px + mid)} {_num(py)} {_num(x - mid)} {_num(y)} {_num(x)} {_num(y)}"
            )
        else:
            loop = 40.0
            parts.append(
                f"C{_num(px + loop)} {_num(py)} {_num(x - loop)} {_num(y)} {_num(x)} {_num(y)}"
            )
        px, py = x, y
    return " ".join(parts)


def _health(status: str | None, stale: bool | None) -> str:
    if status == "failure":
        return "failing"
    if stale:
        return "stale"
    if status == "success":
        return "healthy"
    if status in ("started", "queued"):
        return "running"
    return "unknown"


def _label_lines(name: str, width: int = 19) -> list[str]:
    """The name on one or two lines, broken after a separator when one is near the middle."""
    if len(name) <= width:
        return [name]
    cut = max((i + 1 for i, ch in enumerate(name[:width]) if ch in "_.-/: "), default=0)
    if cut < width // 2:
        cut = width
    return [name[:cut], _truncate(name[cut:], width)]


def _node_shape(kind: str) -> str:
    if kind in ("external", "source"):
        return (
            f'<rect class="shape" x="0" y="0" width="{NODE_W}" height="{NODE_H}" '
            f'rx="{NODE_H / 2}" ry="{NODE_H / 2}"/>'
        )
    if kind == "dashboard":
        s = 10
        return (
            f'<path class="shape" d="M{s} 0H{NODE_W}L{NODE_W - s} {NODE_H}H0Z"/>'
            f'<path class="glyph" d="M{NODE_W - 34} 44v-7m5 7v-12m5 12v-9"/>'
        )
    if kind == "model":
        return f'<rect class="shape" x="0" y="0" width="{NODE_W}" height="{NODE_H}" rx="9"/>'
    # tables and plain assets: square corners with a band on the left
    return (
        f'<rect class="shape" x="0" y="0" width="{NODE_W}" height="{NODE_H}" rx="2"/>'
        f'<rect class="band" x="0" y="0" width="5" height="{NODE_H}"/>'
    )


@dataclass
class ColumnMarks:
    """A column's path drawn over the lineage graph, besides the selected and impacted assets."""

    # Assets whose columns the selected column reads, transitively.
    feeds: frozenset[str] = frozenset()
    # Assets reached only by an edge without a column mapping: they may depend on the column.
    maybe: frozenset[str] = frozenset()
    # The edges the column flows along, and those to the "may depend" assets, as (up, down).
    edges: frozenset[tuple[str, str]] = frozenset()
    maybe_edges: frozenset[tuple[str, str]] = frozenset()
    # Asset → its columns on the path, written on the node in place of kind and age.
    notes: dict[str, list[str]] = field(default_factory=dict)


def name_list(names: Sequence[str], shown: int = 3) -> str:
    """'a', 'a and b', 'a, b, c and 2 more'."""
    if len(names) <= shown:
        return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]
    return ", ".join(names[:shown]) + f" and {len(names) - shown} more"


def _note(columns: list[str]) -> str:
    return _truncate(", ".join(columns), 27)


@dataclass(frozen=True)
class _Drawn:
    """What a graph's drawing holds whatever the health and the selection: the edges' path
    text and each node's link, position, shape and label. Writing these numbers was most of
    the time of drawing a 10,000-node graph, so they are kept with the layout."""

    layout: DagLayout
    # (up, down) → the edge's attributes after its class: d, data-from, data-to, marker.
    edges: list[tuple[str, str, str]]
    # name → (the link's attributes, its transform, the shape and label, the meta line's y)
    nodes: dict[str, tuple[str, str, str, int]]


def _drawn(graph: LineageGraph) -> _Drawn:
    return remember(graph, ("drawn",), lambda: _draw(graph))


def _draw(graph: LineageGraph) -> _Drawn:
    layout = layout_dag(graph)
    ids = {name: f"n{i}" for i, name in enumerate(sorted(graph.nodes))}
    edges = [
        (
            up,
            down,
            f'd="{_curve(points)}" data-from="{ids[up]}" data-to="{ids[down]}" '
            'marker-end="url(#arrow)"/>',
        )
        for (up, down), points in sorted(layout.routes.items())
    ]
    nodes = {}
    for name in sorted(graph.nodes):
        x, y = layout.position[name]
        lines = _label_lines(name)
        label = "".join(
            f'<text class="label" x="13" y="{(17 + 13 * i) if len(lines) > 1 else 21}">'
            f"{escape(line)}</text>"
            for i, line in enumerate(lines)
        )
        nodes[name] = (
            f'href="{escape(asset_url(name))}" data-id="{ids[name]}" data-name="{escape(name)}"',
            f'transform="translate({_num(x)} {_num(y)})"',
            f"{_node_shape(graph.nodes[name].kind or 'asset')}"
            f'<circle class="dot" cx="{NODE_W - 11}" cy="11" r="4"/>{label}',
            44 if len(lines) > 1 else 37,
        )
    return _Drawn(layout, edges, nodes)


def lineage_svg(
    graph: LineageGraph,
    *,
    selected: str | None = None,
    impacted: set[str] | None = None,
    columns: ColumnMarks | None = None,
    at_risk: Mapping[str, Sequence[str]] | None = None,
    fmt_age: Callable[[float], str] = format_duration,
) -> Markup:
    """The graph as a layered DAG: nodes coloured by health, shaped by kind, linked to their pages.

    `selected` and `impacted` are drawn highlighted server-side (the page works without JS);
    lineage.js moves the highlight when another node is chosen. With `columns`, the highlight
    is a column's path: only its edges are hot, and each node on it names its columns.
    `at_risk` (asset → the failing assets above it) marks those nodes "at risk".
    """
    risks = at_risk or {}
    drawn = _drawn(graph)
    layout = drawn.layout
    highlight = selected is not None and impacted is not None
    impacted = impacted or set()
    marks = columns or ColumnMarks()
    w, h = _num(layout.width), _num(layout.height)
    classes = (
        "dag"
        + (" has-selection" if highlight else "")
        + (" column-path" if columns is not None else "")
        + (" fit" if layout.width <= FIT_WIDTH else "")
    )
    out = [
        f'<svg class="{classes}" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="group" aria-label="Lineage graph, '
        f'{len(graph.nodes)} assets">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" class="arrow"/>'
        "</marker></defs>",
        '<g class="edges">',
    ]
    for up, down, rest in drawn.edges:
        cls = "edge"
        if columns is not None:
            if (up, down) in marks.edges:
                cls += " hot"
            elif (up, down) in marks.maybe_edges:
                cls += " maybe"
        elif selected and (up == selected or up in impacted) and down in impacted:
            cls += " hot"
        out.append(f'<path class="{cls}" {rest}')
    out.append('</g><g class="nodes">')
    for name, (link, transform, body, below) in drawn.nodes.items():
        node = graph.nodes[name]
        health = _health(node.status, node.stale)
        kind = node.kind or "asset"
        classes = f"node {health} kind-{escape(kind)}"
        if name == selected:
            classes += " selected"
        elif name in impacted:
            classes += " impacted"
        elif name in marks.feeds:
            classes += " feeds"
        elif name in marks.maybe:
            classes += " maybe"
        meta = [kind]
        if node.layer:
            meta.append(node.layer)
        if node.age_seconds is not None:
            meta.append(fmt_age(node.age_seconds) + " ago")
        tooltip = [name, f"kind: {kind}", f"health: {health}"]
        sources = list(risks.get(name, ())) if health != "failing" else []
        if sources:
            classes += " at-risk"
            tooltip.append("at risk: downstream of the failing " + name_list(sources))
        if node.owner:
            tooltip.append(f"owner: {node.owner}")
        if node.age_seconds is not None:
            sla = (
                f" (SLA {fmt_age(node.freshness_seconds)})"
                if node.freshness_seconds is not None
                else ""
            )
            tooltip.append(f"last success {fmt_age(node.age_seconds)} ago{sla}")
        note = None
        if name in marks.notes:
            noted = marks.notes[name]
            note = _note(noted)
            more = f" and {len(noted) - 20} more" if len(noted) > 20 else ""
            tooltip.append("columns: " + ", ".join(noted[:20]) + more)
        elif name in marks.maybe:
            note = "may depend"
            tooltip.append("may depend on the column: read by an edge with no column mapping")
        # With a note, both lines are drawn: CSS shows the note while the column path is the
        # highlight, and the meta line again once lineage.js moves the selection.
        noted_text = (
            "" if note is None else f'<text class="note" x="13" y="{below}">{escape(note)}</text>'
        )
        risk = f' data-risk="{escape(sources[0])}"' if sources else ""
        meta_text = (
            f'<tspan class="risk-tag">at risk</tspan> · {escape(_truncate(" · ".join(meta), 17))}'
            if sources
            else escape(_truncate(" · ".join(meta), 27))
        )
        out.append(
            f'<a class="{classes}" {link} data-health="{health}"{risk} {transform}>'
            f"<title>{escape(chr(10).join(tooltip))}</title>"
            f"{body}"
            f'<text class="meta{"" if note is None else " noted"}" x="13" y="{below}">'
            f"{meta_text}</text>"
            f"{noted_text}"
            "</a>"
        )
    out.append("</g></svg>")
    return Markup("".join(out))


# -- traces ------------------------------------------------------------------------------------


def _attributes_text(attributes: dict[str, Any], limit: int = 12) -> str:
    items = list(attributes.items())
    lines = [f"{k} = {_truncate(str(v), 120)}" for k, v in items[:limit]]
    if len(items) > limit:
        lines.append(f"… {len(items) - limit} more")
    return "\n".join(lines)


def waterfall_svg(trace: Trace, *, width: int = 1100) -> Markup:
    """Spans as rows: bar offset = start, width = duration, indented by depth, errors red."""
    nodes = trace.walk()
    label_w, row_h, top = 330, 26, 30
    bar_w = width - label_w - 90
    total = trace.duration_seconds or max(
        (n.offset_seconds + (n.duration_seconds or 0.0) for n in nodes), default=0.0
    )
    total = total or 1e-3
    height = top + row_h * max(len(nodes), 1) + 8
    out = [
        f'<svg class="waterfall" viewBox="0 0 {width} {height}" role="group" '
        f'aria-label="Trace waterfall, {len(nodes)} spans">'
    ]
    for mark in duration_ticks(total, most=6):
        x = label_w + bar_w * mark / total
        out.append(
            f'<line class="grid" x1="{_num(x)}" x2="{_num(x)}" y1="{top - 6}" y2="{height - 4}"/>'
            f'<text class="axis" x="{_num(x)}" y="{top - 12}" text-anchor="middle">'
            f"{escape(duration_label(mark))}</text>"
        )
    for i, node in enumerate(nodes):
        span = node.span
        y = top + i * row_h
        duration = node.duration_seconds
        x = label_w + bar_w * min(node.offset_seconds / total, 1.0)
        w = max(bar_w * (duration or 0.0) / total, 2.0)
        w = min(w, label_w + bar_w - x + 1) if duration is not None else 2.0
        error = span.status == "error"
        tip = [f"{span.name} — {format_duration(duration) if duration is not None else 'open'}"]
        tip.append(f"starts at +{format_duration(node.offset_seconds)}")
        if span.asset:
            tip.append(f"asset: {span.asset}")
        if span.error_message:
            tip.append(f"error: {_truncate(span.error_message, 300)}")
        if span.attributes:
            tip.append(_attributes_text(span.attributes))
        indent = 10 + 14 * min(node.depth, 12)
        out.append(
            f'<g class="span{" error" if error else ""} depth-{min(node.depth, 5)}" '
            f'tabindex="0" role="button" data-span="span-{i}" '
            f'aria-label="{escape(span.name)}, {escape(tip[0])}">'
            f"<title>{escape(chr(10).join(tip))}</title>"
            f'<rect class="row" x="0" y="{y}" width="{width}" height="{row_h}"/>'
        )
        if node.depth:
            out.append(f'<path class="tree" d="M{indent - 8} {y + 4}v{row_h / 2 - 4}h5"/>')
        out.append(
            f'<text class="name" x="{indent}" y="{y + 17}">'
            f"{escape(_truncate(span.name, max(12, 40 - node.depth * 2)))}</text>"
            f'<rect class="bar" x="{_num(x)}" y="{y + 6}" width="{_num(w)}" height="{row_h - 12}" '
            'rx="2"/>'
            f'<text class="dur" x="{_num(min(x + w + 6, width - 80))}" y="{y + 17}">'
            f"{escape(format_duration(duration) if duration is not None else 'open')}</text>"
            "</g>"
        )
    if not nodes:
        out.append(
            f'<text class="empty" x="{width / 2}" y="{top + 14}" text-anchor="middle">'
            "No spans were recorded for this run</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))
