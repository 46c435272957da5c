"""Lineage as Graphviz DOT, Mermaid `graph LR` and JSON; safe for any asset name."""

from __future__ import annotations

from typing import Any

from lakelens.analysis.lineage import EXTERNAL_KINDS, LineageGraph, find_cycles

__all__ = ["to_dot", "to_json", "to_mermaid"]

_STATUS_FILL = {
    "success": "#d9f2d9",
    "failure": "#f8d0d0",
    "started": "#fff2c4",
    "canceled": "#e6e6e6",
}
_DOT_SHAPES = {"source": "cylinder", "external": "cylinder", "dashboard": "tab", "model": "box"}


def _node_ids(graph: LineageGraph) -> dict[str, str]:
    """Synthetic ids: names can hold quotes, dots, spaces or any letter; ids never do."""
    return {name: f"n{i}" for i, name in enumerate(sorted(graph.nodes))}


def _dot_string(text: str) -> str:
    return (
        '"'
        + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "")
        + '"'
    )


def _mapping_text(mapping: dict[str, list[str]]) -> str:
    return "\n".join(f"{column} ← {', '.join(sources)}" for column, sources in mapping.items())


def to_dot(graph: LineageGraph, *, highlight: str | None = None, columns: bool = False) -> str:
    """A left-to-right digraph; nodes shaped by kind and filled by last status.

    Edges with a column mapping carry it as their tooltip (SVG hover), and as their label
    too with `columns`.
    """
    ids = _node_ids(graph)
    lines = [
        "digraph lineage {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica"];',
        '  edge [color="#666666"];',
    ]
    for name in sorted(graph.nodes):
        node = graph.nodes[name]
        label = name if node.kind in ("asset", None) else f"{name}\n({node.kind})"
        attrs = [f"label={_dot_string(label)}", f"shape={_DOT_SHAPES.get(node.kind, 'box')}"]
        fill = _STATUS_FILL.get(node.status or "")
        if fill:
            attrs.append(f'fillcolor="{fill}"')
        if node.kind in EXTERNAL_KINDS:
            attrs.append('style="filled,dashed"')
        if name == highlight:
            attrs.append("penwidth=2.5")
        lines.append(f"  {ids[name]} [{', '.join(attrs)}];")
    for up, down in graph.edges():
        mapping = graph.columns.get((up, down))
        if not mapping:
            lines.append(f"  {ids[up]} -> {ids[down]};")
            continue
        text = _dot_string(_mapping_text(mapping))
        attrs = [f"tooltip={text}"]
        if columns:
            attrs += [f"label={text}", "fontsize=9"]
        lines.append(f"  {ids[up]} -> {ids[down]} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_label(text: str) -> str:
    # Mermaid entity codes keep quotes and markup characters from ending or injecting.
    escaped = (
        text.replace("&", "#amp;")
        .replace('"', "#quot;")
        .replace("<", "#lt;")
        .replace(">", "#gt;")
        .replace("\n", " ")
        .replace("\r", " ")
    )
    return f'"{escaped}"'


_MERMAID_SHAPES = {"source": ("[(", ")]"), "external": ("[(", ")]"), "dashboard": ("[/", "/]")}


def to_mermaid(graph: LineageGraph) -> str:
    """A Mermaid flowchart (`graph LR`) that renders in GitHub and Notion."""
    ids = _node_ids(graph)
    lines = ["graph LR"]
    for name in sorted(graph.nodes):
        node = graph.nodes[name]
        left, right = _MERMAID_SHAPES.get(node.kind, ("[", "]"))
        lines.append(f"    {ids[name]}{left}{_mermaid_label(name)}{right}")
    for up, down in graph.edges():
        lines.append(f"    {ids[up]} --> {ids[down]}")
    classes = {"success": "fill:#d9f2d9,stroke:#2e7d32", "failure": "fill:#f8d0d0,stroke:#c62828"}
    for status, style in classes.items():
        members = [ids[n] for n in sorted(graph.nodes) if graph.nodes[n].status == status]
        if members:
            lines.append(f"    classDef {status} {style}")
            lines.append(f"    class {','.join(members)} {status}")
    return "\n".join(lines) + "\n"


def to_json(graph: LineageGraph) -> dict[str, Any]:
    """Nodes, edges (with their column mapping, or None, and `column_details` where a source
    gave transformation types or dataset-wide inputs) and cycles as plain data."""
    return {
        "nodes": [
            {
                "name": n.name,
                "kind": n.kind,
                "owner": n.owner,
                "layer": n.layer,
                "status": n.status,
                "age_seconds": n.age_seconds,
                "freshness_seconds": n.freshness_seconds,
            }
            for n in (graph.nodes[name] for name in sorted(graph.nodes))
        ],
        "edges": [_edge(graph, up, down) for up, down in graph.edges()],
        "cycles": find_cycles(graph),
    }


def _edge(graph: LineageGraph, up: str, down: str) -> dict[str, Any]:
    edge: dict[str, Any] = {
        "upstream": up,
        "downstream": down,
        "columns": graph.columns.get((up, down)),
    }
    if (up, down) in graph.column_details:
        edge["column_details"] = graph.column_details[(up, down)]
    return edge
