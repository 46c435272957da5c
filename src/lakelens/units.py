"""Parsing of the small value languages users type: durations, severities, percentages."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from lakelens.errors import InvalidArgumentError

__all__ = [
    "SEVERITIES",
    "format_bytes",
    "format_count",
    "format_duration",
    "parse_duration",
    "parse_percent",
    "parse_severity",
    "require_count",
]

_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*", re.IGNORECASE)
DURATION_FORMS = (
    "a number of seconds, a timedelta, or text like '90s', '30m', '2h', '1h30m', '7d', '2 hours'"
)


def parse_duration(value: object, *, name: str = "duration") -> float:
    """Return seconds for `value`; raise InvalidArgumentError naming `name` when it is not a duration."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise InvalidArgumentError(f"Invalid {name}={value!r}: expected {DURATION_FORMS}.")
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_duration_text(value, name)
    else:
        raise InvalidArgumentError(f"Invalid {name}={value!r}: expected {DURATION_FORMS}.")
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidArgumentError(
            f"Invalid {name}={value!r}: it must be positive ({DURATION_FORMS})."
        )
    return seconds


def _parse_duration_text(text: str, name: str) -> float:
    stripped = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", stripped):
        return float(stripped)
    pos, total = 0, 0.0
    while pos < len(stripped):
        match = _PART.match(stripped, pos)
        if not match or match.group(2).lower() not in _UNIT_SECONDS:
            raise InvalidArgumentError(f"Invalid {name}={text!r}: expected {DURATION_FORMS}.")
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        pos = match.end()
    if pos == 0:
        raise InvalidArgumentError(f"Invalid {name}={text!r}: expected {DURATION_FORMS}.")
    return total


def format_duration(seconds: float) -> str:
    """Render seconds the way people say them: '850ms', '5.2s', '45s', '2.3m', '2.3h', '3.0d'."""
    if seconds < 0:  # clocks of different machines disagree: a span may start before its run
        return "-" + format_duration(-seconds)
    # Each unit is chosen on the rounded value, so 59.7 s reads '1.0m', never '60s'.
    if round(seconds * 1000) < 1000:
        return f"{seconds * 1000:.0f}ms"
    if round(seconds, 1) < 10:
        return f"{seconds:.1f}s"
    if round(seconds) < 60:
        return f"{seconds:.0f}s"
    if round(seconds / 60, 1) < 60:
        return f"{seconds / 60:.1f}m"
    if round(seconds / 3600, 1) < 24:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def format_count(n: float) -> str:
    """1234 → '1.2K', 1_234_567 → '1.2M'."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= size:
            return f"{n / size:.1f}{suffix}"
    return f"{n:,.0f}" if isinstance(n, float) else str(n)


def format_bytes(n: float) -> str:
    """Bytes in decimal units: '450 MB', '2.5 MB', '900 B'."""
    for size, unit in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "KB")):
        if abs(n) >= size:
            return f"{n / size:.0f} {unit}" if abs(n) >= 100 * size else f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


# Ordered from least to most severe; the value is the numeric rank used in storage and routing.
SEVERITIES = {"info": 20, "warning": 30, "error": 40, "critical": 50}
_SEVERITY_ALIASES = {
    "warn": "warning",
    "err": "error",
    "crit": "critical",
    "fatal": "critical",
    "p1": "critical",
    "p2": "error",
    "p3": "warning",
    "p4": "info",
}


def parse_severity(value: object, *, name: str = "severity") -> str:
    """Return the canonical severity name (info, warning, error, critical); P1–P4 accepted."""
    if isinstance(value, str):
        key = value.strip().lower()
        key = _SEVERITY_ALIASES.get(key, key)
        if key in SEVERITIES:
            return key
    raise InvalidArgumentError(
        f"Invalid {name}={value!r}: use one of info, warning, error, critical (or P1–P4)."
    )


def parse_percent(value: object, *, name: str = "percent") -> float:
    """Return a fraction in [0, 1] for '99.9%', 99.9 or 0.999."""
    text = value.strip().rstrip("%").strip() if isinstance(value, str) else value
    try:
        number = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"Invalid {name}={value!r}: expected a percentage like '99.9%' or 0.999."
        ) from None
    if (isinstance(value, str) and value.strip().endswith("%")) or number > 1:
        number /= 100
    if not 0 <= number <= 1:
        raise InvalidArgumentError(
            f"Invalid {name}={value!r}: a percentage lies between 0% and 100%."
        )
    # 99.9 / 100 is 0.9990000000000001 in binary floating point; targets are never that precise.
    return round(number, 12)


def require_count(value: object, *, name: str) -> int | None:
    """Return `value` as a non-negative int (None passes through); reject floats, text and bools."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        # numpy integers and the like expose __index__; accept them.
        index = getattr(value, "__index__", None)
        if index is None or isinstance(value, bool):
            raise InvalidArgumentError(
                f"Invalid {name}={value!r}: expected a whole number of {name} (an int >= 0)."
            )
        value = index()
    if value < 0:  # type: ignore[operator]
        raise InvalidArgumentError(f"Invalid {name}={value!r}: it cannot be negative.")
    return int(value)  # type: ignore[call-overload]


def parse_since(value: object, *, now: float, name: str = "--since") -> float:
    """Epoch seconds for a window start: a duration back from `now` ('30m', '2h', '7d') or an ISO time.

    Naive ISO times are taken as UTC.
    """
    from datetime import datetime, timezone

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return now - parse_duration(value, name=name)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    text = str(value).strip()
    try:
        return now - parse_duration(text, name=name)
    except InvalidArgumentError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidArgumentError(
            f"Invalid {name} {text!r}: use a duration like 30m, 2h, 7d or an ISO time like 2024-10-15T10:00Z."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
