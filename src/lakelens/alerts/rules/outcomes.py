"""What runs reported: failed materializations, failed checks and pass rates, failure rates."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from lakelens.alerts.rules._context import Finding, RuleContext
from lakelens.store import schema
from lakelens.units import format_duration


def _failures(ctx: RuleContext) -> list[Finding]:
    m = schema.materializations
    out = []
    for name, row in ctx.assets.items():
        if row.last_status != "failure":
            continue
        failed = ctx.conn.execute(
            sa.select(m.c.error_type, m.c.error_message, m.c.partition, m.c.run_id, m.c.end_time)
            # `status || ''`: look the run up by its index, not through every failure.
            .where(
                m.c.asset == name,
                m.c.run_id == row.last_run_id,
                (m.c.status + "") == "failure",
                ctx.upto(m.c.start_time),
            )
            .limit(1)
        ).first()
        if failed is None:
            continue  # its run was deleted (a demo recorded again): nothing to tell about
        # The fault began with the first failure since the last success.
        began = ctx.conn.execute(
            sa.select(sa.func.min(m.c.end_time)).where(
                m.c.asset == name,
                m.c.start_time > (row.last_success_time or 0.0),
                (m.c.status + "") == "failure",
                ctx.upto(m.c.end_time),
            )
        ).scalar()
        error_type = failed.error_type or "Error"
        message = failed.error_message or "failed"
        critical = bool(row.critical) or ctx.feeds_dashboard(name)
        out.append(
            Finding(
                rule="asset_failed",
                key=f"{name}|{error_type}",
                severity="critical" if critical else "error",
                title="Asset Materialization Failed",
                summary=f"{name} failed: {error_type}: {message}"[:500],
                asset=name,
                run_id=row.last_run_id,
                occurrence=row.last_run_id,
                partition=failed.partition,
                error=f"{error_type}: {message}",
                at=began or failed.end_time or row.last_start_time,
                details={
                    "error_type": error_type,
                    "critical_because": "critical"
                    if row.critical
                    else ("feeds a dashboard" if critical else None),
                },
            )
        )
    return out


# How far back a check recorded by another run than the asset's (a `dbt test` after `dbt run`,
# an OpenLineage job that tested its input) is looked for.
CHECK_LOOKBACK = 7 * 86400.0

_CHECK_COLUMNS = (
    "id",
    "asset",
    "name",
    "passed",
    "severity",
    "value",
    "threshold",
    "valid_rows",
    "total_rows",
    "message",
    "run_id",
    "time",
)


def _failed_checks(ctx: RuleContext) -> list[Any]:
    """The latest result of each (asset, check) where it failed and is about the asset's
    current data: recorded by its latest run, or since its latest materialization began by
    any run, whichever source sent it."""
    c = schema.check_results
    columns = [c.c[name] for name in _CHECK_COLUMNS]
    # The latest runs' results by the run_id index; a join let the planner scan every check
    # result first (1.5 s a pass at 1M rows).
    latest: dict[str, set[str]] = {}  # one run can be the latest of several assets
    for name, asset_row in ctx.assets.items():
        if asset_row.last_run_id:
            latest.setdefault(asset_row.last_run_id, set()).add(name)
    run_ids = sorted(latest)
    candidates: dict[tuple[str, str], Any] = {}

    def consider(row: Any) -> None:
        key = (row.asset, row.name)
        if key not in candidates or row.time > candidates[key].time:
            candidates[key] = row

    for first in range(0, len(run_ids), 500):
        for row in ctx.conn.execute(
            sa.select(*columns).where(
                c.c.run_id.in_(run_ids[first : first + 500]),
                c.c.passed.is_(False),
                ctx.upto(c.c.time),
            )
        ):
            if row.asset in latest.get(row.run_id, ()):
                consider(row)
    for row in ctx.conn.execute(
        sa.select(*columns).where(
            c.c.time >= ctx.now - CHECK_LOOKBACK, c.c.passed.is_(False), ctx.upto(c.c.time)
        )
    ):
        owner_row: Any = ctx.assets.get(row.asset)
        started = owner_row.last_start_time if owner_row is not None else None
        if started is None or row.time >= started:
            consider(row)
    failed = []
    for (asset, name), row in sorted(candidates.items()):
        newest = ctx.conn.execute(
            sa.select(c.c.passed, c.c.time)
            .where(c.c.asset == asset, c.c.name == name, ctx.upto(c.c.time))
            .order_by(c.c.time.desc())
            .limit(1)
        ).first()
        if newest is not None and newest.passed and newest.time >= row.time:
            continue  # checked again since, and passed
        failed.append(row)
    return failed


def _checks(ctx: RuleContext) -> list[Finding]:
    """A check whose latest result on its asset's current data failed; a pass rate too low."""
    out = []
    for row in _failed_checks(ctx):
        detail = row.message or (
            f"{row.valid_rows:,}/{row.total_rows:,} rows valid"
            if row.total_rows is not None and row.valid_rows is not None
            else f"value {row.value} vs threshold {row.threshold}"
            if row.value is not None
            else "failed"
        )
        out.append(
            Finding(
                rule="check_failed",
                key=f"{row.asset}|{row.name}",
                severity=row.severity,
                title="Quality Check Failed",
                summary=f"{row.name} failed on {row.asset}: {detail}",
                asset=row.asset,
                run_id=row.run_id,
                occurrence=row.id,
                error=detail,
                details={"check": row.name, "value": row.value, "threshold": row.threshold},
                at=row.time,
            )
        )
    c = schema.check_results
    rules = ctx.config.rules
    since = ctx.now - rules.pass_rate_window
    rates = ctx.conn.execute(
        sa.select(
            c.c.asset, c.c.name, sa.func.count(), sa.func.sum(sa.case((c.c.passed, 1), else_=0))
        )
        .where(c.c.time >= since, ctx.upto(c.c.time))
        .group_by(c.c.asset, c.c.name)
    ).all()
    for asset, name, total, passed in rates:
        rate = 100.0 * int(passed or 0) / int(total)
        if int(total) >= rules.pass_rate_min_results and rate < rules.pass_rate_below:
            out.append(
                Finding(
                    rule="validation_pass_rate",
                    key=f"{asset}|{name}",
                    severity="warning",
                    title="Validation Pass Rate Low",
                    summary=f"validation_pass_rate of {name} on {asset} is {rate:.1f}% < {rules.pass_rate_below:g}% "
                    f"over {format_duration(rules.pass_rate_window)}",
                    asset=asset,
                    details={"check": name, "pass_rate": rate, "results": int(total)},
                )
            )
    return out


