"""Poison isolation: one bad value rejects (or cleans) its own event and nothing else."""

from __future__ import annotations

import json
import os
from typing import Any

import sqlalchemy as sa

import lakelens
from lakelens.store import Store, reads, schema

SURROGATE_PATH = os.fsdecode(b"/data/\xff.csv")  # '/data/\udcff.csv'
JSON = {"Content-Type": "application/json"}


def _post(client: Any, path: str, body: Any) -> Any:
    return client.post(path, content=json.dumps(body), headers=JSON)


def _deep(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        node = {"a": node}
    return node


def test_a_lone_surrogate_from_a_file_name_does_not_block_the_sdk_writer(sdk: Store) -> None:
    with lakelens.run("poisoned"), lakelens.asset("raw"):
        lakelens.record(rows=1, source=SURROGATE_PATH)
    assert lakelens.flush(timeout=10)
    with lakelens.run("clean"), lakelens.asset("raw"):
        lakelens.record(rows=2)
    assert lakelens.flush(timeout=10)
    with sdk.connect() as conn:
        assert sorted((r.job, r.status) for r in reads.runs(conn)) == [
            ("clean", "success"),
            ("poisoned", "success"),
        ]
        sources = [m.attributes.get("source") for m in reads.materializations(conn)]
    assert "/data/\ufffd.csv" in sources


def test_a_surrogate_in_attributes_keeps_the_good_events_of_its_batch(served: Any) -> None:
    client, store = served
    body = [
        {"type": "run", "run_id": "r1", "job": "j"},
        {"type": "materialization", "run_id": "r1", "asset": "a", "attributes": {"k": "v\ud800w"}},
    ]
    response = _post(client, "/api/v1/events", body)
    assert response.status_code == 200, response.text
    with store.connect() as conn:
        (mat,) = reads.materializations(conn)
    assert mat.attributes == {"k": "v\ufffdw"}


def test_a_huge_number_rejects_its_event_alone(served: Any) -> None:
    client, store = served
    body = b'[{"type":"run","run_id":"r2","job":"j"},{"type":"metric","name":"m","value":1%s}]'
    response = client.post("/api/v1/events", content=body % (b"0" * 400), headers=JSON)
    assert response.status_code == 207, response.text
    (rejected,) = response.json()["rejected"]
    assert rejected == {
        "index": 1,
        "reason": "metric: value: an integer of 401 digits is out of range (64-bit integers)",
    }
    with store.connect() as conn:
        assert [r.run_id for r in reads.runs(conn)] == ["r2"]


def test_deep_attributes_are_rejected_naming_the_field_and_the_limit(served: Any) -> None:
    client, _store = served
    body = [
        {"type": "log", "message": "deep", "attributes": _deep(900)},
        {"type": "log", "message": "fine", "attributes": _deep(32)},
    ]
    response = _post(client, "/api/v1/events", body)
    assert response.status_code == 207, response.text
    reason = response.json()["rejected"][0]["reason"]
    assert reason.startswith("log: attributes.a.a")
    assert reason.endswith("nested more than 32 levels deep (the limit)")
    assert "\n" not in reason and len(reason) < 200
    assert client.get("/api/v1/logs").json()["records"][0]["message"] == "fine"


def test_a_logged_surrogate_never_breaks_log_or_run_reads(served: Any) -> None:
    client, _store = served
    events = [
        {"type": "run", "run_id": "r3", "job": "j"},
        {"type": "log", "message": "m\udcff", "run_id": "r3", "attributes": {"k\ud800": "\udfff"}},
    ]
    assert _post(client, "/api/v1/events", events).status_code == 200
    for path in ("/api/v1/logs", "/logs", "/api/v1/runs/r3", "/runs/r3"):
        assert client.get(path).status_code == 200, path
    (record,) = client.get("/api/v1/logs").json()["records"]
    assert (record["message"], record["attributes"]) == ("m\ufffd", {"k\ufffd": "\ufffd"})


def test_rows_an_older_version_stored_are_read_without_a_500(served: Any) -> None:
    """Escaped lone surrogates and 900 levels of nesting, written straight to the store."""
    client, store = served
    deep = json.dumps(_deep(900))
    with store.engine.begin() as conn:
        conn.execute(sa.insert(schema.runs).values(run_id="old", job="j", status="started"))
        for attributes in ('{"k":"v\\udcffw"}', deep):
            conn.execute(
                sa.insert(schema.logs).values(
                    time=1.0, level=20, message="m", run_id="old", attributes=attributes
                )
            )
        conn.execute(
            sa.insert(schema.spans).values(
                trace_id="t", span_id="s", run_id="old", name="n", start_time=1.0,
                status="ok", attributes=deep, events='[{"name":"\\ud800"}]',
            )
        )  # fmt: skip
    for path in ("/api/v1/logs", "/logs", "/api/v1/runs/old", "/runs/old"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
    records = client.get("/api/v1/logs").json()["records"]
    assert {"k": "v\ufffdw"} in [r["attributes"] for r in records]


def test_a_cursor_beyond_any_id_is_a_one_line_400(served: Any) -> None:
    client, _store = served
    response = client.get("/api/v1/logs", params={"cursor": "99999999999999999999"})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "cursor" in detail and "9223372036854775807" in detail and "\n" not in detail


def test_a_nan_in_one_openlineage_event_keeps_the_others(served: Any) -> None:
    client, store = served

    def event(run_id: str, facet: str) -> str:
        return (
            '{"eventType":"START","eventTime":"2024-10-15T06:00:00Z","producer":"p",'
            f'"run":{{"runId":"{run_id}","facets":{{"x":{{"v":{facet}}}}}}},'
            '"job":{"namespace":"n","name":"job"}}'
        )

    body = "[" + event("11111111-0000-0000-0000-000000000000", "NaN") + ","
    body += event("22222222-0000-0000-0000-000000000000", "1") + "]"
    response = client.post("/api/v1/lineage", content=body, headers=JSON)
    assert response.status_code == 207, response.text
    assert response.json()["rejected"][0]["reason"] == "run.facets.x.v: nan is not a finite number"
    with store.connect() as conn:
        assert [r.run_id for r in reads.runs(conn)] == ["22222222-0000-0000-0000-000000000000"]


def test_an_event_the_store_refuses_is_dropped_alone_by_the_writer(
    store_url: str, capfd: Any
) -> None:
    """Cleaning cannot fix a job name longer than its column (PostgreSQL refuses it): the
    writer splits the batch, stores the rest, and says so once."""
    from lakelens.model import Run
    from lakelens.sdk._writer import Writer

    store = Store(store_url)
    writer = Writer(lambda: store.write, flush_interval=0.01)
    try:
        writer.put(Run(run_id="before", job="j"))
        writer.put(Run(run_id="too-long", job="j" * 5000))
        writer.put(Run(run_id="after", job="j"))
        assert writer.flush(10)
        with store.connect() as conn:
            stored = sorted(r.run_id for r in reads.runs(conn))
    finally:
        writer.close()
        store.close()
    if store_url.startswith("postgresql"):
        assert stored == ["after", "before"]
        assert writer.refused == 1
        assert capfd.readouterr().err.count("the store refused an event") == 1
    else:  # SQLite does not enforce column widths
        assert stored == ["after", "before", "too-long"]
