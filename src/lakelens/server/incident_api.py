"""The incidents in the read API: the same views as `lakelens incidents list|show --json`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from lakelens.server.security import masked, require_read
from lakelens.server.shapes import json_response, jsonable

__all__ = ["actions", "router"]

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_read)],
    tags=["read"],
    default_response_class=JSONResponse,
)
# The actions need the 'admin' scope, not 'read': each checks it first, itself.
actions = APIRouter(prefix="/api/v1", tags=["incidents"], default_response_class=JSONResponse)


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


# -- actions: the same as `lakelens incidents ack|resolve|snooze|note|feedback` -----------------

ACTION_BODY_BYTES = 64 * 1024
_ACTION_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad input: an unreadable duration, an empty note, an unknown kind."},
    401: {"description": "Missing or wrong bearer token."},
    403: {
        "description": "The token lacks the 'admin' scope, or the request was sent by another "
        "site's page (Origin, Referer or Sec-Fetch-Site)."
    },
    404: {"description": "No incident id starts with this prefix."},
    409: {"description": "The incident's state does not allow it (already resolved)."},
}
_BODIES = {
    "acknowledge": "No body needed.",
    "resolve": 'Optional `{"note": "why"}`, kept in the timeline.',
    "snooze": 'How long: `{"for": "2h"}` or `{"until": "2024-10-15T10:00Z"}`.',
    "note": '`{"text": "vendor ticket 4411"}`.',
    "feedback": '`{"kind": "false_positive" | "expected", "reason": "why"}` (reason optional).',
}


async def _fields(request: Request) -> dict[str, Any]:
    import json

    from fastapi import HTTPException

    from lakelens.server.security import read_body

    body = await read_body(request, limit=ACTION_BODY_BYTES)
    if not body.strip():
        return {}
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # A page on another site can POST text/plain without asking; JSON needs a preflight.
    if media != "application/json":
        raise HTTPException(415, "Send the body as application/json (or no body).")
    try:
        fields = json.loads(body)
    except ValueError:
        raise HTTPException(400, "The body is not valid JSON.") from None
    if not isinstance(fields, dict):
        raise HTTPException(400, "The body must be a JSON object.")
    return fields


async def _act(request: Request, incident_id: str, action: str) -> Response:
    import anyio

    from lakelens.server.incident_actions import ActionError, perform
    from lakelens.server.security import clean, cross_site, require_admin

    require_admin(request)
    forged = cross_site(request)
    if forged is not None:
        return json_response({"detail": f"Refused: {forged}."}, status_code=403)
    fields = await _fields(request)
    by = fields.pop("by", None)
    if by is not None and (not isinstance(by, str) or not by.strip()):
        return json_response({"detail": "'by' must be a non-empty string."}, status_code=400)
    ctx = request.app.state.ctx

    def work() -> Response:
        done = perform(ctx, incident_id, action, fields, by=clean(by, 64) if by else "api")
        return get_incident(request, done.incident_id)

    try:
        response: Response = await anyio.to_thread.run_sync(work)
    except ActionError as exc:
        return json_response({"detail": str(exc)}, status_code=exc.status)
    return response


def _action_route(action: str) -> None:
    async def endpoint(request: Request, incident_id: str) -> Response:
        return await _act(request, incident_id, action)

    endpoint.__name__ = f"post_incident_{action}"
    actions.add_api_route(
        f"/incidents/{{incident_id}}/{action}",
        endpoint,
        methods=["POST"],
        summary=f"{action.title()} an incident (`lakelens incidents "
        f"{'ack' if action == 'acknowledge' else action}`)",
        description=f"{_BODIES[action]} Needs a bearer token with the 'admin' scope when tokens "
        "are set; answers with "
        "the incident as `GET /api/v1/incidents/{id}` shows it.",
        responses=_ACTION_ERRORS,
        tags=["incidents"],
    )


for _action in ("acknowledge", "resolve", "snooze", "note", "feedback"):
    _action_route(_action)
