"""The data itself: a table's size outside its learned band; per profiled column a null rate
that rose, distinct values that shifted, values outside the learned range.

- `row_count_anomaly`: a monitored table's size (its latest warehouse observation) against
  the band of its recent sizes moved along its trend. For a table no monitor watches, the row
  count of its latest profile, unless that is what its run's materialization wrote: those
  rows are `volume_anomaly`'s, which also judges the growth a monitor saw (so a drop, which
  no materialization records, and a size out of line are what this rule adds).
- `null_rate_shift`, `distinct_shift`, `range_violation`: each column of the asset's latest
  profile against the same column in the profiles before it (analysis/data_baselines.py).

One finding per (rule, asset) or (rule, asset, column), keyed so that it stays one alert while
the condition holds; it resolves when the latest data is back within its expectation.
Feedback on a finding of these rules (`lakelens incidents feedback`): a false positive takes
that profile (or observation) out of the rule's history for the asset; "expected" says the
data changed on purpose, and the rule learns the asset again from the data after it.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from lakelens.alerts.config import DATA_RULES, DataRule
from lakelens.alerts.rules._context import Finding, RuleContext
from lakelens.analysis.data_baselines import (
    distinct_band,
    null_rate_limit,
    size_band,
    value_range,
)
from lakelens.analysis.profiles import StoredProfile, profiles
from lakelens.store import schema

ROW_COUNT, NULL_RATE, DISTINCT, RANGE = DATA_RULES
TITLES = {
    ROW_COUNT: "Row Count Anomaly",
    NULL_RATE: "Null Rate Shift",
    DISTINCT: "Distinct Values Shift",
    RANGE: "Values Out of Range",
}

# Earlier profiles each column is judged against: the latest ones.
PROFILE_HISTORY = 30
# Sizes a table is judged against: those of the 28 days before, at most this many.
SIZE_WINDOW = 28 * 86400.0
SIZE_HISTORY = 500
# A table no monitor has looked at for this long is not judged (its monitor was removed).
OBSERVATION_MAX_AGE = 3 * 86400.0
# The least spread of a size, relative to it (k of them either side): exact counts, and
# estimates (PostgreSQL's reltuples), which move between ANALYZEs without a row changing.
SIZE_FLOOR = 0.025
ESTIMATE_FLOOR = 0.05
# The monitors' cycle run ids (monitors/base.py RUN_PREFIX): an observation's run for feedback.
_MONITOR_RUN = "monitor:"


@dataclass(frozen=True)
class _Feedback:
    run_id: str
    rule: str | None
    kind: str  # false_positive | expected


@dataclass(frozen=True)
class _Point:
    time: float
    value: float
    run_id: str | None


def _data(ctx: RuleContext) -> list[Finding]:
    """Every data finding: table sizes from observations, then each profiled asset."""
    rules = ctx.config.rules
    settings = tuple(getattr(rules, name) for name in DATA_RULES)
    if not any(s.enabled for s in settings):
        return []
    feedback = _feedback(ctx)
    tuning = (rules.sensitivity, rules.baseline_overrides, settings)
    url = str(ctx.conn.engine.url)
    out: list[Finding] = []
    observed: set[str] = set()
    for asset, (latest, row_id) in sorted(_latest_times(ctx, schema.table_observations).items()):
        if ctx.now - latest > SIZE_WINDOW:
            continue
        observed.add(asset)  # its size is the warehouse's, not a profile's
        if not rules.row_count_anomaly.enabled or ctx.now - latest > OBSERVATION_MAX_AGE:
            continue
        told = feedback.get(asset, ())
        key: tuple[Any, ...] = (url, "observed", asset, latest, row_id, tuning, told)
        verdict = _JUDGED.get(key)
        if verdict is None:
            verdict = _keep(key, _judge_observed(ctx, asset, latest, told))
        out += verdict
    for asset, (latest, row_id) in sorted(_latest_times(ctx, schema.profiles).items()):
        state = ctx.assets.get(asset)
        run = (state.last_run_id, state.last_status) if state is not None else None
        sized = asset not in observed
        told = feedback.get(asset, ())
        key = (url, "profiled", asset, latest, row_id, sized, run, tuning, told)
        verdict = _JUDGED.get(key)
        if verdict is None:
            verdict = _keep(key, _judge_profiled(ctx, asset, latest, told, sized=sized))
        out += verdict
    return out


# A verdict is kept until the asset's latest data (or the settings, or feedback) change.
_JUDGED: dict[tuple[Any, ...], list[Finding]] = {}


def _keep(key: tuple[Any, ...], verdict: list[Finding]) -> list[Finding]:
    if len(_JUDGED) > 100_000:
        _JUDGED.clear()
    _JUDGED[key] = verdict
    return verdict


def _latest_times(ctx: RuleContext, table: sa.Table) -> dict[str, tuple[float, int]]:
    """Each asset's latest (time, id) in `table` (as of `now` when replaying). A loose index
    scan over (asset, time): a few index seeks per asset, not a read of every row."""
    name = table.name
    assert name in ("profiles", "table_observations")
    bound = " AND time <= :now" if ctx.as_of else ""
    latest = f"FROM {name} WHERE asset = names.name{bound} ORDER BY time DESC, id DESC LIMIT 1"
    query = sa.text(
        "WITH RECURSIVE names(name) AS ("
        f"SELECT min(asset) FROM {name} "
        "UNION ALL "
        f"SELECT (SELECT min(asset) FROM {name} WHERE asset > names.name) "
        "FROM names WHERE names.name IS NOT NULL) "
        f"SELECT name, (SELECT time {latest}), (SELECT id {latest}) "
        "FROM names WHERE name IS NOT NULL"
    )
    return {
        asset: (float(time), int(row_id))
        for asset, time, row_id in ctx.conn.execute(query, {"now": ctx.now})
        if time is not None
    }


def _feedback(ctx: RuleContext) -> dict[str, tuple[_Feedback, ...]]:
    """Feedback on the data rules' findings (or on no rule in particular), per asset."""
    f = schema.baseline_feedback
    found: dict[str, list[_Feedback]] = {}
    for row in ctx.conn.execute(
        sa.select(f.c.asset, f.c.run_id, f.c.rule, f.c.kind)
        .where(
            f.c.run_id.is_not(None),
            sa.or_(f.c.rule.is_(None), f.c.rule.in_(DATA_RULES)),
            ctx.upto(f.c.time),
        )
        .order_by(f.c.id)
    ):
        found.setdefault(row.asset, []).append(_Feedback(row.run_id, row.rule, row.kind))
    return {asset: tuple(items) for asset, items in found.items()}


