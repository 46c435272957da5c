"""Data that should have arrived: a declared freshness SLA, a learned update rhythm, a heartbeat."""

from __future__ import annotations

import sqlalchemy as sa

from lakelens.alerts.rules._context import Finding, RuleContext
from lakelens.analysis.baselines import Rhythm, learn_rhythm
from lakelens.analysis.lineage import EXTERNAL_KINDS
from lakelens.store import schema
from lakelens.units import format_duration


def _freshness(ctx: RuleContext) -> list[Finding]:
    out = []
    for name, row in ctx.assets.items():
        sla, last = row.freshness_seconds, row.last_success_time
        if not sla or last is None:
            continue
        age = ctx.now - last
        if age <= sla:
            continue
        severity = "critical" if age > 2 * sla else "warning"
        out.append(
            Finding(
                rule="freshness",
                key=name,
                severity=severity,
                title="Freshness SLA Breached",
                summary=f"{name} is stale: last success {format_duration(age)} ago (SLA {format_duration(sla)})",
                asset=name,
                details={"age_seconds": age, "sla_seconds": sla, "last_success": last},
                at=last + sla,
            )
        )
    return out


# How far back a learned rhythm looks.
RHYTHM_WINDOW = 35 * 86400.0
_RHYTHMS: dict[tuple[str, str, float], Rhythm | None] = {}


def _rhythm(ctx: RuleContext, asset: str, last: float) -> Rhythm | None:
    """The asset's learned update rhythm up to its last success (cached until the next one)."""
    key = (str(ctx.conn.engine.url), asset, last)
    if key in _RHYTHMS:
        return _RHYTHMS[key]
    m = schema.materializations
    times = sorted(
        ctx.conn.execute(
            sa.select(m.c.end_time)
            .where(
                m.c.asset == asset,
                (m.c.status + "") == "success",
                m.c.start_time >= last - RHYTHM_WINDOW,
                m.c.end_time <= last,
            )
            .order_by(m.c.start_time.desc())
            .limit(3000)
        ).scalars()
    )
    rhythm = learn_rhythm(
        [t for t in times if t is not None], min_updates=ctx.config.rules.learned_min_updates
    )
    if len(_RHYTHMS) > 100_000:
        _RHYTHMS.clear()
    _RHYTHMS[key] = rhythm
    return rhythm


def _late(ctx: RuleContext) -> list[Finding]:
    """No update since it was due by the asset's learned rhythm (no SLA declared)."""
    out = []
    for name, row in ctx.assets.items():
        last = row.last_success_time
        if row.freshness_seconds or last is None or row.kind in EXTERNAL_KINDS:
            continue
        if ctx.now - last < 60:
            continue
        rhythm = _rhythm(ctx, name, last)
        if rhythm is None or not rhythm.is_late(ctx.now):
            continue
        overdue = ctx.now - rhythm.due
        # One severity: a learned rhythm is a guess, so being later still is no escalation.
        severity = "error" if row.critical else "warning"
        out.append(
            Finding(
                rule="late",
                key=name,
                severity=severity,
                title="Data Late",
                summary=f"{name} is late: no update for {format_duration(ctx.now - last)}; "
                f"it updates {rhythm.description}, next was due {format_duration(overdue)} ago",
                asset=name,
                details={
                    "last_success": last,
                    "due": rhythm.due,
                    "tolerance_seconds": rhythm.tolerance,
                    "gap_seconds": rhythm.gap,
                    "updates": rhythm.updates,
                    "seasonal": rhythm.seasonal,
                },
                at=rhythm.due,
            )
        )
    return out


def _absences(ctx: RuleContext) -> list[Finding]:
    out = []
    r = schema.runs
    for rule in ctx.config.rules.absences:
        if rule.job:
            last = ctx.conn.execute(
                sa.select(sa.func.max(r.c.start_time)).where(
                    r.c.job == rule.job, ctx.upto(r.c.start_time)
                )
            ).scalar()
            subject = f"job {rule.job}"
        else:
            row = ctx.assets.get(rule.asset or "")
            last = row.last_start_time if row is not None else None
            subject = f"asset {rule.asset}"
        if last is not None and ctx.now - last <= rule.interval_seconds:
            continue
        since = "never" if last is None else f"{format_duration(ctx.now - last)} ago"
        out.append(
            Finding(
                rule="absence",
                key=f"{rule.job or ''}|{rule.asset or ''}",
                severity=rule.severity,
                title="Heartbeat Missing",
                summary=f"No run of {subject} for {format_duration(rule.interval_seconds)} (last: {since})",
                asset=rule.asset,
                details={"last_run": last, "interval_seconds": rule.interval_seconds},
                at=(last + rule.interval_seconds) if last is not None else None,
            )
        )
    return out


# A destination still retrying is reported once it has failed this long (a blip is not news).
