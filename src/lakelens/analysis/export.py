"""Per-asset and per-run metrics of a period, as plain rows for JSON and CSV exports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from lakelens.analysis._db import borrow, since_until, window
from lakelens.analysis.summary import percentiles
from lakelens.store import schema

__all__ = ["RUN_COLUMNS", "AssetPeriod", "asset_periods", "run_rows"]


@dataclass(frozen=True)
class AssetPeriod:
    """One asset over the period."""

    asset: str
    runs: int
    successes: int
    failures: int
    failure_rate: float | None
    rows: int
    bytes: int
    cpu_seconds: float
    avg_duration: float | None
    p95_duration: float | None
    max_duration: float | None
    checks: int
    checks_failed: int
    last_success_time: float | None


def asset_periods(
    conn: sa.Connection, *, since: float, until: float | None = None
) -> list[AssetPeriod]:
    m, c, a = schema.materializations, schema.check_results, schema.assets
    period = window(m.c.start_time, since, until)
    rows = conn.execute(
        sa.select(
            m.c.asset,
            sa.func.count(),
            sa.func.sum(sa.case((m.c.status == "success", 1), else_=0)),
            sa.func.sum(sa.case((m.c.status == "failure", 1), else_=0)),
            sa.func.coalesce(sa.func.sum(m.c.rows), 0),
            sa.func.coalesce(sa.func.sum(m.c.bytes), 0),
            sa.func.coalesce(sa.func.sum(m.c.cpu_seconds), 0.0),
            sa.func.avg(m.c.duration),
            sa.func.max(m.c.duration),
        )
        .where(*period)
        .group_by(m.c.asset)
        .order_by(m.c.asset)
    ).all()
    check_period = window(c.c.time, since, until)
    checks = {
        asset: (int(total), int(failed or 0))
        for asset, total, failed in conn.execute(
            sa.select(c.c.asset, sa.func.count(), sa.func.sum(sa.case((c.c.passed, 0), else_=1)))
            .where(*check_period)
            .group_by(c.c.asset)
        )
    }
    last_success = dict(conn.execute(sa.select(a.c.name, a.c.last_success_time)).all())
    out = []
    db = borrow(conn)
    period_sql, params = since_until("start_time", since, until)
    for asset, total, ok, failed, n_rows, n_bytes, cpu, avg, longest in rows:
        finished = int(ok or 0) + int(failed or 0)
        _, (p95,) = percentiles(
            db,
            "materializations",
            "duration",
            f"asset = :asset AND {period_sql} AND duration IS NOT NULL",
            {"asset": asset, **params},
            (0.95,),
        )
        out.append(
            AssetPeriod(
                asset=asset,
                runs=int(total),
                successes=int(ok or 0),
                failures=int(failed or 0),
                failure_rate=100.0 * int(failed or 0) / finished if finished else None,
                rows=int(n_rows),
                bytes=int(n_bytes),
                cpu_seconds=float(cpu),
                avg_duration=None if avg is None else float(avg),
                p95_duration=p95,
                max_duration=None if longest is None else float(longest),
                checks=checks.get(asset, (0, 0))[0],
                checks_failed=checks.get(asset, (0, 0))[1],
                last_success_time=last_success.get(asset),
            )
        )
    return out


RUN_COLUMNS = (
    "run_id",
    "asset",
    "status",
    "start_time",
    "end_time",
    "duration",
    "partition",
    "rows",
    "bytes",
    "inserts",
    "updates",
    "cpu_seconds",
    "peak_memory_bytes",
    "error_type",
    "error_message",
)


def run_rows(
    conn: sa.Connection, *, since: float, until: float | None = None
) -> Iterator[tuple[object, ...]]:
    """Every materialization (asset × run) of the period, oldest first, streamed."""
    m = schema.materializations
    period = window(m.c.start_time, since, until)
    result = conn.execution_options(stream_results=True).execute(
        sa.select(*(m.c[name] for name in RUN_COLUMNS))
        .where(*period)
        .order_by(m.c.start_time, m.c.id)
    )
    for row in result:
        yield tuple(row)
