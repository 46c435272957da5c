"""Prometheus alerting rules for the series lakelens exposes on `/metrics`.

Freshness rules come in two kinds: one rule per asset whose SLA the store knows (the
threshold written out, the owner as a label for Alertmanager routing), and one generic rule
comparing `asset_freshness_seconds` with `asset_freshness_sla_seconds` for every other asset,
so assets declared after the file was generated are covered too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lakelens.errors import InvalidArgumentError
from lakelens.store import schema

if TYPE_CHECKING:
    from lakelens.store import Store

__all__ = [
    "RULE_NAMES",
    "AssetSla",
    "RuleOptions",
    "asset_slas",
    "build_rules",
    "prom_duration",
    "promql_string",
    "render_rules",
    "rules_for_store",
]

RULE_NAMES = (
    "DatasetFreshness",
    "ValidationFailure",
    "AssetErrorRate",
    "LakelensDown",
    "AlertDeliveryFailing",
    "AlertOutboxBacklog",
    "EvaluatorStalled",
    "AlertWorkerStalled",
    "IngestWriterSaturated",
)


@dataclass(frozen=True)
class AssetSla:
    """An asset's freshness SLA (seconds) and owner, as the store knows them."""

    name: str
    seconds: float
    owner: str | None = None


@dataclass(frozen=True)
class RuleOptions:
    """Thresholds and `for:` durations (seconds); `for_override` sets every `for:` at once."""

    job: str = "lakelens"
    validation_threshold: float = 95.0
    error_ratio: float = 0.10
    error_window: float = 300.0
    delivery_window: float = 900.0
    delivery_failed_ratio: float = 0.5
    outbox_backlog: float = 900.0
    evaluator_stall: float = 300.0
    worker_stall: float = 120.0
    writer_busy: float = 0.9
    for_seconds: dict[str, float] = field(
        default_factory=lambda: {
            "DatasetFreshness": 300.0,
            "ValidationFailure": 600.0,
            "AssetErrorRate": 60.0,
            "LakelensDown": 60.0,
            "AlertDeliveryFailing": 300.0,
            "AlertOutboxBacklog": 300.0,
            "EvaluatorStalled": 120.0,
            "AlertWorkerStalled": 120.0,
            "IngestWriterSaturated": 900.0,
        }
    )
    for_override: float | None = None

    def for_(self, rule: str) -> str:
        seconds = self.for_override if self.for_override is not None else self.for_seconds[rule]
        return prom_duration(seconds)

    def with_for(self, seconds: float | None) -> RuleOptions:
        return replace(self, for_override=seconds)


def prom_duration(seconds: float) -> str:
    """Prometheus duration text: 300 → '5m', 5400 → '1h30m', 0.5 → '500ms', 0 → '0s'."""
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidArgumentError(f"Invalid duration {seconds!r}: expected seconds >= 0.")
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    if millis:
        parts.append(f"{millis}ms")
    return "".join(parts)


def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal for a label value."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def asset_slas(conn: sa.Connection) -> list[AssetSla]:
    """Assets with a declared freshness SLA, by name."""
    a = schema.assets
    rows = conn.execute(
        sa.select(a.c.name, a.c.freshness_seconds, a.c.owner)
        .where(a.c.freshness_seconds.is_not(None), a.c.freshness_seconds > 0)
        .order_by(a.c.name)
    )
    return [AssetSla(name, float(seconds), owner) for name, seconds, owner in rows]


def _rule(
    alert: str,
    expr: str,
    options: RuleOptions,
    severity: str,
    summary: str,
    description: str,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "alert": alert,
        "expr": expr,
        "for": options.for_(alert),
        "labels": {"severity": severity, "service": "lakelens", **(labels or {})},
        "annotations": {"summary": summary, "description": description},
    }


def _freshness_rules(slas: list[AssetSla], options: RuleOptions) -> list[dict[str, Any]]:
    rules = []
    for sla in slas:
        # asset_name as a rule label too: promtool rejects rules with equal names and labels.
        labels = {"asset_name": sla.name, "sla": prom_duration(sla.seconds)}
        if sla.owner:
            labels["owner"] = sla.owner
        rules.append(
            _rule(
                "DatasetFreshness",
                f"asset_freshness_seconds{{asset_name={promql_string(sla.name)}}}"
                f" > {sla.seconds:g}",
                options,
                "warning",
                "{{ $labels.asset_name }} is stale",
                "{{ $labels.asset_name }} last materialized successfully "
                "{{ $value | humanizeDuration }} ago; its freshness SLA is "
                f"{prom_duration(sla.seconds)}.",
                labels,
            )
        )
    # Every asset not listed above, with the SLA lakelens exposes next to its age.
    excluded = "".join(f",asset_name!={promql_string(s.name)}" for s in slas).lstrip(",")
    selector = f"{{{excluded}}}" if excluded else ""
    rules.append(
        _rule(
            "DatasetFreshness",
            f"asset_freshness_seconds{selector} > asset_freshness_sla_seconds",
            options,
            "warning",
            "{{ $labels.asset_name }} is stale",
            "{{ $labels.asset_name }} last materialized successfully "
            "{{ $value | humanizeDuration }} ago, longer than its freshness SLA.",
        )
    )
    return rules


