"""`lakelens lineage`: upstream/downstream trees, impact analysis, and exports."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

from lakelens.cli._common import HomeOption, JsonOption, NoColorOption

app = typer.Typer(
    help="Explore lineage: what feeds an asset and what it breaks.", no_args_is_help=True
)


# The human listing stops here; --json always has everything.
LIST_LIMIT = 50


class Direction(str, Enum):
    up = "up"
    down = "down"
    both = "both"


class Format(str, Enum):
    dot = "dot"
    mermaid = "mermaid"
    json = "json"


def _label(node: Any) -> str:
    from rich.markup import escape

    from lakelens.cli._common import age, status_text
    from lakelens.units import format_duration

    parts = [f"[bold]{escape(node.name)}[/]", f"[dim]({node.kind})[/]"]
    if node.kind not in ("external", "dashboard", "source") or node.status:
        parts.append(status_text(node.status))
    if node.age_seconds is not None:
        fresh = age(node.age_seconds)
        if node.freshness_seconds:
            style = "red" if node.stale else "green"
            fresh = f"[{style}]{fresh}[/] [dim](SLA {format_duration(node.freshness_seconds)})[/]"
        parts.append(fresh)
    return " ".join(parts)


def _walk(node: Any) -> list[str]:
    names = [node.name]
    for child in node.children:
        names.extend(_walk(child))
    return names


@app.command()
def show(
    asset: str = typer.Argument(..., help="Asset name."),
    direction: Direction = typer.Option(Direction.both, "--direction", help="up, down or both."),
    depth: int | None = typer.Option(None, "--depth", min=1, help="Levels to show (default: all)."),
    columns: bool = typer.Option(
        False, "--columns", help="Also list each column with the columns it reads and feeds."
    ),
    home: Optional[str] = HomeOption,  # noqa: UP045
    json_output: bool = JsonOption,
    no_color: bool = NoColorOption,
) -> None:
    """Show the lineage tree of ASSET: what feeds it and what it feeds, with status and freshness.

    Example: lakelens lineage show stg_glucose_entries --columns
    """
    from rich.markup import escape
    from rich.tree import Tree

    from lakelens.analysis.assets import resolve_asset
    from lakelens.analysis.column_lineage import (
        column_neighbours,
        column_status,
        indirect_inputs,
    )
    from lakelens.analysis.lineage import (
        annotate,
        column_lineage,
        find_cycles,
        load_graph,
        tree,
    )
    from lakelens.analysis.shapes import tree_dict
    from lakelens.cli._common import make_console, now, open_store
    from lakelens.cli._output import print_json

    store = open_store(home)
    with store.reader() as conn:
        name = resolve_asset(conn, asset)
        graph = load_graph(conn)
        trees = {
            d: tree(graph, name, d, depth) for d in ("up", "down") if direction.value in (d, "both")
        }
        shown = {n for t in trees.values() for n in _walk(t)}
        annotate(conn, graph, shown, now=now())
        per_column = column_neighbours(conn, graph, name) if columns else None
    indirect = indirect_inputs(graph, name) if columns else []
    cycles = find_cycles(graph, shown)
    if json_output:
        data = {
            "asset": name,
            "node": tree_dict(trees.get("up") or trees["down"], graph) | {"children": []},
            "upstream": tree_dict(trees["up"], graph)["children"] if "up" in trees else None,
            "downstream": tree_dict(trees["down"], graph)["children"] if "down" in trees else None,
            "cycles": cycles,
            "column_lineage": column_lineage(graph, shown),
        }
        if per_column is not None:
            data["columns"] = per_column
            data["indirect_inputs"] = indirect
            data["column_lineage_status"] = column_status(graph, name)
        print_json(data)
        return
    console = make_console(no_color)
    root = Tree(_label(graph.nodes[name]))

    def add(branch: Tree, node: Any) -> None:
        for child in node.children:
            label = _label(graph.nodes[child.name])
            if child.cycle:
                label = f"[magenta]↻ {escape(child.name)} (cycle)[/]"
            elif child.repeated:
                label += " [dim](shown above)[/]"
            elif child.truncated:
                label += " [dim]… (more: raise --depth)[/]"
            add(branch.add(label), child)

    for key, title in (("up", "[upstream]"), ("down", "[downstream]")):
        if key in trees:
            section = root.add(f"[cyan]{escape(title)}[/]")
            if not trees[key].children:
                section.add("[dim](none)[/]")
            add(section, trees[key])
    console.print(root)
    for cycle in cycles:
        console.print(
            f"[magenta]Cycle in declared lineage:[/] {escape(' → '.join([*cycle, cycle[0]]))}"
        )
    if per_column is not None:
        _print_columns(console, name, per_column, indirect, column_status(graph, name))


def _how(transformations: list[dict[str, Any]] | None) -> str:
    """` (AGGREGATION)`, ` (TRANSFORMATION, masked)`: the subtypes (else types) a source gave."""
    labels: list[str] = []
    for entry in transformations or ():
        label = entry.get("subtype") or entry.get("type")
        if label and label not in labels:
            labels.append(label)
    if any(entry.get("masking") for entry in transformations or ()):
        labels.append("masked")
    return f" ({', '.join(labels)})" if labels else ""


def _refs(items: list[dict[str, Any]]) -> str:
    from rich.markup import escape

    return escape(
        ", ".join(f"{i['asset']}.{i['column']}{_how(i.get('transformations'))}" for i in items)
    )


def _print_columns(
    console: Any,
    name: str,
    per_column: list[dict[str, Any]],
    indirect: list[dict[str, Any]],
    status: dict[str, str] | None,
) -> None:
    from rich.markup import escape

    console.print(f"\n[bold]Columns of {escape(name)}:[/]")
    if status and status["status"] == "unresolved":
        console.print(
            f"  [yellow]column lineage unresolved:[/] {escape(status.get('reason', '?'))}"
        )
    if indirect:
        console.print(
            f"  [dim]indirect:[/] {_refs(indirect)} [dim](every column depends on these)[/]"
        )
    if not per_column:
        console.print("  [dim](no columns recorded)[/]")
    for column in per_column:
        console.print(f"  [bold]{escape(column['name'])}[/]")
        if column["upstream"]:
            console.print(f"    [dim]← reads[/] {_refs(column['upstream'])}")
        if column["downstream"]:
            console.print(f"    [dim]→ feeds[/] {_refs(column['downstream'])}")
        for whole in column.get("indirect_downstream", ()):
            console.print(
                f"    [dim]→ affects every column of[/] "
                f"{escape(whole['asset'] + _how(whole['transformations']))}"
            )
        if not (column["upstream"] or column["downstream"] or column.get("indirect_downstream")):
            console.print("    [dim](no column lineage)[/]")


@app.command()
def impact(
    asset: str = typer.Argument(..., help="Asset name."),
    column: str | None = typer.Option(
        None,
        "--column",
        "-c",
        help="Only what depends on this column of ASSET: downstream columns, transitively.",
    ),
    home: Optional[str] = HomeOption,  # noqa: UP045
    json_output: bool = JsonOption,
    no_color: bool = NoColorOption,
) -> None:
    """Impact analysis: everything downstream of ASSET, publishing endpoints, dashboards, owners,
    and the use at stake (jobs and dashboards reading what it reaches, per day).

    With --column, every downstream column (and its asset) that depends on that column.

    Example: lakelens lineage impact glucose_entries --column reading_mg_dl
    """
    from rich.markup import escape

    from lakelens.analysis.assets import resolve_asset
    from lakelens.analysis.lineage import impact as compute_impact
    from lakelens.analysis.lineage import load_graph
    from lakelens.cli._common import make_console, open_store
    from lakelens.cli._output import print_json

    store = open_store(home)
    with store.reader() as conn:
        name = resolve_asset(conn, asset)
        graph = load_graph(conn)
        if column is not None:
            from lakelens.analysis.column_lineage import resolve_column

            column = resolve_column(conn, graph, name, column)
        else:
            from lakelens.analysis.usage import usage_at_stake

            result = compute_impact(graph, name)
            reach = [name, *result.direct, *(n for n, _ in result.transitive)]
            at_stake = usage_at_stake(conn, reach, now=time.time())
    if column is not None:
        _column_impact(graph, name, column, json_output, no_color)
        return
    if json_output:
        from lakelens.analysis.shapes import impact_dict

        print_json({**impact_dict(result, graph), "usage": at_stake.to_dict()})
        return
    from lakelens.cli._usage import render_at_stake

    console = make_console(no_color)
    console.print(f"[bold]Impact Analysis: {escape(name)}[/]\n")

    def line(n: str, depth: int | None = None) -> str:
        node = graph.nodes[n]
        text = f"  • {escape(n)} [dim]({node.kind})[/]"
        if depth and depth > 1:
            text += f" [dim]depth {depth}[/]"
        if node.owner:
            text += f" [dim]— owner {escape(node.owner)}[/]"
        return text

    console.print("[bold]Direct dependencies (depth 1):[/]")
    for n in result.direct[:LIST_LIMIT]:
        console.print(line(n))
    if len(result.direct) > LIST_LIMIT:
        console.print(
            f"  [dim]… and {len(result.direct) - LIST_LIMIT:,} more (all of them with --json)[/]"
        )
    if not result.direct:
        console.print("  [dim](none)[/]")
    external = set(result.external)
    transitive = [(n, d) for n, d in result.transitive if n not in external]
    if transitive:
        console.print("\n[bold]Transitive dependencies (depth 2+):[/]")
        for n, d in transitive[:LIST_LIMIT]:
            console.print(line(n, d))
        if len(transitive) > LIST_LIMIT:
            console.print(
                f"  [dim]… and {len(transitive) - LIST_LIMIT:,} more (all of them with --json)[/]"
            )
    if result.publishing:
        console.print("\n[bold]Publishing impact:[/]")
        for n in result.publishing[:LIST_LIMIT]:
            consumers = [c for c in graph.downstream.get(n, []) if c in external]
            target = f" → {escape(', '.join(consumers))}" if consumers else ""
            console.print(f"  [yellow]⚠[/] {escape(n)}{target}")
    if result.external:
        console.print("\n[bold]External consumers:[/]")
        for n in result.external[:LIST_LIMIT]:
            console.print(f"  [yellow]⚠[/] {line(n).removeprefix('  • ')}")
    if result.owners:
        console.print(f"\n[bold]Owners to notify:[/] {escape(', '.join(result.owners))}")
    for cycle in result.cycles:
        console.print(
            f"\n[magenta]Cycle in declared lineage:[/] {escape(' → '.join([*cycle, cycle[0]]))}"
        )
    totals = result.totals
    console.print("\n[bold]Total impact:[/]")
    console.print(f"  {_plural(totals['assets'], 'asset')} affected")
    console.print(f"  {_plural(totals['publishing_endpoints'], 'publishing endpoint')}")
    dashboards = sum(1 for n in result.external if graph.nodes[n].kind == "dashboard")
    others = len(result.external) - dashboards
    if dashboards:
        console.print(f"  {_plural(dashboards, 'external dashboard')}")
    if others or not dashboards:
        console.print(f"  {_plural(others, 'external consumer')}")
    render_at_stake(at_stake, console)
    console.print(f"\n[bold]Recommendation:[/] {result.recommendation}")


def _column_impact(graph: Any, name: str, column: str, json_output: bool, no_color: bool) -> None:
    from rich.markup import escape

    from lakelens.analysis.column_lineage import column_impact
    from lakelens.cli._common import make_console
    from lakelens.cli._output import print_json

    data = column_impact(graph, name, column).to_dict(graph)
    if json_output:
        print_json(data)
        return
    console = make_console(no_color)
    console.print(f"[bold]Column impact: {escape(name)}.{escape(column)}[/]\n")
    console.print("[bold]Downstream columns, by asset:[/]")
    how = {
        (c["asset"], c["column"]): _how(c.get("transformations"))
        for c in data["columns"]
        if c.get("transformations")
    }
    for entry in data["assets"][:LIST_LIMIT]:
        depth = f" [dim]depth {entry['depth']}[/]" if entry["depth"] > 1 else ""
        listed = ", ".join(c + how.get((entry["name"], c), "") for c in entry["columns"])
        console.print(
            f"  • {escape(entry['name'])} [dim]({entry['kind']})[/]{depth} — "
            f"{_plural(entry['count'], 'column')}: {escape(listed)}"
        )
    if len(data["assets"]) > LIST_LIMIT:
        more = len(data["assets"]) - LIST_LIMIT
        console.print(f"  [dim]… and {more:,} more (all of them with --json)[/]")
    if not data["assets"]:
        console.print("  [dim](none)[/]")
    if data["indirect"]:
        console.print(
            "\n[bold]Indirectly, every column (its rows are filtered, joined or grouped by it):[/]"
        )
        for entry in data["indirect"][:LIST_LIMIT]:
            depth = f" [dim]depth {entry['depth']}[/]" if entry["depth"] > 1 else ""
            via = entry["via"]
            if via["column"] is None:
                reason = f"reads {via['asset']}"
            else:
                reason = f"indirect: {via['asset']}.{via['column']}{_how(entry['transformations'])}"
            console.print(
                f"  • {escape(entry['name'])} [dim]({entry['kind']})[/]{depth} — {escape(reason)}"
            )
        if len(data["indirect"]) > LIST_LIMIT:
            more = len(data["indirect"]) - LIST_LIMIT
            console.print(f"  [dim]… and {more:,} more (all of them with --json)[/]")
    if data["unmapped"]:
        console.print("\n[bold]Downstream without column lineage (may depend on it):[/]")
        for entry in data["unmapped"][:LIST_LIMIT]:
            console.print(f"  [yellow]?[/] {escape(entry['name'])} [dim](reads {entry['via']})[/]")
    totals = data["totals"]
    console.print("\n[bold]Total impact:[/]")
    console.print(
        f"  {_plural(totals['columns'], 'column')} in {_plural(totals['assets'], 'asset')}"
    )
    if totals["indirect_assets"]:
        console.print(f"  {_plural(totals['indirect_assets'], 'asset')} indirectly (every column)")
    if totals["unmapped_assets"]:
        console.print(f"  {_plural(totals['unmapped_assets'], 'asset')} without column lineage")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@app.command()
def export(
    asset: str | None = typer.Argument(
        None, help="Only the lineage around this asset (default: the whole graph)."
    ),
    fmt: Format = typer.Option(Format.dot, "--format", help="dot (Graphviz), mermaid or json."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file instead of stdout."
    ),
    depth: int | None = typer.Option(
        None, "--depth", min=1, help="With ASSET: levels up and down to include."
    ),
    columns: bool = typer.Option(
        False, "--columns", help="DOT: label each edge with its column mapping."
    ),
    home: Optional[str] = HomeOption,  # noqa: UP045
) -> None:
    """Export lineage as Graphviz DOT, Mermaid (graph LR) or JSON, for docs and diagrams.

    A Mermaid export to a .md file is wrapped in a ```mermaid block. JSON edges carry their
    column mapping; DOT edges carry it as a tooltip (and as a label with --columns).

    Example: lakelens lineage export --format dot -o lineage.dot && dot -Tpng lineage.dot -o lineage.png
    """
    import json
    import sys

    from lakelens.analysis.assets import resolve_asset
    from lakelens.analysis.lineage import annotate, load_graph, neighbourhood
    from lakelens.cli._common import now, open_store
    from lakelens.cli._output import err_console
    from lakelens.export.lineage import to_dot, to_json, to_mermaid

    store = open_store(home)
    with store.reader() as conn:
        graph = load_graph(conn)
        name = resolve_asset(conn, asset) if asset is not None else None
        if name is not None:
            graph = neighbourhood(graph, name, depth)
        annotate(conn, graph, list(graph.nodes), now=now())
    if fmt is Format.dot:
        text = to_dot(graph, highlight=name, columns=columns)
    elif fmt is Format.mermaid:
        text = to_mermaid(graph)
        if output is not None and output.suffix.lower() in (".md", ".markdown"):
            text = f"```mermaid\n{text}```\n"
    else:
        text = json.dumps(to_json(graph), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        from lakelens.errors import LakelensError

        raise LakelensError(
            f"Cannot write {output}: {exc.strerror}; choose another --output path."
        ) from None
    err_console.print(
        f"Wrote {len(graph.nodes)} assets and {len(graph.edges())} edges to {output}."
    )
