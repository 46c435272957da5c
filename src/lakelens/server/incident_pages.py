"""The incident pages: `/incidents` (the list) and `/incidents/{id}` (one incident).

They render what alerts/triage.py reads, the same views as `lakelens incidents list|show`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from lakelens.server.pages import _error_page, _page, _PageError, _when
from lakelens.server.sessions import Grant, form_purpose

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelens.alerts.triage import IncidentView
    from lakelens.server.context import ServerContext

__all__ = ["STATUS_FILTERS", "router", "statuses_of"]

log = logging.getLogger("lakelens.server")
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
) -> Response:
    return _page(request, "incidents.html", "incidents", _list(status, asset))


# What the page says after a button did its work (?done=<action>); other values say nothing.
_DONE = {
    "acknowledge": "Acknowledged: no reminders are sent about it; its resolve still goes out.",
    "resolve": "Resolved: everyone who was told about it hears so.",
    "snooze": "Snoozed: nothing is sent about it until {until} (but its resolve).",
    "note": "Note added to the timeline.",
    "feedback": "Feedback recorded: its runs leave the learned baselines; its findings clear at "
    "the next evaluation.",
}
FORM_BYTES = 64 * 1024


def form_scope(incident_id: str) -> str:
    """What a form token on an incident's page is good for: that incident's buttons only."""
    return f"incident:{incident_id}"


def _detail(
    prefix: str,
    *,
    grant: Grant | None = None,
    can_act: bool = False,
    done: str | None = None,
    problem: tuple[int, str] | None = None,
) -> Callable[..., dict[str, Any]]:
    def build(conn: sa.Connection, ctx: ServerContext) -> dict[str, Any]:
        from lakelens.alerts.triage import incident
        from lakelens.errors import LakelensError

        try:
            view = incident(conn, prefix)
        except LakelensError as exc:  # unknown or ambiguous id: a page that is not there
            raise _PageError(404, "Not found", str(exc)) from None
        now = ctx.clock()
        notice = None
        if problem is not None:
            notice = {"tone": "bad", "text": problem[1]}
        elif done in _DONE:
            until = view.snoozed_until
            text = _DONE[done].format(until=_when(until) if until else "later")
            notice = {"tone": "ok", "text": text}
        return {
            "title": f"Incident: {view.title}",
            "i": view,
            "duration": _row(view, now)["duration"],
            "now": now,
            "can_act": can_act,
            "form_token": ctx.access.forms.issue(form_purpose(form_scope(view.id), grant))
            if can_act
            else "",
            "notice": notice,
            "http_status": problem[0] if problem else 200,
        }

    return build


def _can_act(request: Request, grant: Grant | None) -> bool:
    """Whether the page's buttons work for this request: a token (or session) with `admin`."""
    ctx: ServerContext = request.app.state.ctx
    return ctx.access.permits(grant, "admin")


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(request: Request, incident_id: str, done: str | None = Query(None)) -> Response:
    from lakelens.server.security import grant_of

    grant = grant_of(request)
    detail = _detail(incident_id, grant=grant, can_act=_can_act(request, grant), done=done)
    return _page(request, "incident.html", "incidents", detail)


@router.post("/incidents/{incident_id}/{action}", response_class=HTMLResponse)
async def incident_action(request: Request, incident_id: str, action: str) -> Response:
    """A button on the incident page: check it came from that page, act, and go back (303)."""
    from urllib.parse import parse_qsl, quote

    import anyio

    from lakelens.errors import StoreError
    from lakelens.server.incident_actions import ACTIONS, ActionError, perform
    from lakelens.server.security import clean, cross_site, grant_of, lacks, read_body

    ctx: ServerContext = request.app.state.ctx
    if action not in ACTIONS:
        return _error_page(request, _PageError(404, "Not found", f"No incident action {action!r}."))
    grant = grant_of(request)
    if not _can_act(request, grant):
        if grant is not None:
            return _error_page(
                request,
                _PageError(
                    403,
                    "Scope needed",
                    f"{lacks('admin')} Changing an incident needs a token with the 'admin' "
                    "scope, or `lakelens incidents` on the server.",
                ),
            )
        return _error_page(
            request,
            _PageError(
                401,
                "Token needed",
                "Changing an incident needs LAKELENS_API_TOKEN or a token with the 'admin' "
                "scope: sign in with one, use the API with it, or `lakelens incidents` on the "
                "server.",
            ),
            signin="/signin",
        )
    forged = cross_site(request)
    body = await read_body(request, limit=FORM_BYTES)
    fields: dict[str, object] = {}
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(key, value)
    token = fields.pop("csrf", None)
    if forged is None and not ctx.access.forms.valid(
        token if isinstance(token, str) else None, form_purpose(form_scope(incident_id), grant)
    ):
        forged = "no valid form token" if token else "no form token"
    if forged is not None:
        log.warning("refused %s on incident %s: %s", action, clean(incident_id, 64), forged)
        return _error_page(
            request,
            _PageError(
                403,
                "Refused",
                "This form did not come from this server's incident page, or it is too old: "
                "reload the incident page and try again.",
            ),
        )
    try:
        done = await anyio.to_thread.run_sync(
            lambda: perform(ctx, incident_id, action, fields, by="web")
        )
    except ActionError as exc:
        if exc.status == 404:
            return _error_page(request, _PageError(404, "Not found", str(exc)))
        problem = (exc.status, f"Nothing done: {exc}")
        detail = _detail(incident_id, grant=grant, can_act=True, problem=problem)
        return await anyio.to_thread.run_sync(
            lambda: _page(request, "incident.html", "incidents", detail)
        )
    except StoreError:
        return _error_page(
            request,
            _PageError(503, "Store unavailable", "The store is not reachable right now; retry."),
        )
    location = f"/incidents/{quote(done.incident_id, safe='')}?done={action}"
    return RedirectResponse(location, status_code=303)