def build_rules(slas: list[AssetSla], options: RuleOptions | None = None) -> dict[str, Any]:
    """The rules file (as a dict ready for YAML) for assets with `slas`."""
    o = options or RuleOptions()
    err = prom_duration(o.error_window)
    dwin = prom_duration(o.delivery_window)
    job = promql_string(o.job)
    data_rules = [
        *_freshness_rules(slas, o),
        _rule(
            "ValidationFailure",
            f"validation_pass_rate < {o.validation_threshold:g}",
            o,
            "warning",
            "{{ $labels.check_name }} on {{ $labels.asset_name }} passes "
            '{{ $value | printf "%.1f" }}% of the time',
            f"The check's pass rate is below {o.validation_threshold:g}%. "
            "See `lakelens metrics asset {{ $labels.asset_name }}`.",
        ),
        _rule(
            "AssetErrorRate",
            f"(sum by (asset_name) (rate(asset_execution_failures_total[{err}]))"
            f" / sum by (asset_name) (rate(asset_executions_total[{err}])))"
            f" > {o.error_ratio:g}",
            o,
            "critical",
            "{{ $labels.asset_name }} fails {{ $value | humanizePercentage }} of its runs",
            f"More than {o.error_ratio:.0%} of the materializations of "
            f"{{{{ $labels.asset_name }}}} failed over the last {err}. "
            "See `lakelens why {{ $labels.asset_name }}`.",
        ),
    ]
    self_rules = [
        _rule(
            "LakelensDown",
            f"up{{job={job}}} == 0",
            o,
            "critical",
            "lakelens at {{ $labels.instance }} is down",
            "Prometheus cannot scrape lakelens at {{ $labels.instance }}: no metrics, "
            "freshness or error-rate alerts come from it until it is back.",
        ),
        _rule(
            "AlertDeliveryFailing",
            f"(sum by (destination) (increase(lakelens_alert_deliveries_failed_total[{dwin}]))"
            f" / sum by (destination) (increase(lakelens_alert_deliveries_total[{dwin}])))"
            f" > {o.delivery_failed_ratio:g}",
            o,
            "critical",
            "Alert delivery to {{ $labels.destination }} is failing",
            f"{{{{ $value | humanizePercentage }}}} of delivery attempts to "
            f"{{{{ $labels.destination }}}} failed over the last {dwin}. "
            "See `lakelens alerts history`.",
        ),
        _rule(
            "AlertOutboxBacklog",
            f"max by (job) (lakelens_alert_outbox_oldest_pending_seconds) > {o.outbox_backlog:g}",
            o,
            "warning",
            "lakelens notifications are waiting to be delivered",
            "The oldest undelivered notification has waited {{ $value | humanizeDuration }}.",
        ),
        _rule(
            "EvaluatorStalled",
            "time() - max by (job) (lakelens_evaluator_last_run_timestamp)"
            f" > {o.evaluator_stall:g}",
            o,
            "critical",
            "The lakelens alert evaluator has stopped",
            "No lakelens server has evaluated alert rules for "
            "{{ $value | humanizeDuration }}: failures and SLA breaches are not being noticed.",
        ),
        _rule(
            "AlertWorkerStalled",
            "time() - max by (job) (lakelens_alert_worker_last_run_timestamp)"
            f" > {o.worker_stall:g}",
            o,
            "critical",
            "The lakelens alert delivery worker has stopped",
            "No notification has been sent or retried for {{ $value | humanizeDuration }}.",
        ),
        _rule(
            "IngestWriterSaturated",
            "max by (job, instance) (rate(lakelens_ingest_writer_busy_seconds_total[10m]))"
            f" > {o.writer_busy:g}",
            o,
            "warning",
            "lakelens at {{ $labels.instance }} ingests as fast as its one writer can",
            "The ingest writer of {{ $labels.instance }} was busy {{ $value | humanizePercentage }}"
            " of the last 10m: requests queue for it and clients wait. On PostgreSQL, spread the "
            "clients over another `lakelens serve` on the same store. On SQLite a second server "
            "does not help (the file has one writer): send more events per request (the SDK's "
            "batches, an array of RunEvents per POST to /api/v1/lineage) or move the store to "
            "PostgreSQL.",
        ),
    ]
    return {
        "groups": [
            {"name": "lakelens-data", "rules": data_rules},
            {"name": "lakelens-self", "rules": self_rules},
        ]
    }


def render_rules(document: dict[str, Any], *, source: str | None = None) -> str:
    """YAML text with a header saying how it was made."""
    import yaml

    header = "# Prometheus alerting rules generated by `lakelens export prometheus-rules`.\n"
    if source:
        header += f"# Per-asset freshness SLAs from {source}.\n"
    header += "# Regenerate after changing SLAs; edits here are overwritten.\n"
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=10_000)
    return header + body


def rules_for_store(store: Store | None, options: RuleOptions | None = None) -> str:
    """The rules file text for `store` (generic freshness rule only when None)."""
    slas: list[AssetSla] = []
    source = None
    if store is not None:
        with store.connect() as conn:
            slas = asset_slas(conn)
        source = store.location
    return render_rules(build_rules(slas, options), source=source)
