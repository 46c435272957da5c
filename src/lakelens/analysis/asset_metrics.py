"""One asset in depth: its last N materializations, their statistics, checks and trends."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from lakelens.analysis._db import Reader, borrow

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "AssetAlias",
    "AssetMetrics",
    "CheckRate",
    "RunRow",
    "asset_document",
    "asset_metrics",
]


@dataclass(frozen=True)
class RunRow:
    """One materialization of the asset (newest first in AssetMetrics.runs)."""

    run_id: str
    start_time: float | None
    duration_seconds: float | None
    rows: int | None
    bytes: int | None
    status: str
    error_type: str | None
    error_message: str | None


@dataclass(frozen=True)
class CheckRate:
    """A check's results over the asset's last N runs."""

    name: str
    severity: str
    results: int
    passed: int
    pass_rate: float
    last_passed: bool
    last_value: float | None


@dataclass(frozen=True)
class AssetAlias:
    """Another name the asset arrives under, and who gave it (dbt, openlineage, config, …)."""

    alias: str
    source: str


@dataclass(frozen=True)
class AssetMetrics:
    name: str
    kind: str
    owner: str | None
    layer: str | None
    description: str | None
    freshness_seconds: float | None
    last_success_time: float | None
    age_seconds: float | None
    last_status: str | None
    last_duration: float | None
    avg_duration: float | None
    p95_duration: float | None
    p99_duration: float | None
    failure_rate: float | None
    avg_rows: float | None
    total_bytes: int
    last_bytes: int | None
    upstream: int
    downstream: int
    runs: list[RunRow]
    checks: list[CheckRate]
    aliases: list[AssetAlias] = field(default_factory=list)

    @property
    def stale(self) -> bool | None:
        if self.freshness_seconds is None or self.age_seconds is None:
            return None
        return self.age_seconds > self.freshness_seconds

    @property
    def duration_trend(self) -> list[float | None]:
        """Durations oldest → newest (for a sparkline)."""
        return [r.duration_seconds for r in reversed(self.runs)]

    @property
    def failure_trend(self) -> list[bool]:
        return [r.status == "failure" for r in reversed(self.runs)]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stale"] = self.stale
        return data


def _percentile(values: list[float], q: float) -> float | None:
    """numpy's linear percentile (the same definition as the summary)."""
    if not values:
        return None
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def _checks_since(db: Reader, name: str, starts: list[float], runs: int) -> float | None:
    """When the window of check results begins (None: the asset has none)."""
    if starts:
        # A run's checks may precede its materialization: `dbt build` runs a model's unit
        # tests before building it.
        first = db.value(
            "SELECT min(time) FROM check_results WHERE asset = :name AND run_id IN "
            "(SELECT run_id FROM materializations WHERE asset = :name "
            "ORDER BY start_time DESC, id DESC LIMIT :runs)",
            {"name": name, "runs": runs},
        )
        return min(starts) if first is None else min(min(starts), first)
    # No materializations (a dbt source, an external table): the last `runs` runs that checked it.
    return db.value(
        "SELECT min(earliest) FROM (SELECT min(time) AS earliest FROM check_results "
        "WHERE asset = :name GROUP BY run_id ORDER BY earliest DESC LIMIT :runs) AS recent",
        {"name": name, "runs": runs},
    )


