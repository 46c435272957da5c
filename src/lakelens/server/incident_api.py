"""The incidents in the read API: the same views as `lakelens incidents list|show --json`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from lakelens.server.security import masked, require_read
from lakelens.server.shapes import json_response, jsonable

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_read)],
    tags=["read"],
    default_response_class=JSONResponse,
)


def _shown(view: Any) -> dict[str, Any]:
    data: dict[str, Any] = view.to_dict()
    for delivery in data["deliveries"]:
        if delivery.get("last_error"):
            delivery["last_error"] = masked(delivery["last_error"])
    return data


@router.get(
    "/incidents",
    summary="Incidents, newest first (`lakelens incidents list`)",
    responses={400: {"description": "An unknown status or an unreadable `since`."}},
)
def get_incidents(
    request: Request,
    status: str = Query(
        "active",
        description="active (open and acknowledged), open, acknowledged, resolved or all.",
    ),
    asset: str | None = Query(None, description="Only incidents about this asset."),
    since: str | None = Query(None, description="Opened after: 30m, 2h, 7d or an ISO time."),
    limit: int = Query(200, ge=1, le=1000),
) -> Response:
    from lakelens.alerts.triage import STATUSES, incidents
    from lakelens.server.incident_pages import statuses_of
    from lakelens.units import parse_since

    ctx = request.app.state.ctx
    statuses = statuses_of(status) or STATUSES
    start = None if since is None else parse_since(since, now=ctx.clock(), name="since")
    with ctx.store.connect() as conn:
        views = incidents(conn, statuses=statuses, since=start, asset=asset, limit=limit)
    return json_response(jsonable({"incidents": [_shown(v) for v in views]}))


@router.get(
    "/incidents/{incident_id}",
    summary="One incident with its findings, timeline and deliveries (`lakelens incidents show`)",
    responses={404: {"description": "No incident id starts with this prefix."}},
)
def get_incident(request: Request, incident_id: str) -> Response:
    from lakelens.alerts.triage import incident
    from lakelens.errors import LakelensError

    ctx = request.app.state.ctx
    with ctx.store.connect() as conn:
        try:
            view = incident(conn, incident_id)
        except LakelensError as exc:  # unknown or ambiguous prefix
            return json_response({"detail": str(exc)}, status_code=404)
    return json_response(jsonable(_shown(view)))
