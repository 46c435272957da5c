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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lakelens.analysis._db import connection, window
from lakelens.store import schema

if TYPE_CHECKING:
    from lakelens.store import Store

__all__ = [
    "QUANTILES",
    "STATUS_RULE",
    "AssetAge",
    "AssetStats",
    "CheckStats",
    "Completeness",
    "Failures",
    "Latency",
    "RunStats",
    "Summary",
    "percentiles",
    "status_of",
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
    """Assets known; active = materialized in the window; healthy/warning/failing = their state.

    failing: the last materialization failed. warning: it succeeded, but the asset is older
    than its freshness SLA or a check failed in that run. healthy: everything else that has
    materialized at least once.
    """

    total: int
    active: int
    healthy: int
    failing: int
    freshest: AssetAge | None
    stalest: AssetAge | None
    warning: int = 0
    failing_assets: tuple[str, ...] = ()
    warning_assets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Failures:
    """Failed materializations of the window, by error type and by asset (stage)."""

    by_error_type: dict[str, int]
    by_asset: dict[str, int]


@dataclass(frozen=True)
class ActiveAlerts:
    """Alerts firing now (acknowledged and silenced ones excluded), most severe first."""

    firing: int
    top: tuple[tuple[str, str], ...]  # (severity, summary)


@dataclass(frozen=True)
class Completeness:
    """Rows processed vs the rows expected (assets that declare expected_rows), in percent."""

    percent: float | None
    by_asset: dict[str, float]


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
    failures: Failures = Failures({}, {})
    completeness: Completeness = Completeness(None, {})
    alerts: ActiveAlerts = field(default_factory=lambda: ActiveAlerts(0, ()))

    @property
    def status(self) -> str:
        """HEALTHY, DEGRADED or FAILING; the rule is in `status_reasons`."""
        return status_of(self)[0]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"], data["status_reasons"] = status_of(self)
        return data


# The rule behind the overall status line (also written in `lakelens metrics summary --help`).
STATUS_RULE = (
    "FAILING when any asset's latest materialization failed; DEGRADED when none failed but an "
    "asset is stale beyond its freshness SLA or failed a check in its latest run, or the run "
    "success rate or the check pass rate of the period is below 95%; HEALTHY otherwise."
)
DEGRADED_BELOW_PERCENT = 95.0


def status_of(result: Summary) -> tuple[str, list[str]]:
    """The overall status and the reasons for it (see STATUS_RULE)."""
    reasons: list[str] = []
    assets = result.assets
    if assets.failing:
        names = ", ".join(assets.failing_assets[:5])
        reasons.append(
            f"{assets.failing} asset(s) failing: {names}"
            if names
            else f"{assets.failing} asset(s) failing"
        )
        return "FAILING", reasons
    if assets.warning:
        reasons.append(
            f"{assets.warning} asset(s) stale or failing checks: {', '.join(assets.warning_assets[:5])}"
        )
    rate = result.runs.success_rate
    if rate is not None and rate < DEGRADED_BELOW_PERCENT:
        reasons.append(f"run success rate {rate:.2f}% < {DEGRADED_BELOW_PERCENT:g}%")
    passed = result.checks.pass_rate
    if passed is not None and passed < DEGRADED_BELOW_PERCENT:
        reasons.append(f"check pass rate {passed:.2f}% < {DEGRADED_BELOW_PERCENT:g}%")
    return ("DEGRADED" if reasons else "HEALTHY"), reasons


def _percent(part: int, whole: int) -> float | None:
    return None if whole == 0 else 100.0 * part / whole


def summary(
    store: Store | sa.Connection | sa.Engine, *, since: float, until: float | None = None
) -> Summary:
    """Summarize the window [since, until) (until None: up to now); ages are measured at `until` or now."""
    now = time.time() if until is None else until
    with connection(store) as conn:
        rows, size = _volume(conn, since, until)
        return Summary(
            since=since,
            until=until,
            now=now,
            runs=_runs(conn, since, until),
            rows=rows,
            bytes=size,
            latency=_latency(conn, since, until),
            assets=_assets(conn, since, until, now)
            if until is not None
            else _current_assets(conn, since, now),
            checks=_checks(conn, since, until),
            failures=_failures(conn, since, until),
            completeness=_completeness(conn, since, until),
            alerts=_active_alerts(conn),
        )


def _runs(conn: sa.Connection, since: float, until: float | None) -> RunStats:
    t = schema.runs
    counts: dict[str, int] = dict(
        conn.execute(
            sa.select(t.c.status, sa.func.count())
            .where(*window(t.c.start_time, since, until))
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
        ).where(*window(t.c.start_time, since, until))
    ).one()
    return int(rows), int(size)


def _latency(conn: sa.Connection, since: float, until: float | None) -> Latency:
    t = schema.materializations
    count, values = percentiles(
        conn,
        t.c.duration,
        [*window(t.c.start_time, since, until), t.c.duration.is_not(None)],
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
            *window(m.c.start_time, since, until)
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


def _current_assets(conn: sa.Connection, since: float, now: float) -> AssetStats:
    """Asset health as of now, from the state the writer keeps on each asset (no table scans)."""
    a, m, c = schema.assets, schema.materializations, schema.check_results
    rows = conn.execute(
        sa.select(a.c.name, a.c.last_status, a.c.last_success_time, a.c.freshness_seconds)
    ).all()
    active = conn.execute(
        sa.select(sa.func.count(sa.distinct(m.c.asset))).where(m.c.start_time >= since)
    ).scalar_one()
    # Driven from the small assets table, one indexed probe each (ix_check_run): a join
    # let an un-analysed SQLite scan a million check results first (1.5 s vs 1 ms).
    failed_check = (
        sa.select(c.c.id)
        .where(c.c.run_id == a.c.last_run_id, c.c.asset == a.c.name, c.c.passed.is_(False))
        .exists()
    )
    checks_failed = set(conn.execute(sa.select(a.c.name).where(failed_check)).scalars())
    failing: list[str] = []
    warning: list[str] = []
    healthy: list[str] = []
    ages: list[AssetAge] = []
    for name, status, last_success, sla in rows:
        if last_success is not None and last_success <= now:
            ages.append(AssetAge(name, float(last_success), now - float(last_success)))
        if status == "failure":
            failing.append(name)
        elif status == "success":
            stale = sla is not None and last_success is not None and now - last_success > sla
            (warning if stale or name in checks_failed else healthy).append(name)
    ages.sort(key=lambda age: (age.age_seconds, age.name))
    return AssetStats(
        total=len(rows),
        active=int(active),
        healthy=len(healthy),
        failing=len(failing),
        freshest=ages[0] if ages else None,
        stalest=ages[-1] if ages else None,
        warning=len(warning),
        failing_assets=tuple(sorted(failing)),
        warning_assets=tuple(sorted(warning)),
    )


def _active_alerts(conn: sa.Connection) -> ActiveAlerts:
    a = schema.alerts
    rows = conn.execute(
        sa.select(a.c.severity, a.c.summary).where(a.c.status == "firing", a.c.parent.is_(None))
    ).all()
    rank = {"critical": 0, "error": 1, "warning": 2, "info": 3}
    ordered = sorted(
        ((r.severity, r.summary) for r in rows), key=lambda item: (rank.get(item[0], 9), item[1])
    )
    return ActiveAlerts(len(ordered), tuple(ordered[:5]))


def _failures(conn: sa.Connection, since: float, until: float | None) -> Failures:
    m = schema.materializations
    failed = [m.c.status == "failure", *window(m.c.start_time, since, until)]
    by_type = conn.execute(
        sa.select(sa.func.coalesce(m.c.error_type, "unknown"), sa.func.count())
        .where(*failed)
        .group_by(m.c.error_type)
    ).all()
    by_asset = conn.execute(
        sa.select(m.c.asset, sa.func.count()).where(*failed).group_by(m.c.asset)
    ).all()

    def ordered(pairs: Sequence[Any]) -> dict[str, int]:
        return dict(sorted(((str(k), int(v)) for k, v in pairs), key=lambda kv: (-kv[1], kv[0])))

    return Failures(by_error_type=ordered(by_type), by_asset=ordered(by_asset))


def _completeness(conn: sa.Connection, since: float, until: float | None) -> Completeness:
    """Rows of successful materializations vs expected_rows × their number, per asset."""
    m, a = schema.materializations, schema.assets
    rows = conn.execute(
        sa.select(
            m.c.asset,
            sa.func.coalesce(sa.func.sum(m.c.rows), 0),
            sa.func.count(),
            a.c.expected_rows,
        )
        .join(a, a.c.name == m.c.asset)
        .where(
            a.c.expected_rows > 0, m.c.status == "success", *window(m.c.start_time, since, until)
        )
        .group_by(m.c.asset, a.c.expected_rows)
    ).all()
    if not rows:
        return Completeness(None, {})
    by_asset = {
        name: 100.0 * int(got) / (int(expected) * int(n)) for name, got, n, expected in rows
    }
    total_got = sum(int(got) for _, got, _, _ in rows)
    total_expected = sum(int(expected) * int(n) for _, _, n, expected in rows)
    return Completeness(100.0 * total_got / total_expected, dict(sorted(by_asset.items())))


def _checks(conn: sa.Connection, since: float, until: float | None) -> CheckStats:
    c = schema.check_results
    total, failed = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((c.c.passed, 0), else_=1)), 0),
        ).where(*window(c.c.time, since, until))
    ).one()
    total, failed = int(total), int(failed)
    return CheckStats(total, failed, _percent(total - failed, total))