def asset_metrics(
    conn: Reader | sa.Connection, name: str, *, runs: int = 20, now: float
) -> AssetMetrics:
    """The asset's definition, state and its last `runs` finished or running materializations."""
    db = borrow(conn)
    found = db.dicts("SELECT * FROM assets WHERE name = :name", {"name": name})
    if not found:
        raise LookupError(f"no asset {name!r}")
    asset = found[0]
    recent = db.rows(
        "SELECT run_id, start_time, duration, rows, bytes, status, error_type, error_message "
        "FROM materializations WHERE asset = :name ORDER BY start_time DESC, id DESC "
        "LIMIT :runs",
        {"name": name, "runs": runs},
    )
    rows = [RunRow(*r) for r in recent]
    finished = [r for r in rows if r.status in ("success", "failure")]
    durations = [r.duration_seconds for r in finished if r.duration_seconds is not None]
    row_counts = [r.rows for r in rows if r.status == "success" and r.rows is not None]
    failures = sum(1 for r in finished if r.status == "failure")
    upstream = db.value(
        "SELECT count(DISTINCT upstream) FROM lineage_edges WHERE downstream = :name",
        {"name": name},
    )
    downstream = db.value(
        "SELECT count(DISTINCT downstream) FROM lineage_edges WHERE upstream = :name",
        {"name": name},
    )
    checks: list[CheckRate] = []
    oldest = _checks_since(db, name, [r.start_time for r in rows if r.start_time is not None], runs)
    if oldest is not None:
        # Every result since the oldest of these runs began, whichever run recorded it: checks
        # often run apart from the materialization (`dbt run`, then `dbt test`).
        results = db.rows(
            "SELECT name, severity, passed, value, time FROM check_results "
            "WHERE asset = :name AND time >= :oldest ORDER BY name, time",
            {"name": name, "oldest": oldest},
        )
        by_name: dict[str, list[Any]] = {}
        for result in results:
            by_name.setdefault(result[0], []).append(result)
        for check_name, items in by_name.items():
            passed = sum(1 for i in items if i[2])
            _, severity, last_passed, last_value, _ = items[-1]
            checks.append(
                CheckRate(
                    name=check_name,
                    severity=severity,
                    results=len(items),
                    passed=passed,
                    pass_rate=100.0 * passed / len(items),
                    last_passed=bool(last_passed),
                    last_value=last_value,
                )
            )
    last_success = asset["last_success_time"]
    aliases = [
        AssetAlias(alias, source)
        for alias, source in db.rows(
            "SELECT alias, source FROM asset_aliases WHERE asset = :name ORDER BY alias",
            {"name": name},
        )
    ]
    return AssetMetrics(
        name=name,
        kind=asset["kind"],
        owner=asset["owner"],
        layer=asset["layer"],
        description=asset["description"],
        freshness_seconds=asset["freshness_seconds"],
        last_success_time=last_success,
        age_seconds=None if last_success is None else max(0.0, now - last_success),
        # The run its own table lists first: the asset's kept state follows successes and
        # failures only, so a canceled run there would read as "no runs".
        last_status=next(
            (r.status for r in rows if r.status not in ("queued", "started")),
            asset["last_status"],
        ),
        last_duration=finished[0].duration_seconds if finished else None,
        avg_duration=sum(durations) / len(durations) if durations else None,
        p95_duration=_percentile(durations, 0.95),
        p99_duration=_percentile(durations, 0.99),
        failure_rate=100.0 * failures / len(finished) if finished else None,
        avg_rows=sum(row_counts) / len(row_counts) if row_counts else None,
        total_bytes=sum(r.bytes or 0 for r in rows),
        last_bytes=next((r.bytes for r in rows if r.status == "success"), None),
        upstream=int(upstream),
        downstream=int(downstream),
        runs=rows,
        checks=checks,
        aliases=aliases,
    )


def asset_document(
    conn: Reader | sa.Connection, name: str, *, runs: int = 20, now: float
) -> dict[str, Any]:
    """The asset as JSON, one document for `lakelens metrics asset NAME --json` and
    `GET /api/v1/assets/NAME`: its metrics, downstream usage, column profile (the latest,
    its changes against the one before, the last two in history) and lineage neighbours."""
    from lakelens.analysis.profiles import profile_report
    from lakelens.analysis.shapes import jsonable
    from lakelens.analysis.usage import asset_usage

    db = borrow(conn)
    metrics = asset_metrics(db, name, runs=runs, now=now)
    neighbours = {
        key: sorted(
            db.column(
                f"SELECT DISTINCT {near} FROM lineage_edges WHERE {far} = :name",
                {"name": name},
            )
        )
        for key, near, far in (
            ("upstream_assets", "upstream", "downstream"),
            ("downstream_assets", "downstream", "upstream"),
        )
    }
    return jsonable(
        {
            **metrics.to_dict(),
            "usage": asset_usage(db, name, now=now).to_dict(),
            "profile": profile_report(db, name, history=2).to_dict(),
            **neighbours,
        }
    )
