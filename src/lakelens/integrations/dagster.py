"""Dagster → lakelens: runs, materializations, checks, failures, logs and the asset graph.

    import dagster as dg
    from lakelens.integrations.dagster import observe

    defs = observe(dg.Definitions(assets=[...]))

`observe()` adds a sensor that reads the Dagster event log and records every run in the
lakelens store. Outside a daemon (`dg.materialize([...])` in a script or test) call
`record_run(instance, result.run_id)`. Inside an op, `with lakelens_run(context):` makes
lakelens SDK code (and dbt or dlt started from it) record under the Dagster run id.
"""

from __future__ import annotations

try:
    import dagster as dg
except ImportError as exc:
    if exc.name is not None and exc.name.partition(".")[0] != "dagster":
        raise  # dagster is there but broken: its own error says more
    raise ImportError("Dagster support needs the extra: pip install 'lakelens[dagster]'") from None

import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakelens.errors import InvalidArgumentError, StoreError
from lakelens.events import Batch, dumps
from lakelens.model import (
    LEVELS,
    Asset,
    CheckResult,
    LineageEdge,
    Materialization,
    Profile,
    Run,
    RunStatus,
    from_epoch,
)
from lakelens.sdk._runtime import RT, trace_id_for

if TYPE_CHECKING:
    from lakelens.store import Store

from lakelens.integrations.dagster_run import lakelens_run

__all__ = ["Recorded", "asset_name", "lakelens_run", "lakelens_sensor", "observe", "record_run"]

SOURCE = "dagster"
_ID_NAMESPACE = uuid.UUID("6f0b7c1e-5d2a-4c39-9a51-2f3e8d7b4a10")
_MAX_MESSAGE = 8_000
_MAX_TRACEBACK = 32_000
_PAGE = 1_000

# Dagster run statuses lakelens names differently; the rest (QUEUED, STARTING, …) are queued.
_RUN_STATUS = {
    **dict.fromkeys(("STARTED", "SUSPENDED", "CANCELING"), RunStatus.STARTED),
    **{"SUCCESS": RunStatus.SUCCESS, "FAILURE": RunStatus.FAILURE, "CANCELED": RunStatus.CANCELED},
}
_SEVERITY = {"WARN": "warning", "ERROR": "error"}
_ROW_KEYS = ("dagster/row_count", "rows", "row_count", "num_rows")
_BYTE_KEYS = ("bytes", "size_bytes", "dagster/size_bytes")
# The run status changes the sensor follows, in the order Dagster writes them.
_STATUS_EVENTS = (
    dg.DagsterEventType.RUN_START,
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
)
_ET = dg.DagsterEventType


def asset_name(key: dg.AssetKey) -> str:
    """The lakelens name of a Dagster asset key: its path joined with dots (`raw.orders`)."""
    return ".".join(key.path)


def _stable_id(*parts: object) -> str:
    """A UUID derived from `parts`: recording the same Dagster event twice gives the same id."""
    return str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join("" if p is None else str(p) for p in parts)))


def _level_number(level: int | str) -> int:
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    number = LEVELS.get(str(level).upper())
    if number is None:
        raise InvalidArgumentError(
            f"Invalid log_level={level!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL."
        )
    return number


# -- what gets recorded ----------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """What `record_run` found and wrote for one Dagster run."""

    run_id: str
    status: str
    finished: bool
    # False when this finished run had been recorded before: nothing was written again.
    written: bool
    materializations: int = 0
    checks: int = 0
    logs: int = 0


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


# -- the asset graph -------------------------------------------------------------------------


def _seconds(delta: Any) -> float | None:
    if delta is None:
        return None
    if hasattr(delta, "to_timedelta"):
        delta = delta.to_timedelta()
    return float(delta.total_seconds())


