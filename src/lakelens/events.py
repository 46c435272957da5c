"""Events on their way to the store: the Batch the writer fills and the row layouts it uses.

Kept free of SQLAlchemy so that `import lakelens` stays light.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from lakelens.model import (
    Asset,
    AssetUsage,
    CheckResult,
    LineageEdge,
    Materialization,
    MetricPoint,
    Profile,
    Run,
    SchemaSnapshot,
    TableObservation,
)

__all__ = [
    "LOG_COLUMNS",
    "MAX_JSON_CHARS",
    "RESERVED_LOG_KEYS",
    "SPAN_COLUMNS",
    "Batch",
    "dumps",
    "log_attributes",
    "usage_id",
]

# A log row is a tuple in this order; the SDK builds these directly on its hot path.
LOG_COLUMNS = (
    "time",
    "level",
    "message",
    "logger",
    "run_id",
    "asset",
    "job",
    "trace_id",
    "span_id",
    "attributes",
)
SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_id",
    "run_id",
    "asset",
    "name",
    "start_time",
    "end_time",
    "status",
    "error_message",
    "attributes",
    "events",
)
MAX_JSON_CHARS = 64 * 1024
# One encoder for every row: json.dumps with options builds a new one on each call.
_encode = json.JSONEncoder(default=str, separators=(",", ":"), ensure_ascii=False).encode


# Keys of a structlog event dict that are columns of the log row (or rendering only), not attributes.
RESERVED_LOG_KEYS = frozenset(
    (
        "event",
        "logger",
        "exc_info",
        "level",
        "timestamp",
        "run_id",
        "asset",
        "job",
        "trace_id",
        "span_id",
    )
)


def log_attributes(values: dict[str, Any]) -> str | None:
    """The attributes column of a log row: everything but the reserved keys, as JSON."""
    return dumps({k: v for k, v in values.items() if k not in RESERVED_LOG_KEYS})


def dumps(value: Any) -> str | None:
    """Compact JSON for an attributes column, bounded in size; None for empty values."""
    if not value:
        return None
    text = _encode(value)
    if len(text) > MAX_JSON_CHARS:
        text = json.dumps({"_truncated": True, "_preview": text[: MAX_JSON_CHARS // 2]})
    return text


def usage_id(kind: str, asset: str, run_id: str) -> int:
    """The `asset_usage` row id of a run's use of an asset: the same for every report of it,
    so the row is inserted once (ON CONFLICT on the primary key, race-free on both databases).

    Negative, so it never meets an id the database hands out (those count up from 1).
    """
    digest = hashlib.blake2b(f"{kind}\x1f{asset}\x1f{run_id}".encode(), digest_size=8).digest()
    return -(int.from_bytes(digest, "big") >> 1) - 1


@dataclass
class Batch:
    """Events grouped by table, in arrival order."""

    assets: list[Asset] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    materializations: list[Materialization] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    logs: list[tuple[Any, ...]] = field(default_factory=list)
    spans: list[tuple[Any, ...]] = field(default_factory=list)
    edges: list[LineageEdge] = field(default_factory=list)
    schemas: list[SchemaSnapshot] = field(default_factory=list)
    metrics: list[MetricPoint] = field(default_factory=list)
    profiles: list[Profile] = field(default_factory=list)
    # Warehouse tables read by a monitor (lakelens.monitors).
    observations: list[TableObservation] = field(default_factory=list)
    # Reads of assets by jobs and views of dashboards (analysis/usage.py).
    usage: list[AssetUsage] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.assets)
            + len(self.runs)
            + len(self.materializations)
            + len(self.checks)
            + len(self.logs)
            + len(self.spans)
            + len(self.edges)
            + len(self.schemas)
            + len(self.metrics)
            + len(self.profiles)
            + len(self.observations)
            + len(self.usage)
        )

    def add(self, event: Any) -> None:
        """File a model object under its table (log and span rows are added to their lists directly)."""
        kind = type(event)
        if kind is Run:
            self.runs.append(event)
        elif kind is Materialization:
            self.materializations.append(event)
        elif kind is CheckResult:
            self.checks.append(event)
        elif kind is Asset:
            self.assets.append(event)
        elif kind is LineageEdge:
            self.edges.append(event)
        elif kind is SchemaSnapshot:
            self.schemas.append(event)
        elif kind is MetricPoint:
            self.metrics.append(event)
        elif kind is Profile:
            self.profiles.append(event)
        elif kind is TableObservation:
            self.observations.append(event)
        elif kind is AssetUsage:
            self.usage.append(event)
        else:
            raise TypeError(f"lakelens cannot store a {kind.__name__}")
