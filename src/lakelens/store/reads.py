"""Plain reads of stored events as model objects (the analysis layer builds on these)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from lakelens.model import (
    Asset,
    CheckResult,
    LineageEdge,
    LogRecord,
    Materialization,
    Run,
    SchemaSnapshot,
    Span,
    from_epoch,
)
from lakelens.store import schema

__all__ = [
    "assets",
    "check_results",
    "lineage_edges",
    "logs",
    "materializations",
    "runs",
    "schema_snapshots",
    "spans",
]


def _loads(text: str | None, default: Any) -> Any:
    return json.loads(text) if text else default


def assets(conn: sa.Connection) -> list[Asset]:
    rows = conn.execute(sa.select(schema.assets).order_by(schema.assets.c.name)).mappings()
    return [
        Asset(
            name=r["name"],
            kind=r["kind"],
            owner=r["owner"],
            layer=r["layer"],
            group=r["group_name"],
            description=r["description"],
            freshness_seconds=r["freshness_seconds"],
            availability_target=r["availability_target"],
            expected_rows=r["expected_rows"],
            critical=bool(r["critical"]),
            tags=_loads(r["tags"], {}),
            updated_at=from_epoch(r["updated_at"]),
        )
        for r in rows
    ]


def _run(r: Any) -> Run:
    return Run(
        run_id=r["run_id"],
        job=r["job"],
        status=r["status"],
        start_time=from_epoch(r["start_time"]),
        end_time=from_epoch(r["end_time"]),
        partition=r["partition"],
        trigger=r["trigger"],
        tags=_loads(r["tags"], {}),
        correlation_id=r["correlation_id"],
        trace_id=r["trace_id"],
        parent_run_id=r["parent_run_id"],
        error_type=r["error_type"],
        error_message=r["error_message"],
        error_traceback=r["error_traceback"],
    )


def runs(conn: sa.Connection, *, job: str | None = None, run_id: str | None = None) -> list[Run]:
    query = sa.select(schema.runs).order_by(schema.runs.c.start_time, schema.runs.c.run_id)
    if job is not None:
        query = query.where(schema.runs.c.job == job)
    if run_id is not None:
        query = query.where(schema.runs.c.run_id == run_id)
    return [_run(r) for r in conn.execute(query).mappings()]


def materializations(
    conn: sa.Connection, *, asset: str | None = None, run_id: str | None = None
) -> list[Materialization]:
    t = schema.materializations
    query = sa.select(t).order_by(t.c.start_time, t.c.id)
    if asset is not None:
        query = query.where(t.c.asset == asset)
    if run_id is not None:
        query = query.where(t.c.run_id == run_id)
    return [
        Materialization(
            id=r["id"],
            run_id=r["run_id"],
            asset=r["asset"],
            status=r["status"],
            start_time=from_epoch(r["start_time"]),
            end_time=from_epoch(r["end_time"]),
            partition=r["partition"],
            rows=r["rows"],
            bytes=r["bytes"],
            inserts=r["inserts"],
            updates=r["updates"],
            cpu_seconds=r["cpu_seconds"],
            peak_memory_bytes=r["peak_memory_bytes"],
            error_type=r["error_type"],
            error_message=r["error_message"],
            error_traceback=r["error_traceback"],
            attributes=_loads(r["attributes"], {}),
        )
        for r in conn.execute(query).mappings()
    ]


def check_results(conn: sa.Connection, *, run_id: str | None = None) -> list[CheckResult]:
    t = schema.check_results
    query = sa.select(t).order_by(t.c.time, t.c.id)
    if run_id is not None:
        query = query.where(t.c.run_id == run_id)
    return [
        CheckResult(
            id=r["id"],
            asset=r["asset"],
            name=r["name"],
            passed=bool(r["passed"]),
            severity=r["severity"],
            time=from_epoch(r["time"]),
            run_id=r["run_id"],
            value=r["value"],
            threshold=r["threshold"],
            valid_rows=r["valid_rows"],
            total_rows=r["total_rows"],
            message=r["message"],
            attributes=_loads(r["attributes"], {}),
        )
        for r in conn.execute(query).mappings()
    ]


def logs(
    conn: sa.Connection, *, run_id: str | None = None, limit: int | None = None
) -> list[LogRecord]:
    t = schema.logs
    query = sa.select(t).order_by(t.c.id)
    if run_id is not None:
        query = query.where(t.c.run_id == run_id)
    if limit is not None:
        query = query.limit(limit)
    return [
        LogRecord(
            id=r["id"],
            time=from_epoch(r["time"]),  # type: ignore[arg-type]
            level=r["level"],
            message=r["message"],
            logger=r["logger"],
            run_id=r["run_id"],
            asset=r["asset"],
            job=r["job"],
            trace_id=r["trace_id"],
            span_id=r["span_id"],
            attributes=_loads(r["attributes"], {}),
        )
        for r in conn.execute(query).mappings()
    ]


def spans(
    conn: sa.Connection, *, run_id: str | None = None, trace_id: str | None = None
) -> list[Span]:
    """Spans of a run; with both arguments, those with the run id or (run id unset) the trace id."""
    t = schema.spans
    query = sa.select(t).order_by(t.c.start_time, t.c.span_id)
    if run_id is not None and trace_id is not None:
        query = query.where(
            sa.or_(t.c.run_id == run_id, sa.and_(t.c.run_id.is_(None), t.c.trace_id == trace_id))
        )
    elif run_id is not None:
        query = query.where(t.c.run_id == run_id)
    elif trace_id is not None:
        query = query.where(t.c.trace_id == trace_id)
    return [
        Span(
            trace_id=r["trace_id"],
            span_id=r["span_id"],
            parent_id=r["parent_id"],
            run_id=r["run_id"],
            asset=r["asset"],
            name=r["name"],
            start_time=from_epoch(r["start_time"]),  # type: ignore[arg-type]
            end_time=from_epoch(r["end_time"]),
            status=r["status"],
            error_message=r["error_message"],
            attributes=_loads(r["attributes"], {}),
            events=_loads(r["events"], []),
        )
        for r in conn.execute(query).mappings()
    ]


def lineage_edges(conn: sa.Connection) -> list[LineageEdge]:
    t = schema.lineage_edges
    query = sa.select(t).order_by(t.c.upstream, t.c.downstream, t.c.source)
    return [
        LineageEdge(
            upstream=r["upstream"],
            downstream=r["downstream"],
            source=r["source"],
            columns=_loads(r["columns"], None),
        )
        for r in conn.execute(query).mappings()
    ]


def schema_snapshots(conn: sa.Connection, *, asset: str | None = None) -> list[SchemaSnapshot]:
    t = schema.schema_snapshots
    query = sa.select(t).order_by(t.c.time, t.c.id)
    if asset is not None:
        query = query.where(t.c.asset == asset)
    return [
        SchemaSnapshot(
            asset=r["asset"],
            columns=[tuple(c) for c in json.loads(r["columns"])],
            time=from_epoch(r["time"]),
            hash=r["hash"],
            run_id=r["run_id"],
        )
        for r in conn.execute(query).mappings()
    ]