def _freshness(node: Any, check_params: dict[str, float]) -> tuple[float | None, dict[str, str]]:
    """The freshness SLA in seconds from a FreshnessPolicy, a legacy one or a freshness check."""
    policy = getattr(node, "freshness_policy", None)
    window = getattr(policy, "fail_window", None)
    if window is not None:
        return _seconds(window), {}
    cron = getattr(policy, "deadline_cron", None)
    if cron is not None:
        # No single maximum age: keep the schedule for people, leave the SLA unset.
        return None, {"dagster/freshness_cron": str(cron)}
    # Before Dagster 1.11 `freshness_policy` was what is now `legacy_freshness_policy`.
    for legacy in (policy, getattr(node, "legacy_freshness_policy", None)):
        lag = getattr(legacy, "maximum_lag_minutes", None)
        if lag is not None:
            return float(lag) * 60.0, {}
    return check_params.get(asset_name(node.key)), {}


def _kind(node: Any, kinds: set[str]) -> str:
    if "dashboard" in kinds:
        return "dashboard"
    if getattr(node, "is_materializable", True):
        return "asset"
    return "source" if not node.parent_keys else "external"


def _graph_batch(asset_graph: Any) -> Batch:
    """Assets (owner, group, description, tags, freshness SLA) and their deps as lineage."""
    now = from_epoch(time.time())
    check_params: dict[str, float] = {}
    for check_key in getattr(asset_graph, "asset_check_keys", ()):
        spec = asset_graph.get_check_spec(check_key)
        params = (spec.metadata or {}).get("dagster/freshness_params")
        data = getattr(params, "data", params) or {}
        if isinstance(data, dict) and data.get("lower_bound_delta_seconds") is not None:
            check_params[asset_name(check_key.asset_key)] = float(data["lower_bound_delta_seconds"])
    batch = Batch()
    for node in sorted(asset_graph.asset_nodes, key=lambda n: n.key.path):
        name = asset_name(node.key)
        tags = {str(k): str(v) for k, v in (node.tags or {}).items()}
        kinds = set(getattr(node, "kinds", ()) or ())
        freshness, extra = _freshness(node, check_params)
        tags.update(extra)
        if (
            len(node.key.path) > 1
        ):  # `raw/orders`, as Dagster writes it: an alias (ingest/identity.py)
            tags["dagster.asset_key"] = node.key.to_user_string()
        owners = list(getattr(node, "owners", ()) or ())
        batch.assets.append(
            Asset(
                name=name,
                kind=_kind(node, kinds),
                owner=", ".join(owners) or None,
                layer=tags.get("layer"),
                group=node.group_name,
                description=node.description,
                freshness_seconds=freshness,
                tags=tags,
                updated_at=now,
            )
        )
        for parent in sorted(node.parent_keys, key=lambda k: k.path):
            batch.edges.append(LineageEdge(asset_name(parent), name, SOURCE, updated_at=now))
    return batch


def _asset_graph(defs: dg.Definitions) -> Any:
    # Dagster 1.9 renamed get_asset_graph() to resolve_asset_graph().
    resolve = getattr(defs, "resolve_asset_graph", None) or defs.get_asset_graph  # type: ignore[attr-defined]
    return resolve()


def _graph_digest(batch: Batch) -> str:
    parts: list[Any] = [
        (a.name, a.kind, a.owner, a.layer, a.group, a.description, a.freshness_seconds, a.tags)
        for a in batch.assets
    ]
    parts += [(e.upstream, e.downstream) for e in batch.edges]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


# -- reading and writing ---------------------------------------------------------------------


def _run_records(instance: dg.DagsterInstance, run_id: str) -> list[Any]:
    records: list[Any] = []
    cursor = None
    while True:
        page = instance.get_records_for_run(run_id, cursor=cursor, limit=_PAGE)
        records.extend(page.records)
        if not page.has_more:
            return records
        cursor = page.cursor


def _translate(
    instance: dg.DagsterInstance, run_id: str, min_level: int
) -> tuple[_Translation, Batch]:
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise InvalidArgumentError(f"Dagster has no run {run_id!r} in this instance.")
    translation = _Translation(
        run, instance.get_run_record_by_id(run_id), _run_records(instance, run_id), min_level
    )
    return translation, translation.build()


