"""The event types lakelens records. Times are timezone-aware UTC datetimes; ids are strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "LEVELS",
    "LEVEL_NAMES",
    "Asset",
    "AssetUsage",
    "CheckResult",
    "LineageEdge",
    "LogRecord",
    "Materialization",
    "MetricPoint",
    "Profile",
    "Run",
    "RunStatus",
    "SchemaSnapshot",
    "Span",
    "TableObservation",
    "from_epoch",
    "to_epoch",
]

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
LEVEL_NAMES = {number: name for name, number in LEVELS.items()}


def level_name(number: int) -> str:
    """The standard name of a numeric log level ('Level 25' for odd values)."""
    return LEVEL_NAMES.get(number) or f"Level {number}"


def to_epoch(moment: datetime | float | None) -> float | None:
    """Seconds since the epoch for a datetime (naive ones are taken as UTC)."""
    if moment is None or isinstance(moment, (int, float)):
        return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def from_epoch(seconds: float | None) -> datetime | None:
    """A UTC datetime for seconds since the epoch."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


class RunStatus:
    """Run and materialization states. Terminal states are never overwritten by earlier ones."""

    QUEUED = "queued"
    STARTED = "started"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELED = "canceled"
    SKIPPED = "skipped"
    TERMINAL = frozenset({SUCCESS, FAILURE, CANCELED, SKIPPED})
    ALL = frozenset({QUEUED, STARTED, SUCCESS, FAILURE, CANCELED, SKIPPED})


@dataclass
class Asset:
    """A thing a pipeline produces or reads: table, model, external source, dashboard."""

    name: str
    kind: str = "asset"
    owner: str | None = None
    layer: str | None = None
    group: str | None = None
    description: str | None = None
    freshness_seconds: float | None = None
    availability_target: float | None = None
    expected_rows: int | None = None
    # None: this source says nothing about it, and the stored value stays (as for every field
    # left None). Tags are merged into the stored ones: each key given is updated, others kept.
    critical: bool | None = None
    tags: dict[str, str] = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass
class Run:
    """One execution of a job: the unit that succeeds or fails."""

    run_id: str
    job: str
    status: str = RunStatus.STARTED
    start_time: datetime | None = None
    end_time: datetime | None = None
    partition: str | None = None
    trigger: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    correlation_id: str | None = None
    trace_id: str | None = None
    parent_run_id: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None

    @property
    def duration_seconds(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()


@dataclass
class Materialization:
    """An asset produced (or attempted) inside a run, with its volume and cost."""

    id: str
    run_id: str
    asset: str
    status: str = RunStatus.STARTED
    start_time: datetime | None = None
    end_time: datetime | None = None
    partition: str | None = None
    rows: int | None = None
    bytes: int | None = None
    inserts: int | None = None
    updates: int | None = None
    cpu_seconds: float | None = None
    peak_memory_bytes: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_seconds(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()


@dataclass
class CheckResult:
    """The outcome of a data quality check on an asset."""

    id: str
    asset: str
    name: str
    passed: bool
    severity: str = "warning"
    time: datetime | None = None
    run_id: str | None = None
    value: float | None = None
    threshold: float | None = None
    valid_rows: int | None = None
    total_rows: int | None = None
    message: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class LogRecord:
    """A structured log line, correlated to its run, asset and span."""

    time: datetime
    level: int
    message: str
    logger: str | None = None
    run_id: str | None = None
    asset: str | None = None
    job: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    @property
    def level_name(self) -> str:
        return level_name(self.level)


@dataclass
class Span:
    """A timed operation inside a trace; spans nest through parent_id."""

    trace_id: str
    span_id: str
    name: str
    start_time: datetime
    end_time: datetime | None = None
    parent_id: str | None = None
    run_id: str | None = None
    asset: str | None = None
    status: str = "ok"
    error_message: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_seconds(self) -> float | None:
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()


@dataclass
class LineageEdge:
    """Data flows from `upstream` to `downstream`."""

    upstream: str
    downstream: str
    source: str = "sdk"
    # {downstream column: [upstream columns]}: what each column of `downstream` reads.
    columns: dict[str, list[str]] | None = None
    # How (transformation types per column pair) and which upstream columns affect every
    # row of `downstream` (OpenLineage columnLineage 1-2-0; ingest/openlineage_columns.py).
    column_details: dict[str, Any] | None = None
    updated_at: datetime | None = None


@dataclass
class SchemaSnapshot:
    """The columns of an asset at a point in time; a changed hash means schema drift."""

    asset: str
    columns: list[tuple[str, str]]
    time: datetime | None = None
    hash: str | None = None
    run_id: str | None = None


@dataclass
class MetricPoint:
    """One observation of a custom metric (gauge or counter) with its labels."""

    name: str
    value: float
    kind: str = "gauge"
    time: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    asset: str | None = None


@dataclass
class Profile:
    """A column profile of an asset's data: per column its type, nulls, distinct values and
    statistics (see sdk/_profile.py for the shape); `error` says why profiling failed."""

    asset: str
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    time: datetime | None = None
    run_id: str | None = None
    row_count: int | None = None
    # Rows the sampled statistics were computed from; None when every row was used.
    sampled_rows: int | None = None
    # sdk | dlt | dagster | monitor
    source: str = "sdk"
    error: str | None = None


@dataclass
class TableObservation:
    """What a monitor read of a warehouse table from its metadata (lakelens.monitors).

    `row_count_estimated` marks the engine's estimate (PostgreSQL's reltuples) rather than a
    count(*); `modified_source` says where `modified_at` came from: "column" (a declared
    timestamp column), "statistics" (the engine's change counters), "file" (the database
    file's time) or "row_count" (the count changed).
    """

    asset: str
    monitor: str
    time: datetime
    row_count: int | None = None
    row_count_estimated: bool | None = None
    bytes: int | None = None
    modified_at: datetime | None = None
    modified_source: str | None = None


@dataclass
class AssetUsage:
    """Use of an asset downstream: reads by a job, or views of a dashboard (analysis/usage.py).

    A read with a run id counts once per run however often it is reported (an OpenLineage
    run's START, RUNNING and COMPLETE each list their inputs). `reader` is the job, or the
    dashboard whose views these are.
    """

    asset: str
    reader: str
    # read | view
    kind: str = "read"
    count: int = 1
    time: datetime | None = None
    run_id: str | None = None
    # openlineage | sdk | api
    source: str = "sdk"
