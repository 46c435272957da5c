"""Hypothesis against the ingest endpoints: one hostile event among good ones is never a 500
and never costs the good events of its batch (native, OpenLineage, OTLP/JSON logs)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakelens.store import schema

FUZZ = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON = {"Content-Type": "application/json"}
_ids = itertools.count()


def _deep(levels: int) -> Any:
    node: Any = "leaf"
    for _ in range(levels):
        node = {"d": node}
    return node


hostile_text = st.text(
    st.characters() | st.sampled_from(["\x00", "\ud800", "\udcff", "\udfff"]), max_size=30
) | st.sampled_from(["x" * 70_000, "\x00" * 5, "\ud800" * 3])
hostile_number = (
    st.sampled_from(
        [float("nan"), float("inf"), -float("inf"), 10**400, -(10**30), 2**63, 2**64, 1e308]
    )
    | st.integers()
    | st.floats()
)
hostile = st.recursive(
    st.none() | st.booleans() | hostile_number | hostile_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(hostile_text, children, max_size=3)
    ),
    max_leaves=8,
) | st.integers(min_value=20, max_value=900).map(_deep)


def _body(events: list[Any]) -> bytes:
    # json.dumps escapes lone surrogates and writes NaN / Infinity, as Python clients do.
    return json.dumps(events).encode()


def _count(store: Any, table: sa.Table, column: sa.Column[Any], value: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(column == value)).scalar_one())


NATIVE = {
    "run": {"type": "run", "job": "j", "status": "success"},
    "materialization": {"type": "materialization", "run_id": "r", "asset": "a", "rows": 1},
    "log": {"type": "log", "message": "m", "level": "INFO"},
    "metric": {"type": "metric", "name": "m", "value": 1.0},
    "check": {"type": "check", "asset": "a", "name": "c", "passed": True},
}


@st.composite
def native_poison(draw: Any) -> dict[str, Any]:
    event = dict(draw(st.sampled_from(list(NATIVE.values()))))
    event["run_id"] = "r"
    field = draw(st.sampled_from([*event, "attributes", "error_message", "tags", "labels"]))
    if field != "type":
        event[field] = draw(hostile)
    return event


@FUZZ
@given(poison=native_poison(), at=st.integers(0, 2))
def test_native_events(served: Any, poison: dict[str, Any], at: int) -> None:
    client, store = served
    run_id = f"good-{next(_ids)}"
    good = [
        {"type": "run", "run_id": run_id, "job": "fuzz"},
        {"type": "log", "message": run_id, "run_id": run_id},
    ]
    events = [*good]
    events.insert(at, poison)
    response = client.post("/api/v1/events", content=_body(events), headers=JSON)
    assert response.status_code in (200, 207), response.text[:300]
    assert _count(store, schema.runs, schema.runs.c.run_id, run_id) == 1
    assert _count(store, schema.logs, schema.logs.c.message, run_id) == 1
    for rejection in response.json()["rejected"]:
        assert rejection["index"] == at and "\n" not in rejection["reason"]


def _run_event(run_id: str, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventType": "COMPLETE",
        "eventTime": "2024-10-15T06:00:00Z",
        "producer": "fuzz",
        "run": {"runId": run_id, "facets": {}},
        "job": {"namespace": "fuzz", "name": "job"},
        "inputs": [{"namespace": "db", "name": "in"}],
        "outputs": [{"namespace": "db", "name": "out", "facets": {}}],
    }
    for path, value in changes.items():
        node = event
        *parents, last = path.split("/")
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        node[int(last) if isinstance(node, list) else last] = value
    return event


_OL_PATHS = [
    "run/facets/custom",
    "run/runId",
    "job/name",
    "job/facets/x",
    "outputs/0/name",
    "outputs/0/facets/schema",
    "outputs/0/facets/custom",
    "eventTime",
    "producer",
]


@FUZZ
@given(path=st.sampled_from(_OL_PATHS), value=hostile, at=st.integers(0, 1))
def test_openlineage_events(served: Any, path: str, value: Any, at: int) -> None:
    client, store = served
    good_id = f"00000000-0000-0000-0000-{next(_ids):012d}"
    poison = _run_event(f"99999999-0000-0000-0000-{next(_ids):012d}", **{path: value})
    events = [_run_event(good_id)]
    events.insert(at, poison)
    response = client.post("/api/v1/lineage", content=_body(events), headers=JSON)
    assert response.status_code in (200, 207), response.text[:300]
    assert _count(store, schema.runs, schema.runs.c.run_id, good_id) == 1


def _any_value(value: Any, depth: int = 0) -> Any:
    """A hostile Python value as an OTLP AnyValue (JSON mapping)."""
    if isinstance(value, dict):
        if depth > 40:
            return {"stringValue": "cut"}
        items = [{"key": str(k), "value": _any_value(v, depth + 1)} for k, v in value.items()]
        return {"kvlistValue": {"values": items}}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any_value(v, depth + 1) for v in value]}}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": "" if value is None else str(value)}


@FUZZ
@given(value=hostile, where=st.sampled_from(["body", "attribute", "key"]), at=st.integers(0, 1))
def test_otlp_json_logs(served: Any, value: Any, where: str, at: int) -> None:
    client, store = served
    marker = f"good-{next(_ids)}"
    poison: dict[str, Any] = {"timeUnixNano": "1700000000000000000"}
    if where == "body":
        poison["body"] = _any_value(value)
    elif where == "attribute":
        poison["attributes"] = [{"key": "k", "value": _any_value(value)}]
    else:
        poison["attributes"] = [{"key": str(value)[:100], "value": {"stringValue": "v"}}]
    records = [{"timeUnixNano": "1700000000000000000", "body": {"stringValue": marker}}]
    records.insert(at, poison)
    body = {"resourceLogs": [{"scopeLogs": [{"scope": {"name": "fuzz"}, "logRecords": records}]}]}
    response = client.post("/v1/logs", content=_body(body), headers=JSON)
    assert response.status_code == 200, response.text[:300]
    assert _count(store, schema.logs, schema.logs.c.message, marker) == 1


@pytest.mark.parametrize("levels", range(30, 36))
@pytest.mark.parametrize("signal", ["logs", "traces"])
def test_a_record_nested_to_the_parsers_limit_fails_alone(
    served: Any, signal: str, levels: int
) -> None:
    # A value nested 33 levels fits protobuf's depth limit when its record is parsed alone,
    # but not inside the request: the whole request was refused (400) with the good record.
    client, store = served
    marker = f"good-{next(_ids)}"
    deep = _any_value(_deep(levels))
    if signal == "logs":
        poison: dict[str, Any] = {"timeUnixNano": "1700000000000000000", "body": deep}
        good = {"timeUnixNano": "1700000000000000000", "body": {"stringValue": marker}}
        path, table, column = "/v1/logs", schema.logs, schema.logs.c.message
        body: dict[str, Any] = {"resourceLogs": [{"scopeLogs": [{"logRecords": [poison, good]}]}]}
    else:
        span = {"traceId": "ab" * 16, "startTimeUnixNano": "1700000000000000000"}
        poison = {**span, "spanId": "cd" * 8, "name": "deep"}
        poison["attributes"] = [{"key": "k", "value": deep}]
        good = {**span, "spanId": f"{next(_ids):016x}", "name": marker}
        path, table, column = "/v1/traces", schema.spans, schema.spans.c.name
        body = {"resourceSpans": [{"scopeSpans": [{"spans": [poison, good]}]}]}
    response = client.post(path, content=_body(body), headers=JSON)
    assert response.status_code == 200, response.text[:300]
    assert _count(store, table, column, marker) == 1