def _failure_rate(ctx: RuleContext) -> list[Finding]:
    rules = ctx.config.rules
    m, r = schema.materializations, schema.runs
    since = ctx.now - rules.failure_rate_window
    out = []
    for kind, table, column in (("asset", m, m.c.asset), ("job", r, r.c.job)):
        rows = ctx.conn.execute(
            sa.select(
                column,
                sa.func.sum(sa.case((table.c.status == "failure", 1), else_=0)),
                sa.func.count(),
            )
            .where(
                table.c.start_time >= since,
                table.c.status.in_(("success", "failure")),
                ctx.upto(table.c.end_time),
            )
            .group_by(column)
        ).all()
        for name, failed, total in rows:
            rate = 100.0 * int(failed or 0) / int(total)
            if int(total) >= rules.failure_rate_min_runs and rate > rules.failure_rate_above:
                details: dict[str, Any] = {"scope": kind, "failure_rate": rate, "runs": int(total)}
                if kind == "job":  # so the incident of the job's failing assets takes it
                    details["assets"] = sorted(
                        ctx.conn.execute(
                            sa.select(m.c.asset)
                            .join(r, r.c.run_id == m.c.run_id)
                            .where(
                                r.c.job == name,
                                r.c.start_time >= since,
                                ctx.upto(m.c.end_time),
                                (m.c.status + "") == "failure",
                            )
                            .distinct()
                        ).scalars()
                    )
                out.append(
                    Finding(
                        rule="failure_rate",
                        key=f"{kind}:{name}",
                        severity="warning",
                        title="Failure Rate High",
                        summary=f"{kind} {name}: {rate:.0f}% of {total} runs failed in the last "
                        f"{format_duration(rules.failure_rate_window)} (> {rules.failure_rate_above:g}%)",
                        asset=name if kind == "asset" else None,
                        details=details,
                    )
                )
    return out
