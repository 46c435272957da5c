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

from lakelens.analysis._db import Reader, reading, since_until
from lakelens.analysis.incidents import IncidentStats, incident_stats
from lakelens.analysis.rollups import (
    WindowTotals,
    histogram_percentiles,
    whole_hours,
    window_totals,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

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
    # Read from the hourly duration histogram (windows over two days): within one bucket
    # (4.4 %) of the exact value.
    approximate: bool = False


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
    incidents: IncidentStats = field(default_factory=IncidentStats)

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
    store: Reader | Store | sa.Connection | sa.Engine,
    *,
    since: float,
    until: float | None = None,
) -> Summary:
    """Summarize the window [since, until) (until None: up to now); ages are measured at `until` or now."""
    now = time.time() if until is None else until
    with reading(store) as db:
        hours = whole_hours(since, now)
        active: int | None = None
        if hours is None:  # a short window: straight from the rows, percentiles exact
            rows, size = _volume(db, since, until)
            latency = _latency(db, since, until)
            checks = _checks(db, since, until)
            completeness = _completeness(db, since, until)
        else:  # a long one: whole hours from the rollups, the two partial hours from the rows
            totals = window_totals(db, since, until, hours)
            rows = sum(t.rows for t in totals.assets.values())
            size = sum(t.bytes for t in totals.assets.values())
            count, values = histogram_percentiles(totals.histogram, QUANTILES)
            p50, p95, p99 = values
            latency = Latency(count, p50, p95, p99, approximate=True)
            checks = _checks_of(totals)
            completeness = _completeness_of(db, totals)
            active = sum(1 for t in totals.assets.values() if t.materializations > 0)
        return Summary(
            since=since,
            until=until,
            now=now,
            runs=_runs(db, since, until),
            rows=rows,
            bytes=size,
            latency=latency,
            assets=_assets(db, since, until, now, active)
            if until is not None
            else _current_assets(db, since, now, active),
            checks=checks,
            failures=_failures(db, since, until),
            completeness=completeness,
            alerts=_active_alerts(db),
            incidents=incident_stats(db, since=since, until=until),
        )


def _checks_of(totals: WindowTotals) -> CheckStats:
    total = sum(t.checks for t in totals.assets.values())
    failed = sum(t.checks_failed for t in totals.assets.values())
    return CheckStats(total, failed, _percent(total - failed, total))


def _completeness_of(db: Reader, totals: WindowTotals) -> Completeness:
    """Completeness (see `_completeness`) from rollup totals."""
    expected = dict(db.rows("SELECT name, expected_rows FROM assets WHERE expected_rows > 0"))
    rows = [
        (name, t.success_rows, t.successes, int(expected[name]))
        for name, t in totals.assets.items()
        if name in expected and t.successes > 0
    ]
    return _completeness_from(rows)


def _runs(db: Reader, since: float, until: float | None) -> RunStats:
    period, params = since_until("start_time", since, until)
    counts: dict[str, int] = dict(
        db.rows(f"SELECT status, count(*) FROM runs WHERE {period} GROUP BY status", params)
    )
    total = sum(counts.values())
    success, failure = counts.get("success", 0), counts.get("failure", 0)
    return RunStats(total, success, failure, _percent(success, total), _percent(failure, total))


def _volume(db: Reader, since: float, until: float | None) -> tuple[int, int]:
    """Rows and bytes written by the materializations in the window."""
    period, params = since_until("start_time", since, until)
    rows, size = db.rows(
        "SELECT coalesce(sum(rows), 0), coalesce(sum(bytes), 0) FROM materializations "
        f"WHERE {period}",
        params,
    )[0]
    return int(rows), int(size)


def _latency(db: Reader, since: float, until: float | None) -> Latency:
    period, params = since_until("start_time", since, until)
    count, values = percentiles(
        db, "materializations", "duration", f"{period} AND duration IS NOT NULL", params, QUANTILES
    )
    p50, p95, p99 = values
    return Latency(count, p50, p95, p99)


def percentiles(
    db: Reader,
    table: str,
    column: str,
    where: str,
    params: dict[str, Any],
    quantiles: Sequence[float],
) -> tuple[int, list[float | None]]:
    """(count, [percentile per quantile]) of `column` of `table` over the rows matching `where`.

    `table`, `column` and `where` are SQL text written by lakelens (never user input); values
    go in `params`. The definition is numpy's default ('linear', Hyndman & Fan type 7): for n
    sorted values x[0..n-1] and quantile q, h = (n-1)·q and the result is
    x[⌊h⌋] + (h-⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋]). The database sorts and numbers the values; only
    the few rows around each h come back, so the cost does not grow with what is sent to Python.
    """
    # Rows with h-1 <= i <= h+1 include x[⌊h⌋] and x[⌊h⌋+1] for every quantile.
    near = " OR ".join(
        f"i BETWEEN (n - 1) * {_number(q)} - 1 AND (n - 1) * {_number(q)} + 1" for q in quantiles
    )
    rows = db.rows(
        f"SELECT i, n, value FROM (SELECT {column} AS value, "
        f"row_number() OVER (ORDER BY {column}) - 1 AS i, count(*) OVER () AS n "
        f"FROM {table} WHERE {where or '1 = 1'}) AS ranked WHERE {near}",
        params,
    )
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


