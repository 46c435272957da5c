"""Round values for chart axes: 10s/20s/30s or 1m/2m rather than 11s/23s/34s.

A tick step is only chosen when every tick it makes reads as a round figure in the unit it is
shown in (so a 100 s axis gets 0/30s/1m/1.5m, never 0/20s/40s/1m/1.3m).
"""

from __future__ import annotations

import math

__all__ = ["count_ticks", "duration_label", "duration_ticks"]

# Steps in seconds, smallest first: milliseconds, seconds, minutes, hours, days.
_DURATION_STEPS = (
    *(m * 10.0**e for e in range(-4, 0) for m in (1, 2, 5)),
    1.0,
    2.0,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1200.0,
    1800.0,
    3600.0,
    7200.0,
    10800.0,
    21600.0,
    43200.0,
    86400.0,
    172800.0,
    432000.0,
    604800.0,
)
_UNITS = ((86400.0, "d"), (3600.0, "h"), (60.0, "m"), (1.0, "s"))


def duration_label(seconds: float) -> str:
    """A tick's label: '0', '250ms', '1.5s', '20s', '1m', '2.5h', '2d' (no '1.0m')."""
    if seconds <= 0:
        return "0"
    if seconds < 1:
        return f"{round(seconds * 1000, 1):g}ms"
    for size, unit in _UNITS:
        if seconds >= size:
            return f"{round(seconds / size, 2):g}{unit}"
    return f"{seconds:g}s"  # pragma: no cover - every positive value has a unit above


def _round_enough(label: str) -> bool:
    """At most one decimal: '1.5m' is round, '1.33m' is not."""
    number = label.rstrip("abcdefghijklmnopqrstuvwxyz")
    return "." not in number or len(number.split(".")[1]) <= 1


def _intervals(step: float, maximum: float, cover: bool) -> int:
    ratio = maximum / step
    return math.ceil(ratio - 1e-9) if cover else math.floor(ratio + 1e-9)


def _ticks(step: float, maximum: float, cover: bool) -> list[float]:
    return [round(step * i, 9) for i in range(_intervals(step, maximum, cover) + 1)]


def duration_ticks(maximum: float, *, most: int = 5, cover: bool = False) -> list[float]:
    """Round durations (seconds) from 0: up to `maximum`, or with `cover` to the first tick at
    or above it (a bar chart's scale); `most` intervals at most."""
    if not math.isfinite(maximum) or maximum <= 0:
        return [0.0]
    for step in _DURATION_STEPS:
        if _intervals(step, maximum, cover) > most:
            continue
        ticks = _ticks(step, maximum, cover)
        if all(_round_enough(duration_label(t)) for t in ticks):
            return ticks
    step = _DURATION_STEPS[-1] * math.ceil(maximum / (most * _DURATION_STEPS[-1]))
    return _ticks(step, maximum, cover)


def count_ticks(maximum: float, *, most: int = 5, cover: bool = False) -> list[float]:
    """Round numbers (1, 2 or 5 × 10ⁿ apart) from 0, like `duration_ticks`."""
    if not math.isfinite(maximum) or maximum <= 0:
        return [0.0]
    exponent = math.floor(math.log10(maximum / most))
    for power in (exponent, exponent + 1):
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0**power
            if _intervals(step, maximum, cover) <= most:
                return _ticks(step, maximum, cover)
    return [0.0, maximum]  # pragma: no cover - 10^(exponent + 1) always fits
