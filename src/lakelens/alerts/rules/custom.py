"""Rules users declare: thresholds on custom or built-in metrics."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable

import sqlalchemy as sa

from lakelens.alerts.config import ThresholdRule
from lakelens.alerts.rules._context import Finding, RuleContext
from lakelens.store import schema
from lakelens.units import format_duration

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


def _metric_value(ctx: RuleContext, rule: ThresholdRule) -> tuple[float | None, bool]:
    """(current value, held for the rule's `for` duration) of a custom or built-in metric."""
    if rule.metric.startswith("asset_") and rule.asset:
        m = schema.materializations
        since = ctx.now - rule.window_seconds
        where = [m.c.asset == rule.asset, m.c.start_time >= since]
        column = {
            "asset_duration_avg": sa.func.avg(m.c.duration),
            "asset_duration_max": sa.func.max(m.c.duration),
            "asset_rows_avg": sa.func.avg(m.c.rows),
            "asset_failure_rate": 100.0
            * sa.func.avg(sa.case((m.c.status == "failure", 1.0), else_=0.0)),
        }.get(rule.metric)
        if column is None:
            if rule.metric == "asset_freshness_seconds":
                row = ctx.assets.get(rule.asset)
                last = row.last_success_time if row is not None else None
                return (None if last is None else ctx.now - last), True
            return None, False
        value = ctx.conn.execute(sa.select(column).where(*where, ctx.upto(m.c.end_time))).scalar()
        return (None if value is None else float(value)), True
    p = schema.metric_points
    rows = ctx.conn.execute(
        sa.select(p.c.time, p.c.value, p.c.labels)
        .where(
            p.c.name == rule.metric,
            p.c.time >= ctx.now - max(rule.for_seconds, 0) - rule.window_seconds,
            ctx.upto(p.c.time),
        )
        .order_by(p.c.time.desc())
    ).all()
    wanted = dict(rule.labels)
    points = [
        r
        for r in rows
        if all((json.loads(r.labels) if r.labels else {}).get(k) == v for k, v in wanted.items())
    ]
    if not points:
        return None, False
    test = _OPS[rule.op]
    value = float(points[0].value)
    if not test(value, rule.threshold):
        return value, False
    streak_start = points[0].time
    for point in points[1:]:
        if not test(float(point.value), rule.threshold):
            break
        streak_start = point.time
    return value, ctx.now - streak_start >= rule.for_seconds


def _thresholds(ctx: RuleContext) -> list[Finding]:
    out = []
    for rule in ctx.config.rules.thresholds:
        value, held = _metric_value(ctx, rule)
        if value is None or not held or not _OPS[rule.op](value, rule.threshold):
            continue
        labels = ",".join(f"{k}={v}" for k, v in sorted(rule.labels.items()))
        target = (
            rule.metric
            + (f"{{{labels}}}" if labels else "")
            + (f" of {rule.asset}" if rule.asset else "")
        )
        held_for = f" for {format_duration(rule.for_seconds)}" if rule.for_seconds else ""
        out.append(
            Finding(
                rule="threshold",
                key=f"{rule.name}|{rule.asset or ''}|{labels}",
                severity=rule.severity,
                title=f"Threshold: {rule.name}",
                summary=f"{target} = {value:g} {rule.op} {rule.threshold:g}{held_for}",
                asset=rule.asset,
                details={
                    "metric": rule.metric,
                    "value": value,
                    "threshold": rule.threshold,
                    "op": rule.op,
                },
            )
        )
    return out
