"""One asset in depth: its last N materializations, their statistics, checks and trends."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from lakelens.store import schema

__all__ = ["AssetMetrics", "CheckRate", "RunRow", "asset_metrics"]


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


def asset_metrics(conn: sa.Connection, name: str, *, runs: int = 20, now: float) -> AssetMetrics:
    """The asset's definition, state and its last `runs` finished or running materializations."""
    a, m, c, e = schema.assets, schema.materializations, schema.check_results, schema.lineage_edges
    asset = conn.execute(sa.select(a).where(a.c.name == name)).mappings().one()
    recent = conn.execute(
        sa.select(
            m.c.run_id,
            m.c.start_time,
            m.c.duration,
            m.c.rows,
            m.c.bytes,
            m.c.status,
            m.c.error_type,
            m.c.error_message,
        )
        .where(m.c.asset == name)
        .order_by(m.c.start_time.desc(), m.c.id.desc())
        .limit(runs)
    ).all()
    rows = [RunRow(*r) for r in recent]
    finished = [r for r in rows if r.status in ("success", "failure")]
    durations = [r.duration_seconds for r in finished if r.duration_seconds is not None]
    row_counts = [r.rows for r in rows if r.status == "success" and r.rows is not None]
    failures = sum(1 for r in finished if r.status == "failure")
    upstream = conn.execute(
        sa.select(sa.func.count(sa.distinct(e.c.upstream))).where(e.c.downstream == name)
    ).scalar_one()
    downstream = conn.execute(
        sa.select(sa.func.count(sa.distinct(e.c.downstream))).where(e.c.upstream == name)
    ).scalar_one()
    run_ids = sorted({r.run_id for r in rows})
    checks: list[CheckRate] = []
    if run_ids:
        results = conn.execute(
            sa.select(c.c.name, c.c.severity, c.c.passed, c.c.value, c.c.time)
            # `asset || ''` keeps SQLite on the run_id index: the asset's own index would
            # read every check result the asset ever had.
            .where((c.c.asset + "") == name, c.c.run_id.in_(run_ids))
            .order_by(c.c.name, c.c.time)
        ).all()
        by_name: dict[str, list[Any]] = {}
        for result in results:
            by_name.setdefault(result.name, []).append(result)
        for check_name, items in by_name.items():
            passed = sum(1 for i in items if i.passed)
            last = items[-1]
            checks.append(
                CheckRate(
                    name=check_name,
                    severity=last.severity,
                    results=len(items),
                    passed=passed,
                    pass_rate=100.0 * passed / len(items),
                    last_passed=bool(last.passed),
                    last_value=last.value,
                )
            )
    last_success = asset["last_success_time"]
    return AssetMetrics(
        name=name,
        kind=asset["kind"],
        owner=asset["owner"],
        layer=asset["layer"],
        description=asset["description"],
        freshness_seconds=asset["freshness_seconds"],
        last_success_time=last_success,
        age_seconds=None if last_success is None else max(0.0, now - last_success),
        last_status=asset["last_status"],
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
    )
