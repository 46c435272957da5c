"""The list pages: `/runs` (runs newest first, paged by cursor) and `/assets` (the catalog).

They render what analysis/runs.py `list_runs` and analysis/assets.py `list_assets` return,
the same lists as `lakelens runs` and `lakelens assets`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from lakelens.server.pages import _page, _since

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelens.server.context import ServerContext

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

SINCE_CHOICES = ("1h", "6h", "24h", "7d", "30d")


def _query(params: dict[str, str | None], **extra: str) -> str:
    """The page's query string with the filters that are set, plus `extra`."""
    return urlencode({**{k: v for k, v in params.items() if v}, **extra})


def _runs(
    params: dict[str, str | None], cursor: str | None, limit: int
) -> Callable[[sa.Connection, ServerContext], dict[str, Any]]:
    def build(conn: sa.Connection, ctx: ServerContext) -> dict[str, Any]:
        from lakelens.analysis.assets import resolve_asset
        from lakelens.analysis.runs import RunFilter, list_runs
        from lakelens.model import RunStatus

        where = RunFilter(
            job=params["job"],
            status=params["status"],
            partition=params["partition"],
            since=_since(params["since"], ctx.clock(), "since") if params["since"] else None,
        )
        if params["asset"]:
            where.asset = resolve_asset(conn, params["asset"])
        page = list_runs(conn, where, limit=limit, cursor=cursor)
        return {
            "title": "Runs",
            "params": params,
            "page": page,
            "statuses": sorted(RunStatus.ALL),
            "since_choices": SINCE_CHOICES,
            "first_page": bool(cursor),
            "first_href": "/runs?" + _query(params),
            "next_href": "/runs?" + _query(params, cursor=page.next_cursor)
            if page.next_cursor
            else None,
        }

    return build


@router.get("/runs", response_class=HTMLResponse)
def runs_page(
    request: Request,
    job: str | None = Query(None),
    asset: str | None = Query(None),
    status: str | None = Query(None),
    partition: str | None = Query(None),
    since: str | None = Query(None),
    cursor: str | None = Query(None),
    limit: int = Query(50, ge=1, le=500),
) -> Response:
    params = {
        "job": job or None,
        "asset": asset or None,
        "status": status or None,
        "partition": partition or None,
        "since": since or None,
    }
    return _page(request, "runs.html", "runs", _runs(params, cursor or None, limit))


def _assets(
    params: dict[str, str | None], after: str | None, limit: int
) -> Callable[[sa.Connection, ServerContext], dict[str, Any]]:
    def build(conn: sa.Connection, ctx: ServerContext) -> dict[str, Any]:
        from lakelens.analysis.assets import (
            ASSET_STATUSES,
            AssetFilter,
            catalog_details,
            list_assets,
        )
        from lakelens.server import charts

        where = AssetFilter(
            search=params["q"],
            owner=params["owner"],
            kind=params["kind"],
            layer=params["layer"],
            status=params["status"],
        )
        page = list_assets(conn, where, now=ctx.clock(), limit=limit, after=after)
        details = catalog_details(conn, [a.name for a in page.assets])
        for name, found in details.items():
            trend = found["trend"]
            found["spark"] = (
                charts.sparkline(
                    trend, [False] * len(trend), width=90, height=22, label=f"Rows of {name}"
                )
                if len(trend) > 1
                else None
            )
        return {
            "title": "Assets",
            "details": details,
            "params": params,
            "page": page,
            "statuses": ASSET_STATUSES,
            "first_page": bool(after),
            "first_href": "/assets?" + _query(params),
            "next_href": "/assets?" + _query(params, after=page.next_after)
            if page.next_after
            else None,
        }

    return build


@router.get("/assets", response_class=HTMLResponse)
def assets_page(
    request: Request,
    q: str | None = Query(None),
    owner: str | None = Query(None),
    kind: str | None = Query(None),
    layer: str | None = Query(None),
    status: str | None = Query(None),
    after: str | None = Query(None),
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    params = {
        "q": q or None,
        "owner": owner or None,
        "kind": kind or None,
        "layer": layer or None,
        "status": status or None,
    }
    return _page(request, "assets.html", "assets", _assets(params, after, limit))
