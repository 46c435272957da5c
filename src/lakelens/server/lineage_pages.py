"""The lineage pages: `/lineage` (the whole graph) and `/lineage/{asset}` (its neighbourhood
and impact).

They render what analysis/lineage.py returns, the same answers as `lakelens lineage show` and
`lineage impact`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from lakelens.server import charts
from lakelens.server.pages import _page

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelens.server.context import ServerContext

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _lineage(name: str | None) -> Callable[[sa.Connection, ServerContext], dict[str, Any]]:
    def build(conn: sa.Connection, ctx: ServerContext) -> dict[str, Any]:
        from lakelens.analysis.assets import resolve_asset
        from lakelens.analysis.lineage import (
            annotate,
            find_cycles,
            impact,
            neighbourhood,
        )
        from lakelens.server.shapes import impact_dict

        now = ctx.clock()
        graph = ctx.graph(conn)
        resolved = None if name is None else resolve_asset(conn, name)
        shown = graph if resolved is None else neighbourhood(graph, resolved)
        annotate(conn, graph, list(shown.nodes), now=now)
        result = impact(graph, resolved) if resolved else None
        impacted = (
            {*result.direct, *(n for n, _ in result.transitive)} if result is not None else None
        )
        health: dict[str, int] = {}
        for node in shown.nodes.values():
            key = charts._health(node.status, node.stale)
            health[key] = health.get(key, 0) + 1
        return {
            "title": f"Lineage of {resolved}" if resolved else "Lineage",
            "name": resolved,
            "svg": charts.lineage_svg(shown, selected=resolved, impacted=impacted),
            "total": len(graph.nodes),
            "shown": len(shown.nodes),
            "edges": len(shown.edges()),
            "health": health,
            "impact": impact_dict(result, graph) if result is not None else None,
            "cycles": find_cycles(shown),
            "names": sorted(shown.nodes),
        }

    return build


@router.get("/lineage", response_class=HTMLResponse)
def lineage_page(request: Request) -> HTMLResponse:
    return _page(request, "lineage.html", "lineage", _lineage(None))


@router.get("/lineage/{name:path}", response_class=HTMLResponse)
def lineage_asset_page(request: Request, name: str) -> HTMLResponse:
    return _page(request, "lineage.html", "lineage", _lineage(name))
