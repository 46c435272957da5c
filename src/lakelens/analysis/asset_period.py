"""Many assets over one period at once: what the overview's asset table and checks show.

Aggregated by the database in three queries for all the assets, whatever their number of
runs, reading the indexes alone (revision 0017): the last finished run by one index walk per
asset, the trend's slices with the period's totals, and each check's counts with its latest
result.
The figures are asset_metrics' over the runs that started in the period: the average and
failure rate of the finished runs, the last finished run's duration, each check's results.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakelens.analysis._db import Reader, borrow
from lakelens.analysis.asset_metrics import CheckRate

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["TREND_POINTS", "PeriodFigures", "period_figures"]

# A sparkline's points at most: the period is cut in this many slices.
TREND_POINTS = 48
_CHUNK = 500
_FINISHED = "status IN ('success', 'failure')"


@dataclass
class PeriodFigures:
    """One asset's runs that started in the period."""

    name: str
    runs: int = 0
    avg_duration: float | None = None
    last_duration: float | None = None
    failure_rate: float | None = None
    # The longest run of each slice of the period that had runs, oldest first, and whether a
    # run of that slice failed (the sparkline).
    duration_trend: list[float | None] = field(default_factory=list)
    failure_trend: list[bool] = field(default_factory=list)
    checks: list[CheckRate] = field(default_factory=list)


def _slot(db: Reader) -> str:
    """The slice a start time falls in (CAST truncates on SQLite, rounds on PostgreSQL)."""
    ratio = "(start_time - :since) / :width"
    return f"CAST({ratio} AS INTEGER)" if db.dialect == "sqlite" else f"FLOOR({ratio})"


def _last_finished(db: Reader) -> str:
    """Each asset's last finished run of the period, its duration: one backward walk of
    ix_mat_asset_start per asset, where grouping read every run of the period (7 days of
    100 assets: ~78,000 rows, 120 ms on SQLite). Ties on start time: the highest id on
    PostgreSQL, any on SQLite (its index cannot order by the text id), as before."""
    order = "m.start_time DESC" + ("" if db.dialect == "sqlite" else ", m.id DESC")
    return (
        "SELECT a.name, (SELECT m.duration FROM materializations AS m WHERE m.asset = a.name "
        f"AND m.start_time >= :since AND m.{_FINISHED} ORDER BY {order} LIMIT 1) "
        "FROM assets AS a WHERE a.name IN :names"
    )


def period_figures(
    conn: Reader | sa.Connection,
    names: Iterable[str],
    *,
    since: float,
    until: float,
    points: int = TREND_POINTS,
) -> dict[str, PeriodFigures]:
    """Each of `names` with a run or a check result since `since` (epoch seconds)."""
    db = borrow(conn)
    wanted = list(dict.fromkeys(names))
    found: dict[str, PeriodFigures] = {}

    def figures(name: str) -> PeriodFigures:
        return found.setdefault(name, PeriodFigures(name))

    width = max(until - since, 1.0) / points
    for start in range(0, len(wanted), _CHUNK):
        params: dict[str, Any] = {"names": wanted[start : start + _CHUNK], "since": since}
        for name, duration in db.rows(_last_finished(db), params):
            # An asset with a finished run has its figures from the trend query below too.
            if duration is not None:
                figures(name).last_duration = duration
        # One scan gives the trend's slices and, summed over them, the period's totals.
        totals: dict[str, list[float]] = {}
        slices = db.rows(
            f"SELECT asset, {_slot(db)} AS slice, max(duration), "
            "sum(CASE WHEN status = 'failure' THEN 1 ELSE 0 END), count(*), "
            f"sum(CASE WHEN {_FINISHED} THEN 1 ELSE 0 END), "
            f"sum(CASE WHEN {_FINISHED} THEN duration END), "
            f"count(CASE WHEN {_FINISHED} THEN duration END) "
            "FROM materializations WHERE asset IN :names AND start_time >= :since "
            "GROUP BY asset, slice",
            {**params, "width": width},
        )
        # Ordered here, not by the database: PostgreSQL then hashes the groups instead of
        # sorting ~78,000 rows (7 days of 100 assets), which spilled to disk at the default
        # work_mem (255 -> 188 ms).
        slices.sort(key=lambda row: (row[0], row[1]))
        for name, _slice, longest, failures, runs, finished, spent, timed in slices:
            f = figures(name)
            f.duration_trend.append(longest)
            f.failure_trend.append(bool(failures))
            total = totals.setdefault(name, [0, 0, 0, 0.0, 0])
            total[0] += int(runs)
            total[1] += int(finished or 0)
            total[2] += int(failures or 0)
            if spent is not None:
                total[3] += float(spent)
                total[4] += int(timed or 0)
        for name, (runs, finished, failures, spent, timed) in totals.items():
            f = figures(name)
            f.runs = int(runs)
            # As avg() would: the finished runs that have a duration.
            f.avg_duration = spent / timed if timed else None
            f.failure_rate = 100.0 * failures / finished if finished else None
        _checks(db, params, figures)
    return found


def _checks(db: Reader, params: dict[str, Any], figures: Any) -> None:
    """Each check's results in the period and its latest one, per asset."""
    for asset, name, results, passed, severity, last_passed, last_value in _check_rows(db, params):
        figures(asset).checks.append(
            CheckRate(
                name=name,
                severity=severity,
                results=int(results),
                passed=int(passed),
                pass_rate=100.0 * int(passed) / int(results),
                last_passed=bool(last_passed),
                last_value=last_value,
            )
        )


def _check_rows(db: Reader, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(asset, name, results, passed, latest severity, latest passed, latest value), by asset
    and name. The counts come from ix_check_asset_name_time alone (it holds `passed`, 0017);
    each check's latest row by a backward walk of it. Ties on time: the highest id on
    PostgreSQL, any on SQLite (as its max() bare columns before)."""
    counts = (
        "SELECT asset, name, count(*) AS results, sum(CASE WHEN passed THEN 1 ELSE 0 END) "
        "AS passed FROM check_results WHERE asset IN :names AND time >= :since "
        "GROUP BY asset, name"
    )
    latest = (
        "FROM check_results AS c WHERE c.asset = g.asset AND c.name = g.name "
        "AND c.time >= :since ORDER BY c.time DESC"
    )
    if db.dialect == "sqlite":
        joined = f"JOIN check_results AS l ON l.rowid = (SELECT c.rowid {latest} LIMIT 1)"
    else:
        joined = (
            "CROSS JOIN LATERAL (SELECT c.severity, c.passed, c.value "
            f"{latest}, c.id DESC LIMIT 1) AS l"
        )
    return db.rows(
        "SELECT g.asset, g.name, g.results, g.passed, l.severity, l.passed, l.value "
        f"FROM ({counts}) AS g {joined} ORDER BY g.asset, g.name",
        params,
    )
