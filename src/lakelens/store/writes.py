"""Batched writes: one transaction per batch, upserts for state, plain appends for streams."""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from itertools import chain
from typing import Any

import sqlalchemy as sa

from lakelens import _clean
from lakelens.events import LOG_COLUMNS, MAX_JSON_CHARS, SPAN_COLUMNS, Batch, dumps, usage_id
from lakelens.ingest import OTLP_RUN_TAGS
from lakelens.model import (
    Asset,
    AssetUsage,
    CheckResult,
    Materialization,
    Profile,
    Run,
    RunStatus,
    SchemaSnapshot,
    to_epoch,
)
from lakelens.store import schema
from lakelens.store.engine import dialect_insert, is_sqlite

__all__ = ["Part", "profile_row", "write_batch", "write_batches"]


def _merge(rows: Iterable[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Fold several events for one key into one row: later non-null values win, except that the
    earliest start wins and a terminal status sticks (as in the upsert)."""
    merged: dict[Any, dict[str, Any]] = {}
    for row in rows:
        current = merged.get(row[key])
        if current is None:
            merged[row[key]] = row
            continue
        for name, value in row.items():
            if value is None:
                continue
            if name == "start_time" and current.get(name) is not None:
                current[name] = min(current[name], value)
                continue
            if (
                name == "status"
                and current.get("status") in RunStatus.TERMINAL
                and value not in RunStatus.TERMINAL
            ):
                continue
            current[name] = value
    return list(merged.values())


def _run_row(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "job": run.job,
        "status": run.status,
        "start_time": to_epoch(run.start_time),
        "end_time": to_epoch(run.end_time),
        "partition": run.partition,
        "trigger": run.trigger,
        "tags": dumps(run.tags),
        "correlation_id": run.correlation_id,
        "trace_id": run.trace_id,
        "parent_run_id": run.parent_run_id,
        "error_type": run.error_type,
        "error_message": run.error_message,
        "error_traceback": run.error_traceback,
    }


def _materialization_row(mat: Materialization) -> dict[str, Any]:
    start, end = to_epoch(mat.start_time), to_epoch(mat.end_time)
    return {
        "id": mat.id,
        "run_id": mat.run_id,
        "asset": mat.asset,
        "status": mat.status,
        "start_time": start,
        "end_time": end,
        "duration": end - start if start is not None and end is not None else None,
        "partition": mat.partition,
        "rows": mat.rows,
        "bytes": mat.bytes,
        "inserts": mat.inserts,
        "updates": mat.updates,
        "cpu_seconds": mat.cpu_seconds,
        "peak_memory_bytes": mat.peak_memory_bytes,
        "error_type": mat.error_type,
        "error_message": mat.error_message,
        "error_traceback": mat.error_traceback,
        "attributes": dumps(mat.attributes),
    }


def _asset_row(asset: Asset) -> dict[str, Any]:
    return {
        "name": asset.name,
        "kind": asset.kind,
        "owner": asset.owner,
        "layer": asset.layer,
        "group_name": asset.group,
        "description": asset.description,
        "freshness_seconds": asset.freshness_seconds,
        "availability_target": asset.availability_target,
        "expected_rows": asset.expected_rows,
        "critical": asset.critical,
        "tags": _tags(asset.tags),
        "updated_at": to_epoch(asset.updated_at),
    }


def _tags(tags: dict[str, str]) -> str | None:
    # The upsert merges the stored tags as JSON (jsonb on PostgreSQL, which refuses \u0000):
    # importers' tags pass the text boundary the SDK's and OpenLineage's already passed.
    return dumps({_text(k): _text(v) for k, v in tags.items()})


def _text(value: Any) -> Any:
    return _clean.text(value) if type(value) is str else value


def _asset_rows(assets: Sequence[Asset]) -> list[dict[str, Any]]:
    """One row per asset, folded as the upsert would: later values win, tags merge."""
    rows = _merge((_asset_row(a) for a in assets), "name")
    if len(rows) < len(assets):
        tags: dict[str, dict[str, str]] = {}
        for a in assets:
            tags.setdefault(a.name, {}).update(a.tags)
        for row in rows:
            row["tags"] = _tags(tags[row["name"]])
    return rows


def _check_row(check: CheckResult) -> tuple[Any, ...]:
    return (
        check.id,
        check.run_id,
        check.asset,
        check.name,
        check.passed,
        check.severity,
        to_epoch(check.time),
        check.value,
        check.threshold,
        check.valid_rows,
        check.total_rows,
        check.message,
        dumps(check.attributes),
    )


def _check_rows(checks: Sequence[CheckResult]) -> list[tuple[Any, ...]]:
    """One row per check id, the latest by time (PostgreSQL refuses to upsert a row twice in
    one statement)."""
    latest: dict[str, CheckResult] = {}
    for check in checks:
        earlier = latest.get(check.id)
        if earlier is None or (to_epoch(check.time) or 0) >= (to_epoch(earlier.time) or 0):
            latest[check.id] = check
    return [_check_row(c) for c in latest.values()]


_CHECK_COLUMNS = (
    "id",
    "run_id",
    "asset",
    "name",
    "passed",
    "severity",
    "time",
    "value",
    "threshold",
    "valid_rows",
    "total_rows",
    "message",
    "attributes",
)
_METRIC_COLUMNS = ("time", "name", "kind", "value", "labels", "run_id", "asset")
_PROFILE_COLUMNS = ("asset", "run_id", "time", "row_count", "sampled_rows", "source", "columns")
# One encoder for profiles: not events.dumps, whose size cap would cut a wide profile into a
# preview (the profiler bounds its own size: columns, top values and text are capped).
_encode_profile = json.JSONEncoder(
    default=str, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def profile_row(profile: Profile) -> tuple[Any, ...]:
    """The `profiles` row of a profile; its `columns` text is {"columns": {...}, "error": ...}."""
    document: dict[str, Any] = {"columns": profile.columns}
    if profile.error:
        document["error"] = profile.error
    return (
        profile.asset,
        profile.run_id,
        to_epoch(profile.time) if profile.time is not None else time.time(),
        profile.row_count,
        profile.sampled_rows,
        profile.source,
        _encode_profile(document),
    )


_OBSERVATION_COLUMNS = (
    "asset",
    "monitor",
    "time",
    "row_count",
    "row_count_estimated",
    "bytes",
    "modified_at",
    "modified_source",
)

_USAGE_COLUMNS = ("asset", "time", "kind", "reader", "run_id", "count", "source")


def _usage_rows(usage: Sequence[AssetUsage]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(rows of runs' uses with their fixed id, other rows), each run's use once."""
    now = time.time()
    once: dict[int, tuple[Any, ...]] = {}
    others: list[tuple[Any, ...]] = []
    for u in usage:
        when = now if u.time is None else to_epoch(u.time)
        row = (u.asset, when, u.kind, u.reader, u.run_id, u.count, u.source)
        if u.run_id is None:
            others.append(row)
        else:
            once.setdefault(usage_id(u.kind, u.asset, u.run_id), row)
    return [(key, *row) for key, row in once.items()], others


# SQLite allows 32,766 parameters per statement; 500 rows of a dozen columns stay well below.
_MULTIROW = 500


class _Appender:
    """INSERT for append-only rows. On SQLite, many rows per statement: executemany there
    releases and re-takes the GIL for every row, which starves it next to a busy pipeline
    thread (measured in bench/sdk_overhead.py)."""

    def __init__(
        self,
        table: str,
        columns: Sequence[str],
        mark: str,
        on_conflict: str,
        *,
        multirow: bool,
    ) -> None:
        self.head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        self.row_marks = "(" + ", ".join([mark] * len(columns)) + ")"
        self.tail = f" {on_conflict}" if on_conflict else ""
        self.single = self.head + self.row_marks + self.tail
        self.multirow = multirow
        self._sql: dict[int, str] = {}

    def _statement(self, rows: int) -> str:
        sql = self._sql.get(rows)
        if sql is None:
            sql = self._sql[rows] = self.head + ", ".join([self.row_marks] * rows) + self.tail
        return sql

    def write(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        if not self.multirow:
            cursor.executemany(self.single, rows)
            return
        for start in range(0, len(rows), _MULTIROW):
            chunk = rows[start : start + _MULTIROW]
            cursor.execute(self._statement(len(chunk)), tuple(chain.from_iterable(chunk)))


class _Compiled:
    """A statement compiled once for one dialect and run on the DBAPI cursor, row dicts in.

    A small batch (one OpenLineage event) costs a handful of statements; through
    `Connection.execute` each paid ~40 µs of SQLAlchemy bookkeeping, more than SQLite's work.
    """

    def __init__(self, stmt: Any, dialect: Any, keys: Sequence[str] | None = None) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys) if keys else None)
        self.sql: str = compiled.string
        # Positional paramstyles (SQLite's qmark) take tuples in this order; named ones, dicts.
        self.order: tuple[str, ...] | None = (
            tuple(compiled.positiontup) if compiled.positiontup is not None else None
        )

    def params(self, row: dict[str, Any]) -> Any:
        order = self.order
        return row if order is None else tuple([row[name] for name in order])

    def many(self, cursor: Any, rows: Sequence[dict[str, Any]]) -> None:
        cursor.executemany(self.sql, [self.params(row) for row in rows])

    def one(self, cursor: Any, row: dict[str, Any]) -> list[Any]:
        cursor.execute(self.sql, self.params(row))
        return list(cursor.fetchall()) if cursor.description else []


_RUN_KEYS = tuple(_run_row(Run("r", "j")))
_MATERIALIZATION_KEYS = tuple(_materialization_row(Materialization("m", "r", "a")))
_ASSET_KEYS = tuple(_asset_row(Asset("a")))
_EDGE_KEYS = ("upstream", "downstream", "source", "columns", "column_details", "updated_at")
_CLAIM_KEYS = ("batch_id", "received_at", "source", "accepted", "rejected")


class _Statements:
    """SQL for one dialect, built once: upserts compiled from SQLAlchemy, appends as plain SQL."""

    def __init__(self, engine: sa.Engine) -> None:
        self.sqlite = is_sqlite(engine)
        dialect = engine.dialect
        insert = dialect_insert(engine)
        mark = "?" if dialect.paramstyle == "qmark" else "%s"

        def append_sql(
            table: sa.Table, columns: Sequence[str], ignore_conflicts: bool = False
        ) -> _Appender:
            on_conflict = "ON CONFLICT DO NOTHING" if ignore_conflicts else ""
            return _Appender(table.name, columns, mark, on_conflict, multirow=self.sqlite)

        def compiled(stmt: Any, keys: Sequence[str] | None = None) -> _Compiled:
            return _Compiled(stmt, dialect, keys)

        self.logs = append_sql(schema.logs, LOG_COLUMNS)
        self.spans = append_sql(schema.spans, SPAN_COLUMNS, ignore_conflicts=True)
        # One result per check id: a repeat (the same assertion on START, RUNNING and COMPLETE)
        # replaces the earlier result unless it is older. An UPDATE, so the rollup triggers
        # (revision 0006) take the old row's share out and put the new one in.
        self.checks = _Appender(
            schema.check_results.name,
            _CHECK_COLUMNS,
            mark,
            "ON CONFLICT (id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in _CHECK_COLUMNS if c != "id")
            + " WHERE excluded.time >= check_results.time",
            multirow=self.sqlite,
        )
        self.metrics = append_sql(schema.metric_points, _METRIC_COLUMNS)
        self.profiles = append_sql(schema.profiles, _PROFILE_COLUMNS)
        self.observations = append_sql(schema.table_observations, _OBSERVATION_COLUMNS)
        self.usage = append_sql(schema.asset_usage, _USAGE_COLUMNS)
        self.run_usage = append_sql(
            schema.asset_usage, ("id", *_USAGE_COLUMNS), ignore_conflicts=True
        )

        self.run_start = f"SELECT start_time FROM runs WHERE run_id = {mark}"
        self.runs = compiled(
            self._state_upsert(insert, schema.runs, "run_id", replaces=_OBSERVED_ONLY),
            _RUN_KEYS,
        )
        self.observed_runs = compiled(sa.text(_OBSERVED_RUNS_SQL), _OBSERVED_KEYS)
        self.materializations = compiled(
            self._state_upsert(insert, schema.materializations, "id"), _MATERIALIZATION_KEYS
        )
        assets = insert(schema.assets)
        set_ = {
            c.name: sa.func.coalesce(assets.excluded[c.name], c)
            for c in schema.assets.c
            if c.name != "name"
        }
        set_["tags"] = _merged_tags(schema.assets.c.tags, assets.excluded.tags, self.sqlite)
        self.assets = compiled(
            assets.on_conflict_do_update(index_elements=["name"], set_=set_), _ASSET_KEYS
        )
        # Names seen only in materializations or lineage still become rows of the registry.
        self.placeholders = compiled(
            insert(schema.assets).on_conflict_do_nothing(index_elements=["name"]),
            ("name", "kind"),
        )
        # A name first seen as someone's upstream is no mere source once it materializes.
        self.promote = compiled(
            sa.text("UPDATE assets SET kind = 'asset' WHERE name = :name AND kind = 'source'")
        )
        edges = insert(schema.lineage_edges)
        table = schema.lineage_edges
        # The mapping and its details are one statement about the edge's columns: a later
        # edge that says neither keeps both, one that says either replaces both.
        silent = sa.and_(edges.excluded.columns.is_(None), edges.excluded.column_details.is_(None))
        self.edges = compiled(
            edges.on_conflict_do_update(
                index_elements=["upstream", "downstream", "source"],
                set_={
                    "columns": sa.case((silent, table.c.columns), else_=edges.excluded.columns),
                    "column_details": sa.case(
                        (silent, table.c.column_details), else_=edges.excluded.column_details
                    ),
                    "updated_at": edges.excluded.updated_at,
                },
            ),
            _EDGE_KEYS,
        )
        self.claim = compiled(
            insert(schema.ingest_batches)
            .on_conflict_do_nothing(index_elements=["batch_id"])
            # RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT.
            .returning(schema.ingest_batches.c.batch_id),
            _CLAIM_KEYS,
        )
        self.state = {
            status: (compiled(latest), compiled(extreme))
            for status, (latest, extreme) in _STATE_SQL.items()
        }

    @staticmethod
    def _state_upsert(insert: Any, table: sa.Table, key: str, replaces: str | None = None) -> Any:
        """Upsert where a later event fills in fields but never moves a finished status back;
        a row matching the SQL condition `replaces` takes the event's fields as they are."""
        stmt = insert(table)
        excluded = stmt.excluded
        set_: dict[str, Any] = {
            c.name: sa.func.coalesce(excluded[c.name], c) for c in table.c if c.name != key
        }
        # The earliest start anyone reported: an OpenLineage COMPLETE that arrived first gave
        # its own time, its START (sent earlier, delivered later) knows better.
        start = sa.case(
            (excluded.start_time.is_(None), table.c.start_time),
            (table.c.start_time.is_(None), excluded.start_time),
            (excluded.start_time < table.c.start_time, excluded.start_time),
            else_=table.c.start_time,
        )
        set_["start_time"] = start
        set_["status"] = sa.case(
            (
                sa.and_(_is_terminal(table.c.status), sa.not_(_is_terminal(excluded.status))),
                table.c.status,
            ),
            else_=excluded.status,
        )
        if "duration" in table.c:
            set_["duration"] = sa.func.coalesce(excluded.end_time, table.c.end_time) - start
        if replaces is not None:
            condition = sa.text(replaces)
            for name in set_:
                if name != "start_time":
                    set_[name] = sa.case((condition, excluded[name]), else_=set_[name])
        return stmt.on_conflict_do_update(index_elements=[key], set_=set_)


def _merged_tags(stored: Any, given: Any, sqlite: bool) -> Any:
    """An asset's tags after a write: the stored ones with the given keys set. Each source
    (SDK, dbt, OpenLineage, Dagster) says what it knows and keeps the others' keys; a merge
    past the JSON cap keeps the given tags alone."""
    merged: Any
    if sqlite:
        merged = sa.func.json_patch(stored, given)
    else:
        from sqlalchemy.dialects.postgresql import JSONB

        merged = sa.cast(sa.cast(stored, JSONB).op("||")(sa.cast(given, JSONB)), sa.Text)
    return sa.case(
        (given.is_(None), stored),
        (stored.is_(None), given),
        (sa.func.length(merged) > sa.literal_column(str(MAX_JSON_CHARS)), given),
        else_=merged,
    )


def _is_terminal(column: Any) -> Any:
    # Literal values, not bound parameters: "IN" with parameters cannot run under executemany.
    return sa.or_(
        *(column == sa.literal_column(f"'{status}'") for status in sorted(RunStatus.TERMINAL))
    )


# Runs known only from OTLP (ingest/otlp.py): inserted when missing, widened by later spans and
# logs, never written over a run that an SDK or OpenLineage reported; such a report replaces
# them (`replaces` in the runs upsert). Failure sticks; success needs the root span's end.
_OBSERVED_TAGS = dumps(OTLP_RUN_TAGS)
assert _OBSERVED_TAGS is not None and "'" not in _OBSERVED_TAGS
_OBSERVED_ONLY = f"runs.tags = '{_OBSERVED_TAGS}'"
_OBSERVED_KEYS = (
    "run_id",
    "job",
    "status",
    "start_time",
    "end_time",
    "tags",
    "trace_id",
    "error_message",
)
_OBSERVED_RUNS_SQL = f"""
INSERT INTO runs ({", ".join(_OBSERVED_KEYS)})
VALUES ({", ".join(":" + k for k in _OBSERVED_KEYS)})
ON CONFLICT (run_id) DO UPDATE SET
  start_time = CASE
    WHEN excluded.start_time IS NULL THEN runs.start_time
    WHEN runs.start_time IS NULL OR excluded.start_time < runs.start_time
      THEN excluded.start_time
    ELSE runs.start_time END,
  end_time = CASE
    WHEN excluded.end_time IS NULL THEN runs.end_time
    WHEN runs.end_time IS NULL OR excluded.end_time > runs.end_time THEN excluded.end_time
    ELSE runs.end_time END,
  status = CASE
    WHEN runs.status = 'failure' OR excluded.status = 'failure' THEN 'failure'
    WHEN excluded.status = 'success' THEN 'success'
    ELSE runs.status END,
  trace_id = coalesce(runs.trace_id, excluded.trace_id),
  error_message = coalesce(runs.error_message, excluded.error_message)
WHERE {_OBSERVED_ONLY}
"""


def _observed_rows(runs: Iterable[Run]) -> list[dict[str, Any]]:
    """One row per run id (as the statement above would fold them one by one)."""
    rows: dict[str, dict[str, Any]] = {}
    for run in runs:
        row = {k: v for k, v in _run_row(run).items() if k in _OBSERVED_KEYS}
        current = rows.get(run.run_id)
        if current is None:
            rows[run.run_id] = row
            continue
        for name, pick in (("start_time", min), ("end_time", max)):
            values = [v for v in (current[name], row[name]) if v is not None]
            current[name] = pick(values) if values else None
        if RunStatus.FAILURE in (current["status"], row["status"]):
            current["status"] = RunStatus.FAILURE
        elif row["status"] == RunStatus.SUCCESS:
            current["status"] = RunStatus.SUCCESS
        for name in ("trace_id", "error_message"):
            current[name] = current[name] or row[name]
    return list(rows.values())


# Keyed by the engine itself, weakly: an id() could be reused by another engine (of another
# dialect) once the first is garbage-collected.
_statements: weakref.WeakKeyDictionary[sa.Engine, _Statements] = weakref.WeakKeyDictionary()


def _statements_for(engine: sa.Engine) -> _Statements:
    found = _statements.get(engine)
    if found is None:
        found = _statements[engine] = _Statements(engine)
    return found


@dataclass
class Part:
    """One caller's batch among several written in one transaction (see `write_batches`)."""

    batch: Batch
    batch_id: str | None = None
    source: str = "native"
    # Counted in the batch id's row; `accepted` defaults to the number of events in the batch.
    accepted: int | None = None
    rejected: int = 0
    now: float | None = None


def write_batch(
    engine: sa.Engine,
    batch: Batch,
    *,
    batch_id: str | None = None,
    source: str = "native",
    accepted: int | None = None,
    rejected: int = 0,
    now: float | None = None,
) -> bool:
    """Write every event of `batch` in one transaction (BEGIN IMMEDIATE on SQLite).

    With a `batch_id`, the id is claimed in the same transaction first: a batch sent twice
    (a client retrying after a lost answer) is written once, and False is returned for the
    repeat. Two concurrent requests with one id serialize on that row.
    """
    part = Part(batch, batch_id, source, accepted, rejected, now)
    return write_batches(engine, [part])[0]


# The hourly rollups' triggers (revision 0006) update rows shared by every writer of these
# tables; writers taking them in different orders deadlocked on PostgreSQL (4 writers: 269
# deadlocks, 244 s for 600 transactions). Every PostgreSQL transaction that inserts, updates or
# deletes their rows runs `LOCK_ROLLUPS` first (writes, prune, the demo's reset): one at a
# time, about a millisecond each. Key: migrate ...45, evaluator ...46, leader ...47.
ROLLED_UP_TABLES = frozenset({"materializations", "check_results"})
LOCK_ROLLUPS = f"SELECT pg_advisory_xact_lock({0x1A6E1E48})"


def write_batches(engine: sa.Engine, parts: Sequence[Part]) -> list[bool]:
    """Write several batches in one transaction: for each, True, or False when its batch id
    was committed before (or claimed by an earlier part), and then none of its events.

    The events of the fresh parts are written as one batch, in the parts' order: the store
    ends as if the parts had been written one after the other. Anything raised rolls back
    every part.
    """
    sql = _statements_for(engine)
    with engine.connect() as conn:
        if sql.sqlite:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            # Explicitly: the statements below go to the DBAPI cursor, which SQLAlchemy's
            # autobegin never sees (its commit() would then do nothing).
            conn.begin()
        cursor = conn.connection.cursor()
        try:
            if not sql.sqlite and any(p.batch.materializations or p.batch.checks for p in parts):
                cursor.execute(LOCK_ROLLUPS)
            fresh = [_claim(cursor, sql, part) for part in parts]
            kept = [part for part, new in zip(parts, fresh, strict=True) if new]
            batch = _combined([part.batch for part in kept])
            if len(batch):
                batch = _canonical(cursor, sql, batch, kept)
                _write(conn, cursor, sql, batch)
            if any(fresh):
                conn.commit()
            else:
                conn.rollback()
        except engine.dialect.loaded_dbapi.Error as exc:
            # As SQLAlchemy would raise it (callers map OperationalError to "retry later"),
            # and a connection the server dropped is not handed out again.
            wrapped = sa.exc.DBAPIError.instance(
                None, None, exc, engine.dialect.loaded_dbapi.Error, dialect=engine.dialect
            )
            if engine.dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor):
                conn.invalidate()
            else:
                conn.rollback()
            raise wrapped from None
        except BaseException:
            conn.rollback()
            raise
        finally:
            cursor.close()
    return fresh


