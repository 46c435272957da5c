"""An asset's data in the read API: `GET /api/v1/assets/{name}/profiles` (`lakelens profile
--json`) and `GET /api/v1/assets/{name}/usage` (what `lakelens metrics asset --json` has under
`usage`; views are reported through `POST /api/v1/usage`, server/ingest.py).

Registered before the API's `/assets/{name:path}`, which would take "NAME/profiles" for a name.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from lakelens.server.security import require_read
from lakelens.server.shapes import json_response, jsonable

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_read)],
    tags=["read"],
    default_response_class=JSONResponse,
)


@router.get(
    "/assets/{name:path}/profiles",
    summary="An asset's latest column profiles, newest first, with the change of the latest",
    responses={404: {"description": "Unknown asset; `detail` suggests close names."}},
)
def get_profiles(
    request: Request,
    name: str,
    limit: int = Query(20, ge=1, le=500, description="At most N profiles."),
) -> Response:
    from lakelens.analysis.assets import resolve_asset
    from lakelens.analysis.profiles import profile_report, profiles

    ctx = request.app.state.ctx
    with ctx.store.connect() as conn:
        resolved = resolve_asset(conn, name)
        found = profiles(conn, resolved, limit=limit)
        report = profile_report(conn, resolved, history=2)
    return json_response(
        jsonable(
            {
                "asset": resolved,
                "profiles": [p.to_dict() for p in found],
                "latest_id": None if report.latest is None else report.latest.id,
                "previous_id": None if report.previous is None else report.previous.id,
                "changes": [c.to_dict() for c in report.changes],
            }
        )
    )


@router.get(
    "/assets/{name:path}/usage",
    summary="Who reads an asset (jobs) and shows it (dashboards), per day",
    responses={404: {"description": "Unknown asset; `detail` suggests close names."}},
)
def get_usage(
    request: Request,
    name: str,
    days: float = Query(7, gt=0, le=3660, description="The window: the last N days."),
) -> Response:
    from lakelens.analysis.assets import resolve_asset
    from lakelens.analysis.usage import asset_usage

    ctx = request.app.state.ctx
    with ctx.store.connect() as conn:
        resolved = resolve_asset(conn, name)
        usage = asset_usage(conn, resolved, now=ctx.clock(), days=days)
    return json_response(jsonable(usage.to_dict()))
