"""The `columns` of a profile event from outside (POST /api/v1/events), checked and bounded.

A profile is stored as sent, so only the statistics lakelens knows pass, each of its type and
size: at most MAX_COLUMNS columns, names up to MAX_NAME characters, at most MAX_TOP top values
of up to TOP_VALUE_CHARS characters, MAX_BINS histogram bins, a column's `error` (why it was not
profiled) up to MAX_ERROR characters. Unknown statistics are dropped (a newer client's, say);
a known one of the wrong type rejects the event with its reason.
"""

from __future__ import annotations

import re
from typing import Any

from lakelens._clean import Unfit, cut

__all__ = ["MAX_COLUMNS", "profile_columns"]

MAX_COLUMNS = 500
MAX_NAME = 512
MAX_TOP = 20
MAX_BINS = 100
MAX_QUANTILES = 20
TOP_VALUE_CHARS = 100
MAX_ERROR = 1000
_SHORT = 256
_COUNTS = (
    "count",
    "nulls",
    "distinct",
    "true",
    "false",
    "non_finite",
    "mixed",
    "min_length",
    "max_length",
)
_NUMBERS = ("mean", "std", "mean_length")
_QUANTILE = re.compile(r"p\d{1,2}(\.\d{1,3})?")
_MAX_COUNT = 2**63 - 1


def _number(value: Any, field: str) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unfit(f"{field}: expected a number, got {type(value).__name__}")
    if abs(value) > 1e300:
        raise Unfit(f"{field}: {value} is out of range")
    return value


def _count(value: Any, field: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_COUNT:
        raise Unfit(f"{field}: expected a whole number >= 0, got {value!r}"[:200])
    return value


def _text(value: Any, field: str, limit: int = _SHORT) -> str:
    if not isinstance(value, str):
        raise Unfit(f"{field}: expected a string, got {type(value).__name__}")
    return cut(value, limit)


def _column(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Unfit(f"{where}: expected an object of statistics")
    out: dict[str, Any] = {"type": _text(raw.get("type", "other"), f"{where}.type", 32)}
    if raw.get("dtype") is not None:
        out["dtype"] = _text(raw["dtype"], f"{where}.dtype")
    for key in _COUNTS:
        if raw.get(key) is not None:
            out[key] = _count(raw[key], f"{where}.{key}")
    if raw.get("null_rate") is not None:
        rate = _number(raw["null_rate"], f"{where}.null_rate")
        if rate is None or not 0 <= rate <= 1:
            raise Unfit(f"{where}.null_rate: expected a number from 0 to 1")
        out["null_rate"] = rate
    if raw.get("distinct_approx") is not None:
        if not isinstance(raw["distinct_approx"], bool):
            raise Unfit(f"{where}.distinct_approx: expected true or false")
        out["distinct_approx"] = raw["distinct_approx"]
    for key in _NUMBERS:
        if key in raw:
            out[key] = _number(raw[key], f"{where}.{key}")
    for key in ("min", "max"):
        value = raw.get(key)
        if value is None:
            continue
        # Numbers for numeric columns, ISO 8601 text for times.
        out[key] = (
            _text(value, f"{where}.{key}", 64)
            if isinstance(value, str)
            else _number(value, f"{where}.{key}")
        )
    if raw.get("quantiles") is not None:
        out["quantiles"] = _quantiles(raw["quantiles"], f"{where}.quantiles")
    if raw.get("histogram") is not None:
        out["histogram"] = _histogram(raw["histogram"], f"{where}.histogram")
    if raw.get("top") is not None:
        out["top"] = _top(raw["top"], f"{where}.top")
    if raw.get("error") is not None:
        # Why the column (or part of it) was not profiled: a monitor's timed-out column.
        out["error"] = _text(raw["error"], f"{where}.error", MAX_ERROR)
    return out


def _quantiles(raw: Any, where: str) -> dict[str, float | int | None]:
    if not isinstance(raw, dict) or len(raw) > MAX_QUANTILES:
        raise Unfit(f"{where}: expected an object of at most {MAX_QUANTILES} quantiles")
    out: dict[str, float | int | None] = {}
    for key, value in raw.items():
        if not _QUANTILE.fullmatch(key):
            raise Unfit(f"{where}: {key[:40]!r} is not a quantile name (p5, p50, p99.9, …)")
        out[key] = _number(value, f"{where}.{key}")
    return out


def _histogram(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Unfit(f"{where}: expected {{bins: [low, high], counts: [...]}}")
    bins, counts = raw.get("bins"), raw.get("counts")
    if not isinstance(bins, list) or len(bins) != 2:
        raise Unfit(f"{where}.bins: expected [low, high]")
    if not isinstance(counts, list) or not 0 < len(counts) <= MAX_BINS:
        raise Unfit(f"{where}.counts: expected a list of 1 to {MAX_BINS} counts")
    return {
        "bins": [_number(b, f"{where}.bins") for b in bins],
        "counts": [_count(c, f"{where}.counts") for c in counts],
    }


def _top(raw: Any, where: str) -> list[list[Any]]:
    if not isinstance(raw, list) or len(raw) > MAX_TOP:
        raise Unfit(f"{where}: expected a list of at most {MAX_TOP} [value, count] pairs")
    out: list[list[Any]] = []
    for item in raw:
        if not isinstance(item, list) or len(item) != 2:
            raise Unfit(f"{where}: expected [value, count] pairs")
        value = item[0] if isinstance(item[0], str) else str(item[0])
        out.append([cut(value, TOP_VALUE_CHARS), _count(item[1], f"{where}.count")])
    return out


def profile_columns(raw: Any) -> dict[str, dict[str, Any]]:
    """The checked statistics of a profile event's `columns` (an object: name → statistics)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise Unfit("columns: expected an object of column name → statistics")
    if len(raw) > MAX_COLUMNS:
        raise Unfit(f"columns: {len(raw)} columns, more than the {MAX_COLUMNS} a profile holds")
    out: dict[str, dict[str, Any]] = {}
    for name, stats in raw.items():
        if not name or len(name) > MAX_NAME:
            raise Unfit(f"columns: a column name must have 1 to {MAX_NAME} characters")
        out[name] = _column(stats, f"columns.{name[:40]}")
    return out