def _kept(
    history: list[Any], latest_run: str | None, feedback: tuple[_Feedback, ...], rule: str
) -> list[Any] | None:
    """`history` (items with `run_id` and `time`) without what feedback took out of `rule`'s
    baseline; None when the latest data itself was taken out."""
    mine = [fb for fb in feedback if fb.rule in (None, rule)]
    if not mine:
        return history
    out = {fb.run_id for fb in mine}
    if latest_run is not None and latest_run in out:
        return None
    expected = {fb.run_id for fb in mine if fb.kind == "expected"}
    cut = max((h.time for h in history if h.run_id in expected), default=None)
    return [h for h in history if h.run_id not in out and (cut is None or h.time > cut)]


def _tuning(ctx: RuleContext, asset: str, rule: DataRule) -> tuple[float, str]:
    """(sensitivity, direction): an asset's override (alerts.rules.baselines.assets), else
    the rule's sensitivity, else the learned baselines'."""
    rules = ctx.config.rules
    own = rule.sensitivity or rules.sensitivity
    for glob, sensitivity, direction in rules.baseline_overrides:
        if fnmatch.fnmatchcase(asset, glob):
            return sensitivity or own, direction or "both"
    return own, "both"


# -- sizes ---------------------------------------------------------------------------------


def _cycle_run(monitor: str, at: float) -> str:
    """The run id of the monitor cycle that made an observation (monitors/base.py)."""
    return f"{_MONITOR_RUN}{monitor}:{round(at * 1000)}"


