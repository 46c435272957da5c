"""One monitor cycle: list the warehouse's tables, observe each, and write what was seen as an
ordinary Batch, so freshness, learned rhythm, volume and drift rules work unchanged.

Per table the cycle writes:

- an observation (`table_observations`): row count (exact, or the engine's estimate, marked),
  size, last modification and where that came from;
- a schema snapshot when its columns changed since the monitor last looked (drift alerts);
- a column profile (`source` "monitor") of the columns the user opted in to
  (`profile_columns`), computed in the warehouse (profiles.py): at most every
  `profile_interval`, and then only when the table changed since its last profile;
- when its modification time moved forward and no pipeline reported that change, a
  materialization in a run of job `monitor:NAME` (tagged `lakelens.source: monitor`), with
  the row count delta as its rows: freshness and volume rules then see the table update;
- an asset (kind "table") the first time, named as OpenLineage names the dataset
  (`postgres://host:5432/db.schema.table`), so an alias from dbt or OpenLineage
  (`db.schema.table`, `schema.table`) makes it the same asset as the model that builds it.

A failure (cannot connect, a missing privilege, a query past its time limit, a table that
vanished) never stops the other tables; it is recorded, masked, on the monitor (state.py),
where `lakelens health` and the `monitor_failed` alert rule read it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from lakelens.events import Batch
from lakelens.model import (
    Asset,
    Materialization,
    Profile,
    Run,
    RunStatus,
    SchemaSnapshot,
    TableObservation,
    from_epoch,
)
from lakelens.monitors.settings import Masker, MonitorConfig, MonitorError
from lakelens.monitors.state import TableState, record_cycle, state_json, table_states

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelens.monitors.profiles import ProfileSQL, TableProfile
    from lakelens.store import Store

__all__ = [
    "RUN_PREFIX",
    "Collector",
    "CycleResult",
    "Table",
    "run_cycle",
    "to_epoch_value",
]

# Run ids (and jobs) of monitor cycles start with this: how a pipeline's report is told apart.
RUN_PREFIX = "monitor:"
RUN_TAGS = {"lakelens.source": "monitor"}
# A change a pipeline reported within this long of the observed modification is its change.
REPORT_SLACK = 60.0


@dataclass
class Table:
    """A table (or view) as the catalog queries found it; the collector fills what it can."""

    schema: str
    name: str
    kind: str = "table"
    # The asset name: OpenLineage's namespace/name of the dataset.
    asset: str = ""
    # (name, type) in column order; None when the columns could not be read (no privilege).
    columns: list[tuple[str, str]] | None = None
    row_count: int | None = None
    estimated: bool | None = None
    bytes: int | None = None
    # Whether an exact count(*) should be run (small enough, a real table).
    countable: bool = False
    # The engine's change marker (PostgreSQL: file node and change counters).
    marker: str | None = None
    # When the engine says the data last changed (DuckDB: the file's time), if it knows.
    changed_hint: float | None = None
    # A problem found while listing (a missing privilege): recorded as the table's failure.
    problem: str | None = None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


class Collector:
    """Reads one warehouse's metadata over one connection (opened in __init__, closed by
    close()). Subclasses implement listing and the two per-table queries; both run under the
    monitor's statement time limit."""

    # What a changed marker means as a modified_source ("statistics", "file", "row_count").
    change_source = "row_count"

    def __init__(self, config: MonitorConfig) -> None:
        self.config = config

    def list_tables(self) -> list[Table]:
        """Every table and view of the monitored schemas, with its columns, in few queries."""
        raise NotImplementedError

    def count(self, table: Table) -> int:
        """count(*), within the time limit."""
        raise NotImplementedError

    def max_value(self, table: Table, column: str) -> Any:
        """max(column), within the time limit."""
        raise NotImplementedError

    def marker(self, table: Table, row_count: int | None) -> str | None:
        """What is compared between cycles to tell that the table changed."""
        return table.marker if table.marker is not None else _text(row_count)

    def changed(self, previous: str, current: str) -> bool:
        return previous != current

    def describe(self, exc: BaseException) -> str:
        """A one-line reason for a failed query (timeouts and privileges said plainly)."""
        return first_line(exc)

    def broken(self, exc: BaseException) -> bool:
        """True when the connection itself is gone: the cycle stops there."""
        return bool(getattr(exc, "connection_invalidated", False))

    def close(self) -> None:
        """Close the connection (a monitor holds none between cycles)."""

    # -- column profiles (monitors/profiles.py) ------------------------------------------------
    def profile_sql(self) -> ProfileSQL | None:
        """How this engine spells the profile queries; None: it collects no profiles."""
        return None

    def quoted(self, table: Table) -> str:
        """The table's name as the profile queries' FROM clause spells it."""
        raise NotImplementedError

    def fetch(self, sql: str) -> list[Any]:
        """Every row of a query, within the time limit."""
        raise NotImplementedError

    def profile(self, table: Table, columns: list[str], rows: int | None) -> TableProfile:
        """Profile the opted-in `columns` of `table` (of about `rows` rows) in the warehouse.
        A collector of another engine may replace this whole, returning the same shape."""
        from lakelens.monitors.profiles import TableProfile, profile_table

        sql = self.profile_sql()
        if sql is None:
            return TableProfile(
                error=f"column profiles are not collected from {self.config.backend} warehouses"
            )
        return profile_table(
            self,
            sql,
            table,
            self.quoted(table),
            columns,
            rows=rows,
            sample_above=self.config.profile_sample_above,
        )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line[:500]


