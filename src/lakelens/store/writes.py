"""Batched writes: one transaction per batch, upserts for state, plain appends for streams.

Here the transaction (`write_batch`, `write_batches`: batch ids claimed, parts combined, asset
names resolved, each kind of event written, assets' latest-outcome state moved forward). The
rows it binds are built in rows.py, the statements it runs are compiled in statements.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa

from lakelens.events import Batch, dumps
from lakelens.ingest import OTLP_RUN_TAGS
from lakelens.model import SchemaSnapshot, to_epoch
from lakelens.store import log_search, schema
from lakelens.store.rows import (
    _asset_rows,
    _check_rows,
    _edge_rows,
    _materialization_row,
    _merge,
    _observed_rows,
    _placeholders,
    _run_row,
    _usage_rows,
    profile_row,
)
from lakelens.store.statements import _STATE_SQL, _Statements, _statements_for

__all__ = ["Part", "profile_row", "write_batch", "write_batches"]


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
# deletes their rows runs `LOCK_ROLLUPS` first (prune, the demo's reset, identity's merges): one
# at a time. Key: migrate ...45, evaluator ...46, leader ...47.
ROLLED_UP_TABLES = frozenset({"materializations", "check_results"})
LOCK_ROLLUPS = f"SELECT pg_advisory_xact_lock({0x1A6E1E48})"
# The ingest writer takes the same lock for the session instead, right before its first shared
# row, and lets it go right before COMMIT: a transaction-level lock is held through the commit's
# WAL flush (0.6-4.5 ms here), and before it through the batch id claim and name resolution, so
# a second server's writer waited for all of it (2 servers: 46 % of each transaction). One
# statement at a time still writes shared rows under the lock, and a writer past its unlock only
# commits and never waits, so whoever waits for its rows is not part of a cycle.
_TAKE_ROLLUPS = f"SELECT pg_advisory_lock({0x1A6E1E48})"
_LEAVE_ROLLUPS = f"SELECT pg_advisory_unlock({0x1A6E1E48})"


def write_batches(
    engine: sa.Engine, parts: Sequence[Part], *, connection: sa.Connection | None = None
) -> list[bool]:
    """Write several batches in one transaction: for each, True, or False when its batch id
    was committed before (or claimed by an earlier part), and then none of its events.

    The events of the fresh parts are written as one batch, in the parts' order: the store
    ends as if the parts had been written one after the other. Anything raised rolls back
    every part. On `connection` (of `engine`, in no transaction) when given, which stays
    open; a connection the server dropped is invalidated (`connection.invalidated`).
    """
    sql = _statements_for(engine)
    with nullcontext(connection) if connection is not None else engine.connect() as conn:
        if sql.sqlite:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            # Explicitly: the statements below go to the DBAPI cursor, which SQLAlchemy's
            # autobegin never sees (its commit() would then do nothing).
            conn.begin()
        raw = conn.connection.cursor()
        locked = False
        starts: _RunStarts | None = None
        try:
            with _pipelined(conn, raw, sql, parts) as cursor:
                fresh = [_claim(cursor, sql, part) for part in parts]
                kept = [part for part, new in zip(parts, fresh, strict=True) if new]
                batch = _combined([part.batch for part in kept])
                if len(batch):
                    starts = _RunStarts(cursor, sql, batch)  # answered with the names' read
                    batch = _canonical(cursor, sql, batch, kept)
                    _append(conn, cursor, sql, batch)
                    locked = not sql.sqlite and _shares_rows(batch)
                    if locked:
                        cursor.execute(_TAKE_ROLLUPS)
                    _write(cursor, sql, batch, starts)
                    if locked:
                        cursor.execute(_LEAVE_ROLLUPS)
                    if sql.sqlite and batch.logs:
                        log_search.catch_up(cursor)  # now and then: a chunk of the newest logs
                if any(fresh) and isinstance(cursor, _Piped):
                    cursor.commit()
            if any(fresh):
                conn.commit()  # on PostgreSQL after the pipeline's COMMIT: answered, no round trip
            else:
                conn.rollback()
        except engine.dialect.loaded_dbapi.Error as exc:
            # As SQLAlchemy would raise it (callers map OperationalError to "retry later"),
            # and a connection the server dropped is not handed out again.
            wrapped = sa.exc.DBAPIError.instance(
                None, None, exc, engine.dialect.loaded_dbapi.Error, dialect=engine.dialect
            )
            if locked or engine.dialect.is_disconnect(exc, conn.connection.dbapi_connection, raw):
                conn.invalidate()
            else:
                conn.rollback()
            raise wrapped from None
        except BaseException:
            # A session lock outlives a rollback: closing the connection is what surely ends it.
            if locked:
                conn.invalidate()
            else:
                conn.rollback()
            raise
        finally:
            if starts is not None:
                starts.close()  # its cursors, when the transaction ended before it was read
            raw.close()
            if not sql.sqlite:
                _end_autocommit(conn)
    return fresh


def _end_autocommit(conn: sa.Connection) -> None:
    """Hand the connection back as psycopg opened it (`_pipelined` ran it in autocommit);
    one whose transaction did not end is closed instead of pooled."""
    if conn.invalidated:
        return
    dbapi: Any = conn.connection.dbapi_connection
    if not dbapi.autocommit:
        return
    from psycopg.pq import TransactionStatus

    if dbapi.info.transaction_status == TransactionStatus.IDLE:
        dbapi.autocommit = False
    else:
        conn.invalidate()


@contextmanager
def _pipelined(
    conn: sa.Connection, cursor: Any, sql: _Statements, parts: Sequence[Part]
) -> Iterator[Any]:
    """The transaction's cursor; on PostgreSQL in pipeline mode, so that its statements go out
    without waiting for each answer: a one-event OpenLineage transaction took about a dozen
    round trips, now two (each read the write needs waits for what came before).

    Not for a batch that COPY writes (pipeline mode cannot run COPY) or that holds schema
    snapshots (written through SQLAlchemy, which reads a result's shape before it arrived).
    """
    copied = sql.logs.copies(sum(len(p.batch.logs) for p in parts)) or sql.metrics.copies(
        sum(len(p.batch.metrics) for p in parts)
    )
    if sql.sqlite or copied or any(p.batch.schemas for p in parts):
        yield cursor
        return
    dbapi: Any = conn.connection.dbapi_connection
    # psycopg's own BEGIN syncs the pipeline (a round trip of its own); in autocommit, the
    # transaction's BEGIN is queued with its first statements. `write_batches` ends the
    # autocommit once the transaction has ended (`_end_autocommit`).
    dbapi.autocommit = True
    with dbapi.pipeline() as pipeline:
        cursor.execute("BEGIN", prepare=False)
        yield _Piped(cursor, pipeline)


class _Piped:
    """A psycopg cursor in pipeline mode whose `description` waits for the statement's answer
    (psycopg's says None until the pipeline is synced; the readers of results look at it)."""

    def __init__(self, cursor: Any, pipeline: Any) -> None:
        self._cursor = cursor
        self._pipeline = pipeline

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    @property
    def description(self) -> Any:
        if self._cursor.pgresult is None:  # not answered yet (psycopg resets it per statement)
            self._pipeline.sync()
        return self._cursor.description

    def another(self) -> _Piped:
        """A second cursor in the same pipeline: its answer arrives with the next sync."""
        return _Piped(self._cursor.connection.cursor(), self._pipeline)

    def commit(self) -> None:
        """COMMIT in the pipeline, answered with its statements at the pipeline's end: one
        round trip fewer than psycopg's `commit()`, which syncs, and the pipeline's exit syncs
        again. psycopg then sees the transaction ended, and SQLAlchemy's commit sends nothing."""
        self._cursor.execute("COMMIT", prepare=False)


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


def _append(conn: sa.Connection, cursor: Any, sql: _Statements, batch: Batch) -> None:
    """The streams: rows of their own that no other writer updates, written before the lock."""
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


def _shares_rows(batch: Batch) -> bool:
    """Whether `_write` has rows to write that other writers write too. Not only the rolled-up
    tables: a batch of runs and assets alone (an OpenLineage START without outputs) updates
    the asset rows a writer under the lock updates, and without the lock the two deadlocked
    whenever they met them in different orders (4 writers, 60 assets: 23 of 100 transactions)."""
    return bool(
        batch.assets
        or batch.runs
        or batch.materializations
        or batch.edges
        or batch.checks
        or batch.profiles
        or batch.usage
    )


def _write(cursor: Any, sql: _Statements, batch: Batch, starts: _RunStarts) -> None:
    """The rows writers share (assets, runs, edges, and through the rollup triggers the hours)."""
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
        _start_with_runs(cursor, sql, merged, starts)
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


class _RunStarts:
    """The stored starts of the runs whose materializations come without a start (an
    OpenLineage COMPLETE), asked before the transaction's first wait for an answer: on
    PostgreSQL the question rides in the pipeline with the asset names' read, so it costs no
    round trip of its own and none under the rollup lock (it was one more in every COMPLETE).

    What the transaction's own run rows do to a start is applied as their upsert does (the
    earliest reported start wins). A run the batch also has OTLP-observed rows for, whose
    upsert depends on the stored row's tags, is read after the runs are written, as before.
    """

    def __init__(self, cursor: Any, sql: _Statements, batch: Batch) -> None:
        wanted = {m.run_id for m in batch.materializations if m.start_time is None and m.run_id}
        wanted -= {r.run_id for r in batch.runs if r.tags == OTLP_RUN_TAGS}
        self._given: dict[str, float] = {}
        for run in batch.runs:
            start = to_epoch(run.start_time)
            if run.run_id in wanted and start is not None:
                given = self._given.get(run.run_id)
                self._given[run.run_id] = start if given is None else min(given, start)
        self._asked: list[Any] = []
        self._stored: dict[str, float | None] | None = None
        self._wanted = wanted
        ordered = sorted(wanted)
        for chunk in range(0, len(ordered), _RUN_CHUNK):
            ids = ordered[chunk : chunk + _RUN_CHUNK]
            asking = cursor.another() if isinstance(cursor, _Piped) else cursor.connection.cursor()
            asking.execute(sql.run_starts(len(ids)), ids)
            self._asked.append(asking)

    def close(self) -> None:
        for asking in self._asked:
            asking.close()

    def knows(self, run_id: str) -> bool:
        return run_id in self._wanted

    def start(self, run_id: str) -> float | None:
        """The run's start once this transaction's run rows are written (`knows(run_id)`)."""
        if self._stored is None:
            self._stored = {}
            for asking in self._asked:
                if asking.description is not None:  # waits for the answer in a pipeline
                    self._stored.update(asking.fetchall())
            self.close()
        stored, given = self._stored.get(run_id), self._given.get(run_id)
        if stored is None or given is None:
            return stored if given is None else given
        return min(stored, given)


_RUN_CHUNK = 500


def _start_with_runs(
    cursor: Any, sql: _Statements, rows: list[dict[str, Any]], starts: _RunStarts
) -> None:
    """A materialization reported without a start (an OpenLineage output first listed on
    COMPLETE) started with its run, as far as anyone knows."""
    found: dict[str, float | None] = {}
    for row in rows:
        run_id = row["run_id"]
        if row["start_time"] is not None or run_id is None:
            continue
        if run_id not in found:
            if starts.knows(run_id):
                found[run_id] = starts.start(run_id)
            else:
                cursor.execute(sql.run_start, (run_id,))
                answer = cursor.fetchone()
                found[run_id] = answer[0] if answer else None
        row["start_time"] = found[run_id]


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
