"""The platform summary of a time window: runs, volume, latency, assets, checks and freshness.

Pure: it reads the store and returns a `Summary`; the CLI and the server only format it.
A window is half-open, `since <= t < until`, on each event's start time (runs and
materializations) or time (check results). Health and freshness look further back: each
asset's latest outcome before `until`, however old, since an asset that failed last week and
never ran again is still failing. Times are epoch seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lakelens.store import schema

if TYPE_CHECKING:
    from lakelens.store import Store

__all__ = [
    "QUANTILES",
    "AssetAge",
    "AssetStats",
    "CheckStats",
    "Latency",
    "RunStats",
    "Summary",
    "percentiles",
    "summary",
]

QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class RunStats:
    """Runs started in the window; rates are percentages, None when there were no runs."""

    total: int
    success: int
    failure: int
    success_rate: float | None
    failure_rate: float | None


@dataclass(frozen=True)
class Latency:
    """Percentiles (seconds) of the durations of the window's finished materializations."""

    count: int
    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True)
class AssetAge:
    """When an asset last materialized successfully, and how long ago that was."""

    name: str
    last_success: float
    age_seconds: float


@dataclass(frozen=True)
class AssetStats:
    """Assets known; active = materialized in the window; healthy/failing = their last outcome."""

    total: int
    active: int
    healthy: int
    failing: int
    freshest: AssetAge | None
    stalest: AssetAge | None


@dataclass(frozen=True)
class CheckStats:
    """Check results in the window; pass_rate is a percentage, None when no check ran."""

    total: int
    failed: int
    pass_rate: float | None


@dataclass(frozen=True)
class Summary:
    """Everything `lakelens metrics summary` shows, as plain data."""

    since: float
    until: float | None
    now: float
    runs: RunStats
    rows: int
    bytes: int
    latency: Latency
    assets: AssetStats
    checks: CheckStats

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def _connection(source: Store | sa.Connection | sa.Engine) -> Iterator[sa.Connection]:
    if isinstance(source, sa.Connection):
        yield source
    else:
        with source.connect() as conn:
            yield conn


def _window(column: Any, since: float, until: float | None) -> list[Any]:
    conditions = [column >= since]
    if until is not None:
        conditions.append(column < until)
    return conditions


def _percent(part: int, whole: int) -> float | None:
    return None if whole == 0 else 100.0 * part / whole


def summary(
    store: Store | sa.Connection | sa.Engine, *, since: float, until: float | None = None
) -> Summary:
    """Summarize the window [since, until) (until None: up to now); ages are measured at `until` or now."""
    now = time.time() if until is None else until
    with _connection(store) as conn:
        rows, size = _volume(conn, since, until)
        return Summary(
            since=since,
            until=until,
            now=now,
            runs=_runs(conn, since, until),
            rows=rows,
            bytes=size,
            latency=_latency(conn, since, until),
            assets=_assets(conn, since, until, now),
            checks=_checks(conn, since, until),
        )


def _runs(conn: sa.Connection, since: float, until: float | None) -> RunStats:
    t = schema.runs
    counts: dict[str, int] = dict(
        conn.execute(
            sa.select(t.c.status, sa.func.count())
            .where(*_window(t.c.start_time, since, until))
            .group_by(t.c.status)
        ).all()
    )
    total = sum(counts.values())
    success, failure = counts.get("success", 0), counts.get("failure", 0)
    return RunStats(total, success, failure, _percent(success, total), _percent(failure, total))


def _volume(conn: sa.Connection, since: float, until: float | None) -> tuple[int, int]:
    """Rows and bytes written by the materializations in the window."""
    t = schema.materializations
    rows, size = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(t.c.rows), 0), sa.func.coalesce(sa.func.sum(t.c.bytes), 0)
        ).where(*_window(t.c.start_time, since, until))
    ).one()
    return int(rows), int(size)


def _latency(conn: sa.Connection, since: float, until: float | None) -> Latency:
    t = schema.materializations
    count, values = percentiles(
        conn,
        t.c.duration,
        [*_window(t.c.start_time, since, until), t.c.duration.is_not(None)],
        QUANTILES,
    )
    return Latency(count, *values)


