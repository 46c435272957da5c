"""The one boundary for data from outside: what passes it can be stored and read back.

Every path that takes text from elsewhere (the SDK writer, native events, OpenLineage, OTLP)
calls these, so one rule holds for all of them:

- Lone surrogates (what `os.fsdecode` makes of undecodable bytes) and NUL characters become
  U+FFFD: no database encodes the first, PostgreSQL text cannot hold the second, and the
  replacement character shows the reader that something was there.
- JSON values (attributes, facets) nested more than `MAX_DEPTH` levels reject their event;
  the reason names the field and the limit.
- Numbers that are not finite, and integers outside the 64-bit range, reject their event;
  the reason names the field.
- No text is longer than `MAX_TEXT_CHARS` (64 Ki characters): a longer log message, error
  message, traceback or attribute value keeps its beginning and ends with a marker,
  "… [cut: 10,485,760 chars, first 65,492 kept]". Labels (logger, error type) are cut at
  `MAX_LABEL_CHARS`. docs/deploy.md lists the caps.

Rows already stored by older versions may break these rules; `stored_json` reads them
without failing (cut at the depth limit, text cleaned).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_DEPTH",
    "MAX_LABEL_CHARS",
    "MAX_TEXT_CHARS",
    "Unfit",
    "batch_caps",
    "batch_text",
    "cut",
    "data",
    "loads",
    "plain",
    "stored_json",
    "text",
]

MAX_DEPTH = 32
# Characters of one text (a log message, an error, a traceback, an attribute value), marker
# included: a 10 MB message was stored and served back whole (pages up to 18.9 MB).
MAX_TEXT_CHARS = 64 * 1024
# Characters of a label: a logger name, an error type.
MAX_LABEL_CHARS = 1024
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Longer integer literals are out of range anyway; parsing them costs quadratic time.
_MAX_INT_DIGITS = 40
_SURROGATE = re.compile("[\ud800-\udfff]")
_SHOW = 60
_BASES: tuple[Any, ...] = (dict, list, tuple, str, bool, int, float)


class Unfit(ValueError):
    """A value that cannot be stored; the message names the field and the rule."""


# Terminal colour and cursor codes (dbt, click and rich colour what they log for terminals).
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


def plain(value: str) -> str:
    """`value` without terminal escape sequences: stored text is read on pages and in Slack."""
    return _ANSI.sub("", value) if "\x1b" in value else value


def cut(value: str, limit: int = MAX_TEXT_CHARS) -> str:
    """`value` when it has at most `limit` characters; else its beginning and a marker that
    says how long it was, `limit` characters in all (so cutting again changes nothing)."""
    if len(value) <= limit:
        return value
    marker = f"… [cut: {len(value):,} chars, first {{kept:,}} kept]"
    kept = limit
    for _ in range(3):  # the marker's length depends on the number it shows
        kept = max(0, limit - len(marker.format(kept=kept)))
    while kept and kept + len(marker.format(kept=kept)) > limit:
        kept -= 1
    return value[:kept] + marker.format(kept=kept)


def text(value: str) -> str:
    """`value` without lone surrogates and NUL characters (each becomes U+FFFD), cut at
    MAX_TEXT_CHARS."""
    if len(value) > MAX_TEXT_CHARS:
        value = cut(value)
    if value.isascii():
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    return _SURROGATE.sub("\ufffd", value)


def data(
    value: Any, field: str = "", *, max_depth: int = MAX_DEPTH, level: int = 1, numbers: bool = True
) -> Any:
    """A JSON-like value with clean text (keys too), or Unfit naming `field`.

    Dicts and lists count one level each; `value` itself is at `level` (0 for an event whose
    fields are the values to bound). Values that are not JSON (datetimes, paths, ...) become
    their `str()`, as the store's encoder would make them. With `numbers=False` numbers are
    left as they are (for a document whose items are checked later, one by one).
    """
    try:
        return _data(value, level, max_depth, numbers)
    except _Where as exc:
        steps = [field] if field else []
        for step in reversed(exc.steps):
            if type(step) is int:
                steps[-1:] = [f"{steps[-1] if steps else ''}[{step}]"]
            else:
                steps.append(_name(step))
        path = ".".join(steps)
        # Deep paths stay one short line: the first field and the last steps.
        path = path if len(path) <= 120 else f"{path[:40]}…{path[-60:]}"
        raise Unfit(f"{path}: {exc.reason}") from None


class _Where(Exception):
    """Unfit, on its way up: the keys from the bad value back to the top (added lazily, so
    that the usual, clean value costs no path strings)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.steps: list[Any] = []


def _data(value: Any, depth: int, limit: int, numbers: bool) -> Any:
    kind = type(value)
    if kind is str:
        if len(value) <= MAX_TEXT_CHARS and value.isascii() and "\x00" not in value:
            return value
        return text(value)
    if kind is dict or kind is list or kind is tuple:
        if depth > limit:
            raise _Where(f"nested more than {limit} levels deep (the limit)")
        key: Any = None
        try:
            if kind is dict:
                out = {}
                for key, item in value.items():
                    name = key if type(key) is str else str(key)
                    clean = len(name) <= MAX_TEXT_CHARS and name.isascii() and "\x00" not in name
                    out[name if clean else text(name)] = _data(item, depth + 1, limit, numbers)
                return out
            items = []
            for key in range(len(value)):
                items.append(_data(value[key], depth + 1, limit, numbers))
            return items
        except _Where as exc:
            exc.steps.append(key)
            raise
    if value is None or kind is bool or (not numbers and kind in (int, float, _Huge)):
        return value
    if kind is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise _Where(f"{_number(value)} is out of range (64-bit integers)")
        return value
    if kind is _Huge:
        raise _Where(f"an integer of {value.digits} digits is out of range (64-bit integers)")
    if kind is float:
        if not math.isfinite(value):
            raise _Where(f"{value} is not a finite number")
        return value
    for base in _BASES:  # subclasses (IntEnum, OrderedDict, ...): as their base
        if isinstance(value, base):
            return _data(base(value), depth, limit, numbers)
    return text(str(value))


