"""Alert rules: each turns the store's current state into findings (conditions that hold now).

A finding's fingerprint is the dedup key: sha256 of "rule|asset|detail" where detail is the
error class (failures), the check name (checks), the job (heartbeats) or the rule name
(thresholds). Findings are recomputed on every evaluation; one that is no longer produced
means its condition cleared and its alert resolves.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from lakelens.alerts.config import AlertingConfig, ThresholdRule
from lakelens.analysis.baselines import Rhythm, band, learn_rhythm
from lakelens.analysis.lineage import EXTERNAL_KINDS, LineageGraph, load_graph
from lakelens.store import schema
from lakelens.units import format_duration

__all__ = ["Finding", "RuleContext", "evaluate_rules"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass
class Finding:
    """A condition that holds now and deserves an alert."""

    rule: str
    key: str
    severity: str
    title: str
    summary: str
    asset: str | None = None
    run_id: str | None = None
    occurrence: str | None = None
    partition: str | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    # When the fault happened (a failed run's end, a check's time, when data became due).
    at: float | None = None

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.rule}|{self.key}".encode()).hexdigest()[:32]


@dataclass
class _AssetState:
    """An asset's latest outcome as of a moment in the past (replay)."""

    name: str
    kind: str | None
    owner: str | None
    critical: bool | None
    tags: str | None
    freshness_seconds: float | None
    last_status: str | None = None
    last_run_id: str | None = None
    last_start_time: float | None = None
    last_success_time: float | None = None


class RuleContext:
    """The store's state as the rules (and incident grouping) read it: the current state, or
    with `as_of` the state at `now` rebuilt from history, as a live evaluator saw it then."""

    def __init__(
        self, conn: sa.Connection, config: AlertingConfig, now: float, *, as_of: bool = False
    ) -> None:
        self.conn = conn
        self.config = config
        self.now = now
        self.as_of = as_of
        self._graph: LineageGraph | None = None
        self._downstream: dict[str, list[str]] = {}
        self._feedback: dict[str, set[str]] | None = None
        self.assets: dict[str, Any] = {
            row.name: row
            for row in conn.execute(
                sa.select(
                    schema.assets.c.name,
                    schema.assets.c.kind,
                    schema.assets.c.owner,
                    schema.assets.c.critical,
                    schema.assets.c.tags,
                    schema.assets.c.freshness_seconds,
                    schema.assets.c.last_status,
                    schema.assets.c.last_run_id,
                    schema.assets.c.last_start_time,
                    schema.assets.c.last_success_time,
                )
            )
        }
        if as_of:
            self.assets = self._history_state()

    @property
    def feedback(self) -> dict[str, set[str]]:
        """Runs taken out of each asset's baselines by feedback (`incidents feedback`)."""
        if self._feedback is None:
            f = schema.baseline_feedback
            found: dict[str, set[str]] = {}
            for asset, run_id in self.conn.execute(
                sa.select(f.c.asset, f.c.run_id).where(f.c.run_id.is_not(None), self.upto(f.c.time))
            ):
                found.setdefault(asset, set()).add(run_id)
            self._feedback = found
        return self._feedback

    def upto(self, column: Any) -> Any:
        """`column <= now` when replaying (later rows are the future), else no condition."""
        return column <= self.now if self.as_of else sa.true()

    def _history_state(self) -> dict[str, Any]:
        m = schema.materializations
        states = {
            name: _AssetState(
                name=name,
                kind=row.kind,
                owner=row.owner,
                critical=row.critical,
                tags=row.tags,
                freshness_seconds=row.freshness_seconds,
            )
            for name, row in self.assets.items()
        }
        latest = (
            sa.select(m.c.asset, sa.func.max(m.c.start_time).label("start"))
            .where(m.c.start_time <= self.now)
            .group_by(m.c.asset)
            .subquery()
        )
        for row in self.conn.execute(
            sa.select(m.c.asset, m.c.status, m.c.run_id, m.c.start_time, m.c.end_time).join(
                latest, sa.and_(latest.c.asset == m.c.asset, latest.c.start == m.c.start_time)
            )
        ):
            state = states.get(row.asset)
            if state is None:
                continue
            done = row.end_time is not None and row.end_time <= self.now
            state.last_status = row.status if done else "started"
            state.last_run_id = row.run_id
            state.last_start_time = row.start_time
        for asset, last in self.conn.execute(
            sa.select(m.c.asset, sa.func.max(m.c.end_time))
            .where(m.c.status == "success", m.c.end_time <= self.now)
            .group_by(m.c.asset)
        ):
            if asset in states:
                states[asset].last_success_time = last
        return dict(states)

    @property
    def graph(self) -> LineageGraph:
        if self._graph is None:
            self._graph = load_graph(self.conn)
        return self._graph

    def downstream(self, asset: str) -> list[str]:
        cached = self._downstream.get(asset)
        if cached is not None:
            return cached
        seen: list[str] = []
        stack = list(self.graph.downstream.get(asset, []))
        while stack:
            name = stack.pop()
            if name not in seen and name != asset:
                seen.append(name)
                stack.extend(self.graph.downstream.get(name, []))
        self._downstream[asset] = sorted(seen)
        return self._downstream[asset]

    def owner(self, asset: str) -> str | None:
        row = self.assets.get(asset)
        return row.owner if row is not None else None

    def tags(self, asset: str) -> dict[str, str]:
        row = self.assets.get(asset)
        return json.loads(row.tags) if row is not None and row.tags else {}

    def kind(self, asset: str) -> str | None:
        node = self.graph.nodes.get(asset)
        if node is not None:
            return node.kind
        row = self.assets.get(asset)
        return row.kind if row is not None else None

    def feeds_dashboard(self, asset: str) -> bool:
        return any(
            self.graph.nodes[n].kind == "dashboard"
            for n in self.downstream(asset)
            if n in self.graph.nodes
        )


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


