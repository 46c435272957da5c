"""Service level objectives per asset: availability and freshness against targets, error budgets.

Pure: it reads the store and returns an `SloReport`; the CLI and the server only format it.
The period is half-open, `until - period <= t < until`. Fractions are 0..1.

- availability: successful / finished (success + failure) materializations started in the
  period, against the asset's availability target (DEFAULT_TARGET when the asset declares
  only a freshness SLA).
- freshness compliance: the share of the period during which the asset was within its
  freshness SLA. At time t the asset is fresh when t - (end of the latest successful
  materialization at or before t) <= SLA, so the fresh time is the union of [end, end + SLA]
  over the success end times, clipped to the period; a success before the period counts, and
  time before any success is not fresh. Computed exactly from the sorted end times. Its target
  is the availability target. The measurement starts at the asset's first recorded
  materialization when that lies inside the period: lakelens cannot know how fresh an asset was
  before it recorded anything about it (a new install, a new asset, pruned history).
- error budget: allowed bad fraction = 1 - target; consumed = actual bad fraction / allowed;
  remaining = 1 - consumed (negative once exhausted); burn rate = actual bad fraction /
  allowed bad fraction over the period (1.0 uses exactly the budget). Over one period the burn
  rate equals the share consumed.
- status: BREACHED (actual below target), AT RISK (less than 25% of the budget left), OK;
  NO DATA when no materialization finished in the period. An asset shows its worst objective.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lakelens.analysis._db import borrow, connection
from lakelens.analysis.rollups import whole_hours, window_totals
from lakelens.errors import InvalidArgumentError
from lakelens.store import schema

if TYPE_CHECKING:
    from lakelens.store import Store

__all__ = [
    "AT_RISK",
    "AT_RISK_REMAINING",
    "BREACHED",
    "DEFAULT_TARGET",
    "NO_DATA",
    "OK",
    "AssetSlo",
    "ErrorBudget",
    "Objective",
    "SloReport",
    "error_budget",
    "fresh_seconds",
    "slo_report",
]

DEFAULT_TARGET = 0.99
AT_RISK_REMAINING = 0.25
OK, AT_RISK, BREACHED, NO_DATA = "OK", "AT RISK", "BREACHED", "NO DATA"
# Worst first: the order of the report and how an asset's objectives combine.
_SEVERITY = {BREACHED: 0, AT_RISK: 1, NO_DATA: 2, OK: 3}
# Kinds no pipeline materializes: they are not listed as lacking an SLO.
_NOT_PRODUCED = ("external", "source", "dashboard")
# Fractions computed from sums of seconds may miss the target by rounding alone.
_EPSILON = 1e-9


@dataclass(frozen=True)
class ErrorBudget:
    """How much of the allowed bad fraction the period used.

    consumed, remaining and burn_rate are None when the target is 100% (nothing is allowed)
    and something went wrong; exhausted is then True.
    """

    allowed: float
    bad: float
    consumed: float | None
    remaining: float | None
    burn_rate: float | None
    exhausted: bool


@dataclass(frozen=True)
class Objective:
    """One SLO of an asset: kind "availability" (good/total in materializations) or
    "freshness" (good/total in seconds), measured over [since, until) of the report.
    actual is None when there is nothing to measure."""

    kind: str
    since: float
    actual: float | None
    target: float
    good: float
    total: float
    budget: ErrorBudget | None
    status: str


@dataclass(frozen=True)
class AssetSlo:
    """An asset with declared targets; target_is_default when only a freshness SLA is declared."""

    asset: str
    owner: str | None
    layer: str | None
    target: float
    target_is_default: bool
    freshness_seconds: float | None
    availability: Objective
    freshness: Objective | None
    status: str


@dataclass(frozen=True)
class SloReport:
    """Everything `lakelens metrics slo` shows: worst assets first, then the names without an SLO."""

    since: float
    until: float
    period_seconds: float
    default_target: float
    recorded: bool
    assets: tuple[AssetSlo, ...]
    undeclared: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def error_budget(actual: float, target: float) -> ErrorBudget:
    """The error budget of an objective that reached `actual` against `target` (fractions)."""
    allowed = 1.0 - target
    bad = max(0.0, 1.0 - actual)
    if allowed <= 0:
        spent = bad > _EPSILON
        zero = None if spent else 0.0
        return ErrorBudget(allowed, bad, zero, None if spent else 1.0, zero, spent)
    consumed = bad / allowed
    remaining = 1.0 - consumed
    return ErrorBudget(allowed, bad, consumed, remaining, consumed, remaining <= _EPSILON)


def _status(actual: float | None, target: float, budget: ErrorBudget | None) -> str:
    if actual is None or budget is None:
        return NO_DATA
    if actual < target - _EPSILON:
        return BREACHED
    if budget.remaining is None or budget.remaining < AT_RISK_REMAINING:
        return AT_RISK
    return OK


def _objective(kind: str, since: float, good: float, total: float, target: float) -> Objective:
    if total <= 0:
        return Objective(kind, since, None, target, good, total, None, NO_DATA)
    actual = good / total
    budget = error_budget(actual, target)
    return Objective(
        kind, since, actual, target, good, total, budget, _status(actual, target, budget)
    )


def fresh_seconds(ends: Iterable[float], sla: float, since: float, until: float) -> float:
    """Seconds of [since, until) within `sla` of the latest success end at or before them."""
    fresh = 0.0
    covered = since  # everything before this is counted already
    for end in sorted(ends):
        low, high = max(end, covered), min(end + sla, until)
        if high > low:
            fresh += high - low
            covered = high
    return fresh


def slo_report(
    store: Store | sa.Connection | sa.Engine, *, period: float, until: float | None = None
) -> SloReport:
    """Availability and freshness SLOs per asset over [until - period, until) (until None: now)."""
    if not math.isfinite(period) or period <= 0:
        raise InvalidArgumentError(f"Invalid period={period!r}: expected seconds above 0.")
    until = time.time() if until is None else until
    since = until - period
    a, m = schema.assets, schema.materializations
    declared = sa.or_(a.c.availability_target.is_not(None), a.c.freshness_seconds.is_not(None))
    with connection(store) as conn:
        recorded = conn.execute(sa.select(m.c.id).limit(1)).first() is not None
        targets = conn.execute(
            sa.select(
                a.c.name, a.c.owner, a.c.layer, a.c.availability_target, a.c.freshness_seconds
            )
            .where(declared)
            .order_by(a.c.name)
        ).all()
        undeclared = tuple(
            conn.execute(
                sa.select(a.c.name)
                .where(sa.not_(declared), a.c.kind.not_in(_NOT_PRODUCED))
                .order_by(a.c.name)
            ).scalars()
        )
        hours = whole_hours(since, until)
        if hours is None:
            outcomes = _outcomes(conn, since, until)
        else:  # a long period: whole hours from the rollups, exact like the rows
            totals = window_totals(borrow(conn), since, until, hours)
            outcomes = {
                name: (t.successes, t.failures)
                for name, t in totals.assets.items()
                if t.successes or t.failures
            }
        timelines = {
            row.name: _timeline(conn, row.name, since, until)
            for row in targets
            if row.freshness_seconds is not None
        }

    assets = []
    for row in targets:
        # Rounded: '99.9%' is stored as 0.9990000000000001.
        target = (
            DEFAULT_TARGET
            if row.availability_target is None
            else round(float(row.availability_target), 12)
        )
        success, failure = outcomes.get(row.name, (0, 0))
        availability = _objective("availability", since, success, success + failure, target)
        freshness = None
        if row.freshness_seconds is not None:
            first, ends = timelines[row.name]
            start = since if first is None else min(max(since, first), until)
            fresh = fresh_seconds(ends, row.freshness_seconds, start, until)
            total = 0.0 if first is None else until - start
            freshness = _objective("freshness", start, fresh, total, target)
        objectives = [o for o in (availability, freshness) if o is not None]
        assets.append(
            AssetSlo(
                asset=row.name,
                owner=row.owner,
                layer=row.layer,
                target=target,
                target_is_default=row.availability_target is None,
                freshness_seconds=row.freshness_seconds,
                availability=availability,
                freshness=freshness,
                status=min((o.status for o in objectives), key=_SEVERITY.__getitem__),
            )
        )
    assets.sort(key=lambda s: (_SEVERITY[s.status], _least_remaining(s), s.asset))
    return SloReport(
        since=since,
        until=until,
        period_seconds=period,
        default_target=DEFAULT_TARGET,
        recorded=recorded,
        assets=tuple(assets),
        undeclared=undeclared,
    )


def _least_remaining(slo: AssetSlo) -> float:
    left = [
        o.budget.remaining if o.budget.remaining is not None else -math.inf
        for o in (slo.availability, slo.freshness)
        if o is not None and o.budget is not None
    ]
    return min(left, default=math.inf)


def _outcomes(conn: sa.Connection, since: float, until: float) -> dict[str, tuple[int, int]]:
    """(successes, failures) per asset among materializations started in the period."""
    m = schema.materializations
    # (status, start_time) index: one range scan per status.
    rows = conn.execute(
        sa.select(m.c.asset, m.c.status, sa.func.count())
        .where(
            m.c.status.in_(("success", "failure")), m.c.start_time >= since, m.c.start_time < until
        )
        .group_by(m.c.asset, m.c.status)
    )
    counts: dict[str, tuple[int, int]] = {}
    for asset, status, count in rows:
        success, failure = counts.get(asset, (0, 0))
        if status == "success":
            success = int(count)
        else:
            failure = int(count)
        counts[asset] = (success, failure)
    return counts


def _timeline(
    conn: sa.Connection, asset: str, since: float, until: float
) -> tuple[float | None, list[float]]:
    """The asset's first recorded start (None: never materialized), and the end times of its
    successes started in the period and of the last one started before it.

    Every bound comes from the (asset, start_time) index: the first start, the last success
    started before the period (walking the index backwards), then every success started from
    it to `until`. A success that outlasted a later-started one before the period is not
    looked for.
    """
    m = schema.materializations
    first = conn.execute(sa.select(sa.func.min(m.c.start_time)).where(m.c.asset == asset)).scalar()
    # `status || ''` keeps SQLite (which has no statistics here) on the (asset, start_time) index:
    # the (status, start_time) one would walk the successes of every asset.
    success = [m.c.asset == asset, m.c.status.concat("") == "success"]
    before = (
        sa.select(m.c.start_time)
        .where(*success, m.c.start_time < since)
        .order_by(m.c.start_time.desc())
        .limit(1)
        .scalar_subquery()
    )
    ends = conn.execute(
        sa.select(sa.func.coalesce(m.c.end_time, m.c.start_time)).where(
            *success,
            m.c.start_time >= sa.func.coalesce(before, since),
            m.c.start_time < until,
        )
    ).scalars()
    return (None if first is None else float(first)), [float(end) for end in ends]