def _canonical(cursor: Any, sql: _Statements, batch: Batch, parts: Sequence[Part]) -> Batch:
    """The batch with every asset name resolved to its asset (ingest/identity.py), once here
    for every writer."""
    from lakelens.ingest import identity

    sources = {part.source for part in parts}
    return identity.apply(
        cursor,
        "?" if sql.sqlite else "%s",
        batch,
        source=sources.pop() if len(sources) == 1 else "ingest",
        lock=None if sql.sqlite else LOCK_ROLLUPS,
        now=parts[0].now,
    )


def _claim(cursor: Any, sql: _Statements, part: Part) -> bool:
    """Insert the part's batch id row; False when the id is already there."""
    if part.batch_id is None:
        return True
    row = {
        "batch_id": part.batch_id,
        "received_at": time.time() if part.now is None else part.now,
        "source": part.source,
        "accepted": len(part.batch) if part.accepted is None else part.accepted,
        "rejected": part.rejected,
    }
    return bool(sql.claim.one(cursor, row))


def _combined(batches: Sequence[Batch]) -> Batch:
    if len(batches) == 1:
        return batches[0]
    combined = Batch()
    for name in _BATCH_LISTS:
        rows: list[Any] = getattr(combined, name)
        for batch in batches:
            rows.extend(getattr(batch, name))
    return combined