# How far back learned baselines look.
BASELINE_WINDOW = 28 * 86400.0
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


def _schema_drift(ctx: RuleContext) -> list[Finding]:
    s = schema.schema_snapshots
    window = ctx.now - ctx.config.rules.schema_drift_window
    out = []
    recent = ctx.conn.execute(
        sa.select(s.c.asset, s.c.id, s.c.time, s.c.columns, s.c.hash)
        .where(s.c.time >= window, ctx.upto(s.c.time))
        .order_by(s.c.asset, s.c.time.desc(), s.c.id.desc())
    ).all()
    latest: dict[str, Any] = {}
    for row in recent:
        latest.setdefault(row.asset, row)
    for asset, row in latest.items():
        previous = ctx.conn.execute(
            sa.select(s.c.columns, s.c.hash)
            .where(
                s.c.asset == asset,
                sa.or_(s.c.time < row.time, sa.and_(s.c.time == row.time, s.c.id < row.id)),
            )
            .order_by(s.c.time.desc(), s.c.id.desc())
            .limit(1)
        ).first()
        if previous is None or previous.hash == row.hash:
            continue
        before = dict(map(tuple, json.loads(previous.columns)))
        after = dict(map(tuple, json.loads(row.columns)))
        added = sorted(set(after) - set(before))
        removed = sorted(set(before) - set(after))
        changed = sorted(c for c in set(before) & set(after) if before[c] != after[c])
        parts = (
            [f"+{c}" for c in added]
            + [f"-{c}" for c in removed]
            + [f"{c}: {before[c]} → {after[c]}" for c in changed]
        )
        out.append(
            Finding(
                rule="schema_drift",
                key=asset,
                severity="warning",
                title="Schema Drift",
                summary=f"{asset} schema changed: {', '.join(parts)}"[:500],
                asset=asset,
                occurrence=row.hash,
                details={"added": added, "removed": removed, "changed": changed},
            )
        )
    return out


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
DELIVERY_FAILING_AFTER = 300.0


