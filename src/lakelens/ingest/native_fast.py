"""The fast way through a native events body, for the usual batch: every event fine.

`POST /api/v1/events` spent more time reading and checking a batch of 500 logs in Python
than writing it (docs/benchmarks.md, "Native ingest decoding"). This reads the body with
orjson and turns plain log events into rows without copying them through `_clean.data`; the
other event types go through their converters in native.py as before.

It only answers when the answer is the one native.py's own path would give: the moment an
event is refused, or anything is out of the ordinary (text to clean, nesting, a long number
literal, a body orjson does not read), it gives up and native.py reads the whole body the old
way, so rejections, their reasons and every stored value stay exactly the same.
"""

from __future__ import annotations

from typing import Any

import orjson

from lakelens import _clean
from lakelens.events import LOG_COLUMNS, MAX_JSON_CHARS, Batch, dumps
from lakelens.ingest import Ingested
from lakelens.ingest.native import _MAX_TIME, LIMITS, _level, _time

__all__ = ["log_row", "parse", "to_ingested"]

# orjson reads an integer literal beyond 64 bits as a float, where json (native.loads) keeps it
# whole and `_clean.data` refuses the event; such a float (or a real one as large) takes the
# old path. Integers up to 2^64 are ints in both, refused by the same range check.
_BIG = float(2**63)
# A log event's fields are the logs row's columns (native._log reads no other).
_LOG_KEYS = frozenset(("type", *LOG_COLUMNS))
_MAX_TEXT = _clean.MAX_TEXT_CHARS
_SHORT, _ID, _NAME = LIMITS["short"], LIMITS["id"], LIMITS["name"]
_TRACE_ID, _SPAN_ID = LIMITS["trace_id"], LIMITS["span_id"]


class _Unusual(Exception):
    """Not the plain case: native.py's own path decides."""


def parse(body: bytes | str) -> Any:
    """The body as orjson reads it, or None where native.loads must say (NaN, 1e999, a lone
    surrogate, a BOM, another encoding than UTF-8, malformed JSON)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _plain_numbers(value: Any) -> bool:
    """Whether every number in `value` reads the same in json and orjson (see _BIG)."""
    kind = type(value)
    if kind is float:
        return -_BIG < value < _BIG
    if kind is dict:
        return all(_plain_numbers(item) for item in value.values())
    if kind is list:
        return all(_plain_numbers(item) for item in value)
    return True


def _text(value: Any) -> str:
    """Text as `_clean.data` leaves it. orjson never makes a lone surrogate, so only NUL
    characters and length can need cleaning: both are rare, and both go the old way."""
    if type(value) is not str or len(value) > _MAX_TEXT or "\x00" in value:
        raise _Unusual
    return value


def _label(value: Any, limit: int) -> str | None:
    """An optional identifier (native._opt_identifier of clean text)."""
    if value is None:
        return None
    if type(value) is not str or not 0 < len(value) <= limit or "\x00" in value:
        raise _Unusual
    return value


def _attributes(value: Any) -> str | None:
    """The attributes column for a flat object of plain values, as events.dumps writes it."""
    if value is None:
        return None
    if type(value) is not dict:
        raise _Unusual
    exact = True  # orjson writes every value but a float as the json module does
    for key, item in value.items():
        if len(key) > _MAX_TEXT or "\x00" in key:
            raise _Unusual
        kind = type(item)
        if kind is str:
            if len(item) > _MAX_TEXT or "\x00" in item:
                raise _Unusual
        elif kind is float:
            if not -_BIG < item < _BIG:
                raise _Unusual
            exact = False  # json writes 1.5e-05, orjson 0.000015
        elif kind is int:
            if not _clean.INT64_MIN <= item <= _clean.INT64_MAX:
                raise _Unusual
        elif item is not None and kind is not bool:
            raise _Unusual  # nested: _clean.data bounds its depth
    if not value:
        return None
    if not exact:
        return dumps(value)
    text = orjson.dumps(value).decode()
    return text if len(text) <= MAX_JSON_CHARS else dumps(value)


def log_row(e: dict[str, Any], now: float) -> tuple[Any, ...]:
    """The logs row of a plain log event, as native._log makes it; _Unusual otherwise."""
    if not e.keys() <= _LOG_KEYS:
        raise _Unusual  # other fields are checked (and may refuse the event) by _clean.data
    when = e.get("time")
    kind = type(when)
    if when is None:
        when = now
    elif (kind is float or kind is int) and 0 <= when <= _MAX_TIME:
        when = float(when)
    elif kind is str:
        when = _time(_text(when), "time")  # ISO 8601; _Bad when it is not one
    else:
        raise _Unusual
    level = e.get("level")
    if level is None:
        level = 20
    elif type(level) is not int or not 0 <= level <= 100:
        level = _level(_text(level))  # a name ("warning"); _Bad for anything else
    return (
        when,
        level,
        _text(e.get("message")),
        _label(e.get("logger"), _SHORT),
        _label(e.get("run_id"), _ID),
        _label(e.get("asset"), _NAME),
        _label(e.get("job"), _NAME),
        _label(e.get("trace_id"), _TRACE_ID),
        _label(e.get("span_id"), _SPAN_ID),
        _attributes(e.get("attributes")),
    )


def to_ingested(
    payload: Any, *, now: float, convert: Any, aliases: dict[str, str]
) -> Ingested | None:
    """Every event of `payload` accepted, or None. `convert(kind)` is native.py's converter
    for an event type (None for an unknown type); logs are converted here."""
    if type(payload) is dict:
        payload = [payload]
    if type(payload) is not list:
        return None
    result = Ingested()
    batch: Batch = result.batch
    logs = batch.logs
    try:
        for event in payload:
            if type(event) is not dict:
                return None
            kind = event.get("type")
            if kind == "log":
                logs.append(log_row(event, now))
                continue
            if type(kind) is not str:
                return None
            converter = convert(aliases.get(kind, kind))
            if converter is None or not _plain_numbers(event):
                return None
            converter(_clean.data(event, level=0), now, batch)
    except Exception:  # _Unusual, a refusal (_Bad, Unfit) or the unforeseen: native.py's says
        return None
    result.accepted = len(payload)
    return result
