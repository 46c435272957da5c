"""native.ingest_body answers exactly as to_ingested(loads(body)) did, by the fast way
(native_fast.py) for plain batches and by the old one for everything else."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakelens.errors import InvalidArgumentError
from lakelens.ingest import native, native_fast

NOW = 1_733_580_000.0


def _old(body: bytes | str) -> native.Ingested:
    return native.to_ingested(native.loads(body), now=NOW)


def _fast(body: bytes | str) -> native.Ingested | None:
    payload = native_fast.parse(body)
    if payload is None:
        return None
    return native_fast.to_ingested(
        payload, now=NOW, convert=native._CONVERTERS.get, aliases=native._ALIASES
    )


def _log(**fields: object) -> dict[str, object]:
    return {"type": "log", "time": NOW - 5, "level": 20, "message": "fetched rows", **fields}


def _same(events: object) -> native.Ingested:
    """ingest_body's answer, checked equal to the old path's (rows, rejections, counts)."""
    body = json.dumps(events).encode()
    answer = native.ingest_body(body, now=NOW)
    assert answer == _old(body)
    return answer


PLAIN = [
    [],
    [_log()],
    _log(),
    [_log(attributes={"rows": 12, "table": "raw.t", "ok": True, "none": None})],
    [_log(message="Grüße, 数据, emoji 🙂", attributes={"ключ": "значение"})],
    [_log(message="colours \x1b[31mred\x1b[0m and a tab\t", logger="dbt")],
    [_log(level=0), _log(level=100), _log(time=0), _log(time=253_402_300_799)],
    [_log(time=None, level=None, attributes=None, run_id=None, asset=None)],
    [_log(attributes={}), _log(attributes={"rows": 9_223_372_036_854_775_807})],
    [_log(run_id="r" * 128, asset="a" * 512, job="j" * 512, trace_id="t" * 64, span_id="s" * 32)],
    [_log(attributes={"ratio": 1.5e-05, "big": 9e18, "neg": -0.0})],
    [{"type": "run", "run_id": "r1", "job": "j", "status": "success"}, _log(run_id="r1")],
    [{"type": "metric", "name": "rows_total", "value": 3.5, "labels": {"a": "b"}}],
    [_log(time="2024-10-15T10:00:00Z"), _log(time=" 2024-10-15 10:00:00.5+02:00 ")],
    [_log(level="warning"), _log(level=" WARN "), _log(level="fatal"), _log(level="debug")],
]


@pytest.mark.parametrize("events", PLAIN)
def test_a_plain_batch_takes_the_fast_way_and_stores_the_same(events: object) -> None:
    body = json.dumps(events).encode()
    fast = _fast(body)
    assert fast is not None
    assert fast == _old(body)


UNUSUAL = [
    [_log(), _log(message=None)],  # one bad event: 207 with the same reason
    [_log(message=42)],
    [_log(level="warning"), _log(level="nope")],
    [_log(level=True)],
    [_log(level="INFO\x00")],
    [_log(level=1.0)],
    [_log(time="yesterday")],
    [_log(time="2024-10-15T10:00:00Z\x00")],
    [_log(time="1969-12-31T23:59:59Z")],
    [_log(time=True)],
    [_log(time=-1), _log(time=1e12)],
    [_log(message="nul \x00 inside")],
    [_log(logger="nul\x00")],
    [_log(asset="")],
    [_log(run_id="r" * 129)],
    [_log(message="x" * (70 * 1024))],
    [_log(attributes={"rows": 2**63})],
    [_log(attributes={"rows": 2**64 - 1})],
    [_log(attributes={"rows": 2**64})],
    [_log(attributes={"rows": -(2**63) - 1})],
    [_log(attributes={"rows": 10**30})],
    [_log(attributes={"huge": 2.0**63}), _log(attributes={"huge": -1e300})],
    [_log(attributes={"nested": {"a": [1, {"b": None}]}})],
    [_log(attributes="text")],
    [_log(attributes={"k\x00": 1})],
    [_log(extra="field")],
    [_log(extra=10**30)],
    [{"type": "log"}],
    [{"type": "nope"}, _log()],
    [{"message": "no type"}],
    ["not an object", _log()],
    [None],
    [{"type": "run", "run_id": "r", "job": "j", "tags": {"n": 10**30}}],
    [{"type": "run", "run_id": "r", "job": "j", "tags": {"n": 2.0**64}}],
    [{"type": "run", "run_id": "", "job": "j"}],
]


@pytest.mark.parametrize("events", UNUSUAL)
def test_an_unusual_batch_takes_the_old_way(events: object) -> None:
    body = json.dumps(events).encode()
    assert _fast(body) is None
    assert native.ingest_body(body, now=NOW) == _old(body)


def test_one_bad_event_keeps_its_reason_and_the_others_are_stored() -> None:
    answer = _same([_log(), _log(message=None), _log(attributes={"n": 2**64})])
    assert answer.accepted == 1
    assert [(r.index, r.reason) for r in answer.rejected] == [
        (1, "log: message: expected a string, got None"),
        (2, "log: attributes.n: 18446744073709551616 is out of range (64-bit integers)"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"[",
        b'[{"type": "log", "message": "a"}] trailing',
        b'[{"type": "log", "message": "a", "time": NaN}]',
        b'[{"type": "log", "message": "a", "attributes": {"x": 1e999}}]',
        b'[{"type": "log", "message": "\\ud800 lone"}]',
        b'\xef\xbb\xbf[{"type": "log", "message": "a BOM"}]',
        '[{"type": "log", "message": "utf-16"}]'.encode("utf-16"),
        b'[{"type": "log", "message": "\xff"}]',
        b"[" * 5000 + b"]" * 5000,
        b'{"events": 1}',
        b"null",
        b"3",
    ],
)
def test_bodies_orjson_refuses_answer_as_before(body: bytes) -> None:
    try:
        expected: object = _old(body)
    except InvalidArgumentError as exc:
        expected = str(exc)
    try:
        got: object = native.ingest_body(body, now=NOW)
    except InvalidArgumentError as exc:
        got = str(exc)
    assert got == expected


def test_a_repeated_key_keeps_its_first_place_and_last_value() -> None:
    body = b'[{"type": "log", "message": "a", "attributes": {"b": 1, "a": 2, "b": 3}}]'
    assert native_fast.parse(body) is not None
    answer = native.ingest_body(body, now=NOW)
    assert answer == _old(body)
    assert answer.batch.logs[0][9] == '{"b":3,"a":2}'


def test_a_lone_surrogate_becomes_the_replacement_character() -> None:
    body = b'[{"type": "log", "message": "a\\ud800b"}]'
    assert native_fast.parse(body) is None
    assert native.ingest_body(body, now=NOW).batch.logs[0][2] == "a\ufffdb"


def test_float_attributes_keep_the_json_modules_spelling() -> None:
    row = native.ingest_body(json.dumps([_log(attributes={"r": 1.5e-05})]), now=NOW).batch.logs[0]
    assert row[9] == '{"r":1.5e-05}'


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from('\x00\x1b\n"\\'),
    max_size=40,
)
_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)
_VALUE = st.recursive(_SCALAR, lambda inner: st.lists(inner, max_size=3), max_leaves=5)
_FIELD = st.sampled_from(
    ["time", "level", "message", "logger", "run_id", "asset", "job", "trace_id", "span_id", "x"]
)
_EVENT = st.fixed_dictionaries(
    {"type": st.just("log"), "message": _TEXT},
    optional={
        "time": st.floats(min_value=-10, max_value=3e11) | st.integers(-5, 10**12) | _TEXT,
        "level": st.integers(-5, 120) | st.sampled_from(["info", "WARN", "x"]),
        "attributes": st.dictionaries(_TEXT, _VALUE, max_size=4) | _SCALAR,
    },
).flatmap(lambda e: st.dictionaries(_FIELD, _SCALAR, max_size=3).map(lambda extra: {**extra, **e}))


@settings(max_examples=300, deadline=None)
@given(st.lists(_EVENT, max_size=6))
def test_any_batch_of_logs_answers_as_the_old_path(events: list[dict[str, object]]) -> None:
    _same(events)
