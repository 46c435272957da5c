"""JSON shapes shared by the CLI's --json output and the HTTP read API (one definition each).

Model datetimes become ISO 8601 strings (as in `lakelens logs --json`); analysis results
keep their epoch seconds and numbers untouched.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakelens.analysis.lineage import Impact, LineageGraph, LineageNode, TreeNode
    from lakelens.analysis.trace import Trace
    from lakelens.model import LogRecord, Run

__all__ = [
    "impact_dict",
    "jsonable",
    "log_dict",
    "node_dict",
    "run_dict",
    "trace_dict",
    "tree_dict",
]


def jsonable(value: Any) -> Any:
    """Dataclasses, datetimes, tuples and non-finite floats made plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def log_dict(record: LogRecord) -> dict[str, Any]:
    """A log record as `lakelens logs --json` prints it."""
    return {
        "id": record.id,
        "time": record.time.isoformat(),
        "level": record.level_name,
        "message": record.message,
        "logger": record.logger,
        "run_id": record.run_id,
        "asset": record.asset,
        "job": record.job,
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "attributes": record.attributes,
    }


def run_dict(run: Run, *, full: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "run_id": run.run_id,
        "job": run.job,
        "status": run.status,
        "start_time": jsonable(run.start_time),
        "end_time": jsonable(run.end_time),
        "duration_seconds": run.duration_seconds,
        "partition": run.partition,
        "trigger": run.trigger,
        "tags": run.tags,
        "correlation_id": run.correlation_id,
        "trace_id": run.trace_id,
        "parent_run_id": run.parent_run_id,
        "error_type": run.error_type,
        "error_message": run.error_message,
    }
    if full:
        data["error_traceback"] = run.error_traceback
    return data


def node_dict(node: LineageNode) -> dict[str, Any]:
    """An asset with its state, as lineage annotates it."""
    return {
        "name": node.name,
        "kind": node.kind,
        "owner": node.owner,
        "layer": node.layer,
        "critical": node.critical,
        "freshness_seconds": node.freshness_seconds,
        "tags": node.tags,
        "status": node.status,
        "last_success": node.last_success,
        "age_seconds": node.age_seconds,
        "stale": node.stale,
    }


def tree_dict(node: TreeNode, graph: LineageGraph) -> dict[str, Any]:
    """A lineage tree as `lakelens lineage show --json` prints it (iterative: chains run deep)."""

    def shape(item: TreeNode) -> dict[str, Any]:
        info = graph.nodes[item.name]
        return {
            "name": item.name,
            "kind": info.kind,
            "status": info.status,
            "age_seconds": info.age_seconds,
            "stale": info.stale,
            "depth": item.depth,
            "cycle": item.cycle,
            "repeated": item.repeated,
            "truncated": item.truncated,
            "children": [],
        }

    top = shape(node)
    stack = [(node, top)]
    while stack:
        item, data = stack.pop()
        for child in item.children:
            child_data = shape(child)
            data["children"].append(child_data)
            stack.append((child, child_data))
    return top


def impact_dict(result: Impact, graph: LineageGraph) -> dict[str, Any]:
    """Impact analysis as `lakelens lineage impact --json` prints it."""

    def entry(name: str, depth: int) -> dict[str, Any]:
        node = graph.nodes[name]
        return {"name": name, "depth": depth, "kind": node.kind, "owner": node.owner}

    return {
        "asset": result.asset,
        "direct": [entry(n, 1) for n in result.direct],
        "transitive": [entry(n, d) for n, d in result.transitive],
        "publishing_endpoints": result.publishing,
        "external": result.external,
        "owners": result.owners,
        "cycles": result.cycles,
        "totals": result.totals,
        "recommendation": result.recommendation,
    }


def trace_dict(run_id: str, result: Trace) -> dict[str, Any]:
    """A run's trace as `lakelens trace --json` prints it."""
    return {
        "run_id": run_id,
        "trace_id": result.trace_id,
        "status": result.run.status if result.run else None,
        "duration_seconds": result.duration_seconds,
        "span_count": result.span_count,
        "error_count": result.error_count,
        "spans": [
            {
                "span_id": n.span.span_id,
                "parent_id": n.span.parent_id,
                "name": n.span.name,
                "asset": n.span.asset,
                "depth": n.depth,
                "offset_seconds": n.offset_seconds,
                "duration_seconds": n.duration_seconds,
                "status": n.span.status,
                "error": n.span.error_message,
                "attributes": n.span.attributes,
            }
            for n in result.walk()
        ],
    }