_BATCH_LISTS = tuple(f.name for f in fields(Batch))


def _placeholders(batch: Batch) -> list[dict[str, Any]]:
    """Registry rows for asset names this batch mentions but does not define."""
    defined = {a.name for a in batch.assets}
    kinds: dict[str, str] = {}
    for edge in batch.edges:
        kinds.setdefault(edge.upstream, "source")
        kinds[edge.downstream] = "asset"
    for mat in batch.materializations:
        kinds[mat.asset] = "asset"
    for check in batch.checks:
        kinds.setdefault(check.asset, "asset")
    for profile in batch.profiles:
        kinds.setdefault(profile.asset, "asset")
    for use in batch.usage:
        # A dashboard reporting its own views; anything else read is someone's source.
        own_views = use.kind == "view" and use.reader == use.asset
        kinds.setdefault(use.asset, "dashboard" if own_views else "source")
    return [{"name": name, "kind": kind} for name, kind in kinds.items() if name not in defined]


def _edge_rows(batch: Batch) -> list[dict[str, Any]]:
    """One row per edge; as in the upsert, a later edge without columns (nor their details)
    keeps the earlier ones."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for e in batch.edges:
        key = (e.upstream, e.downstream, e.source)
        row = {
            "upstream": e.upstream,
            "downstream": e.downstream,
            "source": e.source,
            "columns": dumps(e.columns),
            "column_details": dumps(e.column_details),
            "updated_at": to_epoch(e.updated_at),
        }
        earlier = rows.get(key)
        if earlier is not None and row["columns"] is None and row["column_details"] is None:
            row["columns"], row["column_details"] = earlier["columns"], earlier["column_details"]
        rows[key] = row
    return list(rows.values())


def _write(conn: sa.Connection, cursor: Any, sql: _Statements, batch: Batch) -> None:
    if batch.assets:
        sql.assets.many(cursor, _asset_rows(batch.assets))
    placeholders = _placeholders(batch)
    if placeholders:
        sql.placeholders.many(cursor, placeholders)
    materialized = sorted({m.asset for m in batch.materializations})
    if materialized:
        sql.promote.many(cursor, [{"name": name} for name in materialized])
    if batch.runs:
        reported = [r for r in batch.runs if r.tags != OTLP_RUN_TAGS]
        if reported:
            sql.runs.many(cursor, _merge((_run_row(r) for r in reported), "run_id"))
        if len(reported) < len(batch.runs):
            observed = [r for r in batch.runs if r.tags == OTLP_RUN_TAGS]
            sql.observed_runs.many(cursor, _observed_rows(observed))
    if batch.materializations:
        merged = _merge((_materialization_row(m) for m in batch.materializations), "id")
        _start_with_runs(cursor, sql, merged)
        for row in merged:
            # Events merged into one row (a START and its COMPLETE) each lacked the other end.
            start, end = row["start_time"], row["end_time"]
            row["duration"] = end - start if start is not None and end is not None else None
        sql.materializations.many(cursor, merged)
        _update_asset_state(cursor, sql, merged)
    if batch.edges:
        sql.edges.many(cursor, _edge_rows(batch))
    if batch.checks:
        sql.checks.write(cursor, _check_rows(batch.checks))
    if batch.logs:
        sql.logs.write(cursor, batch.logs)
    if batch.spans:
        sql.spans.write(cursor, batch.spans)
    if batch.metrics:
        sql.metrics.write(
            cursor,
            [
                (to_epoch(m.time), m.name, m.kind, m.value, dumps(m.labels), m.run_id, m.asset)
                for m in batch.metrics
            ],
        )
    if batch.schemas:
        _write_schemas(conn, batch.schemas)
    if batch.profiles:
        sql.profiles.write(cursor, [profile_row(p) for p in batch.profiles])
    if batch.observations:
        sql.observations.write(
            cursor,
            [
                (
                    o.asset,
                    o.monitor,
                    to_epoch(o.time),
                    o.row_count,
                    o.row_count_estimated,
                    o.bytes,
                    to_epoch(o.modified_at),
                    o.modified_source,
                )
                for o in batch.observations
            ],
        )
    if batch.usage:
        per_run, others = _usage_rows(batch.usage)
        if per_run:
            sql.run_usage.write(cursor, per_run)
        if others:
            sql.usage.write(cursor, others)


def _start_with_runs(cursor: Any, sql: _Statements, rows: list[dict[str, Any]]) -> None:
    """A materialization reported without a start (an OpenLineage output first listed on
    COMPLETE) started with its run, as far as anyone knows."""
    starts: dict[str, float | None] = {}
    for row in rows:
        if row["start_time"] is not None or row["run_id"] is None:
            continue
        if row["run_id"] not in starts:
            cursor.execute(sql.run_start, (row["run_id"],))
            found = cursor.fetchone()
            starts[row["run_id"]] = found[0] if found else None
        row["start_time"] = starts[row["run_id"]]


_STATE_LATEST = """
UPDATE assets SET
  failure_streak = {streak},
  last_status = :status, last_start_time = :start, last_end_time = :end_time, last_run_id = :run_id
