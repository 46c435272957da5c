"""lakelens' own events written as JSON: a Batch → the list of `{"type": ...}` objects that
`lakelens.ingest.native` reads back, and the request body the SDK's remote sink sends to
POST /api/v1/events. Reading and checking events: native.py."""

from __future__ import annotations

import json
from typing import Any

from lakelens.events import Batch
from lakelens.model import to_epoch

__all__ = ["batch_to_events", "dumps_batch"]


def _compact(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None and v != {} and v != []}


def _attrs(value: Any) -> Any:
    """Log and span rows hold attributes as JSON text; events carry them as objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return {"_text": value}
    return value


def batch_to_events(batch: Batch) -> list[dict[str, Any]]:
    """Every event of `batch` as a native event object (times as epoch seconds)."""
    events: list[dict[str, Any]] = []
    add = events.append
    for a in batch.assets:
        add(
            _compact(
                {
                    "type": "asset",
                    "name": a.name,
                    "kind": a.kind,
                    "owner": a.owner,
                    "layer": a.layer,
                    "group": a.group,
                    "description": a.description,
                    "freshness_seconds": a.freshness_seconds,
                    "availability_target": a.availability_target,
                    "expected_rows": a.expected_rows,
                    "critical": a.critical,
                    "tags": a.tags,
                    "updated_at": to_epoch(a.updated_at),
                }
            )
        )
    for r in batch.runs:
        add(
            _compact(
                {
                    "type": "run",
                    "run_id": r.run_id,
                    "job": r.job,
                    "status": r.status,
                    "start_time": to_epoch(r.start_time),
                    "end_time": to_epoch(r.end_time),
                    "partition": r.partition,
                    "trigger": r.trigger,
                    "tags": r.tags,
                    "correlation_id": r.correlation_id,
                    "trace_id": r.trace_id,
                    "parent_run_id": r.parent_run_id,
                    "error_type": r.error_type,
                    "error_message": r.error_message,
                    "error_traceback": r.error_traceback,
                }
            )
        )
    for m in batch.materializations:
        add(
            _compact(
                {
                    "type": "materialization",
                    "id": m.id,
                    "run_id": m.run_id,
                    "asset": m.asset,
                    "status": m.status,
                    "start_time": to_epoch(m.start_time),
                    "end_time": to_epoch(m.end_time),
                    "partition": m.partition,
                    "rows": m.rows,
                    "bytes": m.bytes,
                    "inserts": m.inserts,
                    "updates": m.updates,
                    "cpu_seconds": m.cpu_seconds,
                    "peak_memory_bytes": m.peak_memory_bytes,
                    "error_type": m.error_type,
                    "error_message": m.error_message,
                    "error_traceback": m.error_traceback,
                    "attributes": m.attributes,
                }
            )
        )
    for c in batch.checks:
        event = _compact(
            {
                "type": "check",
                "id": c.id,
                "asset": c.asset,
                "name": c.name,
                "severity": c.severity,
                "time": to_epoch(c.time),
                "run_id": c.run_id,
                "value": c.value,
                "threshold": c.threshold,
                "valid_rows": c.valid_rows,
                "total_rows": c.total_rows,
                "message": c.message,
                "attributes": c.attributes,
            }
        )
        event["passed"] = c.passed
        add(event)
    for row in batch.logs:
        add(
            _compact(
                {
                    "type": "log",
                    "time": row[0],
                    "level": row[1],
                    "message": row[2],
                    "logger": row[3],
                    "run_id": row[4],
                    "asset": row[5],
                    "job": row[6],
                    "trace_id": row[7],
                    "span_id": row[8],
                    "attributes": _attrs(row[9]),
                }
            )
        )
    for row in batch.spans:
        add(
            _compact(
                {
                    "type": "span",
                    "trace_id": row[0],
                    "span_id": row[1],
                    "parent_id": row[2],
                    "run_id": row[3],
                    "asset": row[4],
                    "name": row[5],
                    "start_time": row[6],
                    "end_time": row[7],
                    "status": row[8],
                    "error_message": row[9],
                    "attributes": _attrs(row[10]),
                    "events": _attrs(row[11]),
                }
            )
        )
    for edge in batch.edges:
        add(
            _compact(
                {
                    "type": "lineage",
                    "upstream": edge.upstream,
                    "downstream": edge.downstream,
                    "source": edge.source,
                    "columns": edge.columns,
                    "updated_at": to_epoch(edge.updated_at),
                }
            )
        )
    for s in batch.schemas:
        add(
            _compact(
                {
                    "type": "schema",
                    "asset": s.asset,
                    "columns": [list(c) for c in s.columns],
                    "time": to_epoch(s.time),
                    "hash": s.hash,
                    "run_id": s.run_id,
                }
            )
        )
    for p in batch.metrics:
        add(
            _compact(
                {
                    "type": "metric",
                    "name": p.name,
                    "value": p.value,
                    "kind": p.kind,
                    "time": to_epoch(p.time),
                    "labels": p.labels,
                    "run_id": p.run_id,
                    "asset": p.asset,
                }
            )
        )
    for profile in batch.profiles:
        add(
            _compact(
                {
                    "type": "profile",
                    "asset": profile.asset,
                    "run_id": profile.run_id,
                    "time": to_epoch(profile.time),
                    "row_count": profile.row_count,
                    "sampled_rows": profile.sampled_rows,
                    "source": profile.source,
                    "error": profile.error,
                }
            )
        )
        events[-1]["columns"] = profile.columns
    for use in batch.usage:
        add(
            _compact(
                {
                    "type": "usage",
                    "asset": use.asset,
                    "reader": use.reader,
                    "kind": use.kind,
                    "count": use.count,
                    "time": to_epoch(use.time),
                    "run_id": use.run_id,
                    "source": use.source,
                }
            )
        )
    return events


def dumps_batch(batch: Batch) -> bytes:
    """The request body for POST /api/v1/events: a compact JSON array, UTF-8."""
    events = batch_to_events(batch)
    text = json.dumps(events, separators=(",", ":"), ensure_ascii=False, default=str)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escaped, the server cleans it
        return json.dumps(events, separators=(",", ":"), default=str).encode("ascii")