def percentiles(
    conn: sa.Connection,
    column: sa.ColumnElement[Any],
    where: Sequence[sa.ColumnElement[bool]],
    quantiles: Sequence[float],
) -> tuple[int, list[float | None]]:
    """(count, [percentile per quantile]) of `column` over the rows matching `where`.

    The definition is numpy's default ('linear', Hyndman & Fan type 7): for n sorted values
    x[0..n-1] and quantile q, h = (n-1)·q and the result is x[⌊h⌋] + (h-⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋]).
    The database sorts and numbers the values; only the few rows around each h come back,
    so the cost does not grow with what is sent to Python.
    """
    ranked = (
        sa.select(
            column.label("value"),
            (sa.func.row_number().over(order_by=column) - 1).label("i"),
            sa.func.count().over().label("n"),
        )
        .where(*where)
        .subquery()
    )
    # Rows with h-1 <= i <= h+1 include x[⌊h⌋] and x[⌊h⌋+1] for every quantile.
    near = [
        ranked.c.i.between((ranked.c.n - 1) * _number(q) - 1, (ranked.c.n - 1) * _number(q) + 1)
        for q in quantiles
    ]
    rows = conn.execute(sa.select(ranked.c.i, ranked.c.n, ranked.c.value).where(sa.or_(*near)))
    values: dict[int, float] = {}
    n = 0
    for i, count, value in rows:
        values[int(i)], n = float(value), int(count)
    if n == 0:
        return 0, [None for _ in quantiles]
    result: list[float | None] = []
    for q in quantiles:
        h = (n - 1) * q
        low = math.floor(h)
        below = values[low]
        above = values.get(low + 1, below)
        result.append(below + (h - low) * (above - below))
    return n, result


def _number(q: float) -> Any:
    """A quantile as an SQL literal (a bound parameter would be typed as an integer by PostgreSQL)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q!r} is outside [0, 1]")
    return sa.literal_column(repr(float(q)))


def _assets(conn: sa.Connection, since: float, until: float | None, now: float) -> AssetStats:
    m = schema.materializations
    total = conn.execute(sa.select(sa.func.count()).select_from(schema.assets)).scalar_one()
    active = conn.execute(
        sa.select(sa.func.count(sa.distinct(m.c.asset))).where(
            *_window(m.c.start_time, since, until)
        )
    ).scalar_one()
    upto = [] if until is None else [m.c.start_time < until]

    # Healthy or failing: the outcome of each asset's last finished materialization.
    latest = (
        sa.select(
            m.c.status,
            sa.func.row_number()
            .over(partition_by=m.c.asset, order_by=(m.c.start_time.desc(), m.c.id.desc()))
            .label("recency"),
        )
        .where(m.c.status.in_(("success", "failure")), *upto)
        .subquery()
    )
    outcomes: dict[str, int] = dict(
        conn.execute(
            sa.select(latest.c.status, sa.func.count())
            .where(latest.c.recency == 1)
            .group_by(latest.c.status)
        ).all()
    )

    last_success = conn.execute(
        sa.select(m.c.asset, sa.func.max(m.c.end_time))
        .where(m.c.status == "success", m.c.end_time <= now, *upto)
        .group_by(m.c.asset)
    ).all()
    ages = sorted(
        (AssetAge(name, float(end), now - float(end)) for name, end in last_success),
        key=lambda age: (age.age_seconds, age.name),
    )
    return AssetStats(
        total=int(total),
        active=int(active),
        healthy=int(outcomes.get("success", 0)),
        failing=int(outcomes.get("failure", 0)),
        freshest=ages[0] if ages else None,
        stalest=ages[-1] if ages else None,
    )


def _checks(conn: sa.Connection, since: float, until: float | None) -> CheckStats:
    c = schema.check_results
    total, failed = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((c.c.passed, 0), else_=1)), 0),
        ).where(*_window(c.c.time, since, until))
    ).one()
    total, failed = int(total), int(failed)
    return CheckStats(total, failed, _percent(total - failed, total))
