"""Ingest endpoints: committed before the answer, bad events listed, bad bodies a 4xx (never 500)."""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from lakelens.config import load_settings
from lakelens.store import Store, reads, schema


@pytest.fixture
def empty(store_url: str, tmp_path: Path) -> Iterator[tuple[Any, Store]]:
    """(TestClient, Store) on an empty store."""
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    settings = load_settings(home=str(tmp_path / "home"), database_url=store_url, log_format="none")
    store = Store(settings=settings)
    with TestClient(create_app(settings, store, clock=lambda: 1_700_000_000.0)) as client:
        yield client, store
    store.close()


def _count(store: Store, table: sa.Table) -> int:
    with store.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


GOOD = [
    {"type": "asset", "name": "raw.orders", "kind": "table", "freshness": "2h", "owner": "data"},
    {
        "type": "run",
        "run_id": "r1",
        "job": "nightly",
        "status": "success",
        "start_time": "2023-11-14T22:00:00Z",
        "end_time": 1_699_999_300.5,
    },
    {
        "type": "materialization",
        "run_id": "r1",
        "asset": "raw.orders",
        "status": "success",
        "start_time": 1_699_999_200,
        "end_time": 1_699_999_300,
        "rows": 42,
        "bytes": 4200,
    },
    {"type": "check", "asset": "raw.orders", "name": "not_null", "passed": False, "run_id": "r1"},
    {
        "type": "log",
        "message": "loaded 42 rows",
        "level": "INFO",
        "run_id": "r1",
        "attributes": {"rows": 42},
    },
    {
        "type": "span",
        "trace_id": "ab" * 16,
        "span_id": "cd" * 8,
        "name": "load",
        "start_time": 1_699_999_200,
        "end_time": 1_699_999_300,
        "run_id": "r1",
    },
    {"type": "lineage", "upstream": "api", "downstream": "raw.orders", "source": "sdk"},
    {"type": "schema", "asset": "raw.orders", "columns": {"id": "int"}},
    {"type": "metric", "name": "queue_size", "value": 3, "labels": {"queue": "a"}},
]


def test_native_batch_with_one_bad_event_stores_the_good_ones(empty: Any) -> None:
    client, store = empty
    events = [*GOOD[:4], {"type": "log", "level": "INFO"}, *GOOD[4:]]
    response = client.post("/api/v1/events", json=events)
    assert response.status_code == 207, response.text
    body = response.json()
    assert body["accepted"] == len(GOOD)
    assert body["rejected"] == [{"index": 4, "reason": "log: message: expected a string, got None"}]
    # Committed before the answer: readable right away.
    assert _count(store, schema.runs) == 1
    assert _count(store, schema.materializations) == 1
    assert _count(store, schema.check_results) == 1
    assert _count(store, schema.logs) == 1
    assert _count(store, schema.spans) == 1
    assert _count(store, schema.lineage_edges) == 1
    assert _count(store, schema.schema_snapshots) == 1
    assert _count(store, schema.metric_points) == 1
    with store.connect() as conn:
        state = conn.execute(
            sa.select(schema.assets.c.last_status, schema.assets.c.freshness_seconds).where(
                schema.assets.c.name == "raw.orders"
            )
        ).one()
    assert tuple(state) == ("success", 7200.0)
    assert client.get("/api/v1/runs/r1").json()["run"]["start_time"].startswith("2023-11-14T22:00")


