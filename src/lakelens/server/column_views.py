"""Column lineage on the dashboard: the asset page's Columns section and the lineage page's
column path, both from analysis/column_lineage.py (the same answers as `lineage show
--columns` and `lineage impact --column`), cut to a size a page can hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakelens.server.charts import ColumnMarks

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelens.analysis.lineage import LineageGraph

__all__ = ["column_path", "columns_section"]

# A 2,000-column table lists its first 200 columns, each with at most 20 upstream and 20
# downstream columns; a column path lists at most 200 assets with 20 columns each.
COLUMNS_SHOWN = 200
LINKS_SHOWN = 20
PATH_ASSETS_SHOWN = 200


def _cut(items: list[Any], limit: int) -> tuple[list[Any], int]:
    """The first `limit` items and how many were left off."""
    return items[:limit], max(0, len(items) - limit)


def columns_section(conn: sa.Connection, graph: LineageGraph, asset: str) -> dict[str, Any] | None:
    """Each known column of `asset` with what it reads and what reads it, and the importer's
    column-lineage status; None when neither columns nor a status are known."""
    from lakelens.analysis.column_lineage import column_neighbours, column_status

    every = column_neighbours(conn, graph, asset)
    status = column_status(graph, asset)
    if not every and status is None:
        return None
    shown, more = _cut(every, COLUMNS_SHOWN)
    rows = []
    for column in shown:
        upstream, upstream_more = _cut(column["upstream"], LINKS_SHOWN)
        downstream, downstream_more = _cut(column["downstream"], LINKS_SHOWN)
        rows.append(
            {
                "name": column["name"],
                "upstream": upstream,
                "upstream_more": upstream_more,
                "downstream": downstream,
                "downstream_more": downstream_more,
            }
        )
    return {
        "columns": rows,
        "total": len(every),
        "more": more,
        "mapped": sum(1 for c in every if c["upstream"] or c["downstream"]),
        "status": status,
    }


def _grouped(found: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """(asset, column, depth) nearest first → one entry per asset, nearest first."""
    assets: dict[str, dict[str, Any]] = {}
    for asset, column, depth in found:
        entry = assets.setdefault(asset, {"name": asset, "depth": depth, "columns": []})
        entry["columns"].append(column)
    return list(assets.values())


def _listed(groups: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    shown, more = _cut(groups, PATH_ASSETS_SHOWN)
    listed = []
    for group in shown:
        columns, left = _cut(group["columns"], LINKS_SHOWN)
        listed.append({**group, "count": len(group["columns"]), "columns": columns, "more": left})
    return listed, more


def column_path(
    conn: sa.Connection, graph: LineageGraph, asset: str, column: str
) -> dict[str, Any]:
    """Where `asset`.`column` comes from and what depends on it, with the marks that draw its
    path on the graph. Raises UnknownColumnError (with close names) for an unknown column."""
    from lakelens.analysis.column_lineage import (
        column_impact,
        column_index,
        column_sources,
        resolve_column,
    )

    resolved = resolve_column(conn, graph, asset, column)
    impact = column_impact(graph, asset, resolved)
    sources = column_sources(graph, asset, resolved)
    index = column_index(graph)
    start = (asset, resolved)
    below = {start, *((a, c) for a, c, _ in impact.columns)}
    above = {start, *((a, c) for a, c, _ in sources)}
    # Every mapping out of a column on the path leads to another column on it (the walks
    # follow them all), so these are exactly the edges the column flows along.
    edges = {
        (up, down) for up, col in below for down, _ in index.feeds.get(up, {}).get(col, ())
    } | {(up, down) for down, col in above for up, _ in index.reads.get(down, {}).get(col, ())}
    downstream, upstream = _grouped(impact.columns), _grouped(sources)
    notes: dict[str, list[str]] = {asset: [resolved]}
    for group in (*upstream, *downstream):
        notes.setdefault(group["name"], []).extend(
            c for c in group["columns"] if c not in notes[group["name"]]
        )
    shown_down, down_more = _listed(downstream)
    shown_up, up_more = _listed(upstream)
    maybe, maybe_more = _cut(
        [{"name": a, "via": via} for a, via in impact.unmapped], PATH_ASSETS_SHOWN
    )
    return {
        "asset": asset,
        "column": resolved,
        "downstream": shown_down,
        "downstream_more": down_more,
        "upstream": shown_up,
        "upstream_more": up_more,
        "maybe": maybe,
        "maybe_more": maybe_more,
        "totals": {
            **impact.totals,
            "upstream_columns": len(sources),
            "upstream_assets": len(upstream),
        },
        "impacted": {g["name"] for g in downstream} - {asset},
        "marks": ColumnMarks(
            feeds=frozenset(g["name"] for g in upstream) - {asset},
            maybe=frozenset(a for a, _ in impact.unmapped),
            edges=frozenset(edges),
            maybe_edges=frozenset((via, a) for a, via in impact.unmapped),
            notes=notes,
        ),
    }
