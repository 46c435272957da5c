"""Native events: a Batch survives JSON both ways, and the checks match the store's columns."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lakelens.errors import InvalidArgumentError
from lakelens.events import Batch
from lakelens.ingest.native import LIMITS, loads, to_ingested
from lakelens.ingest.native_write import batch_to_events, dumps_batch
from lakelens.model import (
    Asset,
    CheckResult,
    LineageEdge,
    Materialization,
    MetricPoint,
    Run,
    SchemaSnapshot,
)


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _batch() -> Batch:
    batch = Batch()
    batch.add(
        Asset(
            "raw.a",
            kind="table",
            owner="o",
            freshness_seconds=60.0,
            tags={"t": "1"},
            updated_at=_at(1.5),
        )
    )
    batch.add(
        Run(
            "r1",
            "job",
            status="failure",
            start_time=_at(10),
            end_time=_at(20.25),
            error_type="E",
            error_message="boom",
            trace_id="ab" * 16,
            tags={"k": "v"},
        )
    )
    batch.add(
        Materialization(
            "m1",
            "r1",
            "raw.a",
            status="success",
            start_time=_at(11),
            end_time=_at(12),
            rows=5,
            bytes=50,
            cpu_seconds=0.5,
            attributes={"x": [1, 2]},
        )
    )
    batch.add(
        CheckResult(
            "c1",
            "raw.a",
            "not_null",
            passed=False,
            severity="error",
            time=_at(12),
            run_id="r1",
            value=0.5,
            threshold=1.0,
            valid_rows=1,
            total_rows=2,
        )
    )
    batch.logs.append(
        (13.0, 40, "failed ✗", "pipe", "r1", "raw.a", "job", "ab" * 16, "cd" * 8, '{"rows":5}')
    )
    batch.logs.append((14.0, 20, "plain", None, None, None, None, None, None, None))
    batch.spans.append(
        (
            "ab" * 16,
            "cd" * 8,
            None,
            "r1",
            "raw.a",
            "load",
            11.0,
            12.0,
            "error",
            "E: boom",
            '{"a":1}',
            '[{"name":"retry","time":11.5,"attributes":{}}]',
        )
    )
    batch.add(LineageEdge("src", "raw.a", source="sdk", columns={"id": ["id"]}, updated_at=_at(9)))
    batch.add(SchemaSnapshot("raw.a", [("id", "int")], time=_at(12), hash="h1", run_id="r1"))
    batch.add(
        MetricPoint(
            "queue", 3.0, kind="gauge", time=_at(12), labels={"q": "a"}, run_id="r1", asset="raw.a"
        )
    )
    return batch


def test_a_batch_survives_the_round_trip() -> None:
    original = _batch()
    result = to_ingested(loads(dumps_batch(original)), now=100.0)
    assert result.rejected == []
    assert result.accepted == len(original)
    copy = result.batch
    assert copy.assets == original.assets
    assert copy.runs == original.runs
    assert copy.materializations == original.materializations
    assert copy.checks == original.checks
    assert copy.logs == original.logs
    assert copy.spans == original.spans
    assert copy.edges == original.edges
    assert copy.schemas == original.schemas
    assert copy.metrics == original.metrics


def test_every_event_has_its_type_and_no_empty_fields() -> None:
    events = batch_to_events(_batch())
    assert [e["type"] for e in events] == [
        "asset",
        "run",
        "materialization",
        "check",
        "log",
        "log",
        "span",
        "lineage",
        "schema",
        "metric",
    ]
    assert events[5] == {"type": "log", "time": 14.0, "level": 20, "message": "plain"}


def test_defaults_ids_and_iso_times() -> None:
    events = [
        {"type": "log", "message": "m"},
        {
            "type": "check",
            "asset": "a",
            "name": "c",
            "passed": True,
            "time": "2024-10-15T10:00:00+02:00",
        },
        {"type": "materialization", "run_id": "r", "asset": "a"},
        {"type": "schema", "asset": "a", "columns": [["id", "int"]]},
        {"type": "check_result", "asset": "a", "name": "c", "passed": True, "time": 5},
    ]
    result = to_ingested(events, now=1000.0)
    assert result.rejected == []
    batch = result.batch
    assert batch.logs[0][0] == 1000.0 and batch.logs[0][1] == 20
    assert batch.checks[0].time == datetime(2024, 10, 15, 8, tzinfo=timezone.utc)
    # Ids derived from the content: the same event sent twice is stored once.
    again = to_ingested(events, now=2000.0).batch
    assert batch.materializations[0].id == again.materializations[0].id
    assert batch.checks[1].id == again.checks[1].id
    # The SDK's schema hash, so drift detection compares like with like.
    import hashlib
    import json

    assert (
        batch.schemas[0].hash
        == hashlib.sha256(json.dumps([("id", "int")]).encode()).hexdigest()[:32]
    )


def test_limits_match_the_store_columns() -> None:
    from lakelens.store import schema

    assert LIMITS["id"] == schema.runs.c.run_id.type.length
    assert LIMITS["name"] == schema.assets.c.name.type.length
    assert LIMITS["short"] == schema.runs.c.error_type.type.length
    assert LIMITS["layer"] == schema.assets.c.layer.type.length
    assert LIMITS["kind"] == schema.assets.c.kind.type.length
    assert LIMITS["status"] == schema.spans.c.status.type.length
    assert LIMITS["trace_id"] == schema.spans.c.trace_id.type.length
    assert LIMITS["span_id"] == schema.spans.c.span_id.type.length
    assert LIMITS["hash"] == schema.schema_snapshots.c.hash.type.length
    assert schema.lineage_edges.c.source.type.length == LIMITS["kind"]


@pytest.mark.parametrize("payload", [None, "x", 3, True])
def test_a_payload_that_is_not_a_list_is_invalid(payload: object) -> None:
    with pytest.raises(InvalidArgumentError, match="Expected a JSON array of events"):
        to_ingested(payload, now=0.0)