def _judge_observed(
    ctx: RuleContext, asset: str, latest_time: float, feedback: tuple[_Feedback, ...]
) -> list[Finding]:
    o = schema.table_observations
    rows = ctx.conn.execute(
        sa.select(o.c.monitor, o.c.time, o.c.row_count, o.c.row_count_estimated)
        .where(
            o.c.asset == asset,
            o.c.time <= latest_time,
            o.c.time >= latest_time - SIZE_WINDOW,
        )
        .order_by(o.c.time.desc(), o.c.id.desc())
        .limit(SIZE_HISTORY + 1)
    ).all()
    if not rows or rows[0].row_count is None:
        return []  # a view, or a table the monitor could not count
    latest = rows[0]
    run_id = _cycle_run(latest.monitor, latest.time)
    history = [
        _Point(r.time, float(r.row_count), _cycle_run(r.monitor, r.time))
        for r in reversed(rows[1:])
        if r.monitor == latest.monitor and r.row_count is not None
    ]
    kept = _kept(history, run_id, feedback, ROW_COUNT)
    if kept is None:
        return []
    estimated = bool(latest.row_count_estimated)
    return _size_finding(
        ctx,
        asset,
        value=int(latest.row_count),
        at=latest.time,
        history=kept,
        floor=ESTIMATE_FLOOR if estimated else SIZE_FLOOR,
        run_id=run_id,
        occurrence=None,  # a lasting condition: one occurrence until the size is back
        verb="holds",
        details={"source": "monitor", "monitor": latest.monitor, "estimated": estimated},
    )


def _profiled_size(
    ctx: RuleContext, asset: str, latest: StoredProfile, feedback: tuple[_Feedback, ...]
) -> list[Finding]:
    if latest.row_count is None:
        return []
    if latest.run_id is not None:
        m = schema.materializations
        written = ctx.conn.execute(
            sa.select(m.c.rows).where(m.c.asset == asset, m.c.run_id == latest.run_id)
        ).scalars()
        if latest.row_count in set(written):
            return []  # what the run wrote: volume_anomaly judges it
    p = schema.profiles
    rows = ctx.conn.execute(
        sa.select(p.c.time, p.c.row_count, p.c.run_id)
        .where(
            p.c.asset == asset,
            p.c.row_count.is_not(None),
            p.c.time >= latest.time - SIZE_WINDOW,
            sa.or_(p.c.time < latest.time, sa.and_(p.c.time == latest.time, p.c.id < latest.id)),
        )
        .order_by(p.c.time.desc(), p.c.id.desc())
        .limit(SIZE_HISTORY)
    ).all()
    history = [_Point(r.time, float(r.row_count), r.run_id) for r in reversed(rows)]
    kept = _kept(history, latest.run_id, feedback, ROW_COUNT)
    if kept is None:
        return []
    return _size_finding(
        ctx,
        asset,
        value=latest.row_count,
        at=latest.time,
        history=kept,
        floor=SIZE_FLOOR,
        run_id=latest.run_id,
        occurrence=f"profile:{latest.id}",
        verb="profiled",
        details={"source": "profile", "profile_id": latest.id, "estimated": False},
    )


