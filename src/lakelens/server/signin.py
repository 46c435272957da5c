"""Signing in to a token-protected dashboard: the form (GET/POST /signin) and POST /signout.

A valid token with the `read` scope starts a session (server/sessions.py: a signed cookie,
nothing stored); a wrong one gets the form again with a 401, and an address that failed
five times within a minute waits (429 with Retry-After). Neither the token nor the cookie
is ever logged: log lines name the token's `name` and the client's address only.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from lakelens.server.pages import _error_page, _html, _PageError
from lakelens.server.security import clean, cross_site, grant_of, lacks, read_body
from lakelens.server.sessions import (
    COOKIE,
    clear_session_cookie,
    form_purpose,
    safe_next,
    set_session_cookie,
)

if TYPE_CHECKING:
    from lakelens.server.context import ServerContext

__all__ = ["router"]

log = logging.getLogger("lakelens.server")
router = APIRouter(include_in_schema=False)

FORM_BYTES = 16 * 1024
# What the sign-in form's own form token is for (it is issued before there is a session).
SIGNIN = "signin"
NOT_VALID = "That token is not valid."


def _client(request: Request) -> str:
    """The client's address (uvicorn takes it from X-Forwarded-For of a trusted proxy)."""
    return request.client.host if request.client else "-"


def _secure(request: Request) -> bool:
    """Whether the browser reached us over TLS (directly, or through a trusted proxy that says
    so in X-Forwarded-Proto: uvicorn trusts FORWARDED_ALLOW_IPS, loopback by default)."""
    return request.url.scheme == "https"


def _hours(seconds: int) -> str:
    hours = seconds / 3600
    return f"{hours:g} hour{'s' if hours != 1 else ''}"


def _form(
    request: Request,
    next_path: str,
    *,
    problem: str | None = None,
    status: int = 200,
    retry_after: int | None = None,
) -> Response:
    ctx: ServerContext = request.app.state.ctx
    response = _html(
        request,
        "signin.html",
        {
            "title": "Sign in",
            "nav": "signin",
            "bare": True,
            "next": next_path,
            "problem": problem,
            "form_token": ctx.access.forms.issue(SIGNIN),
            "hours": _hours(ctx.access.sessions.seconds),
        },
        status=status,
    )
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@router.get("/signin")
def signin_page(request: Request, next: str | None = Query(None)) -> Response:
    """The sign-in form; straight on to `next` when there is nothing to sign in to."""
    ctx: ServerContext = request.app.state.ctx
    target = safe_next(next)
    if not ctx.access.enabled:
        return RedirectResponse(target, status_code=303)
    grant = grant_of(request)
    if grant is not None and grant.session is not None and grant.has("read"):
        return RedirectResponse(target, status_code=303)
    return _form(request, target)


async def _fields(request: Request) -> dict[str, str]:
    from urllib.parse import parse_qsl

    body = await read_body(request, limit=FORM_BYTES)
    fields: dict[str, str] = {}
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(key, value)
    return fields


@router.post("/signin")
async def signin(request: Request) -> Response:
    """Check the token; a valid one with `read` starts a session and goes on to `next`."""
    ctx: ServerContext = request.app.state.ctx
    client = _client(request)
    if not ctx.access.enabled:
        return RedirectResponse("/", status_code=303)
    forged = cross_site(request)
    if forged is not None:
        log.warning("refused a sign-in from %s: %s", clean(client, 64), forged)
        return _form(
            request,
            "/",
            problem="This form did not come from this server; sign in from its own page.",
            status=403,
        )
    # Before the body is read: a client that used up its tries learns nothing more.
    wait = ctx.signin_failures.retry_after(client)
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        return _form(
            request,
            "/",
            problem=f"Too many failed sign-ins from your address: try again in {seconds} s.",
            status=429,
            retry_after=seconds,
        )
    fields = await _fields(request)
    target = safe_next(fields.get("next"))
    if not ctx.access.forms.valid(fields.get("csrf"), SIGNIN):
        return _form(
            request,
            target,
            problem="This form is too old or did not come from this server; sign in again.",
            status=403,
        )
    given = fields.get("token", "")
    entry = ctx.access.token(given) if given.strip() else None
    if entry is None:
        ctx.signin_failures.fail(client)
        log.warning("failed sign-in from %s", clean(client, 64))
        return _form(request, target, problem=NOT_VALID, status=401)
    if "read" not in entry.scopes:
        log.warning(
            "sign-in from %s with token %s refused: it lacks the 'read' scope",
            clean(client, 64),
            entry.name,
        )
        return _form(
            request,
            target,
            problem=f"{lacks('read')} It can send events or act through the API, but cannot "
            "open the dashboard.",
            status=403,
        )
    response = RedirectResponse(target, status_code=303)
    value = ctx.access.sessions.issue(entry)
    set_session_cookie(
        response, value, max_age=ctx.access.sessions.seconds, secure=_secure(request)
    )
    log.info("signed in with token %s from %s", entry.name, clean(client, 64))
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    """End this browser's session (the form in the page header) and show the sign-in form."""
    ctx: ServerContext = request.app.state.ctx
    session = ctx.access.sessions.open(request.cookies.get(COOKIE))
    fields = await _fields(request)
    if session is not None:
        forged = cross_site(request)
        if forged is None and not ctx.access.forms.valid(
            fields.get("csrf"), form_purpose("signout", session)
        ):
            forged = "no valid form token" if fields.get("csrf") else "no form token"
        if forged is not None:
            log.warning("refused a sign-out from %s: %s", clean(_client(request), 64), forged)
            return _error_page(
                request,
                _PageError(
                    403,
                    "Refused",
                    "This sign-out did not come from this server's page, or the page is too "
                    "old: reload it and try again.",
                ),
            )
        log.info("signed out token %s from %s", session.name, clean(_client(request), 64))
    response = RedirectResponse("/signin", status_code=303)
    clear_session_cookie(response, secure=_secure(request))
    return response
