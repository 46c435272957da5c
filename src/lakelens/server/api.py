"""The read API: JSON views of what `analysis/` computes, the same numbers as the CLI."""

from __future__ import annotations

from enum import Enum
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from lakelens.server.context import ServerContext
from lakelens.server.security import require_read
from lakelens.server.shapes import (
    json_response,
    jsonable,
    log_dict,
    run_dict,
    trace_dict,
    tree_dict,
)

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_read)],
    tags=["read"],
    default_response_class=JSONResponse,
)
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown asset or run; `detail` suggests close names."}
}


# JSON nests one level per depth: deeper trees are cut (marked truncated) at this depth.
MAX_DEPTH = 256


class Direction(str, Enum):
    up = "up"
    down = "down"
    both = "both"


def _ctx(request: Request) -> ServerContext:
    return request.app.state.ctx


def _since(text: str | None, now: float, name: str) -> float | None:
    from lakelens.units import parse_since

    return None if text is None else parse_since(text, now=now, name=name)


@router.get("/summary", summary="Platform summary of a period (`lakelens metrics summary`)")
def get_summary(
    request: Request,
    period: str = Query("24h", description="30m, 24h, 7d, … or an ISO start time (UTC)."),
) -> Response:
    from lakelens.analysis.summary import summary

    ctx = _ctx(request)
    since = _since(period, ctx.clock(), "period")
    with ctx.store.connect() as conn:
        result = summary(conn, since=since)  # type: ignore[arg-type]
    return json_response(jsonable({"period": period, **result.to_dict()}))


@router.get(
    "/assets",
    summary="The asset catalog with status and freshness (`lakelens assets --json`)",
)
def get_assets(
    request: Request,
    q: str | None = Query(None, description="Text in the name, description, owner or tags."),
    owner: str | None = Query(None, description="Only this owner's assets."),
    kind: str | None = Query(None, description="table, model, external, dashboard, …"),
    layer: str | None = Query(None, description="Only assets of this layer."),
    status: str | None = Query(
        None, description="failing, stale, healthy, running, canceled, skipped or never."
    ),
    after: str | None = Query(None, description="Names after this one (`next_after`)."),
    limit: int | None = Query(None, ge=1, le=100_000, description="At most N assets."),
) -> Response:
    from lakelens.analysis.assets import AssetFilter, list_assets

    ctx = _ctx(request)
    where = AssetFilter(search=q, owner=owner, kind=kind, layer=layer, status=status)
    with ctx.store.connect() as conn:
        page = list_assets(conn, where, now=ctx.clock(), limit=limit, after=after)
    return json_response(jsonable(page.to_dict()))


@router.get(
    "/assets/{name:path}",
    summary="One asset in depth (`lakelens metrics asset`) with its lineage neighbours",
    responses=_NOT_FOUND,
)
def get_asset(
    request: Request,
    name: str,
    runs: int = Query(20, ge=1, le=10_000, description="How many recent runs to analyse."),
) -> Response:
    from lakelens.analysis.asset_metrics import asset_document
    from lakelens.analysis.assets import resolve_asset

    ctx = _ctx(request)
    with ctx.store.connect() as conn:
        resolved = resolve_asset(conn, name)
        data = asset_document(conn, resolved, runs=runs, now=ctx.clock())
    return json_response(data)


