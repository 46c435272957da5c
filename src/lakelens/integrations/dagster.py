"""Dagster → lakelens: runs, materializations, checks, failures, logs and the asset graph.

    import dagster as dg
    from lakelens.integrations.dagster import observe

    defs = observe(dg.Definitions(assets=[...]))

`observe()` adds a sensor that reads the Dagster event log and records every run in the
lakelens store. Outside a daemon (`dg.materialize([...])` in a script or test) call
`record_run(instance, result.run_id)`. Inside an op, `with lakelens_run(context):` makes
lakelens SDK code (and dbt or dlt started from it) record under the Dagster run id.

This module holds `record_run`, the asset graph and the sensor; turning one run's event log
into lakelens events (and profiles from its metadata) is in `dagster_events`, and
`lakelens_run` in `dagster_run`.
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakelens.errors import InvalidArgumentError, StoreError
from lakelens.events import Batch
from lakelens.model import LEVELS, Asset, LineageEdge, RunStatus, from_epoch
from lakelens.sdk._runtime import RT

if TYPE_CHECKING:
    from lakelens.store import Store

from lakelens.integrations.dagster_events import SOURCE, _Translation, asset_name
from lakelens.integrations.dagster_run import lakelens_run

__all__ = ["Recorded", "asset_name", "lakelens_run", "lakelens_sensor", "observe", "record_run"]

_PAGE = 1_000
# The run status changes the sensor follows, in the order Dagster writes them.
_STATUS_EVENTS = (
    dg.DagsterEventType.RUN_START,
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
)


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