WHERE name = :asset AND (last_start_time IS NULL OR last_start_time <= :start)
"""
# In an UPDATE every right-hand side sees the old row, so the CASE reads the previous status.
_FAILURE_STREAK = (
    "CASE WHEN last_status = 'failure' AND last_start_time = :start "
    "THEN failure_streak ELSE coalesce(failure_streak, 0) + 1 END"
)
_STATE_SQL = {
    "success": (
        sa.text(_STATE_LATEST.format(streak="0")),
        sa.text(
            "UPDATE assets SET last_success_time = :end_time WHERE name = :asset "
            "AND (last_success_time IS NULL OR last_success_time < :end_time)"
        ),
    ),
    "failure": (
        sa.text(_STATE_LATEST.format(streak=_FAILURE_STREAK)),
        sa.text(
            "UPDATE assets SET last_failure_time = :end_time WHERE name = :asset "
            "AND (last_failure_time IS NULL OR last_failure_time < :end_time)"
        ),
    ),
}


def _update_asset_state(cursor: Any, sql: _Statements, rows: list[dict[str, Any]]) -> None:
    """Move each asset's latest-outcome columns forward; older events arriving late change nothing."""
    finished = sorted(
        (
            r
            for r in rows
            if r["status"] in _STATE_SQL and (r["start_time"] or r["end_time"]) is not None
        ),
        key=lambda r: r["start_time"] if r["start_time"] is not None else r["end_time"],
    )
    for status, (latest, extreme) in sql.state.items():
        params = [
            {
                "asset": r["asset"],
                "status": status,
                "start": r["start_time"] if r["start_time"] is not None else r["end_time"],
                "end_time": r["end_time"] if r["end_time"] is not None else r["start_time"],
                "run_id": r["run_id"],
            }
            for r in finished
            if r["status"] == status
        ]
        if params:
            latest.many(cursor, params)
            extreme.many(cursor, params)


def _write_schemas(conn: sa.Connection, snapshots: list[SchemaSnapshot]) -> None:
    """Keep a snapshot only when the asset's columns differ from its latest stored snapshot."""
    table = schema.schema_snapshots
    latest: dict[str, str | None] = {}
    for snap in snapshots:
        if snap.asset not in latest:
            latest[snap.asset] = conn.execute(
                sa.select(table.c.hash)
                .where(table.c.asset == snap.asset)
                .order_by(table.c.time.desc(), table.c.id.desc())
                .limit(1)
            ).scalar()
        if latest[snap.asset] == snap.hash:
            continue
        conn.execute(
            table.insert().values(
                asset=snap.asset,
                time=to_epoch(snap.time),
                hash=snap.hash,
                columns=json.dumps([list(c) for c in snap.columns]),
                run_id=snap.run_id,
            )
        )
        latest[snap.asset] = snap.hash