@router.get("/runs", summary="Runs, newest first (`lakelens runs --json`)", responses=_NOT_FOUND)
def get_runs(
    request: Request,
    asset: str | None = Query(None, description="Only runs that materialized this asset."),
    job: str | None = Query(None, description="Only runs of this job."),
    status: str | None = Query(None, description="queued, started, success, failure, canceled."),
    partition: str | None = Query(None, description="Only runs of this partition."),
    since: str | None = Query(None, description="Started after: 30m, 2h, 7d or an ISO time."),
    cursor: str | None = Query(None, description="The `next_cursor` of the previous page."),
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    from lakelens.analysis.assets import resolve_asset
    from lakelens.analysis.runs import RunFilter, list_runs

    ctx = _ctx(request)
    where = RunFilter(
        job=job, status=status, partition=partition, since=_since(since, ctx.clock(), "since")
    )
    with ctx.store.connect() as conn:
        if asset is not None:
            where.asset = resolve_asset(conn, asset)
        page = list_runs(conn, where, limit=limit, cursor=cursor)
    return json_response(jsonable(page.to_dict()))


@router.get(
    "/runs/{run_id:path}",  # run ids may hold "/" (dbt, OpenLineage)
    summary="One run: its materializations, checks and spans (`lakelens trace`)",
    responses=_NOT_FOUND,
)
def get_run(request: Request, run_id: str) -> Response:
    from lakelens.analysis.runs import resolve_run_id
    from lakelens.analysis.trace import load_trace
    from lakelens.store import reads

    ctx = _ctx(request)
    with ctx.store.connect() as conn:
        full = resolve_run_id(conn, run_id)
        run = reads.runs(conn, run_id=full)[0]
        materializations = reads.materializations(conn, run_id=full)
        checks = reads.check_results(conn, run_id=full)
        trace = load_trace(conn, full)
    from lakelens.analysis.run_context import run_context

    return json_response(
        {
            # Plus when it was scheduled for and what ran it (OpenLineage nominalTime and
            # processing_engine facets).
            "run": {**run_dict(run, full=True), **run_context(run).as_dict()},
            "materializations": jsonable(materializations),
            "checks": jsonable(checks),
            "trace": jsonable(trace_dict(full, trace)),
        }
    )


def log_filter(
    conn: sa.Connection,
    *,
    now: float,
    asset: str | None,
    job: str | None,
    run_id: str | None,
    level: str | None,
    since: str | None,
    until: str | None,
    q: str | None,
) -> Any:
    """The LogFilter of the query parameters, with asset and run id resolved like the CLI."""
    from lakelens.analysis.assets import resolve_asset
    from lakelens.analysis.logs import LogFilter, parse_level
    from lakelens.analysis.runs import resolve_run_id

    return LogFilter(
        asset=None if asset is None else resolve_asset(conn, asset),
        job=job,
        run_id=None if run_id is None else resolve_run_id(conn, run_id),
        min_level=parse_level(level),
        since=_since(since, now, "since"),
        until=_since(until, now, "until"),
        grep=q or None,
    )


@router.get(
    "/logs",
    summary="Search logs, newest page first; follow `next_cursor` for older records",
    responses=_NOT_FOUND,
)
def get_logs(
    request: Request,
    asset: str | None = Query(None),
    job: str | None = Query(None),
    run_id: str | None = Query(None, description="A run id or a unique prefix."),
    level: str | None = Query(None, description="Minimum level: DEBUG … CRITICAL."),
    since: str | None = Query(None, description="30m, 2h, 7d or an ISO time."),
    until: str | None = Query(None),
    q: str | None = Query(None, description="Text in the message or attributes."),
    # Bounded like the store's ids: a larger number would overflow the database driver.
    cursor: int | None = Query(
        None, ge=1, le=2**63 - 1, description="`next_cursor` of the previous page."
    ),
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    from lakelens.analysis.logs import page

    ctx = _ctx(request)
    with ctx.store.connect() as conn:
        where = log_filter(
            conn,
            now=ctx.clock(),
            asset=asset,
            job=job,
            run_id=run_id,
            level=level,
            since=since,
            until=until,
            q=q,
        )
        # Pages follow the log id, not the time: records that arrive late are never skipped.
        records, more = page(conn, where, before_id=cursor, limit=limit)
    return json_response(
        {
            "records": [log_dict(r) for r in records],
            "next_cursor": records[0].id if more and records else None,
        }
    )


@router.get("/lineage", summary="The whole lineage graph (`lakelens lineage export --format json`)")
def get_lineage_graph(request: Request) -> Response:
    from lakelens.analysis.lineage import annotate
    from lakelens.export.lineage import to_json

    ctx = _ctx(request)
    with ctx.store.connect() as conn:
        graph = ctx.graph(conn)
        annotate(conn, graph, list(graph.nodes), now=ctx.clock())
    return json_response(jsonable(to_json(graph)))


@router.get(
    "/lineage/{name:path}/impact",
    summary="Impact analysis (`lakelens lineage impact`)",
    responses=_NOT_FOUND,
)
def get_impact(
    request: Request,
    name: str,
    column: str | None = Query(
        None,
        description="Only what depends on this column (`lakelens lineage impact --column`).",
    ),
) -> Response:
    from lakelens.analysis.assets import resolve_asset
    from lakelens.analysis.usage import usage_at_stake
    from lakelens.server.impact import impact_answer, impact_response

    ctx = _ctx(request)
    with ctx.store.connect() as conn:
        resolved = resolve_asset(conn, name)
        graph = ctx.graph(conn)
        if column is not None:
            from lakelens.analysis.column_lineage import column_impact, resolve_column

            found = resolve_column(conn, graph, resolved, column)
            return json_response(column_impact(graph, resolved, found).to_dict(graph))
        # Computed and encoded once per graph: the cached graph is replaced when lineage changes.
        body, reach = impact_answer(graph, resolved)
        at_stake = usage_at_stake(conn, reach, now=ctx.clock())
    return impact_response(body, at_stake.to_dict())


@router.get(
    "/lineage/{name:path}",
    summary="Upstream and downstream trees of an asset (`lakelens lineage show`)",
    responses=_NOT_FOUND,
)
def get_lineage(
    request: Request,
    name: str,
    direction: Direction = Query(Direction.both),
    depth: int | None = Query(
        None, ge=1, le=MAX_DEPTH, description=f"Levels to include (at most {MAX_DEPTH})."
    ),
    columns: bool = Query(
        False, description="Also each column's upstream and downstream columns (`--columns`)."
    ),
) -> Response:
    from lakelens.analysis.assets import resolve_asset
    from lakelens.analysis.column_lineage import (
        column_neighbours,
        column_status,
        indirect_inputs,
    )
    from lakelens.analysis.lineage import annotate, column_lineage, find_cycles, tree

    ctx = _ctx(request)
    with ctx.store.connect() as conn:
        resolved = resolve_asset(conn, name)
        graph = ctx.graph(conn)
        trees = {
            d: tree(graph, resolved, d, depth or MAX_DEPTH)
            for d in ("up", "down")
            if direction.value in (d, "both")
        }
        shown: set[str] = set()
        stack = list(trees.values())
        while stack:
            node = stack.pop()
            shown.add(node.name)
            stack.extend(node.children)
        annotate(conn, graph, shown, now=ctx.clock())
        per_column = column_neighbours(conn, graph, resolved) if columns else None
    first = trees.get("up") or trees["down"]
    data: dict[str, Any] = {
        "asset": resolved,
        "node": tree_dict(first, graph) | {"children": []},
        "upstream": tree_dict(trees["up"], graph)["children"] if "up" in trees else None,
        "downstream": tree_dict(trees["down"], graph)["children"] if "down" in trees else None,
        "cycles": find_cycles(graph, shown),
        "column_lineage": column_lineage(graph, shown),
    }
    if per_column is not None:
        data["columns"] = per_column
        data["indirect_inputs"] = indirect_inputs(graph, resolved)
        data["column_lineage_status"] = column_status(graph, resolved)
    # Plain data already, and possibly deep: no jsonable() walk.
    return json_response(data)
