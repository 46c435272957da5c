"""The latest success against its learned seasonal band: rows, bytes and duration."""

from __future__ import annotations

import fnmatch
from typing import Any

import sqlalchemy as sa

from lakelens.alerts.rules._context import Finding, RuleContext
from lakelens.analysis.baselines import band
from lakelens.store import schema
from lakelens.units import format_duration

# How far back learned baselines look.
BASELINE_WINDOW = 28 * 86400.0


def _tuning(ctx: RuleContext, asset: str) -> tuple[float, str]:
    """(sensitivity, direction) for an asset: the first matching override, else the default."""
    rules = ctx.config.rules
    for glob, sensitivity, direction in rules.baseline_overrides:
        if fnmatch.fnmatchcase(asset, glob):
            return sensitivity or rules.sensitivity, direction or "both"
    return rules.sensitivity, "both"


_JUDGED: dict[tuple[Any, ...], list[Finding]] = {}


def _slow_and_volume(ctx: RuleContext) -> list[Finding]:
    """The latest success's rows, bytes and duration against their learned seasonal band.

    A run is judged once: the verdict is kept until the asset's latest run changes."""
    out = []
    for name, row in ctx.assets.items():
        if row.last_status != "success":
            continue
        key = (
            str(ctx.conn.engine.url),
            name,
            row.last_run_id,
            _tuning(ctx, name),
            len(ctx.feedback.get(name, ())),
        )
        verdict = _JUDGED.get(key)
        if verdict is None:
            verdict = _judge(ctx, name)
            if len(_JUDGED) > 100_000:
                _JUDGED.clear()
            _JUDGED[key] = verdict
        out += verdict
    return out


def _judge(ctx: RuleContext, name: str) -> list[Finding]:
    rules = ctx.config.rules
    m = schema.materializations
    out: list[Finding] = []
    recent = ctx.conn.execute(
        sa.select(m.c.duration, m.c.rows, m.c.bytes, m.c.run_id, m.c.start_time)
        .where(
            m.c.asset == name,
            # `status || ''` keeps the planner on (asset, start_time): the status index
            # reads every success of every asset in the window (29 s a pass at 1M rows).
            (m.c.status + "") == "success",
            m.c.start_time >= ctx.now - BASELINE_WINDOW,
            ctx.upto(m.c.end_time),
        )
        .order_by(m.c.start_time.desc())
        .limit(2000)
    ).all()
    if len(recent) <= rules.baseline_min_history:
        return out
    excluded = ctx.feedback.get(name, set())
    latest = recent[0]
    if latest.run_id in excluded:
        return out  # someone said this run was expected, or a false positive
    history = [h for h in reversed(recent[1:]) if h.run_id not in excluded]
    k, direction = _tuning(ctx, name)
    at = latest.start_time
    for field_name, label in (("rows", "rows"), ("bytes", "bytes")):
        value = getattr(latest, field_name)
        points = [
            (h.start_time, float(getattr(h, field_name)))
            for h in history
            if getattr(h, field_name) is not None
        ]
        expected = band(points, at, k=k, min_points=rules.baseline_min_history)
        if value is None or expected is None:
            continue
        dropped = value < expected.low and direction in ("both", "drop")
        spiked = value > expected.high and direction in ("both", "spike")
        if not (dropped or spiked):
            continue
        change = 100.0 * (value - expected.center) / expected.center if expected.center else 0.0
        out.append(
            Finding(
                rule="volume_anomaly",
                key=name if field_name == "rows" else f"{name}|bytes",
                severity="warning",
                title="Volume Anomaly",
                summary=f"{name} wrote {value:,} {label}, {'below' if dropped else 'above'} "
                f"its expected {expected.low:,.0f}–{expected.high:,.0f} "
                f"({expected.describe()}, {change:+.0f}%)",
                asset=name,
                run_id=latest.run_id,
                occurrence=latest.run_id,
                at=at,
                details={
                    "metric": field_name,
                    field_name: value,
                    "median": expected.center,
                    "low": expected.low,
                    "high": expected.high,
                    "seasonal": expected.seasonal,
                    "direction": "drop" if dropped else "spike",
                },
            )
        )
    durations = [(h.start_time, float(h.duration)) for h in history if h.duration is not None]
    expected = band(durations, at, k=k, min_points=rules.baseline_min_history, relative_floor=0.1)
    duration = latest.duration
    if (
        duration is not None
        and expected is not None
        and duration > expected.high
        and duration > rules.slow_factor * expected.center
        and duration - expected.center >= 1.0
    ):
        out.append(
            Finding(
                rule="slow_run",
                key=name,
                severity="warning",
                title="Asset Running Slow",
                summary=f"{name} running slow ({format_duration(duration)} vs "
                f"{format_duration(expected.center)} expected, {duration / expected.center:.1f}×)"
                if expected.center > 0
                else f"{name} running slow ({format_duration(duration)})",
                asset=name,
                run_id=latest.run_id,
                occurrence=latest.run_id,
                at=at,
                details={
                    "duration": duration,
                    "median": expected.center,
                    "high": expected.high,
                    "factor": rules.slow_factor,
                    "seasonal": expected.seasonal,
                },
            )
        )
    return out
