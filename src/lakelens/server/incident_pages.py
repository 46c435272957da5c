"""The incident pages: `/incidents` (the list) and `/incidents/{id}` (one incident).

They render what alerts/triage.py reads, the same views as `lakelens incidents list|show`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from lakelens.server.pages import _page, _PageError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelens.alerts.triage import IncidentView
    from lakelens.server.context import ServerContext

__all__ = ["STATUS_FILTERS", "router", "statuses_of"]

router = APIRouter(include_in_schema=False)

# What ?status= accepts; "all" lists open and acknowledged incidents before resolved ones.
STATUS_FILTERS = ("all", "open", "acknowledged", "resolved", "active")
_RESOLVED_SHOWN = 100
_FILTER_HINT = "use one of " + ", ".join(STATUS_FILTERS)


def statuses_of(status: str | None) -> tuple[str, ...] | None:
    """The incident statuses a ?status= value means (None: all of them, active first)."""
    from lakelens.errors import InvalidArgumentError

    value = (status or "all").strip().lower()
    if value == "all":
        return None
    if value == "active":
        return ("open", "acknowledged")
    if value not in STATUS_FILTERS:
        raise InvalidArgumentError(f"Unknown incident status {status!r}; {_FILTER_HINT}.")
    return (value,)


def _row(view: IncidentView, now: float) -> dict[str, Any]:
    end = view.resolved_at if view.resolved_at is not None else now
    return {"view": view, "duration": max(0.0, end - view.opened_at)}


def _list(status: str | None, asset: str | None) -> Callable[..., dict[str, Any]]:
    def build(conn: sa.Connection, ctx: ServerContext) -> dict[str, Any]:
        from lakelens.alerts.triage import incidents

        now = ctx.clock()
        statuses = statuses_of(status)
        name = asset or None
        if statuses is None:
            views = incidents(conn, asset=name) + incidents(
                conn, statuses=("resolved",), asset=name, limit=_RESOLVED_SHOWN
            )
        else:
            views = incidents(conn, statuses=statuses, asset=name)
        return {
            "title": "Incidents",
            "rows": [_row(v, now) for v in views],
            "status": (status or "all").strip().lower(),
            "filters": STATUS_FILTERS[:4],
            "asset": name,
            "open_count": sum(1 for v in views if v.status == "open"),
            "acknowledged_count": sum(1 for v in views if v.status == "acknowledged"),
            "resolved_shown": _RESOLVED_SHOWN,
            "now": now,
        }

    return build


@router.get("/incidents", response_class=HTMLResponse)
def incidents_page(
    request: Request,
    status: str | None = Query(None, description="open, acknowledged, resolved or all."),
    asset: str | None = Query(None, description="Only incidents about this asset."),
) -> HTMLResponse:
    return _page(request, "incidents.html", "incidents", _list(status, asset))


def _detail(prefix: str) -> Callable[..., dict[str, Any]]:
    def build(conn: sa.Connection, ctx: ServerContext) -> dict[str, Any]:
        from lakelens.alerts.triage import incident
        from lakelens.errors import LakelensError

        try:
            view = incident(conn, prefix)
        except LakelensError as exc:  # unknown or ambiguous id: a page that is not there
            raise _PageError(404, "Not found", str(exc)) from None
        now = ctx.clock()
        return {
            "title": f"Incident: {view.title}",
            "i": view,
            "duration": _row(view, now)["duration"],
            "now": now,
        }

    return build


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(request: Request, incident_id: str) -> HTMLResponse:
    return _page(request, "incident.html", "incidents", _detail(incident_id))
