"""Log search: every filter runs in SQL; `follow()` tails new records without gaps or repeats."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from lakelens.errors import InvalidArgumentError
from lakelens.model import LEVELS, LogRecord, from_epoch
from lakelens.store import schema

__all__ = ["LogFilter", "follow", "parse_level", "search"]


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

    def where(self) -> list[sa.ColumnElement[bool]]:
        t = schema.logs
        clauses: list[sa.ColumnElement[bool]] = []
        if self.asset is not None:
            clauses.append(t.c.asset == self.asset)
        if self.job is not None:
            clauses.append(t.c.job == self.job)
        if self.run_id is not None:
            clauses.append(t.c.run_id == self.run_id)
        if self.min_level is not None:
            clauses.append(t.c.level >= self.min_level)
        if self.since is not None:
            clauses.append(t.c.time >= self.since)
        if self.until is not None:
            clauses.append(t.c.time < self.until)
        if self.grep:
            clauses.append(
                sa.or_(
                    t.c.message.icontains(self.grep, autoescape=True),
                    t.c.attributes.icontains(self.grep, autoescape=True),
                )
            )
        return clauses


def _record(row: sa.Row) -> LogRecord:
    return LogRecord(
        id=row.id,
        time=from_epoch(row.time),  # type: ignore[arg-type]
        level=row.level,
        message=row.message,
        logger=row.logger,
        run_id=row.run_id,
        asset=row.asset,
        job=row.job,
        trace_id=row.trace_id,
        span_id=row.span_id,
        attributes=json.loads(row.attributes) if row.attributes else {},
    )


def search(
    conn: sa.Connection, where: LogFilter, *, limit: int = 100, up_to_id: int | None = None
) -> list[LogRecord]:
    """The newest `limit` matching records (with id <= `up_to_id` when given), oldest first."""
    t = schema.logs
    clauses = where.where()
    if up_to_id is not None:
        clauses.append(t.c.id <= up_to_id)
    query = sa.select(t).where(*clauses).order_by(t.c.time.desc(), t.c.id.desc()).limit(limit)
    rows = conn.execute(query).all()
    return [_record(r) for r in reversed(rows)]


def last_id(conn: sa.Connection) -> int:
    return conn.execute(sa.select(sa.func.coalesce(sa.func.max(schema.logs.c.id), 0))).scalar_one()


def follow(
    connect: Callable[[], sa.Connection],
    where: LogFilter,
    *,
    after_id: int,
    interval: float = 0.25,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[LogRecord]:
    """Yield matching records committed after `after_id`, in commit order, each exactly once.

    Ids are handed out before commit (PostgreSQL sequences; several writer processes), so a
    record can appear later with an id lower than one already shown. Ids skipped by a poll
    are kept as "holes" and looked up again until they appear or `_HOLE_SECONDS` pass.
    """
    t = schema.logs
    position = after_id
    holes: dict[int, float] = {}
    clauses = where.where()
    while not stop():
        now = time.monotonic()
        with connect() as conn:
            if holes:
                wanted = sorted(holes)
                present = set(conn.execute(sa.select(t.c.id).where(t.c.id.in_(wanted))).scalars())
                if present:
                    late = conn.execute(
                        sa.select(t).where(t.c.id.in_(sorted(present)), *clauses).order_by(t.c.id)
                    ).all()
                    for row in late:
                        yield _record(row)
                    for found in present:
                        holes.pop(found, None)
                for hole, since in list(holes.items()):
                    if now - since > _HOLE_SECONDS:
                        del holes[hole]
            while True:
                ids = list(
                    conn.execute(
                        sa.select(t.c.id).where(t.c.id > position).order_by(t.c.id).limit(_PAGE)
                    ).scalars()
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
                rows = conn.execute(
                    sa.select(t)
                    .where(t.c.id > position, t.c.id <= ids[-1], *clauses)
                    .order_by(t.c.id)
                ).all()
                for row in rows:
                    yield _record(row)
                position = ids[-1]
                if len(ids) < _PAGE:
                    break
        time.sleep(interval)


_PAGE = 5_000
_HOLE_SECONDS = 30.0
_MAX_HOLES = 100_000