def test_every_event_valid_is_200_and_none_valid_is_422(empty: Any) -> None:
    client, _store = empty
    assert client.post("/api/v1/events", json=GOOD).status_code == 200
    assert client.post("/api/v1/events", json=[]).json() == {"accepted": 0, "rejected": []}
    response = client.post("/api/v1/events", json=[{"type": "bogus"}, 7])
    assert response.status_code == 422
    reasons = [r["reason"] for r in response.json()["rejected"]]
    assert reasons[0].startswith("type: expected one of asset, run")
    assert reasons[1] == "expected an event object, got 7"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            {"type": "run", "run_id": "x" * 129, "job": "j"},
            "run: run_id: longer than 128 characters",
        ),
        (
            {"type": "materialization", "run_id": "r", "asset": "a", "attributes": {"x": math.nan}},
            "materialization: attributes.x: nan is not a finite number",
        ),
        (
            {"type": "metric", "name": "m", "value": 10**400},
            "metric: value: an integer of 401 digits is out of range (64-bit integers)",
        ),
        (
            {"type": "run", "run_id": "r", "job": "j", "status": "exploded"},
            "run: status: expected one of",
        ),
        ({"type": "log", "message": "m", "time": 1e300}, "log: time: 1e+300 is outside the years"),
        (
            {"type": "log", "message": "m", "time": "tuesday"},
            "log: time: 'tuesday' is not an ISO 8601",
        ),
        (
            {"type": "materialization", "run_id": "r", "asset": "a", "rows": 2**64},
            "materialization: rows: 18446744073709551616 is out of range",
        ),
        (
            {"type": "materialization", "run_id": "r", "asset": "a", "rows": -1},
            "materialization: rows: -1 is out of range",
        ),
        (
            {"type": "check", "asset": "a", "name": "c", "passed": "yes"},
            "check: passed: expected true or false",
        ),
        (
            {"type": "metric", "name": "9bad", "value": 1},
            "metric: name: '9bad' is not a metric name",
        ),
        (
            {"type": "metric", "name": "m", "value": -1, "kind": "counter"},
            "metric: value: a counter only goes up",
        ),
        (
            {"type": "metric", "name": "m", "value": 1, "labels": {"__x": "1"}},
            "metric: labels: '__x' is not a label name",
        ),
        (
            {
                "type": "span",
                "trace_id": "t",
                "span_id": "s",
                "name": "n",
                "start_time": 5,
                "end_time": 1,
            },
            "span: end_time: before start_time",
        ),
        (
            {"type": "asset", "name": "a", "freshness": "soon"},
            "asset: Invalid freshness_seconds='soon'",
        ),
    ],
)
def test_invalid_fields_are_rejected_with_the_reason(empty: Any, event: dict, reason: str) -> None:
    client, _store = empty
    body = json.dumps([event])  # NaN too, as Python writes it
    response = client.post(
        "/api/v1/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["rejected"][0]["reason"].startswith(reason)


def test_text_the_database_cannot_hold_is_cleaned_not_a_500(empty: Any) -> None:
    """NUL characters and lone surrogates in free text would make PostgreSQL fail the batch."""
    client, store = empty
    body = (
        '[{"type":"log","message":"nul \\u0000 and \\ud800 lone","attributes":{"k":"\\u0000\\udfff"}},'
        '{"type":"run","run_id":"r\\u0000","job":"j","error_message":"bad \\ud83d"}]'
    )
    response = client.post(
        "/api/v1/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert _count(store, schema.logs) == 1
    with store.connect() as conn:
        (run,) = reads.runs(conn)
    assert (run.run_id, run.error_message) == ("r\ufffd", "bad \ufffd")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'[{"type": "log", "message": "x"', "Malformed JSON at line 1, column 32"),
        (b'{"not": "an event"}', None),
        (b'"just a string"', "Expected a JSON array of events, got str."),
        (b"\xff\xfe\x00garbage", None),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_bodies_are_400_naming_the_problem(
    empty: Any, body: bytes, detail: str | None
) -> None:
    client, _store = empty
    response = client.post(
        "/api/v1/events", content=body, headers={"Content-Type": "application/json"}
    )
    if body.startswith(b"{"):
        assert response.status_code == 422  # one event object of an unknown type
        return
    assert response.status_code == 400, response.text
    if detail:
        assert detail in response.json()["detail"]


def test_oversize_body_is_413_from_content_length(empty: Any) -> None:
    client, store = empty
    payload = b"[" + b" " * (20 * 1024 * 1024) + b"]"
    response = client.post(
        "/api/v1/events", content=payload, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "larger than 20 MiB" in response.json()["detail"]
    assert _count(store, schema.logs) == 0


def test_oversize_streamed_body_is_refused_before_it_is_all_read(tmp_path: Path) -> None:
    """Without Content-Length the limit is enforced while the chunks arrive (raw ASGI)."""
    import anyio

    from lakelens.server import create_app

    app = create_app(load_settings(home=str(tmp_path / "home"), log_format="none"))
    sent = 0
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        sent += 1
        return {"type": "http.request", "body": b" " * (1024 * 1024), "more_body": sent < 100}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/events",
        "raw_path": b"/api/v1/events",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"host", b"test")],
        "client": ("127.0.0.1", 1234),
        "server": ("test", 80),
    }
    anyio.run(app, scope, receive, send)
    assert messages[0]["status"] == 413
    assert sent == 21  # 100 MiB offered; refused as the 21st MiB arrived


