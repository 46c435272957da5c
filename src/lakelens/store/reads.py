"""Plain reads of stored events as model objects (the analysis layer builds on these)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from lakelens._clean import stored_json
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
from lakelens.store.sql import Reader, borrow

if TYPE_CHECKING:
    import sqlalchemy as sa

Conn: TypeAlias = "Reader | sa.Connection"

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
    # Never fails on what an older version stored (lone surrogates, deep nesting).
    return stored_json(text, default)


def _select(conn: Conn, table: str, order: str, **equal: Any) -> list[dict[str, Any]]:
    """Rows of `table` whose columns equal the given values (None: no condition), in `order`."""
    wanted = {column: value for column, value in equal.items() if value is not None}
    where = " AND ".join(f"{column} = :{column}" for column in wanted) or "1 = 1"
    return borrow(conn).dicts(f"SELECT * FROM {table} WHERE {where} ORDER BY {order}", wanted)


def assets(conn: Conn) -> list[Asset]:
    rows = _select(conn, "assets", "name")
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


def runs(conn: Conn, *, job: str | None = None, run_id: str | None = None) -> list[Run]:
    return [_run(r) for r in _select(conn, "runs", "start_time, run_id", job=job, run_id=run_id)]


def materializations(
    conn: Conn, *, asset: str | None = None, run_id: str | None = None
) -> list[Materialization]:
    rows = _select(conn, "materializations", "start_time, id", asset=asset, run_id=run_id)
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
        for r in rows
    ]


def check_results(conn: Conn, *, run_id: str | None = None) -> list[CheckResult]:
    rows = _select(conn, "check_results", "time, id", run_id=run_id)
    return [check_result_of(r) for r in rows]


def check_result_of(r: Mapping[str, Any]) -> CheckResult:
    """A check_results row (as a mapping; `attributes` may be left out of the select)."""
    return CheckResult(
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
        attributes=_loads(r.get("attributes"), {}),
    )


def logs(conn: Conn, *, run_id: str | None = None, limit: int | None = None) -> list[LogRecord]:
    order = "id" if limit is None else f"id LIMIT {int(limit)}"
    rows = _select(conn, "logs", order, run_id=run_id)
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
        for r in rows
    ]


def spans(conn: Conn, *, run_id: str | None = None, trace_id: str | None = None) -> list[Span]:
    """Spans of a run; with both arguments, those with the run id or (run id unset) the trace id."""
    if run_id is not None and trace_id is not None:
        rows = borrow(conn).dicts(
            "SELECT * FROM spans WHERE run_id = :run_id OR (run_id IS NULL AND trace_id = :trace_id) "
            "ORDER BY start_time, span_id",
            {"run_id": run_id, "trace_id": trace_id},
        )
    else:
        rows = _select(conn, "spans", "start_time, span_id", run_id=run_id, trace_id=trace_id)
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
        for r in rows
    ]


def lineage_edges(conn: Conn) -> list[LineageEdge]:
    return [
        LineageEdge(
            upstream=r["upstream"],
            downstream=r["downstream"],
            source=r["source"],
            columns=_loads(r["columns"], None),
            column_details=_loads(r["column_details"], None),
        )
        for r in _select(conn, "lineage_edges", "upstream, downstream, source")
    ]


def schema_snapshots(conn: Conn, *, asset: str | None = None) -> list[SchemaSnapshot]:
    return [
        SchemaSnapshot(
            asset=r["asset"],
            columns=[tuple(c) for c in json.loads(r["columns"])],
            time=from_epoch(r["time"]),
            hash=r["hash"],
            run_id=r["run_id"],
        )
        for r in _select(conn, "schema_snapshots", "time, id", asset=asset)
    ]
