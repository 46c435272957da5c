"""One Dagster run's event log as lakelens events, without I/O: the run, its
materializations (rows and bytes from their metadata), checks, failures, logs, input lineage,
and profiles from `dagster/row_count` and `dagster/column_schema` metadata.

`lakelens.integrations.dagster` reads the event log, writes what `_Translation` builds, and
re-exports `asset_name`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from lakelens.events import Batch, dumps
from lakelens.model import (
    CheckResult,
    LineageEdge,
    Materialization,
    Profile,
    Run,
    RunStatus,
    from_epoch,
)
from lakelens.sdk._runtime import trace_id_for

__all__ = ["SOURCE", "asset_name"]


SOURCE = "dagster"
_ID_NAMESPACE = uuid.UUID("6f0b7c1e-5d2a-4c39-9a51-2f3e8d7b4a10")
_MAX_MESSAGE = 8_000
_MAX_TRACEBACK = 32_000

# Dagster run statuses lakelens names differently; the rest (QUEUED, STARTING, …) are queued.
_RUN_STATUS = {
    **dict.fromkeys(("STARTED", "SUSPENDED", "CANCELING"), RunStatus.STARTED),
    **{"SUCCESS": RunStatus.SUCCESS, "FAILURE": RunStatus.FAILURE, "CANCELED": RunStatus.CANCELED},
}
_SEVERITY = {"WARN": "warning", "ERROR": "error"}
_ROW_KEYS = ("dagster/row_count", "rows", "row_count", "num_rows")
_BYTE_KEYS = ("bytes", "size_bytes", "dagster/size_bytes")
_ET = dg.DagsterEventType


def asset_name(key: dg.AssetKey) -> str:
    """The lakelens name of a Dagster asset key: its path joined with dots (`raw.orders`)."""
    return ".".join(key.path)


def _stable_id(*parts: object) -> str:
    """A UUID derived from `parts`: recording the same Dagster event twice gives the same id."""
    return str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join("" if p is None else str(p) for p in parts)))


@dataclass
class _Error:
    type: str | None
    message: str | None
    traceback: str | None


@dataclass
class _Step:
    start: float | None = None
    end: float | None = None
    status: str | None = None
    error: _Error | None = None
    assets: list[str] = field(default_factory=list)


def _user_error(info: Any) -> _Error:
    """The exception the user's code raised, without Dagster's wrapper around it."""
    while getattr(info, "cause", None) is not None and str(
        getattr(info, "cls_name", "") or ""
    ).startswith("Dagster"):
        info = info.cause
    cls_name = getattr(info, "cls_name", None) or "Error"
    text = str(getattr(info, "message", "") or "").strip()
    message = text[len(cls_name) + 2 :] if text.startswith(f"{cls_name}: ") else text
    trace = "Traceback (most recent call last):\n" + "".join(getattr(info, "stack", []) or [])
    trace += text + "\n"
    if len(trace) > _MAX_TRACEBACK:
        trace = trace[: _MAX_TRACEBACK // 2] + "\n…\n" + trace[-_MAX_TRACEBACK // 2 :]
    return _Error(cls_name, (message or cls_name)[:_MAX_MESSAGE], trace)


def _numbers(metadata: dict[str, Any]) -> dict[str, float | int]:
    """The numeric entries of Dagster metadata (IntMetadataValue, FloatMetadataValue)."""
    found: dict[str, float | int] = {}
    for key, entry in (metadata or {}).items():
        value = getattr(entry, "value", entry)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            found[str(key)] = value
    return found


def _first_count(numbers: dict[str, float | int], keys: Sequence[str]) -> int | None:
    for key in keys:
        value = numbers.get(key)
        if value is not None and value >= 0:
            return int(value)
    return None


# Dagster column types (free text, often the warehouse's) to the kinds of a lakelens profile.
_KINDS = (
    ("boolean", ("bool",)),
    ("integer", ("int", "serial")),
    ("float", ("float", "double", "decimal", "numeric", "real", "number", "money")),
    ("time", ("date", "time")),
    ("string", ("str", "char", "text", "uuid", "json")),
)


def _column_kind(type_name: str) -> str:
    lowered = type_name.lower()
    for kind, words in _KINDS:
        if any(word in lowered for word in words):
            return kind
    return "other"


def _schema_columns(entry: Any) -> dict[str, dict[str, Any]]:
    """Columns of a `dagster/column_schema` value: name → {type, dtype, description}."""
    schema = getattr(entry, "schema", entry)
    columns: dict[str, dict[str, Any]] = {}
    for column in getattr(schema, "columns", None) or []:
        name = str(getattr(column, "name", "") or "")
        if not name:
            continue
        dtype = str(getattr(column, "type", "") or "")
        stats: dict[str, Any] = {"type": _column_kind(dtype), "dtype": dtype or None}
        constraints = getattr(column, "constraints", None)
        if constraints is not None and getattr(constraints, "nullable", True) is False:
            stats["nulls"] = 0
            stats["null_rate"] = 0.0
        columns[name[:512]] = {k: v for k, v in stats.items() if v is not None}
    return columns


def _trigger(tags: dict[str, str]) -> str:
    if "dagster/schedule_name" in tags:
        return "schedule"
    if "dagster/sensor_name" in tags:
        return "sensor"
    if "dagster/backfill" in tags:
        return "backfill"
    return "manual"


class _Translation:
    """One Dagster run's event log turned into lakelens events (no I/O)."""

    def __init__(self, run: Any, run_record: Any, records: Sequence[Any], min_level: int) -> None:
        self.run = run
        self.run_id: str = run.run_id
        self.job: str = run.job_name
        self.tags: dict[str, str] = {str(k): str(v) for k, v in (run.tags or {}).items()}
        self.partition = self.tags.get("dagster/partition")
        self.trace_id = trace_id_for(self.run_id)
        self.status = _RUN_STATUS.get(run.status.value, RunStatus.QUEUED)
        self.finished = self.status in RunStatus.TERMINAL
        self.records = records
        self.min_level = min_level
        self.steps: dict[str, _Step] = {}
        self.planned: dict[str, tuple[str | None, str]] = {}  # asset → (partition, step)
        self.run_start = getattr(run_record, "start_time", None)
        self.run_end = getattr(run_record, "end_time", None)
        self.run_error: _Error | None = None
        self.batch = Batch()
        self._scan()

    def _step(self, key: str | None) -> _Step | None:
        if key is None:
            return None
        step = self.steps.get(key)
        if step is None:
            step = self.steps[key] = _Step()
        return step

    def _scan(self) -> None:
        """First pass: step timings and outcomes, and which step plans which asset."""
        for record in self.records:
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is None:
                continue
            kind = event.event_type
            step = self._step(event.step_key)
            data = event.event_specific_data
            if kind == _ET.RUN_START and self.run_start is None:
                self.run_start = entry.timestamp
            elif kind in (_ET.RUN_SUCCESS, _ET.RUN_FAILURE, _ET.RUN_CANCELED):
                self.run_end = self.run_end or entry.timestamp
                if kind == _ET.RUN_FAILURE and getattr(data, "error", None) is not None:
                    self.run_error = self.run_error or _user_error(data.error)
            elif step is None:
                continue
            elif kind == _ET.STEP_START:
                step.start = entry.timestamp
            elif kind == _ET.STEP_SUCCESS:
                step.end, step.status = entry.timestamp, RunStatus.SUCCESS
            elif kind == _ET.STEP_FAILURE:
                step.end, step.status = entry.timestamp, RunStatus.FAILURE
                if getattr(data, "error", None) is not None:
                    step.error = _user_error(data.error)
                else:
                    step.error = _Error("Failure", event.message or "step failed", None)
            elif kind == _ET.STEP_SKIPPED:
                step.end, step.status = entry.timestamp, RunStatus.SKIPPED
            elif kind in (_ET.ASSET_MATERIALIZATION_PLANNED, _ET.ASSET_CHECK_EVALUATION_PLANNED):
                name = asset_name(data.asset_key)
                if name not in step.assets:
                    step.assets.append(name)
                if kind == _ET.ASSET_MATERIALIZATION_PLANNED:
                    self.planned[name] = (getattr(data, "partition", None), event.step_key)

    # -- events ----------------------------------------------------------------------------
    def run_row(self) -> Run:
        error = None
        if self.status == RunStatus.FAILURE:
            # The first step that failed explains the run better than "Steps failed: [...]".
            failed = [s for s in self.steps.values() if s.error is not None]
            error = min(failed, key=lambda s: s.end or 0.0).error if failed else self.run_error
        return Run(
            run_id=self.run_id,
            job=self.job,
            status=self.status,
            start_time=from_epoch(self.run_start),
            end_time=from_epoch(self.run_end) if self.finished else None,
            partition=self.partition,
            trigger=_trigger(self.tags),
            tags=self.tags,
            correlation_id=self.run_id,
            trace_id=self.trace_id,
            parent_run_id=getattr(self.run, "parent_run_id", None),
            error_type=error.type if error else None,
            error_message=error.message if error else None,
            error_traceback=error.traceback if error else None,
        )

    def materializations(self) -> list[Materialization]:
        found: list[Materialization] = []
        materialized: set[str] = set()
        for record in self.records:
            event = record.event_log_entry.dagster_event
            if event is None or event.event_type != _ET.ASSET_MATERIALIZATION:
                continue
            mat = event.event_specific_data.materialization
            name = asset_name(mat.asset_key)
            materialized.add(name)
            step = self.steps.get(event.step_key or "") or _Step()
            when = record.event_log_entry.timestamp
            numbers = _numbers(mat.metadata)
            attributes: dict[str, Any] = dict(numbers)
            if event.step_key:
                attributes["dagster/step_key"] = event.step_key
            partition = mat.partition
            found.append(
                Materialization(
                    id=_stable_id("materialization", self.run_id, name, partition),
                    run_id=self.run_id,
                    asset=name,
                    status=RunStatus.SUCCESS,
                    start_time=from_epoch(step.start if step.start is not None else when),
                    end_time=from_epoch(step.end if step.status == RunStatus.SUCCESS else when),
                    partition=partition,
                    rows=_first_count(numbers, _ROW_KEYS),
                    bytes=_first_count(numbers, _BYTE_KEYS),
                    attributes=attributes,
                )
            )
        # Planned assets that produced nothing: failed with their step, skipped, or running.
        for name, (partition, step_key) in self.planned.items():
            if name in materialized:
                continue
            step = self.steps.get(step_key) or _Step()
            if step.status == RunStatus.FAILURE:
                status = RunStatus.FAILURE
            elif self.finished or step.status is not None:
                status = RunStatus.SKIPPED
            elif step.start is not None:
                status = RunStatus.STARTED
            else:
                continue  # not started yet
            start = step.start if step.start is not None else (step.end or self.run_end)
            end = step.end or (self.run_end if self.finished else None)
            error = step.error if status == RunStatus.FAILURE else None
            found.append(
                Materialization(
                    id=_stable_id("materialization", self.run_id, name, partition),
                    run_id=self.run_id,
                    asset=name,
                    status=status,
                    start_time=from_epoch(start),
                    end_time=from_epoch(end),
                    partition=partition,
                    error_type=error.type if error else None,
                    error_message=error.message if error else None,
                    error_traceback=error.traceback if error else None,
                    attributes={"dagster/step_key": step_key},
                )
            )
        return found

    def checks(self) -> list[CheckResult]:
        found: list[CheckResult] = []
        seen: dict[tuple[str, str, str | None], int] = {}
        for record in self.records:
            event = record.event_log_entry.dagster_event
            if event is None or event.event_type != _ET.ASSET_CHECK_EVALUATION:
                continue
            data = event.event_specific_data
            name = asset_name(data.asset_key)
            partition = getattr(data, "partition", None)
            key = (name, data.check_name, partition)
            seen[key] = seen.get(key, -1) + 1
            numbers = _numbers(data.metadata)
            severity = getattr(getattr(data, "severity", None), "value", "ERROR")
            value = numbers.get("value")
            threshold = numbers.get("threshold")
            valid = numbers.get("valid_rows")
            total = numbers.get("total_rows")
            found.append(
                CheckResult(
                    id=_stable_id("check", self.run_id, *key, seen[key]),
                    asset=name,
                    name=data.check_name,
                    passed=bool(data.passed),
                    severity=_SEVERITY.get(severity, "error"),
                    time=from_epoch(record.event_log_entry.timestamp),
                    run_id=self.run_id,
                    value=None if value is None else float(value),
                    threshold=None if threshold is None else float(threshold),
                    valid_rows=None if valid is None else int(valid),
                    total_rows=None if total is None else int(total),
                    message=getattr(data, "description", None) or event.message,
                    attributes={**numbers, **({"partition": partition} if partition else {})},
                )
            )
        return found

    def profiles(self) -> list[Profile]:
        """A profile per materialization whose metadata gives its row count or column schema
        (`dagster/row_count`, `dagster/column_schema`): the rows and each column's type."""
        found: list[Profile] = []
        for record in self.records:
            event = record.event_log_entry.dagster_event
            if event is None or event.event_type != _ET.ASSET_MATERIALIZATION:
                continue
            metadata = event.event_specific_data.materialization.metadata or {}
            rows = _first_count(_numbers(metadata), ("dagster/row_count",))
            columns = _schema_columns(metadata.get("dagster/column_schema"))
            if rows is None and not columns:
                continue
            found.append(
                Profile(
                    asset=asset_name(event.event_specific_data.materialization.asset_key),
                    columns=columns,
                    time=from_epoch(record.event_log_entry.timestamp),
                    run_id=self.run_id,
                    row_count=rows,
                    source=SOURCE,
                )
            )
        return found

    def input_edges(self) -> list[LineageEdge]:
        """Edges from what each materialization read (Dagster's input data version tags)."""
        edges: dict[tuple[str, str], LineageEdge] = {}
        prefix = "dagster/input_data_version/"
        for record in self.records:
            event = record.event_log_entry.dagster_event
            if event is None or event.event_type != _ET.ASSET_MATERIALIZATION:
                continue
            mat = event.event_specific_data.materialization
            downstream = asset_name(mat.asset_key)
            for tag in mat.tags or {}:
                if tag.startswith(prefix):
                    upstream = asset_name(dg.AssetKey.from_user_string(tag[len(prefix) :]))
                    edges[(upstream, downstream)] = LineageEdge(
                        upstream, downstream, SOURCE, updated_at=from_epoch(time.time())
                    )
        return list(edges.values())

    def logs(self) -> list[tuple[Any, ...]]:
        """Every event and `context.log` line at or above the level, as log rows."""
        rows: list[tuple[Any, ...]] = []
        for record in self.records:
            entry = record.event_log_entry
            if entry.level < self.min_level:
                continue
            event = entry.dagster_event
            attributes: dict[str, Any] = {"dagster/storage_id": record.storage_id}
            if entry.step_key:
                attributes["dagster/step_key"] = entry.step_key
            asset = None
            step = self.steps.get(entry.step_key or "")
            if step is not None and len(step.assets) == 1:
                asset = step.assets[0]
            if event is None:
                logger, message = "dagster.log", entry.user_message
            else:
                logger = "dagster"
                message = event.message or entry.user_message
                attributes["dagster/event_type"] = event.event_type_value
                key = getattr(event.event_specific_data, "asset_key", None) or event.asset_key
                if isinstance(key, dg.AssetKey):
                    asset = asset_name(key)
                if event.event_type == _ET.STEP_FAILURE and step is not None and step.error:
                    message = f"{message} {step.error.type}: {step.error.message}"
                    attributes["error_type"] = step.error.type
                    attributes["exception"] = step.error.traceback
            rows.append(
                (
                    entry.timestamp,
                    entry.level,
                    message,
                    logger,
                    self.run_id,
                    asset,
                    self.job,
                    self.trace_id,
                    None,
                    dumps(attributes),
                )
            )
        return rows

    def build(self) -> Batch:
        """The run, its materializations and checks; its logs too once the run has finished."""
        batch = self.batch
        batch.runs.append(self.run_row())
        batch.materializations.extend(self.materializations())
        batch.checks.extend(self.checks())
        batch.edges.extend(self.input_edges())
        if self.finished:
            # Appended rows, like logs: written once, with the finished run's claim.
            batch.logs.extend(self.logs())
            batch.profiles.extend(self.profiles())
        return batch