def _size_finding(
    ctx: RuleContext,
    asset: str,
    *,
    value: int,
    at: float,
    history: list[_Point],
    floor: float,
    run_id: str | None,
    occurrence: str | None,
    verb: str,
    details: dict[str, Any],
) -> list[Finding]:
    rule = ctx.config.rules.row_count_anomaly
    k, direction = _tuning(ctx, asset, rule)
    expected = size_band(
        [(p.time, p.value) for p in history],
        at,
        k=k,
        min_points=rule.min_history,
        relative_floor=floor,
    )
    if expected is None:
        return []
    dropped = value < expected.low and direction in ("both", "drop")
    spiked = value > expected.high and direction in ("both", "spike")
    if not (dropped or spiked):
        return []
    change = 100.0 * (value - expected.center) / expected.center if expected.center else 0.0
    shown = f"~{value:,}" if details.get("estimated") else f"{value:,}"
    return [
        Finding(
            rule=ROW_COUNT,
            key=asset,
            severity=rule.severity,
            title=TITLES[ROW_COUNT],
            summary=f"{asset} {verb} {shown} rows, {'below' if dropped else 'above'} its "
            f"expected {max(expected.low, 0):,.0f}–{expected.high:,.0f} "
            f"({expected.describe()}, {change:+.0f}%)",
            asset=asset,
            run_id=run_id,
            occurrence=occurrence,
            at=at,
            details={
                **details,
                "metric": "row_count",
                "row_count": value,
                "median": expected.center,
                "low": expected.low,
                "high": expected.high,
                "per_day": expected.per_day,
                "seasonal": expected.band.seasonal,
                "points": expected.band.points,
                "direction": "drop" if dropped else "spike",
            },
        )
    ]


# -- columns -------------------------------------------------------------------------------


def _judge_profiled(
    ctx: RuleContext,
    asset: str,
    latest_time: float,
    feedback: tuple[_Feedback, ...],
    *,
    sized: bool,
) -> list[Finding]:
    rules = ctx.config.rules
    found = [
        p
        for p in profiles(ctx.conn, asset, limit=PROFILE_HISTORY + 10, until=latest_time)
        if p.columns
    ]
    if not found:
        return []  # only failed profiles: nothing to judge
    latest, earlier = found[0], list(reversed(found[1 : PROFILE_HISTORY + 1]))
    out: list[Finding] = []
    if sized and rules.row_count_anomaly.enabled:
        out += _profiled_size(ctx, asset, latest, feedback)
    for name, judge in ((NULL_RATE, _null_rate), (DISTINCT, _distinct), (RANGE, _range)):
        rule: DataRule = getattr(rules, name)
        if not rule.enabled:
            continue
        history = _kept(earlier, latest.run_id, feedback, name)
        if history is None:
            continue
        k, _ = _tuning(ctx, asset, rule)
        for column, stats in latest.columns.items():
            if not isinstance(stats, dict):
                continue
            same = [
                (p.time, p.columns[column])
                for p in history
                if isinstance(p.columns.get(column), dict)
                and p.columns[column].get("type") == stats.get("type")
            ]
            verdict = judge(stats, same, rule, k, latest.time)
            if verdict is None:
                continue
            summary, details = verdict
            out.append(
                Finding(
                    rule=name,
                    key=f"{asset}|{column}",
                    severity=rule.severity,
                    title=TITLES[name],
                    summary=f"{asset}.{column} {summary}"[:500],
                    asset=asset,
                    run_id=latest.run_id,
                    occurrence=f"profile:{latest.id}",
                    at=latest.time,
                    details={"column": column, "profile_id": latest.id, **details},
                )
            )
    return out


_Verdict = tuple[str, dict[str, Any]] | None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _null_rate(
    stats: dict[str, Any],
    same: list[tuple[float, dict[str, Any]]],
    rule: DataRule,
    k: float,
    at: float,
) -> _Verdict:
    now = _number(stats.get("null_rate"))
    if now is None:
        return None
    values = [v for _, s in same if (v := _number(s.get("null_rate"))) is not None]
    limit = null_rate_limit(values, k=k, min_change=rule.min_change, min_points=rule.min_history)
    if limit is None or now <= limit.high:
        return None
    return (
        f"is {now:.1%} null, up from {limit.center:.1%} (the median of its last "
        f"{limit.points} profiles; above {limit.high:.1%} is a shift)",
        {
            "metric": "null_rate",
            "before": limit.center,
            "after": now,
            "high": limit.high,
            "points": limit.points,
        },
    )


