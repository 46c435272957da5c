"""Runs: the listing behind `lakelens runs` and /runs, lookup by id or unique prefix, and
the latest run of an asset."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lakelens.analysis._db import Reader, borrow
from lakelens.errors import InvalidArgumentError, LakelensError
from lakelens.model import Run, RunStatus, from_epoch

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "AmbiguousRunError",
    "RunFilter",
    "RunListing",
    "RunPage",
    "UnknownRunError",
    "last_records",
    "latest_run_of_asset",
    "list_runs",
    "log_only",
    "resolve_run_id",
    "short_run_id",
]


class UnknownRunError(LakelensError):
    """No run, or more than one, matches the given id or prefix."""


class AmbiguousRunError(UnknownRunError):
    """More than one run id starts with the given prefix."""


def resolve_run_id(conn: Reader | sa.Connection, text: str) -> str:
    """The run id `text` names, exactly or as a unique prefix."""
    db = borrow(conn)
    if db.row("SELECT run_id FROM runs WHERE run_id = :text", {"text": text}):
        return text
    prefix = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    matches = db.column(
        "SELECT run_id FROM runs WHERE run_id LIKE :prefix ESCAPE '/' ORDER BY run_id LIMIT 6",
        {"prefix": prefix + "%"},
    )
    matches = [m for m in matches if m.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UnknownRunError(
            f"No run id starts with {text!r}; `lakelens runs` lists recent runs (`--job J` narrows them)."
        )
    shown = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
    raise AmbiguousRunError(f"Run id prefix {text!r} is ambiguous ({shown}); type more characters.")


def short_run_id(conn: Reader | sa.Connection, run_id: str, *, minimum: int = 8) -> str:
    """The shortest prefix of `run_id` (at least `minimum` characters) that `resolve_run_id`
    takes back to it, for hints such as `lakelens trace PREFIX`; the full id when none is.

    dlt load ids are epoch seconds: loads started within ~100 s share their first 8 characters.
    """
    if len(run_id) <= minimum:
        return run_id
    head = run_id[:minimum]
    escaped = head.replace("/", "//").replace("%", "/%").replace("_", "/_")
    others = [
        other
        for other in borrow(conn).column(
            "SELECT run_id FROM runs WHERE run_id LIKE :prefix ESCAPE '/' AND run_id <> :run_id",
            {"prefix": escaped + "%", "run_id": run_id},
        )
        if other.startswith(head)
    ]
    length = minimum
    for other in others:
        common = next(
            (i for i, (a, b) in enumerate(zip(run_id, other, strict=False)) if a != b),
            min(len(run_id), len(other)),
        )
        length = max(length, common + 1)
    prefix = run_id[:length]
    if length >= len(run_id) or prefix in others:
        return run_id
    return prefix


def latest_run_of_asset(conn: Reader | sa.Connection, asset: str) -> str | None:
    """The run id of the asset's most recent materialization."""
    return borrow(conn).value(
        "SELECT run_id FROM materializations WHERE asset = :asset ORDER BY start_time DESC LIMIT 1",
        {"asset": asset},
    )


_RUN_COLUMNS = (
    "run_id, job, status, start_time, end_time, partition, trigger, tags, correlation_id, "
    "trace_id, parent_run_id, error_type, error_message"
)


@dataclass
class RunFilter:
    """Which runs to list; each field narrows it. `asset`: runs that materialized it."""

    job: str | None = None
    asset: str | None = None
    status: str | None = None
    partition: str | None = None
    since: float | None = None

    def sql(self) -> tuple[str, dict[str, Any]]:
        """The filter as an SQL condition on `runs` (always true when nothing is set)."""
        if self.status is not None and self.status not in RunStatus.ALL:
            raise InvalidArgumentError(
                f"Invalid status {self.status!r}: use one of {', '.join(sorted(RunStatus.ALL))}."
            )
        clauses: list[str] = []
        params: dict[str, Any] = {}
        for column, value in (
            ("job", self.job),
            ("status", self.status),
            ("partition", self.partition),
        ):
            if value is not None:
                clauses.append(f"{column} = :{column}")
                params[column] = value
        if self.asset is not None:
            clauses.append("run_id IN (SELECT run_id FROM materializations WHERE asset = :asset)")
            params["asset"] = self.asset
        if self.since is not None:
            clauses.append("start_time >= :since")
            params["since"] = self.since
        return (" AND ".join(clauses) or "1 = 1"), params


@dataclass
class RunListing:
    """A run with what a list shows beside it: its check outcomes and assets materialized."""

    run: Run
    checks_passed: int = 0
    checks_failed: int = 0
    assets: int = 0
    # A run known only from OpenTelemetry log records: a log line never says a run ended, so
    # "started" means "no end reported"; this is when its latest record arrived.
    last_record: datetime | None = None

    @property
    def end_unknowable(self) -> bool:
        return self.last_record is not None

    def to_dict(self) -> dict[str, Any]:
        from lakelens.analysis.shapes import jsonable, run_dict

        found = {
            **run_dict(self.run),
            "checks_passed": self.checks_passed,
            "checks_failed": self.checks_failed,
            "assets": self.assets,
        }
        if self.last_record is not None:
            found["end_reported"] = False
            found["last_record_time"] = jsonable(self.last_record)
        return found