def to_epoch_value(value: Any) -> float | None:
    """A max() of a timestamp column as epoch seconds: datetimes (naive ones are UTC), dates,
    epoch numbers (milliseconds and microseconds recognized) and ISO 8601 text."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc).timestamp()
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        number = float(value)
        if number > 1e14:
            return number / 1e6
        if number > 1e11:
            return number / 1e3
        return number
    if isinstance(value, str):
        try:
            return to_epoch_value(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            pass
    raise MonitorError(f"{value!r} is not a time")


@dataclass
class _Seen:
    table: Table
    row_count: int | None = None
    estimated: bool | None = None
    modified_at: float | None = None
    source: str | None = None
    marker: str | None = None
    advanced: bool = False
    errors: list[str] = field(default_factory=list)
    profile: TableProfile | None = None
    profile_version: str | None = None


@dataclass
class CycleResult:
    """What one cycle did (the CLI prints it; the service logs failures)."""

    name: str
    started: float
    seconds: float = 0.0
    tables: int = 0
    observed: int = 0
    changed: int = 0
    schema_changes: int = 0
    profiled: int = 0
    # qualified table → reason
    failed: dict[str, str] = field(default_factory=dict)
    # qualified table → the columns that could not be profiled and why (the table was read)
    profile_errors: dict[str, str] = field(default_factory=dict)
    # The whole cycle failed (nothing could be read): why.
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "started": self.started,
            "seconds": round(self.seconds, 3),
            "tables": self.tables,
            "observed": self.observed,
            "changed": self.changed,
            "schema_changes": self.schema_changes,
            "profiled": self.profiled,
            "failed": dict(self.failed),
            "profile_errors": dict(self.profile_errors),
            "error": self.error,
        }


def run_cycle(
    store: Store,
    config: MonitorConfig,
    *,
    clock: Callable[[], float] = time.time,
    progress: Callable[[int, int], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> CycleResult:
    """Observe every monitored table once and record it; failures are recorded, not raised."""
    from lakelens.monitors.collectors import open_collector

    started = clock()
    began = time.perf_counter()
    mask = config.masker(environ)
    result = CycleResult(config.name, started)
    with store.connect() as conn:
        previous = _details(conn, config.name)
    states = table_states(previous)
    seen: list[_Seen] = []
    collector: Collector | None = None
    try:
        collector = open_collector(config, environ)
        tables = [t for t in collector.list_tables() if config.wants(t.schema, t.name)]
        result.tables = len(tables)
        for index, table in enumerate(tables):
            last = states.get(table.qualified)
            item = _observe(collector, config, table, last, started)
            _profile(collector, config, item, last, started)
            seen.append(item)
            if progress is not None:
                progress(index + 1, len(tables))
    except Exception as exc:
        result.error = mask(_whole_failure(config, collector, exc))
    finally:
        if collector is not None:
            collector.close()
    result.seconds = time.perf_counter() - began
    if result.error is not None:
        details = {**_summary(result, config), "state": previous.get("state", {})}
        record_cycle(store.engine, config.name, now=clock(), error=result.error, details=details)
        return result
    batch, new_states = _batch(store, config, seen, states, result, started, clock, mask)
    if len(batch):
        store.write(batch, source="monitor")
    result.seconds = time.perf_counter() - began
    details = {**_summary(result, config), "state": state_json(new_states)}
    details["failed"] = {
        table: {"asset": new_states[table].asset if table in new_states else None, "error": why}
        for table, why in result.failed.items()
    }
    record_cycle(store.engine, config.name, now=clock(), error=_last_error(result), details=details)
    return result


def _details(conn: sa.Connection, name: str) -> dict[str, Any]:
    from lakelens.monitors.state import COMPONENT_PREFIX
    from lakelens.store import schema

    h = schema.heartbeats
    text = conn.execute(
        h.select().with_only_columns(h.c.details).where(h.c.component == COMPONENT_PREFIX + name)
    ).scalar()
    try:
        loaded = json.loads(text) if text else {}
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _whole_failure(config: MonitorConfig, collector: Collector | None, exc: BaseException) -> str:
    if isinstance(exc, MonitorError):
        return str(exc)
    reason = collector.describe(exc) if collector is not None else first_line(exc)
    if collector is None:
        return f"cannot connect to {config.shown_url}: {reason}"
    return f"cannot read {config.shown_url}: {reason}"


def _summary(result: CycleResult, config: MonitorConfig) -> dict[str, Any]:
    return {**result.to_dict(), "url": config.shown_url}


def _last_error(result: CycleResult) -> str | None:
    if not result.failed:
        return None
    first, why = next(iter(sorted(result.failed.items())))
    more = len(result.failed) - 1
    text = (
        f"{len(result.failed)} of {result.tables + _vanished(result)} tables failed: {first}: {why}"
    )
    return text + (f" (and {more} more)" if more else "")


def _vanished(result: CycleResult) -> int:
    return sum(1 for why in result.failed.values() if why.startswith("vanished"))


def _observe(
    collector: Collector,
    config: MonitorConfig,
    table: Table,
    previous: TableState | None,
    now: float,
) -> _Seen:
    seen = _Seen(table, row_count=table.row_count, estimated=table.estimated)
    if table.problem:
        seen.errors.append(table.problem)
    if table.countable and not table.problem:
        try:
            seen.row_count, seen.estimated = collector.count(table), False
        except Exception as exc:
            if collector.broken(exc):
                raise
            seen.errors.append(collector.describe(exc))
    column = config.timestamp_column(table.schema, table.name)
    if column is not None:
        names = {c for c, _ in table.columns or ()}
        if table.columns is not None and column not in names:
            seen.errors.append(
                f"has no column {column!r} (declared as its timestamp column); "
                "fix --timestamp-column"
            )
        elif not table.problem:
            try:
                seen.modified_at = to_epoch_value(collector.max_value(table, column))
                seen.source = "column"
            except Exception as exc:
                if collector.broken(exc):
                    raise
                seen.errors.append(f"max({column}): {collector.describe(exc)}")
        old = previous.modified_at if previous is not None else None
        if seen.source == "column":
            seen.advanced = seen.modified_at is not None and (old is None or seen.modified_at > old)
        else:
            seen.modified_at = old  # unknown this time: the last known stays
        seen.marker = previous.marker if previous is not None else None
        return seen
    seen.marker = collector.marker(table, seen.row_count if seen.estimated is False else None)
    if previous is None or previous.marker is None or seen.marker is None:
        # First sight: when it last changed is not known yet (only that it changes from now).
        seen.modified_at = previous.modified_at if previous is not None else None
        seen.marker = seen.marker or (previous.marker if previous is not None else None)
        return seen
    if collector.changed(previous.marker, seen.marker):
        hint = table.changed_hint
        old = previous.modified_at
        seen.modified_at = hint if hint is not None and (old is None or hint > old) else now
        seen.source = collector.change_source
        seen.advanced = True
    else:
        seen.modified_at = previous.modified_at
        seen.source = collector.change_source if previous.modified_at is not None else None
    return seen


def _profile(
    collector: Collector,
    config: MonitorConfig,
    item: _Seen,
    previous: TableState | None,
    now: float,
) -> None:
    """Profile the table's opted-in columns when due: never profiled, or changed since its
    last profile (or no change can be seen) once `profile_interval` has passed."""
    table = item.table
    columns = config.profile_for(table.schema, table.name)
    if not columns or table.problem or table.columns is None:
        return
    item.profile_version = _version(item, columns)
    if previous is not None and previous.profiled_at is not None:
        if now - previous.profiled_at < config.profile_interval:
            return
        if item.profile_version is not None and item.profile_version == previous.profile_version:
            return  # unchanged since its last profile
    try:
        item.profile = collector.profile(table, columns, item.row_count)
    except Exception as exc:
        if collector.broken(exc):
            raise
        from lakelens.monitors.profiles import TableProfile

        item.profile = TableProfile(error=collector.describe(exc))
    if item.profile.error or item.profile.failed:
        item.profile_version = None  # try the failed columns again next interval


def _version(item: _Seen, columns: list[str]) -> str | None:
    """What the table and its profiled columns look like now, as far as the monitor can tell
    (None: it cannot tell a change, as for views)."""
    if item.marker is None and item.modified_at is None:
        return None
    text = json.dumps([item.marker, item.modified_at, columns])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class _AssetRow:
    kind: str | None
    tags: str | None
    freshness_seconds: float | None
    last_run_id: str | None
    last_end_time: float | None


def _lookup(
    store: Store, names: list[str]
) -> tuple[dict[str, str], dict[str, _AssetRow], set[str]]:
    """(name → canonical asset, canonical → its registry row, canonicals with a schema)."""
    import sqlalchemy as sa

    from lakelens.ingest.identity import candidates
    from lakelens.store import schema

    keys = {name: candidates(name) for name in names}
    every = sorted({k for ks in keys.values() for k in ks})
    aliases: dict[str, str] = {}
    rows: dict[str, _AssetRow] = {}
    with_schema: set[str] = set()
    a, al, s = schema.assets, schema.asset_aliases, schema.schema_snapshots
    with store.connect() as conn:
        for chunk in _chunks(every):
            query = sa.select(al.c.alias, al.c.asset).where(al.c.alias.in_(chunk))
            aliases.update((alias, asset) for alias, asset in conn.execute(query))
        canonical = {
            name: next((aliases[k] for k in ks if k in aliases), name) for name, ks in keys.items()
        }
        targets = sorted(set(canonical.values()))
        for chunk in _chunks(targets):
            for row in conn.execute(
                sa.select(
                    a.c.name,
                    a.c.kind,
                    a.c.tags,
                    a.c.freshness_seconds,
                    a.c.last_run_id,
                    a.c.last_end_time,
                ).where(a.c.name.in_(chunk))
            ):
                rows[row.name] = _AssetRow(*row[1:])
            with_schema.update(
                conn.execute(sa.select(s.c.asset).where(s.c.asset.in_(chunk)).distinct()).scalars()
            )
    return canonical, rows, with_schema


def _chunks(values: list[str], size: int = 500) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def _reported(row: _AssetRow | None, previous: TableState | None, modified: float) -> bool:
    """Whether a pipeline reported this change itself (then the monitor adds no
    materialization): the asset's latest materialization is not the monitor's and ended
    after the monitor last looked."""
    if row is None or not row.last_run_id or row.last_end_time is None:
        return False
    if row.last_run_id.startswith(RUN_PREFIX):
        return False
    since = previous.seen if previous is not None and previous.seen is not None else None
    return row.last_end_time >= (since if since is not None else modified - REPORT_SLACK)


def _batch(
    store: Store,
    config: MonitorConfig,
    seen: list[_Seen],
    states: dict[str, TableState],
    result: CycleResult,
    started: float,
    clock: Callable[[], float],
    mask: Masker,
) -> tuple[Batch, dict[str, TableState]]:
    from lakelens.ingest.openlineage_facets import schema_hash

    names = [s.table.asset for s in seen] + [st.asset for st in states.values()]
    canonical, rows, with_schema = _lookup(store, sorted(set(names)))
    batch = Batch()
    run_id = f"{RUN_PREFIX}{config.name}:{round(started * 1000)}"
    at = from_epoch(started)
    assert at is not None
    new_states: dict[str, TableState] = {}
    for item in seen:
        table = item.table
        asset = canonical.get(table.asset, table.asset)
        previous = states.get(table.qualified)
        row = rows.get(asset)
        if item.errors:
            result.failed[table.qualified] = mask("; ".join(item.errors))
        else:
            result.observed += 1
        _asset(batch, config, table, asset, row)
        hash_now = schema_hash(table.columns) if table.columns else None
        old_hash = previous.schema_hash if previous is not None else None
        # First sight of an asset that other sources (dbt) described: their types are
        # spelled differently, so only the monitor's own later changes are drift.
        first_of_its_kind = old_hash is None and asset not in with_schema
        if hash_now is not None and hash_now != old_hash and (old_hash or first_of_its_kind):
            batch.schemas.append(
                SchemaSnapshot(asset, table.columns or [], time=at, hash=hash_now, run_id=run_id)
            )
            if old_hash is not None:
                result.schema_changes += 1
        advanced = item.advanced and item.modified_at is not None
        if advanced and not _reported(row, previous, item.modified_at or 0.0):
            batch.materializations.append(
                _materialization(config, table, asset, item, previous, run_id)
            )
            result.changed += 1
        if item.profile is not None:
            batch.profiles.append(_recorded(item.profile, asset, at, mask))
            result.profiled += 1
            problems = [f"{c}: {why}" for c, why in item.profile.failed.items()]
            if item.profile.error or problems:
                result.profile_errors[table.qualified] = mask(
                    "; ".join(problems) or item.profile.error or ""
                )
        batch.observations.append(
            TableObservation(
                asset=asset,
                monitor=config.name,
                time=at,
                row_count=item.row_count,
                row_count_estimated=item.estimated if item.row_count is not None else None,
                bytes=table.bytes,
                modified_at=from_epoch(item.modified_at),
                modified_source=item.source if item.modified_at is not None else None,
            )
        )
        new_states[table.qualified] = TableState(
            asset=asset,
            marker=item.marker,
            modified_at=item.modified_at,
            rows=item.row_count
            if item.row_count is not None
            else (previous.rows if previous else None),
            schema_hash=hash_now or old_hash,
            seen=started,
            profiled_at=started
            if item.profile is not None
            else (previous.profiled_at if previous else None),
            profile_version=item.profile_version
            if item.profile is not None
            else (previous.profile_version if previous else None),
        )
    listed = {s.table.qualified for s in seen}
    for qualified, previous in states.items():
        if qualified in listed:
            continue
        schema_name, _, table_name = qualified.partition(".")
        if not config.wants(schema_name, table_name):
            continue  # left out on purpose now: forgotten
        since = previous.vanished_since or started
        previous.vanished_since = since
        previous.asset = canonical.get(previous.asset, previous.asset)
        new_states[qualified] = previous
        shown = datetime.fromtimestamp(since, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        result.failed[qualified] = (
            f"vanished: not in the warehouse since {shown} (recreate it, or leave it out "
            "with --tables)"
        )
    if batch.materializations or batch.schemas:
        batch.runs.append(
            Run(
                run_id=run_id,
                job=f"{RUN_PREFIX}{config.name}",
                status=RunStatus.SUCCESS,
                start_time=at,
                end_time=from_epoch(clock()),
                trigger="monitor",
                tags={**RUN_TAGS, "lakelens.monitor": config.name},
            )
        )
        for profile in batch.profiles:  # the cycle's run, where it has one
            profile.run_id = run_id
    return batch, new_states


def _recorded(found: TableProfile, asset: str, at: datetime, mask: Masker) -> Profile:
    """The Profile event of a table's profile; errors (which may quote the driver) masked."""
    columns = {
        name: {**stats, "error": mask(stats["error"])} if "error" in stats else stats
        for name, stats in found.columns.items()
    }
    return Profile(
        asset=asset,
        columns=columns,
        time=at,
        row_count=found.row_count,
        sampled_rows=found.sampled_rows,
        source="monitor",
        error=mask(found.error) if found.error else None,
    )


