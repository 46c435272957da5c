"""openlineage.loads reads every body exactly as native.loads does (orjson when that is the
same, native.loads otherwise), and the endpoint's converter answers as before, also when it
skips `_clean.data`'s copy of a body that needs no cleaning."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakelens.errors import InvalidArgumentError
from lakelens.ingest import native, openlineage

NOW = 1_800_000_000.0


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1, 1.0 and True are == in Python)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return repr(a) == repr(b)  # -0.0, nan
    return bool(a == b)


def _read(read: Any, body: bytes) -> tuple[str, Any]:
    try:
        return "ok", read(body)
    except InvalidArgumentError as exc:
        return "error", str(exc)


def _agree(body: bytes) -> tuple[str, Any]:
    new, old = _read(openlineage.loads, body), _read(native.loads, body)
    assert new[0] == old[0] and _same(new[1], old[1]), (body, new, old)
    return new


ODD = [
    b'{"a": 1, "a": 2}',
    b"18446744073709551615",
    b"18446744073709551616",
    b"-9223372036854775808",
    b"-9223372036854775809",
    b"1" + b"0" * 40,
    b"1" + b"0" * 400,
    b"[NaN, Infinity, -Infinity]",
    b"[1e999, -1e999, 1e-999]",
    b"[-0, -0.0, 0.0, 1E2, 1e+2, 2.5e-3]",
    b"123456789012345678901234567890.5",
    b'"\\ud800"',
    b'"\\ud83d\\ude00 \\u0000"',
    "\ufeff{}".encode(),
    "{}".encode("utf-16"),
    b'"\xed\xa0\x80"',
    b'"\xff"',
    b"[" * 2000 + b"]" * 2000,
    b"",
    b"   ",
    b"{not json",
    b"[1,]",
    b'{"runId": "3f5e83fa-3480-44ff-99c5-ff943904e5e8", "rows": 9223372036854775807}',
]


@pytest.mark.parametrize("body", ODD)
def test_odd_bodies_read_as_native_loads_reads_them(body: bytes) -> None:
    _agree(body)


def test_a_plain_run_event_is_read_by_orjson() -> None:
    """What the fast way is for: it must not fall back for an ordinary event."""
    import orjson

    body = json.dumps({"eventType": "START", "run": {"runId": "r"}, "rows": 487}).encode()
    assert openlineage._LONG_DIGITS.search(body) is None
    assert _same(openlineage.loads(body), orjson.loads(body))


_TEXT = st.text(alphabet=st.characters() | st.sampled_from('\x00\x1b\n"\\/\ud800'), max_size=12)
_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | _TEXT
)
_VALUE = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(_VALUE, st.booleans())
def test_any_json_value_reads_the_same(value: Any, ascii_only: bool) -> None:
    _agree(json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass"))


_NUMBER = st.from_regex(r"\A-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,4})?\Z")


@settings(max_examples=400, deadline=None)
@given(st.lists(_NUMBER, min_size=1, max_size=4))
def test_number_literals_read_the_same(numbers: list[str]) -> None:
    _agree(("[" + ", ".join(numbers) + "]").encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40) | st.text(alphabet='{}[]":,0123456789.eE-+ntrufalsN\\u', max_size=30))
def test_malformed_bodies_fail_the_same(body: bytes | str) -> None:
    _agree(body if isinstance(body, bytes) else body.encode())


def _event(**extra: Any) -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": "2027-01-15T08:00:00.000Z",
        "run": {"runId": "3f5e83fa-3480-44ff-99c5-ff943904e5e8"},
        "job": {"namespace": "test", "name": "job_a"},
        "inputs": [{"namespace": "warehouse", "name": "raw.orders"}],
        "outputs": [
            {
                "namespace": "warehouse",
                "name": "stg.orders",
                "outputFacets": {"outputStatistics": {"rowCount": 487, "size": 48700}},
            }
        ],
        **extra,
    }


@pytest.mark.parametrize(
    "payload",
    [
        _event(),
        [_event(), _event(eventType="START"), {"eventType": "START"}],
        _event(outputs=[{"namespace": "w", "name": "t", "facets": {"x": {"n": 2**64}}}]),
        _event(outputs=[{"namespace": "w", "name": "t", "facets": {"x": {"n": 2.0**64}}}]),
        _event(run={"runId": "r", "facets": {"big": {"n": 10**30, "f": 1e300}}}),
    ],
)
def test_the_endpoints_converter_answers_as_before(payload: Any) -> None:
    body = json.dumps(payload).encode()
    assert openlineage.body_to_ingested(body, now=NOW) == openlineage.to_ingested(
        native.loads(body), now=NOW
    )


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"x": value}
    return value


def _with_facet(value: Any) -> dict[str, Any]:
    return _event(outputs=[{"namespace": "w", "name": "t", "facets": {"odd": value}}])


ODD_EVENTS = [
    _event(job={"namespace": "test", "name": "job\x00a"}),
    _with_facet({"text": "nul \x00 inside", "unicode": "Grüße 数据 🙂"}),
    _with_facet({"text": "x" * 70_000}),
    _with_facet(_nested(60)),
    _with_facet(_nested(70)),
    _with_facet({"n": 2**63 - 1, "m": -(2**63), "f": 1.5e-05, "g": 9e18, "z": -0.0}),
    _with_facet({"literal": "\\u0000 is not a NUL"}),
    [_event(), _event(eventType="START", run={"runId": "r\x00"})],
]


@pytest.mark.parametrize("payload", ODD_EVENTS)
def test_bodies_that_need_cleaning_convert_as_before(payload: Any) -> None:
    for ensure_ascii in (True, False):
        body = json.dumps(payload, ensure_ascii=ensure_ascii).encode()
        old = openlineage.to_ingested(native.loads(body), now=NOW)
        assert openlineage.body_to_ingested(body, now=NOW) == old


def test_only_a_body_that_needs_no_cleaning_skips_the_copy() -> None:
    def clean(payload: Any) -> bool:
        return openlineage._read(json.dumps(payload).encode())[1]

    assert clean(_event()) and clean([_event(), _event()]) and clean(_with_facet(_nested(55)))
    assert not clean(_with_facet("nul \x00"))
    assert not clean(_with_facet(_nested(70)))
    assert not clean(_with_facet({"text": "x" * 70_000}))
    assert not clean(_with_facet({"n": 2**64}))


_FACET = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=10,
)
_NAME = st.text(alphabet=st.characters() | st.sampled_from("\x00/:."), min_size=1, max_size=10)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "eventType": st.sampled_from(["START", "COMPLETE", "FAIL", "OTHER"]),
                "job": st.fixed_dictionaries({"namespace": _NAME, "name": _NAME}),
                "run": st.fixed_dictionaries(
                    {"runId": _NAME, "facets": st.dictionaries(_NAME, _FACET, max_size=2)}
                ),
                "outputs": st.lists(
                    st.fixed_dictionaries(
                        {
                            "namespace": _NAME,
                            "name": _NAME,
                            "facets": st.dictionaries(
                                _NAME, st.dictionaries(_TEXT, _FACET, max_size=3), max_size=2
                            ),
                        }
                    ),
                    max_size=2,
                ),
            },
            optional={
                "eventTime": st.just("2027-01-15T08:00:00Z") | _TEXT,
                "inputs": st.just([{"namespace": "w", "name": "in"}]),
            },
        ),
        min_size=1,
        max_size=3,
    ),
    st.booleans(),
)
def test_any_run_events_convert_as_before(events: list[Any], ensure_ascii: bool) -> None:
    body = json.dumps(events, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")
    assert openlineage.body_to_ingested(body, now=NOW) == openlineage.to_ingested(
        native.loads(body), now=NOW
    )
