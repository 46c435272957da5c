"""The store's write statements, built once per engine: upserts compiled from SQLAlchemy and
run on the DBAPI cursor (`_Compiled`), appends as plain, multi-row SQL (`_Appender`), the
observed-runs and asset-state SQL, all held by `_Statements` (`_statements_for(engine)`).
The rows they take: rows.py; the transaction that runs them: writes.py."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from itertools import chain
from typing import Any

import sqlalchemy as sa

from lakelens.events import LOG_COLUMNS, MAX_JSON_CHARS, SPAN_COLUMNS, dumps
from lakelens.ingest import OTLP_RUN_TAGS
from lakelens.model import Asset, Materialization, Run, RunStatus
from lakelens.store import schema
from lakelens.store.engine import dialect_insert, is_sqlite
from lakelens.store.rows import (
    _CHECK_COLUMNS,
    _METRIC_COLUMNS,
    _OBSERVATION_COLUMNS,
    _OBSERVED_KEYS,
    _PROFILE_COLUMNS,
    _USAGE_COLUMNS,
    INFERRED_KINDS,
    _asset_row,
    _materialization_row,
    _run_row,
)

# SQLite allows 32,766 parameters per statement; 500 rows of a dozen columns stay well below.
_MULTIROW = 500
# From this many rows on, PostgreSQL appends go through COPY: two round trips whatever the
# count, and no statement to parse and plan per row (500 log rows: about 3× faster than a
# pipelined executemany). Fewer rows go as one executemany, one round trip.
_COPY_FROM = 16


class _Appender:
    """INSERT for append-only rows. On SQLite, many rows per statement: executemany there
    releases and re-takes the GIL for every row, which starves it next to a busy pipeline
    thread (measured in bench/sdk_overhead.py). On PostgreSQL, COPY for rows that need no
    conflict handling (`copy`); a partitioned table takes COPY into its parent as well."""

    def __init__(
        self,
        table: str,
        columns: Sequence[str],
        mark: str,
        on_conflict: str,
        *,
        multirow: bool,
        copy: bool = False,
    ) -> None:
        self.head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        self.row_marks = "(" + ", ".join([mark] * len(columns)) + ")"
        self.tail = f" {on_conflict}" if on_conflict else ""
        self.single = self.head + self.row_marks + self.tail
        self.multirow = multirow
        self.copy = f"COPY {table} ({', '.join(columns)}) FROM STDIN" if copy else None
        self._sql: dict[int, str] = {}

    def _statement(self, rows: int) -> str:
        sql = self._sql.get(rows)
        if sql is None:
            sql = self._sql[rows] = self.head + ", ".join([self.row_marks] * rows) + self.tail
        return sql

    def copies(self, rows: int) -> bool:
        """Whether `rows` rows go through COPY (which PostgreSQL's pipeline mode cannot run)."""
        return self.copy is not None and rows >= _COPY_FROM

    def write(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        if self.copies(len(rows)):
            with cursor.copy(self.copy) as copy:
                for row in rows:
                    copy.write_row(row)
            return
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
            table: sa.Table,
            columns: Sequence[str],
            ignore_conflicts: bool = False,
            copy: bool = False,
        ) -> _Appender:
            on_conflict = "ON CONFLICT DO NOTHING" if ignore_conflicts else ""
            return _Appender(
                table.name,
                columns,
                mark,
                on_conflict,
                multirow=self.sqlite,
                copy=copy and not self.sqlite and not ignore_conflicts,
            )

        def compiled(stmt: Any, keys: Sequence[str] | None = None) -> _Compiled:
            return _Compiled(stmt, dialect, keys)

        # The streams that come in bulk (and hold numbers and text only) are copied on PostgreSQL.
        self.logs = append_sql(schema.logs, LOG_COLUMNS, copy=True)
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
        self.metrics = append_sql(schema.metric_points, _METRIC_COLUMNS, copy=True)
        self.profiles = append_sql(schema.profiles, _PROFILE_COLUMNS)
        self.observations = append_sql(schema.table_observations, _OBSERVATION_COLUMNS)
        self.usage = append_sql(schema.asset_usage, _USAGE_COLUMNS)
        self.run_usage = append_sql(
            schema.asset_usage, ("id", *_USAGE_COLUMNS), ignore_conflicts=True
        )

        self.run_start = f"SELECT start_time FROM runs WHERE run_id = {mark}"
        self._mark = mark
        self.runs = compiled(
            self._state_upsert(insert, schema.runs, "run_id", replaces=_OBSERVED_ONLY),
            _RUN_KEYS,
        )
        self.observed_runs = compiled(sa.text(_OBSERVED_RUNS_SQL), _OBSERVED_KEYS)
        self.materializations = compiled(
            self._state_upsert(insert, schema.materializations, "id"), _MATERIALIZATION_KEYS
        )
        assets = insert(schema.assets)
        set_: dict[str, Any] = {
            c.name: sa.func.coalesce(assets.excluded[c.name], c)
            for c in schema.assets.c
            if c.name != "name"
        }
        set_["tags"] = _merged_tags(schema.assets.c.tags, assets.excluded.tags, self.sqlite)
        stored_kind, given_kind = schema.assets.c.kind, assets.excluded.kind
        # Literals in the SQL text, not binds: the compiled statement's parameters are its rows'.
        inferred: list[Any] = [sa.literal_column(f"'{kind}'") for kind in INFERRED_KINDS]
        set_["kind"] = sa.case(  # rows.kept_kind
            (
                sa.and_(given_kind.in_(inferred), stored_kind.not_in(inferred)),
                stored_kind,
            ),
            (
                sa.and_(
                    given_kind == sa.literal_column("'source'"),
                    stored_kind == sa.literal_column("'asset'"),
                ),
                stored_kind,
            ),
            else_=given_kind,
        )
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

    def run_starts(self, count: int) -> str:
        """SELECT run_id, start_time of `count` runs, their ids bound in order."""
        marks = ", ".join([self._mark] * count)
        return f"SELECT run_id, start_time FROM runs WHERE run_id IN ({marks})"

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


# Keyed by the engine itself, weakly: an id() could be reused by another engine (of another
# dialect) once the first is garbage-collected.
_statements: weakref.WeakKeyDictionary[sa.Engine, _Statements] = weakref.WeakKeyDictionary()


def _statements_for(engine: sa.Engine) -> _Statements:
    found = _statements.get(engine)
    if found is None:
        found = _statements[engine] = _Statements(engine)
    return found
