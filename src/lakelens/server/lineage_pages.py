"""The lineage pages: `/lineage` (the whole graph) and `/lineage/{asset}` (its neighbourhood
and impact), with `?column=COL` drawing that column's path over the graph.

They render what analysis/lineage.py and analysis/column_lineage.py return, the same answers
as `lakelens lineage show` and `lineage impact [--column]`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from lakelens.server import charts
from lakelens.server.pages import _page

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelens.analysis.lineage import Failure, LineageGraph
    from lakelens.server.context import ServerContext

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

# Past this many columns the column form asks for a name instead of offering a list.
COLUMN_CHOICES_MAX = 1000
# Past this many assets, /lineage draws what is failing and what it puts at risk (or, with
# nothing failing, what is stale) instead of the whole graph, and /lineage/ASSET the levels
# nearest to the asset: 10,000 nodes make an 11 MB page nobody can read (and took 9 s to
# lay out for an asset whose lineage they are). `?all=1` draws everything.
DRAW_ALL_MAX = 500
# How many assets that focused drawing holds at most.
FOCUS_MAX = 150
# The impact panel lists this many direct and further-down assets (its counts are of all).
IMPACT_LISTED = 200


def _lineage(
    name: str | None, column: str | None, everything: bool = False
) -> Callable[[sa.Connection, ServerContext], dict[str, Any]]:
    def build(conn: sa.Connection, ctx: ServerContext) -> dict[str, Any]:
        from lakelens.analysis.assets import resolve_asset
        from lakelens.analysis.column_lineage import UnknownColumnError, asset_columns
        from lakelens.analysis.lineage import (
            annotate,
            at_risk,
            failing_assets,
            find_cycles,
            impact,
            neighbourhood,
            remember,
        )
        from lakelens.server.column_views import column_path
        from lakelens.server.shapes import impact_dict

        now = ctx.clock()
        graph = ctx.graph(conn)
        failing = failing_assets(conn)
        resolved = None if name is None else resolve_asset(conn, name)
        focus = None
        if resolved is not None:
            # Kept with the graph, so that the drawing's layout is kept too.
            shown = remember(
                graph, ("neighbourhood", resolved), partial(neighbourhood, graph, resolved)
            )
            if not everything and len(shown.nodes) > DRAW_ALL_MAX:
                focus, shown = remember(
                    graph,
                    ("levels", resolved, DRAW_ALL_MAX),
                    partial(_nearest_levels, graph, resolved, len(shown.nodes)),
                )
        elif everything or len(graph.nodes) <= DRAW_ALL_MAX:
            shown = graph
        else:
            focus, shown = _focus(conn, graph, failing, now)
        annotate(conn, graph, list(shown.nodes), now=now)
        result = (
            remember(graph, ("impact", resolved), partial(impact, graph, resolved))
            if resolved
            else None
        )
        impacted = (
            {*result.direct, *(n for n, _ in result.transitive)} if result is not None else None
        )
        path = None
        problem = None
        status = 200
        if column and resolved is None:
            problem = "Choose an asset to trace one of its columns: /lineage/ASSET?column=COL."
            status = 400
        elif column and resolved is not None:
            try:
                path = column_path(conn, graph, resolved, column)
            except UnknownColumnError as exc:
                problem, status = str(exc), 404
        # Over the whole graph: a node shown here may be at risk from a failure drawn elsewhere.
        risks = {n: r for n, r in at_risk(graph, failing).items() if n in shown.nodes}
        health: dict[str, int] = {}
        for node in shown.nodes.values():
            key = charts._health(node.status, node.stale)
            health[key] = health.get(key, 0) + 1
        choices = asset_columns(conn, graph, resolved) if resolved else []
        return {
            "title": (
                f"Lineage of {resolved}" + (f".{path['column']}" if path else "")
                if resolved
                else "Lineage"
            ),
            "name": resolved,
            "svg": charts.lineage_svg(
                shown,
                selected=resolved,
                impacted=path["impacted"] if path else impacted,
                columns=path["marks"] if path else None,
                at_risk=risks,
            ),
            "at_risk": _risk_summary(risks),
            "total": len(graph.nodes),
            "shown": len(shown.nodes),
            "edges": len(shown.edges()),
            "health": health,
            "impact": impact_dict(result, graph) if result is not None else None,
            "impact_listed": IMPACT_LISTED,
            # The whole graph's cycles depend on its shape only: kept while it is unchanged.
            "cycles": remember(graph, ("cycles",), lambda: find_cycles(graph))
            if shown is graph
            else find_cycles(shown),
            # The focused whole graph offers every asset to go to, not only the drawn ones.
            "names": sorted(graph.nodes if focus and focus["reason"] != "levels" else shown.nodes),
            "focus": focus,
            "path": path,
            "problem": problem,
            "column_asked": column or "",
            "choices": choices if len(choices) <= COLUMN_CHOICES_MAX else None,
            "has_columns": bool(choices),
            "http_status": status,
        }

    return build


def _nearest_levels(
    graph: LineageGraph, name: str, whole: int
) -> tuple[dict[str, Any], LineageGraph]:
    """An asset whose lineage is too big to draw: the levels up and down nearest to it, as
    many as fit in DRAW_ALL_MAX assets (at least one)."""
    from lakelens.analysis.lineage import neighbourhood

    depth, shown = 1, neighbourhood(graph, name, depth=1)
    while True:
        wider = neighbourhood(graph, name, depth=depth + 1)
        if len(wider.nodes) > DRAW_ALL_MAX or len(wider.nodes) == len(shown.nodes):
            break
        depth, shown = depth + 1, wider
    return {"reason": "levels", "depth": depth, "whole": whole}, shown


def _focus(
    conn: sa.Connection, graph: LineageGraph, failing: dict[str, Failure], now: float
) -> tuple[dict[str, Any], LineageGraph]:
    """What a big graph's page draws: the failing assets, latest failure first, and what they
    put at risk, nearest first; with nothing failing, the stale assets, stalest first."""
    from lakelens.analysis.lineage import annotate, nearest_below, subgraph

    roots = sorted(
        (f for f in failing.values() if f.asset in graph.nodes),
        key=lambda f: (-(f.at or 0.0), f.asset),
    )
    names = [f.asset for f in roots]
    reason = "failing" if names else None
    if not names:
        annotate(conn, graph, list(graph.nodes), now=now)
        stale = [n for n in graph.nodes.values() if n.stale]
        stale.sort(key=lambda n: (-(n.age_seconds or 0.0) / (n.freshness_seconds or 1.0), n.name))
        names = [n.name for n in stale]
        reason = "stale" if names else None
    drawn = nearest_below(graph, names, FOCUS_MAX)
    return {"reason": reason, "roots": len(names)}, subgraph(graph, drawn)


def _risk_summary(risks: dict[str, list[str]]) -> dict[str, Any] | None:
    """For the legend: how many drawn assets are at risk, and from which failing ones."""
    if not risks:
        return None
    sources = sorted({source for found in risks.values() for source in found})
    return {"count": len(risks), "sources": sources}


def _column(column: str | None) -> str | None:
    """The asked column as given (names may hold spaces); the form's empty choice is none."""
    return column or None


@router.get("/lineage", response_class=HTMLResponse)
def lineage_page(
    request: Request,
    column: str | None = Query(None),
    everything: bool = Query(False, alias="all", description="Draw every asset, however many."),
    asset: str | None = Query(None, description="Go to this asset's lineage."),
) -> Response:
    if asset:  # the "go to an asset" form of the focused drawing (works without scripts)
        from urllib.parse import quote

        return RedirectResponse(f"/lineage/{quote(asset, safe='')}", status_code=303)
    return _page(request, "lineage.html", "lineage", _lineage(None, _column(column), everything))


@router.get("/lineage/{name:path}", response_class=HTMLResponse)
def lineage_asset_page(
    request: Request,
    name: str,
    column: str | None = Query(None),
    everything: bool = Query(False, alias="all", description="Draw its whole lineage."),
) -> Response:
    return _page(request, "lineage.html", "lineage", _lineage(name, _column(column), everything))