def _name(key: Any) -> str:
    name = key if type(key) is str else str(key)
    if len(name) > 30 or not name.isprintable():
        name = repr(name[:30])[1:-1] + ("…" if len(name) > 30 else "")
    return name


def _number(value: int) -> str:
    digits = len(str(abs(value))) if value.bit_length() < 4000 else None
    if digits is not None and digits <= _SHOW:
        return str(value)
    return f"an integer of {digits or 'over 1200'} digits"


class _Huge(int):
    """An integer literal too long to be worth parsing (Python refuses over 4300 digits)."""

    digits: int

    def __new__(cls, literal: str) -> _Huge:
        huge = super().__new__(cls, INT64_MAX + 1)
        huge.digits = len(literal.lstrip("-"))
        return huge


def _parse_int(literal: str) -> int:
    return int(literal) if len(literal) <= _MAX_INT_DIGITS else _Huge(literal)


def loads(body: bytes | str) -> Any:
    """JSON as Python's json module reads it, except that no number literal fails the body:
    NaN, Infinity, 1e999 and huge integers load as values that `data` rejects per event."""
    return json.loads(body, parse_int=_parse_int)


def stored_json(raw: str | None, default: Any) -> Any:
    """A JSON column read back: never raises; text cleaned and nesting cut at the limit."""
    if not raw:
        return default
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return default
    if raw.isascii() and "\\ud" not in raw and raw.count("{") + raw.count("[") <= MAX_DEPTH:
        return value  # the usual row: no surrogate, not deep (NaN is handled by the renderers)
    return _readable(value, 1)


def _readable(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return text(value)
    if isinstance(value, (dict, list)):
        if depth > MAX_DEPTH:
            return "…"  # deeper than ingest now accepts: written by an older version
        if isinstance(value, dict):
            return {text(k): _readable(v, depth + 1) for k, v in value.items()}
        return [_readable(v, depth + 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def batch_text(batch: Any) -> None:
    """Clean the text of every event of an events.Batch in place (the SDK's side of the
    boundary: its events are already typed, only their text can be unstorable)."""
    import dataclasses

    for name in (
        "assets",
        "runs",
        "materializations",
        "checks",
        "edges",
        "schemas",
        "metrics",
        "profiles",
    ):
        for event in getattr(batch, name):
            for f in dataclasses.fields(event):
                value = getattr(event, f.name)
                if isinstance(value, (str, dict, list, tuple)):
                    setattr(event, f.name, _texts(value))
    for name in ("logs", "spans"):
        rows = getattr(batch, name)
        rows[:] = [tuple(text(v) if type(v) is str else v for v in row) for row in rows]


def _texts(value: Any) -> Any:
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {_texts(k): _texts(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_texts(v) for v in value)
    return value


# Fields of the Batch's events with their caps: text (messages, errors) and labels.
_TEXT_FIELDS = {
    "runs": (("error_message", "error_traceback"), ("error_type",)),
    "materializations": (("error_message", "error_traceback"), ("error_type",)),
    "checks": (("message",), ()),
    "assets": (("description",), ()),
}
_LOG_MESSAGE = 2  # events.LOG_COLUMNS
_LOG_LOGGER = 3
_SPAN_ERROR = 9  # events.SPAN_COLUMNS


def batch_caps(batch: Any) -> None:
    """Cut, in place, the long texts of an events.Batch to MAX_TEXT_CHARS (labels to
    MAX_LABEL_CHARS): the store's side of the caps, for writers that bypass `data` (the
    SDK in-process, importers). Cheap: a length check per field."""
    for name, (texts, labels) in _TEXT_FIELDS.items():
        for event in getattr(batch, name):
            for attr, limit in [(a, MAX_TEXT_CHARS) for a in texts] + [
                (a, MAX_LABEL_CHARS) for a in labels
            ]:
                value = getattr(event, attr, None)
                if type(value) is str and len(value) > limit:
                    setattr(event, attr, cut(value, limit))
    logs = batch.logs
    for i, row in enumerate(logs):
        message, logger = row[_LOG_MESSAGE], row[_LOG_LOGGER]
        long_message = type(message) is str and len(message) > MAX_TEXT_CHARS
        long_logger = type(logger) is str and len(logger) > MAX_LABEL_CHARS
        if long_message or long_logger:
            fixed = list(row)
            if long_message:
                fixed[_LOG_MESSAGE] = cut(message)
            if long_logger:
                fixed[_LOG_LOGGER] = cut(logger, MAX_LABEL_CHARS)
            logs[i] = tuple(fixed)
    spans = batch.spans
    for i, row in enumerate(spans):
        error = row[_SPAN_ERROR] if len(row) > _SPAN_ERROR else None
        if type(error) is str and len(error) > MAX_TEXT_CHARS:
            fixed = list(row)
            fixed[_SPAN_ERROR] = cut(error)
            spans[i] = tuple(fixed)