def _write_run(store: Store | None, translation: _Translation, batch: Batch) -> Recorded:
    """Write one run's batch (into the SDK's store when `store` is None)."""
    # Logs are plain appends, so a finished run is written at most once: its batch claims the
    # id dagster-run:<run id> in the same transaction (False when an earlier call claimed it).
    claim = f"dagster-run:{translation.run_id}" if translation.finished else None
    target = store if store is not None else RT.store
    written = target.write(batch, batch_id=claim, source=SOURCE)
    bad = translation.status == RunStatus.FAILURE or any(not c.passed for c in batch.checks)
    if written and store is None and translation.finished and bad:
        # As for a failed SDK run: evaluate alert rules now when destinations are set, so
        # alerts go out without `lakelens serve` running.
        from lakelens.sdk._alerting import alert_after_failure

        alert_after_failure()
    return Recorded(
        run_id=translation.run_id,
        status=translation.status,
        finished=translation.finished,
        written=written,
        materializations=len(batch.materializations) if written else 0,
        checks=len(batch.checks) if written else 0,
        logs=len(batch.logs) if written else 0,
    )


def record_run(
    instance: dg.DagsterInstance,
    run_id: str,
    *,
    defs: dg.Definitions | None = None,
    store: Store | None = None,
    log_level: int | str = "DEBUG",
) -> Recorded:
    """Record one Dagster run (and, given `defs`, the asset graph) in the lakelens store.

        result = dg.materialize([orders], instance=instance)
        record_run(instance, result.run_id, defs=defs)

    Safe to call again: a finished run is written once (its logs included); an unfinished
    one gets its status, materializations and checks so far, and its logs once it finishes.
    """
    if defs is not None:
        (store or RT.store).write(_graph_batch(_asset_graph(defs)))
    translation, batch = _translate(instance, run_id, _level_number(log_level))
    return _write_run(store, translation, batch)


# -- the sensor ------------------------------------------------------------------------------


def _monitored(context: Any, run: Any, all_code_locations: bool) -> bool:
    """Runs of this code location, and runs launched outside any (scripts, tests)."""
    origin = getattr(run, "remote_job_origin", None)
    if all_code_locations or origin is None:
        return True
    location = getattr(context.code_location_origin, "location_name", None)
    repository = context.repository_name
    if location is None and repository is None:
        return True
    return (
        origin.repository_origin.code_location_origin.location_name == location
        and origin.repository_origin.repository_name == repository
    )


def _status_changes(instance: dg.DagsterInstance, after: int | None, limit: int) -> list[Any]:
    """Run status events after storage id `after`, oldest first, with no gaps between types."""
    found: list[Any] = []
    horizon: int | None = None
    for event_type in _STATUS_EVENTS:
        page = instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(event_type=event_type, after_storage_id=after),  # type: ignore[arg-type]
            limit=limit,
            ascending=True,
        )
        found.extend(page.records)
        if page.has_more and page.records:
            last = page.records[-1].storage_id
            horizon = last if horizon is None else min(horizon, last)
    found.sort(key=lambda r: r.storage_id)
    return [r for r in found if horizon is None or r.storage_id <= horizon]


def _latest_status_change(instance: dg.DagsterInstance) -> int:
    pages = [instance.fetch_run_status_changes(t, limit=1) for t in _STATUS_EVENTS]
    return max((p.records[0].storage_id for p in pages if p.records), default=0)


class _StoreDown(Exception):
    """A store write failed: the tick stops and the cursor stays where it was."""