def _asset(
    batch: Batch, config: MonitorConfig, table: Table, asset: str, row: _AssetRow | None
) -> None:
    """Register a new table's asset; keep the SLA the monitor declares for its own assets
    (and for others that have none)."""
    sla = config.freshness_for(table.schema, table.name)
    if row is None:
        batch.assets.append(
            Asset(
                asset,
                kind="view" if table.kind == "view" else "table",
                freshness_seconds=sla,
                tags={"lakelens.monitor": config.name, "warehouse.table": table.qualified},
            )
        )
        return
    if sla is None or row.freshness_seconds == sla:
        return
    tags = json.loads(row.tags) if row.tags else {}
    if row.freshness_seconds is None or tags.get("lakelens.monitor") == config.name:
        batch.assets.append(
            Asset(asset, kind=row.kind or "table", tags=tags, freshness_seconds=sla)
        )


def _materialization(
    config: MonitorConfig,
    table: Table,
    asset: str,
    item: _Seen,
    previous: TableState | None,
    run_id: str,
) -> Materialization:
    assert item.modified_at is not None
    delta = None
    if previous is not None and previous.rows is not None and item.row_count is not None:
        delta = item.row_count - previous.rows
    moment = from_epoch(item.modified_at)
    return Materialization(
        id=f"{RUN_PREFIX}{config.name}:{table.qualified}:{item.modified_at:.6f}",
        run_id=run_id,
        asset=asset,
        status=RunStatus.SUCCESS,
        start_time=moment,
        end_time=moment,
        rows=delta if delta is not None and delta >= 0 else None,
        attributes={
            "lakelens.observed": True,
            "monitor": config.name,
            "table": table.qualified,
            "row_count": item.row_count,
            "row_count_estimated": item.estimated,
            "modified_source": item.source,
        },
    )