def test_gzip_bodies_are_inflated_under_the_same_limit(empty: Any) -> None:
    client, store = empty
    body = gzip.compress(json.dumps(GOOD).encode())
    response = client.post(
        "/api/v1/events",
        content=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    bomb = gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]")
    assert len(bomb) < 1024 * 1024
    response = client.post(
        "/api/v1/events",
        content=bomb,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413
    broken = client.post(
        "/api/v1/events",
        content=b"not gzip",
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert broken.status_code == 400
    odd = client.post("/api/v1/events", content=b"[]", headers={"Content-Encoding": "br"})
    assert odd.status_code == 415
    assert _count(store, schema.runs) == 1


def test_a_batch_id_is_stored_at_most_once(empty: Any) -> None:
    client, store = empty
    logs = [{"type": "log", "message": f"line {i}"} for i in range(10)]
    headers = {"Idempotency-Key": "batch-0001"}
    first = client.post("/api/v1/events", json=logs, headers=headers)
    again = client.post("/api/v1/events", json=logs, headers=headers)
    assert first.json() == {"accepted": 10, "rejected": []}
    assert again.status_code == 200
    assert again.json() == {"accepted": 10, "rejected": [], "duplicate": True}
    assert _count(store, schema.logs) == 10
    assert _count(store, schema.ingest_batches) == 1
    bad = client.post("/api/v1/events", json=logs, headers={"Idempotency-Key": "no spaces"})
    assert bad.status_code == 400


def test_concurrent_requests_with_one_batch_id_store_it_once(empty: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client, store = empty
    logs = [{"type": "log", "message": f"line {i}"} for i in range(200)]

    def post(_: int) -> int:
        response = client.post("/api/v1/events", json=logs, headers={"Idempotency-Key": "same"})
        return response.status_code

    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(post, range(12))) == {200}
    assert _count(store, schema.logs) == 200


def test_openlineage_endpoint_stores_a_run_event(empty: Any) -> None:
    pytest.importorskip("lakelens.ingest.openlineage")
    client, store = empty
    event = {
        "eventType": "COMPLETE",
        "eventTime": "2023-11-14T22:13:20Z",
        "run": {"runId": "3f5e83fa-3480-44ff-99c5-ff943904e5e8"},
        "job": {"namespace": "airflow", "name": "load_orders"},
        "inputs": [{"namespace": "postgres", "name": "public.raw_orders"}],
        "outputs": [{"namespace": "postgres", "name": "public.orders"}],
        "producer": "https://example.com/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    response = client.post("/api/v1/lineage", json=event)
    assert response.status_code in (200, 207), response.text
    assert response.json()["accepted"] >= 1
    assert _count(store, schema.runs) == 1
    assert client.post("/api/v1/lineage", content=b"{oops").status_code == 400
    assert client.post("/api/v1/lineage", json="a string").status_code in (400, 422)


def test_otlp_endpoints_accept_json_and_protobuf_and_refuse_garbage(empty: Any) -> None:
    pytest.importorskip("lakelens.ingest.otlp")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    client, _store = empty
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans.add()
    spans.trace_id = bytes(range(16))
    spans.span_id = bytes(range(8))
    spans.name = "load"
    spans.start_time_unix_nano = 1_700_000_000_000_000_000
    spans.end_time_unix_nano = 1_700_000_001_000_000_000
    response = client.post(
        "/v1/traces",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-protobuf"
    assert client.post("/v1/traces", json={}).status_code == 200
    assert client.post("/v1/logs", json={}).status_code == 200
    garbage = client.post(
        "/v1/traces", content=b"\xff\xff\xff", headers={"Content-Type": "application/x-protobuf"}
    )
    assert garbage.status_code == 400
    assert (
        client.post(
            "/v1/logs", content=b"{", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert (
        client.post("/v1/logs", content=b"x", headers={"Content-Type": "text/plain"}).status_code
        == 415
    )


def test_an_ingested_failure_wakes_the_alert_evaluator(empty: Any) -> None:
    import threading
    from types import SimpleNamespace

    client, _store = empty
    alerts = SimpleNamespace(evaluate_now=threading.Event())
    client.app.state.ctx.alerts = alerts
    client.post("/api/v1/events", json=[{"type": "log", "message": "fine"}])
    assert not alerts.evaluate_now.is_set()
    client.post(
        "/api/v1/events", json=[{"type": "run", "run_id": "r", "job": "j", "status": "failure"}]
    )
    assert alerts.evaluate_now.is_set()


def test_an_edge_repeated_without_columns_keeps_its_columns(empty: Any) -> None:
    """As stored one after the other: a later edge without a column mapping keeps the earlier one."""
    client, store = empty
    edge = {"type": "lineage", "upstream": "raw", "downstream": "stg"}
    response = client.post("/api/v1/events", json=[{**edge, "columns": {"id": ["id"]}}, edge])
    assert response.json() == {"accepted": 2, "rejected": []}
    with store.connect() as conn:
        columns = conn.execute(sa.select(schema.lineage_edges.c.columns)).scalars().all()
    assert columns == ['{"id":["id"]}']