def _number(q: float) -> str:
    """A quantile as an SQL literal (a bound parameter would be typed as an integer by PostgreSQL)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q!r} is outside [0, 1]")
    return repr(float(q))


def _assets(
    db: Reader, since: float, until: float | None, now: float, active: int | None = None
) -> AssetStats:
    """Asset health as of `until` (a past window): computed from the materializations."""
    period, params = since_until("start_time", since, until)
    total = db.value("SELECT count(*) FROM assets")
    if active is None:
        active = db.value(
            f"SELECT count(DISTINCT asset) FROM materializations WHERE {period}", params
        )
    upto = "" if until is None else " AND start_time < :until"
    bounds = {} if until is None else {"until": until}

    # Healthy or failing: the outcome of each asset's last finished materialization.
    outcomes: dict[str, int] = dict(
        db.rows(
            "SELECT status, count(*) FROM (SELECT status, row_number() OVER "
            "(PARTITION BY asset ORDER BY start_time DESC, id DESC) AS recency "
            f"FROM materializations WHERE status IN ('success', 'failure'){upto}) AS latest "
            "WHERE recency = 1 GROUP BY status",
            bounds,
        )
    )
    last_success = db.rows(
        "SELECT asset, max(end_time) FROM materializations "
        f"WHERE status = 'success' AND end_time <= :now{upto} GROUP BY asset",
        {"now": now, **bounds},
    )
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


def _current_assets(db: Reader, since: float, now: float, active: int | None = None) -> AssetStats:
    """Asset health as of now, from the state the writer keeps on each asset (no table scans)."""
    rows = db.rows("SELECT name, last_status, last_success_time, freshness_seconds FROM assets")
    if active is None:
        active = db.value(
            "SELECT count(DISTINCT asset) FROM materializations WHERE start_time >= :since",
            {"since": since},
        )
    # Driven from the small assets table, one indexed probe each (ix_check_run): a join
    # let an un-analysed SQLite scan a million check results first (1.5 s vs 1 ms). A scalar
    # subquery, not EXISTS: PostgreSQL turns EXISTS into a hash semi-join over every failed
    # check (127 ms on 1M check results; 21 ms probing, bench/queries.py --database-url).
    checks_failed = set(
        db.column(
            "SELECT a.name FROM assets AS a WHERE (SELECT 1 FROM check_results AS c "
            "WHERE c.run_id = a.last_run_id AND c.asset = a.name AND c.passed = FALSE "
            "LIMIT 1) = 1"
        )
    )
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


def _active_alerts(db: Reader) -> ActiveAlerts:
    rows = db.rows(
        "SELECT severity, summary FROM alerts WHERE status = 'firing' AND parent IS NULL"
    )
    rank = {"critical": 0, "error": 1, "warning": 2, "info": 3}
    ordered = sorted(
        ((severity, text) for severity, text in rows),
        key=lambda item: (rank.get(item[0], 9), item[1]),
    )
    return ActiveAlerts(len(ordered), tuple(ordered[:5]))


def _failures(db: Reader, since: float, until: float | None) -> Failures:
    period, params = since_until("start_time", since, until)
    failed = f"status = 'failure' AND {period}"
    by_type = db.rows(
        "SELECT coalesce(error_type, 'unknown'), count(*) FROM materializations "
        f"WHERE {failed} GROUP BY error_type",
        params,
    )
    by_asset = db.rows(
        f"SELECT asset, count(*) FROM materializations WHERE {failed} GROUP BY asset", params
    )

    def ordered(pairs: Sequence[Any]) -> dict[str, int]:
        return dict(sorted(((str(k), int(v)) for k, v in pairs), key=lambda kv: (-kv[1], kv[0])))

    return Failures(by_error_type=ordered(by_type), by_asset=ordered(by_asset))


def _completeness(db: Reader, since: float, until: float | None) -> Completeness:
    """Rows of successful materializations vs expected_rows × their number, per asset."""
    period, params = since_until("m.start_time", since, until)
    rows = db.rows(
        "SELECT m.asset, coalesce(sum(m.rows), 0), count(*), a.expected_rows "
        "FROM materializations AS m JOIN assets AS a ON a.name = m.asset "
        f"WHERE a.expected_rows > 0 AND m.status = 'success' AND {period} "
        "GROUP BY m.asset, a.expected_rows",
        params,
    )
    return _completeness_from(rows)


def _completeness_from(rows: Sequence[Sequence[Any]]) -> Completeness:
    """From (asset, rows of its successes, number of successes, expected_rows per run)."""
    if not rows:
        return Completeness(None, {})
    by_asset = {
        name: 100.0 * int(got) / (int(expected) * int(n)) for name, got, n, expected in rows
    }
    total_got = sum(int(got) for _, got, _, _ in rows)
    total_expected = sum(int(expected) * int(n) for _, _, n, expected in rows)
    return Completeness(100.0 * total_got / total_expected, dict(sorted(by_asset.items())))


def _checks(db: Reader, since: float, until: float | None) -> CheckStats:
    period, params = since_until("time", since, until)
    total, failed = db.rows(
        "SELECT count(*), coalesce(sum(CASE WHEN passed THEN 0 ELSE 1 END), 0) "
        f"FROM check_results WHERE {period}",
        params,
    )[0]
    total, failed = int(total), int(failed)
    return CheckStats(total, failed, _percent(total - failed, total))