def _distinct(
    stats: dict[str, Any],
    same: list[tuple[float, dict[str, Any]]],
    rule: DataRule,
    k: float,
    at: float,
) -> _Verdict:
    distinct, count = _number(stats.get("distinct")), _number(stats.get("count"))
    if distinct is None or not count:
        return None  # no values at all: the null rate tells
    pairs = [
        (d, n)
        for _, s in same
        if (d := _number(s.get("distinct"))) is not None and (n := _number(s.get("count")))
    ]
    approx = bool(stats.get("distinct_approx"))
    expected = distinct_band(
        pairs,
        k=k,
        min_points=rule.min_history,
        # Estimated distinct values (a sampled frame) wobble more.
        relative_floor=0.1 if approx else 0.05,
    )
    if expected is None:
        return None
    value = expected.value(distinct, count)
    if value is None or expected.holds(value):
        return None
    mark = "~" if approx else ""
    way = "fewer" if value < expected.low else "more"
    if expected.metric == "count":
        text = (
            f"has {mark}{distinct:,.0f} distinct values, {way} than its expected "
            f"{max(expected.low, 0):,.1f}–{expected.high:,.1f} (usually {expected.center:,.0f}, "
            f"over its last {expected.points} profiles)"
        )
    else:
        text = (
            f"has {mark}{distinct:,.0f} distinct values in {count:,.0f} ({value:.1%}), {way} "
            f"than its expected {max(expected.low, 0):.1%}–{expected.high:.1%} (usually "
            f"{expected.center:.1%} distinct, over its last {expected.points} profiles)"
        )
    return text, {
        "metric": f"distinct_{expected.metric}",
        "before": expected.center,
        "after": value,
        "low": expected.low,
        "high": expected.high,
        "distinct": distinct,
        "count": count,
        "approx": approx,
        "points": expected.points,
    }


def _bound(stats: dict[str, Any], key: str) -> float | None:
    """A numeric column's min or max, or a time column's as epoch seconds."""
    value = stats.get(key)
    if stats.get("type") == "time" and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    if stats.get("type") in ("integer", "float"):
        return _number(value)
    return None


def _shown(value: float, kind: Any) -> str:
    if kind == "time":
        moment = datetime.fromtimestamp(value, timezone.utc)
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _range(
    stats: dict[str, Any],
    same: list[tuple[float, dict[str, Any]]],
    rule: DataRule,
    k: float,
    at: float,
) -> _Verdict:
    low, high = _bound(stats, "min"), _bound(stats, "max")
    if low is None or high is None:
        return None
    history = [
        (t, lo, hi)
        for t, s in same
        if (lo := _bound(s, "min")) is not None and (hi := _bound(s, "max")) is not None
    ]
    if not history:
        return None
    allowed = value_range(history, at, k=k, min_points=rule.min_history)
    if allowed is None:
        return None
    below, above = low < allowed.low, high > allowed.high
    if not (below or above):
        return None
    kind = stats.get("type")
    parts = []
    if below:
        parts.append(f"min {_shown(low, kind)} is below {_shown(allowed.low, kind)}")
    if above:
        parts.append(f"max {_shown(high, kind)} is above {_shown(allowed.high, kind)}")
    return (
        f"{' and '.join(parts)}: outside its learned range "
        f"{_shown(allowed.seen_low, kind)}–{_shown(allowed.seen_high, kind)} "
        f"(over its last {allowed.points} profiles)",
        {
            "metric": "range",
            "min": low,
            "max": high,
            "low": allowed.low,
            "high": allowed.high,
            "seen_low": allowed.seen_low,
            "seen_high": allowed.seen_high,
            "trending": allowed.trending_low or allowed.trending_high,
            "side": "both" if below and above else ("min" if below else "max"),
            "points": allowed.points,
        },
    )
