"""How moments are shown to people: in one time zone, chosen for display only.

lakelens stores and exchanges UTC. What a person reads (CLI tables, log lines, the dashboard)
is shown in the display zone: `--tz` on the command line, else LAKELENS_TIMEZONE, else UTC.
An IANA name (`Europe/Paris`), `UTC`, or `local` (this machine's zone) are accepted.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone, tzinfo
from functools import lru_cache

from lakelens.errors import InvalidArgumentError

__all__ = ["TIMEZONE_ENV", "display_zone", "format_clock", "format_moment", "parse_zone"]

TIMEZONE_ENV = "LAKELENS_TIMEZONE"


def parse_zone(name: str, *, source: str = "--tz") -> tzinfo:
    """The zone a user named, or a one-line error saying what is accepted."""
    text = name.strip()
    if text.upper() in ("UTC", "Z", "GMT", ""):
        return timezone.utc
    if text.lower() == "local":
        local = datetime.now().astimezone().tzinfo
        return local if local is not None else timezone.utc
    return _named(text, source)


@lru_cache(maxsize=64)
def _named(text: str, source: str) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgumentError(
            f"Unknown time zone {text!r} in {source}: use an IANA name such as Europe/Paris "
            "or America/New_York, 'UTC', or 'local'"
        ) from None


def display_zone(name: str | None = None) -> tzinfo:
    """`name` when given, else LAKELENS_TIMEZONE, else UTC."""
    if name:
        return parse_zone(name)
    configured = os.environ.get(TIMEZONE_ENV, "").strip()
    return parse_zone(configured, source=TIMEZONE_ENV) if configured else timezone.utc


def _moment(moment: datetime | float) -> datetime:
    if isinstance(moment, (int, float)):
        return datetime.fromtimestamp(moment, tz=timezone.utc)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _label(zone: tzinfo, at: datetime) -> str:
    return "UTC" if zone is timezone.utc else (at.tzname() or "")


def format_moment(
    moment: datetime | float | None,
    zone: tzinfo | None = None,
    *,
    now: datetime | float | None = None,
    missing: str = "—",
) -> str:
    """'2026-12-07 14:03:05 CET'; within today (in `zone`) just '14:03:05 CET' when `now`
    is given. `zone` defaults to the display zone."""
    if moment is None:
        return missing
    zone = zone or display_zone()
    at = _moment(moment).astimezone(zone)
    label = _label(zone, at)
    if now is not None and _moment(now).astimezone(zone).date() == at.date():
        return f"{at:%H:%M:%S} {label}".rstrip()
    return f"{at:%Y-%m-%d %H:%M:%S} {label}".rstrip()


def format_clock(moment: datetime | float | None, zone: tzinfo | None = None) -> str:
    """The time of day in the display zone, without date or zone: '14:03:05'."""
    if moment is None:
        return "—"
    return f"{_moment(moment).astimezone(zone or display_zone()):%H:%M:%S}"
