"""dlt pipeline runs in lakelens: a run, a materialization and a schema per table, lineage, logs.

    import lakelens.integrations.dlt as lakelens_dlt

    load_info = lakelens_dlt.run(pipeline, my_source())  # instead of pipeline.run(my_source())
    # or keep your own call and add one line after it:
    lakelens_dlt.record(pipeline, load_info)
    # or, once at startup, record every pipeline run of the process (dagster-dlt included):
    lakelens_dlt.observe()

Everything comes from what dlt keeps anyway: the pipeline's last trace (steps and their
times), the normalize metrics (rows and bytes per table), the load packages (jobs, failed
jobs with their messages, schema updates) and each package's schema (columns and types).
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

try:
    import dlt
    from dlt.common.pipeline import LoadInfo
    from dlt.pipeline.exceptions import PipelineStepFailed
except ImportError as exc:
    if exc.name is not None and exc.name.partition(".")[0] != "dlt":
        raise  # dlt is there but broken: its own error says more
    raise ImportError("dlt support needs the extra: pip install 'lakelens[dlt]'") from exc

from lakelens.errors import InvalidArgumentError
from lakelens.model import (
    Asset,
    LineageEdge,
    Materialization,
    Run,
    RunStatus,
    SchemaSnapshot,
    from_epoch,
    to_epoch,
)
from lakelens.sdk._errors import describe
from lakelens.sdk._runtime import FRAME, RT, trace_id_for
from lakelens.sdk._spans import Span
from lakelens.units import format_duration

__all__ = ["SOURCE", "observe", "record", "resource_asset", "run", "table_asset"]

SOURCE = "dlt"
_STEPS = ("extract", "normalize", "load")
_INFO, _WARNING, _ERROR = 20, 30, 40
# Runs recorded by this process (key -> run id), so recording one run twice writes it once.
_recorded: dict[tuple[Any, ...], str] = {}
_REMEMBERED = 256
# The line of a formatted traceback that names the exception: `module.Type: message`.
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::\s?(.*))?$")
_EXCEPTION_ENDINGS = ("Error", "Exception", "Exit", "Interrupt", "Failed", "Retry", "Timeout")


def run(
    pipeline: dlt.Pipeline, data: Any = None, *, profile: bool = False, **kwargs: Any
) -> LoadInfo:
    """`pipeline.run(data, **kwargs)`, recorded in lakelens; a failed step is recorded, then re-raised.

    With `profile=True` each loaded table also gets a column profile (integrations/dlt_profile.py).
    """
    try:
        load_info = pipeline.run(data, **kwargs)
    except PipelineStepFailed as exc:
        record(pipeline, error=exc, profile=profile)
        raise
    record(pipeline, load_info, profile=profile)
    return load_info


def record(
    pipeline: dlt.Pipeline,
    load_info: LoadInfo | None = None,
    *,
    error: BaseException | None = None,
    profile: bool = False,
) -> str | None:
    """Record the pipeline's last run (from `pipeline.last_trace`); returns the lakelens run id.

    Pass the `LoadInfo` that `pipeline.run()` returned, or the `PipelineStepFailed` it raised
    as `error=`. Inside a lakelens run (or a process started with LAKELENS_RUN_ID) everything
    joins that run; otherwise the run id is the load id of the package this run extracted.
    Never raises for a problem while recording: it prints one line to stderr and returns None.
    `profile=True` reads each loaded table back and records its column profile.
    """
    if not isinstance(pipeline, dlt.Pipeline):
        raise InvalidArgumentError(
            f"Invalid pipeline={pipeline!r}: pass the dlt.Pipeline that ran "
            "(the object dlt.pipeline(...) returned)."
        )
    return _record(pipeline, load_info, error, pipeline.last_trace, profile)


def observe(*, profile: bool = False) -> None:
    """Record every dlt pipeline run of this process from now on, however it is started.

    It registers with dlt's tracking hooks (the ones dlt's own telemetry uses), so pipelines
    run by other code, such as dagster-dlt's `DagsterDltResource.run`, are recorded too.
    Calling it again only changes `profile`; `run()` and `record()` do not record an observed
    run twice. `profile=True` also records a column profile of each loaded table.
    """
    from dlt.pipeline import trace as dlt_trace

    for module in dlt_trace.TRACKING_MODULES:
        if isinstance(module, _Observer):
            module.profile = profile
            return
    dlt_trace.TRACKING_MODULES.append(_Observer(profile))


class _Observer:
    """A dlt tracking module: records a pipeline's trace when dlt ends it."""

    def __init__(self, profile: bool = False) -> None:
        self.profile = profile

    def on_start_trace(self, *args: Any) -> None: ...

    def on_start_trace_step(self, *args: Any) -> None: ...

    def on_end_trace_step(self, *args: Any) -> None: ...

    def on_end_trace(self, trace: Any, pipeline: Any, send_state: bool) -> None:
        # A lone extract() or normalize() call is part of a run that a load() call finishes.
        if not any(s.step in ("load", "run") or s.step_exception for s in trace.steps):
            return
        earlier = pipeline.last_trace if len(trace.steps) == 1 else None
        if earlier is not None:
            # dlt merges a lone step into the last trace only after this hook: do it here.
            trace = earlier._replace(
                steps=[*earlier.steps, *trace.steps], finished_at=trace.finished_at
            )
        _record(pipeline, None, None, trace, self.profile)


