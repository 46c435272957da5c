"""Alert rules: each turns the store's current state into findings (conditions that hold now).

A finding's fingerprint is the dedup key: sha256 of "rule|asset|detail" where detail is the
error class (failures), the check name (checks), the job (heartbeats) or the rule name
(thresholds). Findings are recomputed on every evaluation; one that is no longer produced
means its condition cleared and its alert resolves.

One module per concept: outcomes (failures, checks, failure rates), freshness (SLA,
learned rhythm, heartbeats), volume (seasonal bands), data (table sizes, null rates, distinct
values, ranges), drift, custom thresholds, delivery, monitors (warehouses that cannot be read).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from lakelens.alerts.config import AlertingConfig
from lakelens.alerts.rules._context import Finding, RuleContext
from lakelens.alerts.rules.custom import _thresholds
from lakelens.alerts.rules.data import _data
from lakelens.alerts.rules.delivery import DELIVERY_FAILING_AFTER, _delivery_failures
from lakelens.alerts.rules.drift import _schema_drift
from lakelens.alerts.rules.freshness import _absences, _freshness, _late
from lakelens.alerts.rules.monitors import _monitor_failures
from lakelens.alerts.rules.outcomes import CHECK_LOOKBACK, _checks, _failure_rate, _failures
from lakelens.alerts.rules.volume import _slow_and_volume
from lakelens.analysis.lineage import EXTERNAL_KINDS

__all__ = [
    "CHECK_LOOKBACK",
    "DELIVERY_FAILING_AFTER",
    "RULES",
    "Finding",
    "RuleContext",
    "evaluate_rules",
]


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


def _one_per_fact(findings: list[Finding]) -> list[Finding]:
    """One finding per fact about a table's size. When volume_anomaly says an asset's rows
    went one way (what its latest change wrote), row_count_anomaly does not say it again; a
    table that is late has stopped growing, which is why it is smaller than its trend."""
    said = {
        (f.asset, f.details.get("direction"))
        for f in findings
        if f.rule == "volume_anomaly" and f.details.get("metric") == "rows"
    }
    said |= {(f.asset, "drop") for f in findings if f.rule in ("late", "freshness")}
    if not said:
        return findings
    return [
        f
        for f in findings
        if f.rule != "row_count_anomaly" or (f.asset, f.details.get("direction")) not in said
    ]


RULES: tuple[tuple[str, Callable[[RuleContext], list[Finding]]], ...] = (
    ("failure", _failures),
    ("checks", _checks),
    ("freshness", _freshness),
    ("late", _late),
    ("failure_rate", _failure_rate),
    ("slow_and_volume", _slow_and_volume),
    ("data", _data),
    ("schema_drift", _schema_drift),
    ("thresholds", _thresholds),
    ("absences", _absences),
    ("delivery", _delivery_failures),
    ("monitors", _monitor_failures),
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
    findings = _one_per_fact(findings)
    _group_by_lineage(ctx, findings)
    by_fingerprint: dict[str, Finding] = {}
    for finding in findings:
        by_fingerprint.setdefault(finding.fingerprint, finding)
    return list(by_fingerprint.values())