def _store_call(function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except Exception as exc:
        raise _StoreDown(f"{type(exc).__name__}: {exc}".splitlines()[0][:300]) from exc


class _Observer:
    """One sensor tick: record the runs whose status changed since the cursor."""

    def __init__(
        self,
        defs: dg.Definitions | None,
        store: Store | None,
        *,
        runs_per_tick: int,
        history: bool,
        all_code_locations: bool,
        min_level: int,
    ) -> None:
        self.defs = defs
        self.store = store
        self.runs_per_tick = runs_per_tick
        self.history = history
        self.all_code_locations = all_code_locations
        self.min_level = min_level
        self._graph_written: dict[str, str] = {}  # store url → digest of the graph written

    def __call__(self, context: dg.SensorEvaluationContext) -> dg.SensorResult:
        store = self.store if self.store is not None else RT.store
        instance = context.instance
        after = _parse_cursor(context.cursor)
        if after is None and not self.history:
            return dg.SensorResult(
                skip_reason="lakelens records the runs whose status changes from now on.",
                cursor=str(_latest_status_change(instance)),
            )
        cursor, results = after, []
        try:
            self._record_graph(context, store)
            done: set[str] = set()
            for record in _status_changes(instance, after, self.runs_per_tick * 4):
                run_id = record.event_log_entry.run_id
                if run_id not in done:
                    if len(done) >= self.runs_per_tick:
                        break
                    done.add(run_id)
                    results.append(self._record(context, run_id))
                cursor = record.storage_id
        except _StoreDown as exc:
            raise StoreError(
                f"lakelens could not write to its store at {store.location} ({exc}); the "
                "sensor's cursor did not move, so these runs are recorded on a later tick."
            ) from exc.__cause__
        new = [r for r in results if r is not None and r.written]
        return dg.SensorResult(
            skip_reason=f"Recorded {len(new)} Dagster run(s) in lakelens "
            f"({sum(r.logs for r in new)} log lines).",
            cursor=None if cursor is None else str(cursor),
        )

    def _record_graph(self, context: dg.SensorEvaluationContext, store: Store) -> None:
        if self.defs is not None:
            graph: Any = _asset_graph(self.defs)
        elif context.repository_def is not None:
            graph = context.repository_def.asset_graph
        else:
            return
        batch = _graph_batch(graph)
        digest = _graph_digest(batch)
        if self._graph_written.get(store.url) != digest:
            _store_call(store.write, batch)
            self._graph_written[store.url] = digest

    def _record(self, context: dg.SensorEvaluationContext, run_id: str) -> Recorded | None:
        run = context.instance.get_run_by_id(run_id)
        if run is None or not _monitored(context, run, self.all_code_locations):
            return None
        try:
            translation, batch = _translate(context.instance, run_id, self.min_level)
        except Exception:
            # A run lakelens cannot read must not hold up the others: say so and move on.
            context.log.exception(f"lakelens could not read Dagster run {run_id}; skipping it.")
            return None
        return _store_call(_write_run, self.store, translation, batch)


def _parse_cursor(cursor: str | None) -> int | None:
    try:
        return int(cursor) if cursor else None
    except ValueError:
        return None  # not ours (an older format): start again, recording is idempotent


def lakelens_sensor(
    defs: dg.Definitions | None = None,
    *,
    name: str = "lakelens",
    store: Store | None = None,
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
    runs_per_tick: int = 25,
    history: bool = True,
    all_code_locations: bool = False,
    log_level: int | str = "DEBUG",
) -> dg.SensorDefinition:
    """A sensor that records Dagster runs in lakelens as their status changes.

    Its cursor is the storage id of the last run status event recorded, and it moves only
    after the store has committed: while the store is unreachable the tick fails and the
    same runs are recorded on a later one. With `history`, runs from before the first tick
    are recorded too, oldest first, `runs_per_tick` at a time. The asset graph comes from
    `defs`, or from the sensor's code location when `defs` is None.
    """
    observer = _Observer(
        defs,
        store,
        runs_per_tick=runs_per_tick,
        history=history,
        all_code_locations=all_code_locations,
        min_level=_level_number(log_level),
    )

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Records Dagster runs, materializations, checks, logs and lineage in lakelens.",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return observer(context)

    return _sensor


def observe(defs: dg.Definitions, **options: Any) -> dg.Definitions:
    """`defs` plus the lakelens sensor: `defs = observe(dg.Definitions(assets=[...]))`.

    The options are those of `lakelens_sensor` (store, minimum_interval_seconds, history, …).
    """
    return dg.Definitions.merge(defs, dg.Definitions(sensors=[lakelens_sensor(defs, **options)]))