def _record(
    pipeline: Any, load_info: Any, error: BaseException | None, trace: Any, profile: bool = False
) -> str | None:
    try:
        recording = _Recording(pipeline, load_info, error, trace)
        key = (id(RT.writer), *recording.key())
        if key in _recorded:  # run() and record() both called, or record() twice
            return _recorded[key]
        recording.build()
    except Exception as exc:  # observability must never fail the pipeline
        print(
            f"lakelens: could not record the run of dlt pipeline {pipeline.pipeline_name!r} "
            f"({type(exc).__name__}: {exc})",
            file=sys.stderr,
        )
        return None
    recording.enqueue()
    if profile:
        try:
            from lakelens.integrations.dlt_profile import profile_tables

            profile_tables(pipeline, recording)
        except Exception as exc:  # never fail the pipeline for a profile
            print(
                f"lakelens: could not profile the tables of {recording.name!r} ({exc})",
                file=sys.stderr,
            )
    _recorded[key] = recording.run_id
    while len(_recorded) > _REMEMBERED:
        del _recorded[next(iter(_recorded))]
    return recording.run_id


def table_asset(dataset_name: str | None, table_name: str) -> str:
    """The lakelens asset of a destination table: `<dataset_name>.<table_name>`."""
    return f"{dataset_name}.{table_name}" if dataset_name else table_name


def resource_asset(source_name: str, resource_name: str) -> str:
    """The lakelens asset of a dlt resource (a lineage source): `dlt:<source>.<resource>`."""
    return f"dlt:{source_name}.{resource_name}"


@dataclass
class _Failure:
    type: str
    message: str
    traceback: str | None = None


@dataclass
class _Table:
    """What one run did to one destination table."""

    name: str
    schema_name: str | None = None
    rows: int | None = None
    bytes: int | None = None
    completed: int = 0
    pending: int = 0
    failures: list[_Failure] = field(default_factory=list)
    reached_load: bool = False
    new_columns: list[str] = field(default_factory=list)
    created: bool = False
    job_start: datetime | None = None
    job_end: datetime | None = None

    def add_rows(self, rows: int, size: int) -> None:
        self.rows = (self.rows or 0) + rows
        self.bytes = (self.bytes or 0) + size


