"""Whose clock the dashboard reads in: the viewer's `?tz=` (kept in a cookie), else the server's.

The server's zone is LAKELENS_TIMEZONE, read once when the app is created (UTC by default; a
bad name stops `lakelens serve` with one line). A viewer may pick another with
`?tz=Europe/Paris`, remembered in the `lakelens_tz` cookie; `?tz=` alone goes back to the
server's zone. An unknown zone is ignored with a notice on the page, never an error.
Only what people read changes: data-value attributes, <time datetime> and the API stay UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import Request, Response

__all__ = [
    "CHOICES",
    "COOKIE",
    "View",
    "choices",
    "current_zone",
    "remember",
    "view_of",
    "viewing",
    "zone_name",
]

COOKIE = "lakelens_tz"
# Offered in the footer's picker, with the server's zone and the viewer's own.
CHOICES = (
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
)
# IANA names are letters, digits and _+-/; nothing else reaches the zone database.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-/]{0,63}")
_CURRENT: ContextVar[tzinfo | None] = ContextVar("lakelens_view_zone", default=None)


def zone_name(zone: tzinfo) -> str:
    """'Europe/Paris', 'UTC', or the abbreviation of a zone without a name ('local')."""
    if zone is timezone.utc:
        return "UTC"
    key = getattr(zone, "key", None)
    return str(key) if key else (datetime.now(zone).tzname() or "UTC")


@dataclass(frozen=True)
class View:
    """The zone one request is shown in, and what to tell the viewer and their browser."""

    zone: tzinfo
    # A sentence when the asked zone was not understood.
    notice: str | None = None
    # The cookie to set: a zone name, "" to forget it, None to leave it.
    cookie: str | None = None
    # The viewer picked the zone (?tz= or the cookie), rather than the server's default.
    chosen: bool = False

    @property
    def name(self) -> str:
        return zone_name(self.zone)

    @property
    def label(self) -> str:
        """The abbreviation in force now: 'CET', 'CEST', 'UTC'."""
        return "UTC" if self.zone is timezone.utc else (datetime.now(self.zone).tzname() or "")

    @property
    def offset_seconds(self) -> int:
        """The zone's offset from UTC now (the live log tail formats arriving records with it)."""
        offset = datetime.now(self.zone).utcoffset()
        return 0 if offset is None else int(offset.total_seconds())


def _parse(text: str) -> tzinfo | None:
    from lakelens.display import parse_zone
    from lakelens.errors import InvalidArgumentError

    if not _NAME.fullmatch(text):
        return None
    try:
        return parse_zone(text, source="?tz=")
    except InvalidArgumentError:
        return None


def _unknown(asked: str, fallback: tzinfo) -> str:
    shown = asked if len(asked) <= 64 else asked[:63] + "…"
    return (
        f"Unknown time zone {shown!r}: use an IANA name such as Europe/Paris or "
        f"America/New_York, or UTC. Times are shown in {zone_name(fallback)}."
    )


def view_of(request: Request, default: tzinfo) -> View:
    """The zone `request` asks for (?tz=, then the cookie), else `default`; cached per request."""
    cached = getattr(request.state, "lakelens_view", None)
    if isinstance(cached, View):
        return cached
    view = _resolve(request, default)
    request.state.lakelens_view = view
    return view


def _resolve(request: Request, default: tzinfo) -> View:
    asked = request.query_params.get("tz")
    kept = request.cookies.get(COOKIE)
    kept_zone = _parse(kept) if kept else None
    if asked is not None:
        asked = asked.strip()
        if asked in ("", "default"):
            return View(default, cookie="" if kept is not None else None)
        zone = _parse(asked)
        if zone is not None:
            return View(zone, cookie=asked, chosen=True)
        fallback = kept_zone or default
        return View(fallback, notice=_unknown(asked, fallback), chosen=kept_zone is not None)
    if kept is None:
        return View(default)
    if kept_zone is None:
        return View(default, notice=_unknown(kept, default), cookie="")
    return View(kept_zone, chosen=True)


def choices(view: View, default: tzinfo) -> list[tuple[str, str]]:
    """The footer picker's options as (value, text); the value "" is the server's zone."""
    names = list(dict.fromkeys([*CHOICES, view.name] if view.chosen else CHOICES))
    return [("", f"server's ({zone_name(default)})"), *((n, n) for n in names)]


def remember(response: Response, view: View) -> None:
    """Set or forget the viewer's zone cookie as `view` says."""
    if view.cookie is None:
        return
    if view.cookie == "":
        response.delete_cookie(COOKIE, path="/", samesite="lax")
    else:
        response.set_cookie(
            COOKIE, view.cookie, max_age=365 * 86400, path="/", samesite="lax", httponly=True
        )


@contextmanager
def viewing(view: View) -> Iterator[None]:
    """Format moments in `view`'s zone while the block runs (this request's thread only)."""
    token = _CURRENT.set(view.zone)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current_zone() -> tzinfo:
    """The zone of the page being rendered (UTC outside a request)."""
    return _CURRENT.get() or timezone.utc
