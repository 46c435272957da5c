"""The asset page, `/assets/{name}`: an asset's runs, durations and rows, schema and its
changes, checks, column lineage, data profile, neighbourhood, downstream usage and whether a
failing asset upstream puts it at risk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from lakelens.server import charts
from lakelens.server.pages import _count, _dur, _freshness, _page, _short, _when

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelens.server.context import ServerContext

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _schema_view(
    conn: sa.Connection, name: str, tags: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The latest columns with their documented descriptions (dbt YAML), and what changed
    since the previous distinct schema."""
    import json

    from lakelens.integrations.dbt import COLUMN_DESCRIPTIONS_TAG
    from lakelens.store import reads

    snapshots = reads.schema_snapshots(conn, asset=name)
    if not snapshots:
        return None
    try:
        described = json.loads((tags or {}).get(COLUMN_DESCRIPTIONS_TAG) or "{}")
    except (TypeError, ValueError):
        described = {}
    if not isinstance(described, dict):
        described = {}
    latest = snapshots[-1]
    previous = next((s for s in reversed(snapshots) if s.hash != latest.hash), None)
    changed_at = None
    if previous is not None:
        # The first snapshot with the latest hash after the previous schema: when it changed.
        index = snapshots.index(previous)
        changed_at = next((s.time for s in snapshots[index + 1 :] if s.hash == latest.hash), None)
    before = dict(previous.columns) if previous else {}
    columns = []
    for column, kind in latest.columns:
        change = None
        if previous is not None:
            if column not in before:
                change = "added"
            elif before[column] != kind:
                change = f"type was {before[column]}"
        description = described.get(column)
        columns.append(
            {
                "name": column,
                "type": kind,
                "change": change,
                "description": description if isinstance(description, str) else None,
            }
        )
    removed = [c for c in before if c not in dict(latest.columns)]
    return {
        "columns": columns,
        "removed": removed,
        "changed_at": changed_at,
        "since": snapshots[0].time,
        "versions": len({s.hash for s in snapshots}),
        "hash": latest.hash,
    }


def _distribution(conn: sa.Connection, name: str, run_id: str | None) -> list[dict[str, Any]]:
    """Numeric statistics the latest checks recorded (mean, std, min, max, nulls …)."""
    from lakelens.store import reads

    if run_id is None:
        return []
    figures = []
    for result in reads.check_results(conn, run_id=run_id):
        if result.asset != name:
            continue
        for key, value in sorted(result.attributes.items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                figures.append({"check": result.name, "name": key, "value": value})
    return figures


def _risk(
    graph: Any, name: str, sources: list[str], failing: dict[str, Any]
) -> dict[str, Any] | None:
    """Why `name` is at risk: the nearest failing asset above it, and the others."""
    if not sources:
        return None
    nearest = failing[sources[0]]
    return {
        "asset": nearest.asset,
        "direct": nearest.asset in graph.upstream.get(name, []),
        "at": nearest.at,
        "run_id": nearest.run_id,
        "others": sources[1:],
    }


def _asset(name: str, runs: int) -> Callable[[sa.Connection, ServerContext], dict[str, Any]]:
    def build(conn: sa.Connection, ctx: ServerContext) -> dict[str, Any]:
        from lakelens.analysis.asset_metrics import asset_metrics
        from lakelens.analysis.assets import resolve_asset
        from lakelens.analysis.lineage import annotate, at_risk, failing_assets, neighbourhood
        from lakelens.server.column_views import columns_section
        from lakelens.server.profile_views import profile_section
        from lakelens.server.ticks import count_ticks
        from lakelens.server.usage_views import usage_section

        now = ctx.clock()
        resolved = resolve_asset(conn, name)
        metrics = asset_metrics(conn, resolved, runs=runs, now=now)
        graph = ctx.graph(conn)
        hood = neighbourhood(graph, resolved, depth=1)
        annotate(conn, graph, list(hood.nodes), now=now)
        node = graph.nodes[resolved]
        failing = failing_assets(conn)
        risks = at_risk(graph, failing)
        newest_first = metrics.runs
        oldest_first = list(reversed(newest_first))
        finished = [r for r in newest_first if r.status in ("success", "failure")]
        duration_bars = [
            charts.Bar(
                r.duration_seconds,
                failed=r.status == "failure",
                href=f"/runs/{quote(r.run_id, safe='')}",
                title=(
                    f"{_when(r.start_time)} — {r.status}, {_dur(r.duration_seconds)}"
                    + (f"\n{r.error_type}: {r.error_message}" if r.error_type else "")
                ),
            )
            for r in oldest_first
        ]
        rows_bars = [
            charts.Bar(
                None if r.rows is None else float(r.rows),
                failed=r.status == "failure",
                href=f"/runs/{quote(r.run_id, safe='')}",
                title=f"{_when(r.start_time)} — {r.status}, "
                + ("no rows recorded" if r.rows is None else f"{r.rows:,} rows"),
            )
            for r in oldest_first
        ]
        durations = [r.duration_seconds for r in finished if r.duration_seconds is not None]
        first = _short(oldest_first[0].start_time) if oldest_first else ""
        last = _short(oldest_first[-1].start_time) if oldest_first else ""
        return {
            "title": resolved,
            "name": resolved,
            "m": metrics,
            "node": node,
            "fresh": _freshness(node),
            "runs_param": runs,
            "counts": {
                "runs": len(newest_first),
                "success": sum(1 for r in newest_first if r.status == "success"),
                "failure": sum(1 for r in newest_first if r.status == "failure"),
                "max": max(durations, default=None),
            },
            "duration_chart": charts.bar_chart(
                duration_bars,
                label=f"Duration per run of {resolved}, failures marked",
                reference=metrics.avg_duration,
                start_label=first,
                end_label=last,
            ),
            "rows_chart": charts.bar_chart(
                rows_bars,
                label=f"Rows per run of {resolved}",
                fmt=_count,
                ticks=count_ticks,
                tick_fmt=_count,
                reference=metrics.avg_rows,
                start_label=first,
                end_label=last,
            ),
            "schema": _schema_view(conn, resolved, node.tags),
            "columns": columns_section(conn, graph, resolved),
            "profile": profile_section(conn, resolved),
            "usage": usage_section(conn, resolved, now=now),
            "distribution": _distribution(
                conn, resolved, newest_first[0].run_id if newest_first else None
            ),
            "upstream": [graph.nodes[n] for n in graph.upstream.get(resolved, [])],
            "downstream": [graph.nodes[n] for n in graph.downstream.get(resolved, [])],
            "mini_lineage": charts.lineage_svg(
                hood,
                selected=resolved,
                impacted=set(hood.downstream.get(resolved, [])),
                at_risk=risks,
            ),
            "risk": _risk(graph, resolved, risks.get(resolved, []), failing),
            "now": now,
        }

    return build


@router.get("/assets/{name:path}", response_class=HTMLResponse)
def asset_page(request: Request, name: str, runs: int = Query(50, ge=1, le=1000)) -> Response:
    return _page(request, "asset.html", "assets", _asset(name, runs))