class _Recording:
    """The events for one dlt run, built first and queued all at once."""

    def __init__(
        self, pipeline: Any, load_info: Any, error: BaseException | None, trace: Any
    ) -> None:
        self.pipeline = pipeline
        self.name: str = pipeline.pipeline_name
        self.load_info = load_info
        self.error = error
        self.trace = trace
        trace_steps = list(self.trace.steps) if self.trace is not None else []
        self.load_ids = self._load_ids(trace_steps)
        self.steps = self._pick_steps(trace_steps)
        self.events: list[Any] = []
        self.spans: list[Span] = []
        self.logs: list[tuple[Any, ...]] = []
        self.failed_assets: list[str] = []
        self.run_id = ""

    # -- reading what dlt kept ---------------------------------------------------------------
    def key(self) -> tuple[Any, ...]:
        """What identifies this run of the pipeline: its trace, load ids and step times."""
        return (
            self.name,
            getattr(self.trace, "transaction_id", None),
            *self.load_ids,
            *(to_epoch(step.finished_at) for step in self.steps.values()),
        )

    def build(self) -> None:
        joined = FRAME.get()[0] or RT.ambient_run()
        self.joined = joined
        if joined is not None:
            self.run_id, self.job, self.trace_id = joined.run_id, joined.job, joined.trace_id
        else:
            self.run_id, self.job = self._own_run_id(), self.name
            self.trace_id = trace_id_for(self.run_id)
        self.dataset: str | None = (
            self.load_info.dataset_name if self.load_info is not None else None
        ) or self.pipeline.dataset_name
        destination = getattr(self.pipeline, "destination", None)
        self.destination = getattr(destination, "destination_name", None)
        self.start, self.end = self._times()
        self.tables: dict[str, _Table] = {}
        self.resources: dict[str, tuple[str, str]] = {}  # table -> (source, resource)
        self.dag: set[tuple[str, str, str]] = set()
        self.schemas: dict[str, Any] = {}  # schema name -> the dlt Schema of the loaded package
        self._read_extract()
        self._read_normalize()
        self._read_load()
        for name, table in list(self.tables.items()):
            job_end = to_epoch(table.job_end)
            done_before = job_end is not None and job_end < self.start
            if done_before and table.completed and not (table.failures or table.pending):
                del self.tables[name]  # loaded by an earlier attempt at the same package
        self.failure, self.named = self._step_failure()
        self.failed_step = next(
            (s for s in _STEPS if s in self.steps and self.steps[s].step_exception),
            getattr(self.error, "step", None) if self.failure is not None else None,
        )
        for name in self.named:
            self._table(name)
        self._emit()

    def _load_ids(self, trace_steps: list[Any]) -> list[str]:
        ids: list[str] = list(self.load_info.loads_ids) if self.load_info is not None else []
        if isinstance(self.error, PipelineStepFailed):
            if self.error.load_id:
                ids.append(self.error.load_id)
            if self.error.step_info is not None:
                ids.extend(self.error.step_info.loads_ids)
        if not ids:
            for step in reversed(trace_steps):
                if step.step in _STEPS and step.step_info is not None:
                    ids.extend(step.step_info.loads_ids)
                    break
        return list(dict.fromkeys(ids))

    def _pick_steps(self, trace_steps: list[Any]) -> dict[str, Any]:
        """The latest extract, normalize, load (and run) steps that worked on our load ids.

        A trace also keeps steps of earlier calls (pipeline.extract() then .load() separately).
        """
        wanted = set(self.load_ids)
        last = next((s for s in reversed(trace_steps) if s.step in _STEPS), None)
        failed_last = last if last is not None and last.step_exception else None
        chosen: dict[str, Any] = {}
        for step in reversed(trace_steps):
            if step.step in chosen or step.step not in (*_STEPS, "run"):
                continue
            ids = set(step.step_info.loads_ids) if step.step_info is not None else set()
            if not wanted or ids & wanted or step is failed_last:
                chosen[step.step] = step
        return chosen

    def _own_run_id(self) -> str:
        """The load id this run extracted; a run that only retried older packages gets the trace id."""
        extract = self.steps.get("extract")
        if extract is not None and extract.step_info is not None:
            for load_id in extract.step_info.loads_ids:
                if load_id in self.load_ids:
                    return str(load_id)
        if self.trace is not None:
            return str(self.trace.transaction_id)
        return RT.new_id()

    def _times(self) -> tuple[float, float]:
        steps = [s for s in self.steps.values() if s.step != "run"]
        whole = self.steps.get("run")
        starts = [to_epoch(s.started_at) for s in ([whole] if whole else steps)]
        ends = [to_epoch(s.finished_at) for s in ([whole] if whole else steps) if s.finished_at]
        start = min((t for t in starts if t is not None), default=None)
        end = max((t for t in ends if t is not None), default=None)
        now = RT.clock()
        return (start if start is not None else now), (end if end is not None else now)

    def _table(self, name: str) -> _Table:
        table = self.tables.get(name)
        if table is None:
            table = self.tables[name] = _Table(name)
        return table

    def _metrics(self, step: str) -> list[dict[str, Any]]:
        found = self.steps.get(step)
        info = found.step_info if found is not None else None
        if step == "load" and self.load_info is not None:
            info = self.load_info
        if info is None or not info.metrics:
            return []
        return [m for load_id in self.load_ids for m in info.metrics.get(load_id, [])]

    def _read_extract(self) -> None:
        for metrics in self._metrics("extract"):
            source = metrics.get("schema_name") or self.name
            for resource, hints in (metrics.get("hints") or {}).items():
                table = hints.get("table_name") if isinstance(hints, dict) else None
                if not resource.startswith("_dlt"):
                    name = table if isinstance(table, str) else resource
                    self.resources.setdefault(name, (source, resource))
            for parent, child in metrics.get("dag") or []:
                if parent != child:
                    self.dag.add((source, parent, child))

    def _read_normalize(self) -> None:
        for metrics in self._metrics("normalize"):
            for name, writer in (metrics.get("table_metrics") or {}).items():
                if not _internal(name):
                    self._table(name).add_rows(writer.items_count, writer.file_size)

    def _read_load(self) -> None:
        load_step = self.steps.get("load")
        info = self.load_info
        if info is None and load_step is not None:
            info = load_step.step_info
        for package in getattr(info, "load_packages", None) or []:
            if package.load_id not in self.load_ids:
                continue
            schema = package.schema
            for state, jobs in package.jobs.items():
                for job in jobs:
                    name = job.job_file_info.table_name
                    if _internal(name):
                        continue
                    table = self._table(name)
                    table.reached_load = True
                    table.schema_name = schema.name
                    if job.failed_message or state == "failed_jobs":
                        table.failures.append(
                            _job_failure(job.failed_message or "", "FailedLoadJob")
                        )
                    elif state == "completed_jobs":
                        table.completed += 1
                    else:
                        table.pending += 1
            for name, update in (package.schema_update or {}).items():
                if not _internal(name):
                    table = self._table(name)
                    table.reached_load = True
                    table.schema_name = schema.name
                    added = list(update.get("columns") or {})
                    table.new_columns.extend(added)
                    typed = [
                        c
                        for c, column in schema.tables.get(name, {}).get("columns", {}).items()
                        if column.get("data_type")
                    ]
                    # A table whose every column is new was created by this load.
                    table.created = table.created or (bool(typed) and set(typed) <= set(added))
            for name in list(self.tables):
                self._resource_from_schema(name, schema)
            self.schemas[schema.name] = schema
        for metrics in self._metrics("load"):
            for job in (metrics.get("job_metrics") or {}).values():
                if job.table_name in self.tables:
                    table = self.tables[job.table_name]
                    if job.started_at and (
                        table.job_start is None or job.started_at < table.job_start
                    ):
                        table.job_start = job.started_at
                    if job.finished_at and (
                        table.job_end is None or job.finished_at > table.job_end
                    ):
                        table.job_end = job.finished_at

    def _resource_from_schema(self, name: str, schema: Any) -> None:
        """Nested tables (`users__tags`) come from the resource of their root table."""
        tables = schema.tables
        root = tables.get(name)
        seen = 0
        while root is not None and root.get("parent") and seen < 32:
            root, seen = tables.get(root["parent"]), seen + 1
        resource = root.get("resource") if root is not None else None
        if resource:
            self.resources[name] = (schema.name, resource)

    def _step_failure(self) -> tuple[_Failure | None, list[str]]:
        """The failed step's error, and the destination tables it names."""
        failed = next(
            (self.steps[s] for s in _STEPS if s in self.steps and self.steps[s].step_exception),
            None,
        )
        if self.error is not None:
            inner = getattr(self.error, "exception", None) or self.error
            kind, message = _describe_inner(inner)
            text = describe(type(self.error), self.error, self.error.__traceback__)[2]
            failure = _Failure(kind, message, text)
            chain = _chain(inner)
            attributes = [getattr(e, "__dict__", {}) for e in chain]
        elif failed is not None:
            # The trace keeps the exception chain as dicts, PipelineStepFailed first.
            traces = failed.exception_traces or []
            outer = str(traces[0].get("exception_type", "")) if traces else ""
            inner = traces[1] if len(traces) > 1 and outer.endswith("PipelineStepFailed") else {}
            inner = inner or (traces[0] if traces else {})
            kind = str(inner.get("exception_type") or "PipelineStepFailed").rsplit(".", 1)[-1]
            job_message = (inner.get("exception_attrs") or {}).get("failed_message")
            if isinstance(job_message, str) and job_message.strip():
                failure = _job_failure(job_message, kind)
            else:
                failure = _Failure(kind, str(inner.get("message") or failed.step_exception))
            failure.traceback = failed.step_exception
            attributes = [t.get("exception_attrs") or {} for t in traces] + [
                dict(t) for t in traces
            ]
        else:
            return None, []
        named: list[str] = []
        for attrs in attributes:
            table = attrs.get("table_name")
            job_id = attrs.get("job_id")
            resource = attrs.get("pipe_name") or attrs.get("resource_name")
            if isinstance(table, str) and table:
                named.append(table)
            elif isinstance(job_id, str) and job_id:
                named.append(job_id.split(".", 1)[0])
            elif isinstance(resource, str) and resource:
                tables = [t for t, (_src, res) in self.resources.items() if res == resource]
                named.extend(tables or [resource])
        return failure, [t for t in dict.fromkeys(named) if not _internal(t)]

    # -- what lakelens stores -----------------------------------------------------------------
    def _emit(self) -> None:
        parent = FRAME.get()[2]
        root = self._span(
            f"dlt {self.name}",
            self.start,
            self.end,
            parent,
            failure=self.failure,
            attributes={"dlt.pipeline": self.name, "dlt.load_ids": self.load_ids},
        )
        self.step_spans: dict[str, Span] = {}
        for kind in _STEPS:
            if kind in self.steps:
                self._step(kind, root)
        for name, table in self.tables.items():
            self._materialize(table_asset(self.dataset, name), table)
        self._lineage()

        self.status, error = RunStatus.SUCCESS, _Failure("", "")
        if self.failure is not None:
            self.status, error = RunStatus.FAILURE, self.failure
        elif self.failed_assets:
            failed = f"{len(self.failed_assets)} asset(s) failed: {', '.join(self.failed_assets)}"
            self.status, error = RunStatus.FAILURE, _Failure("AssetFailure", failed)
        ms = (self.end - self.start) * 1000
        assets = [table_asset(self.dataset, name) for name in self.tables]
        if self.status == RunStatus.SUCCESS:
            message = f"dlt pipeline {self.name} succeeded in {format_duration(ms / 1000)}: {len(assets)} table(s)"
            self._log(self.end, _INFO, message, None, root, tables=assets)
        else:
            message = f"dlt pipeline {self.name} failed after {format_duration(ms / 1000)}: {error.message}"
            self._log(self.end, _ERROR, message, None, root, error_type=error.type)
        if self.joined is not None:
            # The enclosing run owns its state; a failed table fails it, as in the SDK.
            self.joined.failed_assets.extend(self.failed_assets)
            return
        tags = {
            "dlt.pipeline": self.name,
            "dlt.load_ids": ",".join(self.load_ids),
            "dlt.destination": self.destination,
            "dlt.dataset": self.dataset,
        }
        run = Run(
            run_id=self.run_id,
            job=self.job,
            status=self.status,
            start_time=from_epoch(self.start),
            end_time=from_epoch(self.end),
            tags={k: v for k, v in tags.items() if v},
            correlation_id=self.run_id,
            trace_id=self.trace_id,
            error_type=error.type or None,
            error_message=error.message or None,
            error_traceback=error.traceback,
        )
        self.events.insert(0, run)

    def _step(self, kind: str, root: Span) -> None:
        """The span and the summary log line of one dlt step."""
        step = self.steps[kind]
        start, end = to_epoch(step.started_at) or self.start, to_epoch(step.finished_at) or self.end
        failure = self.failure if kind == self.failed_step else None
        span = self.step_spans[kind] = self._span(
            kind, start, end, root, failure=failure, attributes={"dlt.step": kind}
        )
        ms = (end - start) * 1000
        head = f"dlt {kind} of {self.name}"
        values: dict[str, Any] = {"dlt_step": kind, "duration_ms": round(ms, 3)}
        if failure is not None:
            message = f"{head} failed after {format_duration(end - start)}: {failure.type}: {failure.message}"
            self._log(end, _ERROR, message, None, span, error_type=failure.type, **values)
            return
        tables, level = list(self.tables.values()), _INFO
        if kind == "extract":
            resources = sorted({resource for _source, resource in self.resources.values()})
            detail = f"{len(resources)} resource(s): {', '.join(resources)}"
        elif kind == "normalize":
            values["rows"] = sum(t.rows or 0 for t in tables)
            detail = f"{values['rows']} rows in {sum(1 for t in tables if t.rows)} table(s)"
        else:
            loaded = sum(1 for t in tables if t.completed and not t.failures)
            detail = f"{loaded} table(s) into {self.destination or 'the destination'} dataset {self.dataset}"
            failed = sum(1 for t in tables if t.failures)
            if failed:  # failed jobs that dlt was told not to raise for
                level, detail = _WARNING, f"{detail}; {failed} table(s) failed"
        message = f"{head} finished in {format_duration(end - start)}: {detail}"
        self._log(end, level, message, None, span, **values)

    def _materialize(self, asset: str, table: _Table) -> None:
        """The table's materialization, schema snapshot, span and log line."""
        self.events.append(Asset(name=asset, kind="table", updated_at=from_epoch(self.end)))
        if table.reached_load:
            self._snapshot(asset, table)
        own = table.failures[0] if table.failures else None
        if own is None and table.name in self.named:
            own = self.failure
        if own is not None:
            status = RunStatus.FAILURE
            self.failed_assets.append(asset)
        elif not table.pending and (self.failure is None or table.completed):
            status = RunStatus.SUCCESS
        else:
            status = RunStatus.SKIPPED
        end = to_epoch(table.job_end)
        if end is None:
            step = self.steps.get(self.failed_step or "load")
            end = (to_epoch(step.finished_at) if step is not None else None) or self.end
        source, resource = self.resources.get(table.name, (self.name, table.name))
        attributes: dict[str, Any] = {
            "dlt_pipeline": self.name,
            "dlt_load_ids": self.load_ids,
            "dlt_table": table.name,
            "dlt_source": source,
            "dlt_resource": resource,
        }
        if self.destination:
            attributes["dlt_destination"] = self.destination
        if table.job_start is not None and table.job_end is not None:
            seconds = (table.job_end - table.job_start).total_seconds()
            attributes["load_job_ms"] = round(seconds * 1000, 3)
        if table.created:
            attributes["table_created"] = True
        elif table.new_columns:
            attributes["new_columns"] = list(dict.fromkeys(table.new_columns))
        if status == RunStatus.SKIPPED:
            attributes["reason"] = f"not loaded: the {self.failed_step or 'load'} step failed"
        self.events.append(
            Materialization(
                id=_stable_id(self.run_id, *self.load_ids, asset),
                run_id=self.run_id,
                asset=asset,
                status=status,
                start_time=from_epoch(self.start),
                end_time=from_epoch(end),
                partition=getattr(self.joined, "partition", None),
                rows=table.rows,
                bytes=table.bytes,
                error_type=own.type if own else None,
                error_message=own.message if own else None,
                error_traceback=own.traceback if own else None,
                attributes=attributes,
            )
        )
        parent = self.step_spans.get("load") or self.step_spans.get(self.failed_step or "")
        start = to_epoch(table.job_start) or self.start
        counts = {"rows": table.rows} if table.rows is not None else None
        span = self._span(asset, start, end, parent, asset=asset, failure=own, attributes=counts)
        if own is not None:
            message = f"{asset} failed: {own.type}: {own.message}"
            self._log(end, _ERROR, message, asset, span, error_type=own.type)
        elif status == RunStatus.SKIPPED:
            self._log(end, _WARNING, f"{asset} skipped: {attributes['reason']}", asset, span)
        else:
            rows = "rows" if table.rows is None else f"{table.rows} row{'s' * (table.rows != 1)}"
            message = f"{asset}: {rows} loaded in {format_duration(end - self.start)}"
            if table.created:
                message += " (new table)"
            elif table.new_columns:
                message += f" (new columns: {', '.join(attributes['new_columns'])})"
            self._log(end, _INFO, message, asset, span, rows=table.rows)

    def _snapshot(self, asset: str, table: _Table) -> None:
        schema = self.schemas.get(table.schema_name or "")
        found = schema.tables.get(table.name) if schema is not None else None
        columns = [
            (str(name), _column_type(column))
            for name, column in ((found or {}).get("columns") or {}).items()
            if column.get("data_type")
        ]
        if columns:
            from lakelens.ingest.openlineage import schema_hash

            self.events.append(
                SchemaSnapshot(
                    asset=asset,
                    columns=columns,
                    time=from_epoch(self.end),
                    hash=schema_hash(columns),
                    run_id=self.run_id,
                )
            )

    def _lineage(self) -> None:
        """Resource -> table edges, transformer parent -> transformer edges, resource assets."""
        moment = from_epoch(self.end)
        edges = [
            (resource_asset(*self.resources[name]), table_asset(self.dataset, name))
            for name in self.tables
            if name in self.resources
        ]
        sources = {self.resources[name] for name in self.tables if name in self.resources}
        for source, parent, child in sorted(self.dag):
            sources.update({(source, parent), (source, child)})
            edges.append((resource_asset(source, parent), resource_asset(source, child)))
        for upstream, downstream in edges:
            self.events.append(LineageEdge(upstream, downstream, SOURCE, updated_at=moment))
        for source, resource in sorted(sources):
            description = f"dlt resource {resource} of source {source}"
            name = resource_asset(source, resource)
            self.events.append(Asset(name, "source", description=description, updated_at=moment))

    def _log(
        self,
        moment: float,
        level: int,
        message: str,
        asset: str | None,
        span: Span,
        **attributes: Any,
    ) -> None:
        # One line per record: database errors go on with the offending SQL.
        line = next((text for text in message.splitlines() if text.strip()), message)
        values = {"dlt_pipeline": self.name, **attributes}
        row = (moment, level, line, SOURCE, self.run_id, asset, self.job, self.trace_id)
        self.logs.append((*row, span.span_id, values))  # in events.LOG_COLUMNS order

    def _span(
        self,
        name: str,
        start: float,
        end: float,
        parent: Span | None,
        *,
        asset: str | None = None,
        failure: _Failure | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Span:
        span = Span(name, attributes or {})
        span.trace_id, span.run_id, span.asset = self.trace_id, self.run_id, asset
        span.span_id = RT.span_prefix + format(next(RT.span_counter) & 0xFFFFFFFF, "08x")
        span.parent_id = parent.span_id if parent is not None else None
        span.start, span.end = start, end
        if failure is not None:
            span.status, span.error = "error", f"{failure.type}: {failure.message}"[:4000]
        self.spans.append(span)
        return span

    # -- queueing -----------------------------------------------------------------------------
    def enqueue(self) -> None:
        writer = RT.writer
        for event in self.events:
            writer.put(event)
        for span in self.spans:
            writer.put_other(span)
        for row in sorted(self.logs, key=lambda r: r[0]):
            writer.put_log(row)
        if self.joined is None and self.status == RunStatus.FAILURE:
            from lakelens.sdk._alerting import alert_after_failure

            alert_after_failure()


def _internal(table: str) -> bool:
    """dlt's own bookkeeping tables (`_dlt_loads`, `_dlt_pipeline_state`, `_dlt_version`)."""
    return table.startswith("_dlt")


def _column_type(column: dict[str, Any]) -> str:
    """The dlt data type, with precision and scale when the column has them: `decimal(10,2)`."""
    kind = str(column["data_type"])
    precision, scale = column.get("precision"), column.get("scale")
    if precision is not None and scale is not None:
        return f"{kind}({precision},{scale})"
    if precision is not None:
        return f"{kind}({precision})"
    return kind


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes, outermost first."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found and len(found) < 16:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _describe_inner(exc: BaseException) -> tuple[str, str]:
    """(type, message) of the exception inside PipelineStepFailed; job failures by their message."""
    failed_message = getattr(exc, "failed_message", None)
    if isinstance(failed_message, str) and failed_message.strip():
        failure = _job_failure(failed_message, type(exc).__name__)
        return failure.type, failure.message
    return type(exc).__name__, str(exc) or type(exc).__name__


def _job_failure(text: str, default_type: str) -> _Failure:
    """A failed job's message: when it is a traceback, the exception it ends with."""
    if "Traceback (most recent call last)" in text:
        lines = text.rstrip().splitlines()
        for index in range(len(lines) - 1, -1, -1):
            line = lines[index]
            match = _EXCEPTION_LINE.match(line) if line and not line[0].isspace() else None
            if match and ("." in match.group(1) or match.group(1).endswith(_EXCEPTION_ENDINGS)):
                message = "\n".join([match.group(2) or "", *lines[index + 1 :]]).strip()
                return _Failure(match.group(1).rsplit(".", 1)[-1], message or line, text)
    return _Failure(default_type, text.strip() or default_type, None)


def _stable_id(*parts: str) -> str:
    """A UUID-shaped id from the run, load ids and asset: recording twice upserts one row."""
    digest = hashlib.sha256("\x1f".join((SOURCE, *parts)).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
