"""Log search: every filter runs in SQL; `follow()` tails new records without gaps or repeats."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lakelens._clean import stored_json
from lakelens.analysis._db import Reader, borrow
from lakelens.errors import InvalidArgumentError
from lakelens.model import LEVELS, LogRecord, Run, from_epoch, to_epoch
from lakelens.store.log_search import POSITION_TABLE, SQLITE_TABLE, match_query, pg_scan_lower

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "LogFilter",
    "correlated_runs",
    "follow",
    "page",
    "parse_level",
    "reported_run",
    "search",
    "within_run",
]

COLUMNS = "id, time, level, message, logger, run_id, asset, job, trace_id, span_id, attributes"


def parse_level(text: str | None) -> int | None:
    """The numeric level for DEBUG / INFO / WARNING / ERROR / CRITICAL (case-insensitive)."""
    if text is None:
        return None
    key = text.strip().upper()
    key = {"WARN": "WARNING", "FATAL": "CRITICAL", "ERR": "ERROR"}.get(key, key)
    if key not in LEVELS:
        raise InvalidArgumentError(
            f"Invalid --level {text!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL."
        )
    return LEVELS[key]


@dataclass
class LogFilter:
    """What to show: each field narrows the search; `min_level` means that level and above."""

    asset: str | None = None
    job: str | None = None
    run_id: str | None = None
    min_level: int | None = None
    since: float | None = None
    until: float | None = None
    grep: str | None = None
    correlation_id: str | None = None

    def sql(self, dialect: str = "", *, scan: bool = False) -> tuple[str, dict[str, Any]]:
        """The filter as an SQL condition on `logs` (always true when nothing is set).

        With `dialect="sqlite"`, --grep first narrows through the trigram index; without a
        dialect it scans (what a poll over a few new ids wants). With `dialect="postgresql"`
        and `scan`, the text match takes the form a scan computes soonest (rows that no
        trigram index covers: today's)."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        for column, value in (("asset", self.asset), ("job", self.job)):
            if value is not None:
                clauses.append(f"{column} = :{column}")
                params[column] = value
        if self.run_id is not None:
            # OpenTelemetry logs carry only trace and span ids; the run id is on a span of
            # the trace (`lakelens.run_id`), or the trace is the run's own.
            clauses.append(
                "(run_id = :run_id OR (run_id IS NULL AND trace_id IN ("
                "SELECT trace_id FROM runs WHERE run_id = :run_id "
                "UNION SELECT trace_id FROM spans WHERE run_id = :run_id)))"
            )
            params["run_id"] = self.run_id
        if self.correlation_id is not None:
            # Runs tied together by an outside id (LOG_CORRELATION_ID, e.g. a Prefect flow run).
            clauses.append(
                "run_id IN (SELECT run_id FROM runs WHERE correlation_id = :correlation_id)"
            )
            params["correlation_id"] = self.correlation_id
        if self.min_level is not None:
            clauses.append("level >= :min_level")
            params["min_level"] = self.min_level
        if self.since is not None:
            clauses.append("time >= :since")
            params["since"] = self.since
        if self.until is not None:
            clauses.append("time < :until")
            params["until"] = self.until
        if self.grep:
            # Case-insensitive substring; '/' escapes the pattern's own % and _.
            escaped = self.grep.replace("/", "//").replace("%", "/%").replace("_", "/_")
            message, attributes = "lower(message)", "lower(attributes)"
            if scan and dialect == "postgresql":
                message, attributes = pg_scan_lower("message"), pg_scan_lower("attributes")
            clauses.append(
                f"({message} LIKE lower(:grep) ESCAPE '/' "
                f"OR {attributes} LIKE lower(:grep) ESCAPE '/')"
            )
            params["grep"] = f"%{escaped}%"
            match = match_query(self.grep) if dialect == "sqlite" else None
            if match is not None:
                # A superset of the rows (any case, trigrams in any order, and the newest
                # logs, not indexed yet); the LIKE decides. One IN list, so that SQLite
                # reads the rows by id (as an OR, it walked every row of the time range).
                clauses.append(
                    f"id IN (SELECT rowid FROM {SQLITE_TABLE} WHERE {SQLITE_TABLE} MATCH "
                    f":grep_match UNION ALL SELECT id FROM logs "
                    f"WHERE id > (SELECT up_to FROM {POSITION_TABLE}))"
                )
                params["grep_match"] = match
        return (" AND ".join(clauses) or "1 = 1"), params


def correlated_runs(conn: Reader | sa.Connection, correlation_id: str) -> list[str]:
    """The ids of the runs that carry `correlation_id`, oldest first."""
    return list(
        borrow(conn).column(
            "SELECT run_id FROM runs WHERE correlation_id = :correlation_id "
            "ORDER BY start_time, run_id",
            {"correlation_id": correlation_id},
        )
    )


def reported_run(conn: Reader | sa.Connection, run_id: str) -> bool:
    """Whether spans or log lines name `run_id` (a run known only from OTLP has no runs row)."""
    db = borrow(conn)
    return bool(
        db.row("SELECT 1 FROM spans WHERE run_id = :run_id", {"run_id": run_id})
        or db.row("SELECT 1 FROM logs WHERE run_id = :run_id", {"run_id": run_id})
    )


def _record(row: Sequence[Any], run_of_trace: str | None = None) -> LogRecord:
    """A LogRecord from a row of COLUMNS; `run_of_trace` names the run of a record that has
    none of its own but was found through its trace."""
    id_, at, level, message, logger, run_id, asset, job, trace_id, span_id, attributes = row
    if run_id is None:
        run_id = run_of_trace
    return LogRecord(
        id=id_,
        time=from_epoch(at),  # type: ignore[arg-type]
        level=level,
        message=message,
        logger=logger,
        run_id=run_id,
        asset=asset,
        job=job,
        trace_id=trace_id,
        span_id=span_id,
        # Read whatever an older version stored (lone surrogates, deep nesting) without failing.
        attributes=stored_json(attributes, {}),
    )


def within_run(db: Reader, where: LogFilter, run: Run | None = None) -> LogFilter:
    """On PostgreSQL, `where` also bounded to its run's recorded span, widened by
    RUN_LOG_MARGIN_SECONDS each way (no end while the run has none); `run` is the run's row
    when the caller has read it (else it is read here).

    The time bound lets PostgreSQL skip the day partitions of `logs` outside the run: without
    it, `--run-id` probes the run index of every partition (40 days of a 10M-log store: 11 ms
    against 1.5 ms). A log stamped more than the margin before the run started, or after it
    ended (a clock off by a day), is not shown; SQLite has no partitions and is not bounded.
    """
    if where.run_id is None or db.dialect != "postgresql":
        return where
    span: tuple[Any, ...] | None
    if run is not None and run.run_id == where.run_id:
        span = (to_epoch(run.start_time), to_epoch(run.end_time))
    else:
        span = db.row(
            "SELECT start_time, end_time FROM runs WHERE run_id = :run_id",
            {"run_id": where.run_id},
        )
    if span is None or span[0] is None:  # known only from spans or log lines: no span
        return where
    start: float = span[0]
    end: float | None = span[1]
    since = start - RUN_LOG_MARGIN_SECONDS
    if where.since is not None:
        since = max(since, where.since)
    until = where.until
    if end is not None:
        after = max(start, end) + RUN_LOG_MARGIN_SECONDS
        until = after if until is None else min(until, after)
    return replace(where, since=since, until=until)


def _newest(
    conn: Reader | sa.Connection,
    where: LogFilter,
    bound: str,
    value: int | None,
    order: str,
    limit: int,
    run: Run | None = None,
) -> list[LogRecord]:
    """The first `limit` matching records in `order` (descending), with `id {bound} value`."""
    db = borrow(conn)
    where = within_run(db, where, run)
    if where.grep and db.dialect == "postgresql" and order.startswith("time DESC"):
        return [
            _record(r, where.run_id)
            for r in reversed(_today_first(db, where, bound, value, order, limit))
        ]
    condition, params = where.sql(db.dialect)
    bounded = f" AND id {bound} :bound" if value is not None else ""
    params |= {"bound": value, "limit": limit}
    if "grep_match" in params:
        # A frequent text (`--grep page`) is in the newest rows: a short scan of them finds
        # it sooner than the index lists its millions of rows (10M logs: 4 ms, not 3.9 s).
        # Exact: when the window holds `limit` matches, they are the first `limit` of all.
        others, more = replace(where, grep=None).sql()
        grep, grep_params = LogFilter(grep=where.grep).sql()
        rows = db.rows(
            f"SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM logs WHERE {others}{bounded} "
            f"ORDER BY {order} LIMIT :window) WHERE {grep} ORDER BY {order} LIMIT :limit",
            {**params, **more, **grep_params, "window": _GREP_WINDOW},
        )
        if len(rows) == limit:
            return [_record(r, where.run_id) for r in reversed(rows)]
    rows = db.rows(
        f"SELECT {COLUMNS} FROM logs WHERE {condition}{bounded} ORDER BY {order} LIMIT :limit",
        params,
    )
    return [_record(r, where.run_id) for r in reversed(rows)]


def _today_first(
    db: Reader, where: LogFilter, bound: str, value: int | None, order: str, limit: int
) -> list[tuple[Any, ...]]:
    """--grep on PostgreSQL, newest first: today's logs, then the older ones only when today's
    did not fill the page (the order is by time, so today's matches come first).

    Today's day partition has no full trigram index (store/log_search_days.py): its rows since
    the newest hourly partial index are scanned, with the text match in its cheaper scan form,
    those before it read through that index (the WHERE holds the index's predicate as it is
    written); the ended days are read through their indexes. Where the parts meet changes
    which plan reads a row, never which rows match.
    """
    from lakelens.store.log_search_days import below, today_boundary

    now = time.time()
    today = now // _DAY * _DAY
    boundary = today_boundary(db, now)
    bounded = f" AND id {bound} :bound" if value is not None else ""
    # (from, to, extra condition, scanned): None is no bound.
    cuts: list[tuple[float | None, float | None, str, bool]] = [(today, None, "", True)]
    if boundary is not None and boundary > today:
        cuts = [(boundary, None, "", True), (today, boundary, f" AND {below(boundary)}", False)]
    cuts.append((None, today, "", False))
    rows: list[tuple[Any, ...]] = []
    for start, end, extra, scan in cuts:
        part = _within(where, start, end)
        if part is None:
            continue
        condition, params = part.sql(db.dialect, scan=scan)
        rows += db.rows(
            f"SELECT {COLUMNS} FROM logs WHERE {condition}{extra}{bounded} "
            f"ORDER BY {order} LIMIT :limit",
            {**params, "bound": value, "limit": limit - len(rows)},
        )
        if len(rows) >= limit:
            break
    return rows


def _within(where: LogFilter, start: float | None, end: float | None) -> LogFilter | None:
    """`where` narrowed to `start <= time < end`, or None when nothing is left of it."""
    since = (
        where.since if start is None or (where.since is not None and where.since > start) else start
    )
    until = where.until if end is None or (where.until is not None and where.until < end) else end
    if since is not None and until is not None and since >= until:
        return None
    return replace(where, since=since, until=until)


def search(
    conn: Reader | sa.Connection,
    where: LogFilter,
    *,
    limit: int = 100,
    up_to_id: int | None = None,
    run: Run | None = None,
) -> list[LogRecord]:
    """The newest `limit` matching records (with id <= `up_to_id` when given), oldest first;
    `run` is the row of `where.run_id` when the caller has it (see `within_run`)."""
    return _newest(conn, where, "<=", up_to_id, "time DESC, id DESC", limit, run)


def page(
    conn: Reader | sa.Connection, where: LogFilter, *, before_id: int | None, limit: int
) -> tuple[list[LogRecord], bool]:
    """Up to `limit` matching records with ids below `before_id`, oldest first, and whether
    more lie below. Pages follow the log id, not the time: late records are never skipped."""
    records = _newest(conn, where, "<", before_id, "id DESC", limit + 1)
    return records[-limit:] if len(records) > limit else records, len(records) > limit


def last_id(conn: Reader | sa.Connection) -> int:
    return int(borrow(conn).value("SELECT coalesce(max(id), 0) FROM logs"))


def follow(
    connect: Callable[[], Any],
    where: LogFilter,
    *,
    after_id: int,
    interval: float = 0.25,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[LogRecord]:
    """Yield matching records committed after `after_id`, in commit order, each exactly once.

    `connect` opens a connection per poll (a Reader, or a SQLAlchemy connection); it is closed
    after the poll. Ids are handed out before commit (PostgreSQL sequences; several writer
    processes), so a record can appear later with an id lower than one already shown. Ids
    skipped by a poll are kept as "holes" and looked up again until they appear or
    `_HOLE_SECONDS` pass.
    """
    position = after_id
    holes: dict[int, float] = {}
    condition, params = where.sql()
    while not stop():
        now = time.monotonic()
        conn = connect()
        try:
            db = borrow(conn)
            if holes:
                wanted = sorted(holes)
                present: list[int] = []
                for chunk in range(0, len(wanted), _CHUNK):  # bound parameters are limited
                    found_ids = wanted[chunk : chunk + _CHUNK]
                    present += db.column(
                        "SELECT id FROM logs WHERE id IN :ids ORDER BY id", {"ids": found_ids}
                    )
                for chunk in range(0, len(present), _CHUNK):
                    late = db.rows(
                        f"SELECT {COLUMNS} FROM logs WHERE id IN :present AND {condition} "
                        "ORDER BY id",
                        {**params, "present": present[chunk : chunk + _CHUNK]},
                    )
                    for row in late:
                        yield _record(row, where.run_id)
                for found in present:
                    holes.pop(found, None)
                for hole, since in list(holes.items()):
                    if now - since > _HOLE_SECONDS:
                        del holes[hole]
            while True:
                ids = db.column(
                    "SELECT id FROM logs WHERE id > :position ORDER BY id LIMIT :page",
                    {"position": position, "page": _PAGE},
                )
                if not ids:
                    break
                expected = position + 1
                for found in ids:
                    if found > expected and len(holes) < _MAX_HOLES:
                        holes.update(
                            dict.fromkeys(range(expected, min(found, expected + _MAX_HOLES)), now)
                        )
                    expected = found + 1
                rows = db.rows(
                    f"SELECT {COLUMNS} FROM logs WHERE id > :position AND id <= :last "
                    f"AND {condition} ORDER BY id",
                    {**params, "position": position, "last": ids[-1]},
                )
                for row in rows:
                    # A hole that committed between the two reads is shown now, not again
                    # when the holes are looked up (3 servers showed such records twice).
                    holes.pop(row[0], None)
                    yield _record(row, where.run_id)
                position = ids[-1]
                if len(ids) < _PAGE:
                    break
        finally:
            conn.close()
        time.sleep(interval)


# How far outside its recorded span a run's logs are looked for on PostgreSQL (`within_run`):
# logs written before the run's start event or after its end, clocks that disagree.
RUN_LOG_MARGIN_SECONDS = 86400.0
_DAY = 86400
_PAGE = 5_000
_GREP_WINDOW = 5_000  # newest rows scanned for --grep before the index is asked (SQLite)
_CHUNK = 500
_HOLE_SECONDS = 30.0
_MAX_HOLES = 100_000