def _delivery_failures(ctx: RuleContext) -> list[Finding]:
    """A destination that has been failing for a while, or failed for good, in the last day:
    tell the others."""
    from lakelens.alerts.outbox import failing_destinations

    if ctx.as_of:  # replay delivers nothing
        return []
    n = schema.notifications
    failing = failing_destinations(ctx.conn, ctx.now)
    out = []
    for destination, since in sorted(failing.items()):
        if destination not in ctx.config.destinations:
            continue
        last = ctx.conn.execute(
            sa.select(n.c.status, n.c.last_error)
            .where(n.c.destination == destination, n.c.action != "test", n.c.attempts > 0)
            .order_by(sa.func.coalesce(n.c.finished_at, n.c.next_attempt_at).desc())
            .limit(1)
        ).first()
        for_good = last is not None and last.status in ("failed", "gave_up")
        if not for_good and ctx.now - since < DELIVERY_FAILING_AFTER:
            continue
        error = (last.last_error if last is not None else None) or "failed"
        out.append(
            Finding(
                rule="alert_delivery_failed",
                key=destination,
                severity="error",
                title="Alert Delivery Failing",
                summary=f"Alerts to {destination} have not arrived for "
                f"{format_duration(max(ctx.now - since, 0.0))}: {error}"[:500],
                details={
                    "destination": destination,
                    "exclude_destination": destination,
                    "failing_since": since,
                },
                at=since,
            )
        )
    return out


def _group_by_lineage(ctx: RuleContext, findings: list[Finding]) -> None:
    """Downstream freshness and failure alerts caused by a failing upstream asset become its impact."""
    failing = {f.asset: f for f in findings if f.rule == "asset_failed" and f.asset}
    if not failing:
        return
    for root, finding in failing.items():
        impact = ctx.downstream(root)
        finding.details["impact"] = impact
        finding.details["dashboards"] = [
            n for n in impact if ctx.graph.nodes[n].kind in EXTERNAL_KINDS
        ]
    for finding in findings:
        if (
            finding.rule not in ("freshness", "asset_failed", "failure_rate", "absence")
            or not finding.asset
        ):
            continue
        upstream_failures = [
            root
            for root in failing
            if root != finding.asset and finding.asset in ctx.downstream(root)
        ]
        if not upstream_failures:
            continue
        # The most upstream failure: one with no failing asset above it.
        roots = [
            r
            for r in upstream_failures
            if not any(r in ctx.downstream(o) for o in upstream_failures if o != r)
        ]
        finding.parent = failing[sorted(roots or upstream_failures)[0]].fingerprint


RULES: tuple[tuple[str, Callable[[RuleContext], list[Finding]]], ...] = (
    ("failure", _failures),
    ("checks", _checks),
    ("freshness", _freshness),
    ("late", _late),
    ("failure_rate", _failure_rate),
    ("slow_and_volume", _slow_and_volume),
    ("schema_drift", _schema_drift),
    ("thresholds", _thresholds),
    ("absences", _absences),
    ("delivery", _delivery_failures),
)


def evaluate_rules(
    conn: sa.Connection,
    config: AlertingConfig,
    *,
    now: float,
    context: RuleContext | None = None,
) -> list[Finding]:
    """Every finding that holds at `now`, grouped by lineage."""
    ctx = context or RuleContext(conn, config, now)
    enabled = config.rules
    findings: list[Finding] = []
    for name, rule in RULES:
        if name == "failure" and not enabled.failure:
            continue
        if name == "checks" and not enabled.checks:
            continue
        if name == "freshness" and not enabled.freshness:
            continue
        if name == "late" and not (enabled.freshness and enabled.learned_freshness):
            continue
        findings.extend(rule(ctx))
    _group_by_lineage(ctx, findings)
    by_fingerprint: dict[str, Finding] = {}
    for finding in findings:
        by_fingerprint.setdefault(finding.fingerprint, finding)
    return list(by_fingerprint.values())