@dataclass
class RunPage:
    """One page of runs, newest first; `next_cursor` fetches the page after it (None: last)."""

    runs: list[RunListing] = field(default_factory=list)
    next_cursor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"runs": [r.to_dict() for r in self.runs], "next_cursor": self.next_cursor}


def _cursor(start_time: float | None, run_id: str) -> str:
    return f"{'-' if start_time is None else repr(float(start_time))},{run_id}"


def _after(cursor: str) -> tuple[str, dict[str, Any]]:
    """The condition for runs after `cursor` in the order start time (unknown last), run id."""
    head, sep, run_id = cursor.partition(",")
    if not sep:
        raise InvalidArgumentError(f"Invalid cursor {cursor!r}: use the next_cursor of a page.")
    if head == "-":
        return "(start_time IS NULL AND run_id < :c_run)", {"c_run": run_id}
    try:
        start = float(head)
    except ValueError:
        raise InvalidArgumentError(
            f"Invalid cursor {cursor!r}: use the next_cursor of a page."
        ) from None
    return (
        "(start_time < :c_start OR (start_time = :c_start AND run_id < :c_run) "
        "OR start_time IS NULL)",
        {"c_start": start, "c_run": run_id},
    )


def list_runs(
    conn: Reader | sa.Connection,
    where: RunFilter | None = None,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> RunPage:
    """Up to `limit` matching runs, newest start first (runs not yet started last), each with
    its passed and failed check counts; page on with `cursor=page.next_cursor`."""
    db = borrow(conn)
    condition, params = (where or RunFilter()).sql()
    if cursor:
        extra, more = _after(cursor)
        condition += f" AND {extra}"
        params.update(more)
    # SQLite sorts NULL lowest, PostgreSQL highest: say where unknown start times go.
    rows = db.rows(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE {condition} "
        "ORDER BY start_time DESC NULLS LAST, run_id DESC LIMIT :limit",
        {**params, "limit": limit + 1},
    )
    more_after = len(rows) > limit
    rows = rows[:limit]
    ids = [r[0] for r in rows]
    checks: dict[str, tuple[int, int]] = {}
    assets: dict[str, int] = {}
    if ids:
        for run_id, passed, failed in db.rows(
            "SELECT run_id, sum(CASE WHEN passed THEN 1 ELSE 0 END), "
            "sum(CASE WHEN passed THEN 0 ELSE 1 END) FROM check_results "
            "WHERE run_id IN :ids GROUP BY run_id",
            {"ids": ids},
        ):
            checks[run_id] = (int(passed or 0), int(failed or 0))
        assets = dict(
            db.rows(
                "SELECT run_id, count(DISTINCT asset) FROM materializations "
                "WHERE run_id IN :ids GROUP BY run_id",
                {"ids": ids},
            )
        )
    listed = []
    for row in rows:
        run = _run(row)
        passed, failed = checks.get(run.run_id, (0, 0))
        listed.append(RunListing(run, passed, failed, int(assets.get(run.run_id, 0))))
    silent = [r for r in listed if log_only(r.run)]
    if silent:
        latest = last_records(db, [r.run.run_id for r in silent])
        for entry in silent:
            entry.last_record = latest.get(entry.run.run_id)
    last = rows[-1] if rows else None
    return RunPage(listed, _cursor(last[3], last[0]) if more_after and last is not None else None)


def log_only(run: Run) -> bool:
    """Whether all lakelens knows of `run` is OpenTelemetry log records (no span, no report):
    such a run can never be seen to end."""
    from lakelens.ingest import OTLP_RUN_TAGS

    return (
        run.status == RunStatus.STARTED
        and run.end_time is None
        and run.trace_id is None
        and run.tags == OTLP_RUN_TAGS
    )


def last_records(conn: Reader | sa.Connection, run_ids: list[str]) -> dict[str, datetime]:
    """When each run's latest log record was written."""
    found: dict[str, datetime] = {}
    for run_id, latest in borrow(conn).rows(
        "SELECT run_id, max(time) FROM logs WHERE run_id IN :ids GROUP BY run_id",
        {"ids": run_ids},
    ):
        moment = from_epoch(latest)
        if moment is not None:
            found[run_id] = moment
    return found


def _run(row: tuple[Any, ...]) -> Run:
    (run_id, job, status, start, end, partition, trigger, tags, correlation_id, trace_id,
     parent_run_id, error_type, error_message) = row  # fmt: skip
    try:
        parsed_tags = json.loads(tags) if tags else {}
    except ValueError:
        parsed_tags = {}
    return Run(
        run_id=run_id,
        job=job,
        status=status,
        start_time=from_epoch(start),
        end_time=from_epoch(end),
        partition=partition,
        trigger=trigger,
        tags=parsed_tags if isinstance(parsed_tags, dict) else {},
        correlation_id=correlation_id,
        trace_id=trace_id,
        parent_run_id=parent_run_id,
        error_type=error_type,
        error_message=error_message,
    )
