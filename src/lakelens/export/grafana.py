"""Grafana dashboards (JSON) and provisioning files for the series lakelens exposes.

Every query uses only series `/metrics` serves (tests check each name against a real
scrape), rates go through `rate()`/`increase()` over counters, and quantiles through
`histogram_quantile()` over `sum by (le, …)` of bucket rates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakelens.export.prom_rules import promql_string

__all__ = [
    "DASHBOARDS",
    "GrafanaOptions",
    "dashboard_files",
    "dashboards",
    "datasources_yaml",
    "providers_yaml",
    "write_grafana",
]

SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
ASSET = 'asset_name=~"$asset"'
DASHBOARDS = (
    "lakelens-overview",
    "lakelens-asset-health",
    "lakelens-data-quality",
    "lakelens-self",
)


@dataclass(frozen=True)
class GrafanaOptions:
    """Where Grafana finds Prometheus, Loki, Alertmanager and the dashboard files."""

    prometheus_url: str = "http://prometheus:9090"
    loki_url: str = "http://loki:3100"
    alertmanager_url: str = "http://alertmanager:9093"
    dashboards_path: str = "/etc/grafana/dashboards/lakelens"
    job: str = "lakelens"


class _Layout:
    """Panels left to right, 24 grid columns wide, wrapping into rows."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.row_height = 0

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        self.add({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self.x, self.y, self.row_height = 0, self.y + 1, 0


def _targets(queries: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend}
        for i, (expr, legend) in enumerate(queries)
    ]


def _panel(
    kind: str,
    title: str,
    queries: list[tuple[str, str]],
    *,
    unit: str = "short",
    description: str = "",
    thresholds: list[tuple[float | None, str]] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    options: dict[str, Any] | None = None,
    instant: bool = False,
) -> dict[str, Any]:
    steps = [{"color": c, "value": v} for v, c in (thresholds or [(None, "green")])]
    defaults: dict[str, Any] = {
        "unit": unit,
        "thresholds": {"mode": "absolute", "steps": steps},
        "color": {"mode": "thresholds" if kind in ("stat", "table") else "palette-classic"},
    }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    targets = _targets(queries)
    if instant:
        for target in targets:
            target.update(instant=True, range=False, format="table")
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {},
    }


def _stat(title: str, expr: str, **kwargs: Any) -> dict[str, Any]:
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    return _panel("stat", title, [(expr, "")], options=options, **kwargs)


def _series(title: str, queries: list[tuple[str, str]], **kwargs: Any) -> dict[str, Any]:
    options = {
        "legend": {"displayMode": "list", "placement": "bottom"},
        "tooltip": {"mode": "multi"},
    }
    return _panel("timeseries", title, queries, options=options, **kwargs)


def _table(title: str, queries: list[tuple[str, str]], **kwargs: Any) -> dict[str, Any]:
    panel = _panel("table", title, queries, instant=True, **kwargs)
    panel["transformations"] = [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {"excludeByName": {"Time": True, "job": True, "instance": True}},
        },
    ]
    return panel


def _variables(*, asset: bool) -> list[dict[str, Any]]:
    variables: list[dict[str, Any]] = [
        {
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
        }
    ]
    if asset:
        query = "label_values(asset_executions_total, asset_name)"
        variables.append(
            {
                "name": "asset",
                "label": "Asset",
                "type": "query",
                "datasource": DS,
                "definition": query,
                "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
                "refresh": 2,
                "includeAll": True,
                "allValue": ".*",
                "multi": True,
                "sort": 1,
                "current": {},
                "hide": 0,
            }
        )
    return variables


def _dashboard(
    uid: str, title: str, description: str, layout: _Layout, *, asset: bool
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["lakelens"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": _variables(asset=asset)},
        "annotations": {"list": []},
        "links": [
            {
                "title": "lakelens dashboards",
                "type": "dashboards",
                "tags": ["lakelens"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "panels": layout.panels,
    }


def _quantiles(selector: str, by: str = "") -> list[tuple[str, str]]:
    group = f"le, {by}" if by else "le"
    legend = "p{q} {{asset_name}}" if by else "p{q}"
    return [
        (
            f"histogram_quantile({q / 100:g}, sum by ({group}) "
            f"(rate(asset_execution_seconds_bucket{{{selector}}}[{RATE}])))",
            legend.format(q=q),
        )
        for q in (50, 95, 99)
    ]


def _overview() -> dict[str, Any]:
    o = _Layout()
    ok = 'status="success"'
    o.add(
        _stat(
            "Success rate",
            f"sum(increase(asset_executions_total{{{ok}}}[$__range]))"
            " / sum(increase(asset_executions_total[$__range]))",
            unit="percentunit",
            thresholds=[(None, "red"), (0.9, "orange"), (0.99, "green")],
            description="Materializations that succeeded in the selected time range.",
        ),
        6,
        4,
    )
    o.add(
        _stat(
            "Materializations",
            "sum(increase(asset_executions_total[$__range]))",
            description="Finished materializations in the selected time range.",
        ),
        6,
        4,
    )
    o.add(
        _stat(
            "Failing assets",
            "count(max by (asset_name) (asset_failing) == 1) or vector(0)",
            thresholds=[(None, "green"), (1, "red")],
            description="Assets whose latest materialization failed.",
        ),
        6,
        4,
    )
    o.add(
        _stat(
            "Stale assets",
            "count(max by (asset_name) (asset_freshness_seconds - asset_freshness_sla_seconds) > 0)"
            " or vector(0)",
            thresholds=[(None, "green"), (1, "orange")],
            description="Assets older than their freshness SLA.",
        ),
        6,
        4,
    )
    o.add(
        _series(
            "Materializations by status",
            [(f"sum by (status) (rate(asset_executions_total[{RATE}]))", "{{status}}")],
            unit="ops",
        ),
        12,
        8,
    )
    o.add(_series("Duration, all assets", _quantiles(ok), unit="s"), 12, 8)
    o.add(
        _series(
            "Rows processed per second",
            [
                (
                    "sum by (asset_name) (rate(asset_rows_processed_total"
                    f'{{operation="processed"}}[{RATE}]))',
                    "{{asset_name}}",
                )
            ],
            unit="rowsps",
        ),
        12,
        8,
    )
    o.add(
        _series(
            "Failures per asset",
            [
                (
                    f"sum by (asset_name) (increase(asset_execution_failures_total[{RATE}])) > 0",
                    "{{asset_name}}",
                )
            ],
            unit="short",
        ),
        12,
        8,
    )
    o.add(
        _table(
            "Assets",
            [
                ("max by (asset_name) (asset_freshness_seconds)", "age"),
                ("max by (asset_name) (asset_freshness_sla_seconds)", "SLA"),
                ("max by (asset_name) (asset_failing)", "failing"),
            ],
            unit="s",
        ),
        24,
        10,
    )
    return _dashboard(
        "lakelens-overview",
        "lakelens / Pipeline overview",
        "Runs, success rate, latency, volume and freshness across every asset.",
        o,
        asset=False,
    )


def _asset_health() -> dict[str, Any]:
    a = _Layout()
    a.add(
        _series(
            "Age vs freshness SLA",
            [
                (f"max by (asset_name) (asset_freshness_seconds{{{ASSET}}})", "{{asset_name}} age"),
                (
                    f"max by (asset_name) (asset_freshness_sla_seconds{{{ASSET}}})",
                    "{{asset_name}} SLA",
                ),
            ],
            unit="s",
        ),
        12,
        8,
    )
    a.add(
        _series(
            "Failure ratio (5m)",
            [
                (
                    f"sum by (asset_name) (rate(asset_execution_failures_total{{{ASSET}}}[5m]))"
                    f" / sum by (asset_name) (rate(asset_executions_total{{{ASSET}}}[5m]))",
                    "{{asset_name}}",
                )
            ],
            unit="percentunit",
            minimum=0,
            maximum=1,
            thresholds=[(None, "green"), (0.1, "red")],
        ),
        12,
        8,
    )
    a.add(
        _series(
            "Duration p50 / p95 / p99",
            _quantiles(f'{ASSET}, status="success"', by="asset_name"),
            unit="s",
        ),
        12,
        8,
    )
    a.add(
        _series(
            "Rows in the last materialization",
            [(f"max by (asset_name) (asset_rows{{{ASSET}}})", "{{asset_name}}")],
        ),
        12,
        8,
    )
    a.add(
        _series(
            "Bytes processed per second",
            [
                (
                    f"sum by (asset_name) (rate(asset_bytes_processed_total{{{ASSET}}}[{RATE}]))",
                    "{{asset_name}}",
                )
            ],
            unit="Bps",
        ),
        12,
        8,
    )
    a.add(
        _series(
            "CPU seconds per second",
            [
                (
                    f"sum by (asset_name) (rate(asset_cpu_seconds_total{{{ASSET}}}[{RATE}]))",
                    "{{asset_name}}",
                )
            ],
        ),
        12,
        8,
    )
    a.add(
        _series(
            "Rows inserted / updated per second",
            [
                (
                    "sum by (asset_name, operation) (rate(asset_rows_processed_total"
                    f'{{{ASSET}, operation=~"inserted|updated"}}[{RATE}]))',
                    "{{asset_name}} {{operation}}",
                )
            ],
            unit="rowsps",
        ),
        12,
        8,
    )
    a.add(
        _series(
            "Last successful materialization",
            [
                (
                    f"time() - max by (asset_name) (asset_last_update_timestamp{{{ASSET}}})",
                    "{{asset_name}}",
                )
            ],
            unit="s",
        ),
        12,
        8,
    )
    _usage_panels(a)
    return _dashboard(
        "lakelens-asset-health",
        "lakelens / Asset health",
        "One asset (or several): freshness against its SLA, failures, latency, volume, cost, "
        "and who reads it.",
        a,
        asset=True,
    )


def _usage_panels(layout: _Layout) -> None:
    """Downstream usage: reads and views per day (the asset page's numbers) and readers."""
    usage = "asset_usage_per_day"
    layout.add(
        _series(
            "Downstream usage per day (last 7 days)",
            [
                (
                    f'max by (asset_name) ({usage}{{{ASSET}, reader_kind="job"}})',
                    "{{asset_name}} reads/day",
                ),
                (
                    f'max by (asset_name) ({usage}{{{ASSET}, reader_kind="dashboard"}})',
                    "{{asset_name}} views/day",
                ),
            ],
            description="Reads by jobs and views by dashboards per day over the last 7 days, "
            "as `lakelens metrics asset` and the asset page show them.",
            minimum=0,
        ),
        12,
        8,
    )
    layout.add(
        _table(
            "Readers (last 7 days)",
            [
                (
                    f"max by (asset_name, reader_kind) (asset_usage_readers{{{ASSET}}})",
                    "{{asset_name}} {{reader_kind}}",
                )
            ],
            description="Distinct jobs (reader_kind job) and dashboards that used the asset.",
        ),
        12,
        8,
    )


def _data_quality() -> dict[str, Any]:
    q = _Layout()
    q.add(
        _stat(
            "Checks below 95%",
            f"count(max by (asset_name, check_name) (validation_pass_rate{{{ASSET}}}) < 95)"
            " or vector(0)",
            thresholds=[(None, "green"), (1, "orange")],
        ),
        8,
        4,
    )
    q.add(
        _stat(
            "Lowest pass rate",
            f"min(validation_pass_rate{{{ASSET}}})",
            unit="percent",
            thresholds=[(None, "red"), (95, "orange"), (99, "green")],
        ),
        8,
        4,
    )
    q.add(
        _stat(
            "Stale assets",
            "count(max by (asset_name) "
            f"(asset_freshness_seconds{{{ASSET}}} - asset_freshness_sla_seconds{{{ASSET}}}) > 0)"
            " or vector(0)",
            thresholds=[(None, "green"), (1, "orange")],
        ),
        8,
        4,
    )
    q.add(
        _series(
            "Pass rate by check",
            [
                (
                    f"max by (asset_name, check_name) (validation_pass_rate{{{ASSET}}})",
                    "{{asset_name}} {{check_name}}",
                )
            ],
            unit="percent",
            maximum=100,
            thresholds=[(None, "red"), (95, "green")],
        ),
        24,
        9,
    )
    q.add(
        _table(
            "Checks",
            [
                (
                    f"max by (asset_name, check_name) (validation_pass_rate{{{ASSET}}})",
                    "pass rate",
                )
            ],
            unit="percent",
            thresholds=[(None, "red"), (95, "green")],
        ),
        24,
        10,
    )
    return _dashboard(
        "lakelens-data-quality",
        "lakelens / Data quality",
        "Check pass rates per asset and check, and freshness breaches.",
        q,
        asset=True,
    )


def _self(job: str) -> dict[str, Any]:
    s = _Layout()
    job = promql_string(job)
    up = f"up{{job={job}}}"
    s.add(_stat("Servers up", f"sum({up})", thresholds=[(None, "red"), (1, "green")]), 4, 4)
    s.add(
        _stat(
            "Evaluator last ran",
            "time() - max(lakelens_evaluator_last_run_timestamp)",
            unit="s",
            thresholds=[(None, "green"), (120, "orange"), (300, "red")],
        ),
        5,
        4,
    )
    s.add(
        _stat(
            "Alerts firing",
            "sum(max by (severity) (lakelens_alerts_firing))",
            thresholds=[(None, "green"), (1, "red")],
        ),
        5,
        4,
    )
    s.add(
        _stat(
            "Open incidents",
            "sum(max by (severity) (lakelens_incidents_open))",
            thresholds=[(None, "green"), (1, "red")],
        ),
        5,
        4,
    )
    s.add(
        _stat(
            "Oldest undelivered notification",
            "max(lakelens_alert_outbox_oldest_pending_seconds)",
            unit="s",
            thresholds=[(None, "green"), (300, "orange"), (900, "red")],
        ),
        5,
        4,
    )
    s.add(
        _series(
            "Ingested events per second",
            [
                (f"sum by (source) (rate(lakelens_ingest_events_total[{RATE}]))", "{{source}}"),
                (
                    f"sum by (source) (rate(lakelens_ingest_rejected_events_total[{RATE}]))",
                    "{{source}} rejected",
                ),
            ],
            unit="ops",
        ),
        12,
        8,
    )
    s.add(
        _series(
            "Ingest writer busy (1 = ingest waits for it)",
            [
                (
                    f"max by (instance) (rate(lakelens_ingest_writer_busy_seconds_total[{RATE}]))",
                    "{{instance}}",
                ),
            ],
            unit="percentunit",
            maximum=1,
        ),
        12,
        8,
    )
    s.add(
        _series(
            "Requests per ingest transaction",
            [
                (
                    "sum by (instance) "
                    f"(rate(lakelens_ingest_transaction_requests_total[{RATE}])) / "
                    f"sum by (instance) (rate(lakelens_ingest_transactions_total[{RATE}]))",
                    "{{instance}}",
                ),
            ],
        ),
        12,
        8,
    )
    s.add(
        _series(
            "Alert deliveries per second",
            [
                (
                    f"sum by (destination) (rate(lakelens_alert_deliveries_total[{RATE}]))",
                    "{{destination}} attempts",
                ),
                (
                    f"sum by (destination) (rate(lakelens_alert_deliveries_failed_total[{RATE}]))",
                    "{{destination}} failed",
                ),
            ],
            unit="ops",
        ),
        12,
        8,
    )
    s.add(
        _series(
            "Alerts firing by severity",
            [("max by (severity) (lakelens_alerts_firing)", "{{severity}}")],
        ),
        12,
        8,
    )
    s.add(
        _series(
            "Runs in progress",
            [("max(lakelens_runs_in_progress)", "runs")],
        ),
        12,
        8,
    )
    s.add(
        _series(
            "Process memory",
            [(f"process_resident_memory_bytes{{job={job}}}", "{{instance}} RSS")],
            unit="bytes",
        ),
        8,
        8,
    )
    s.add(
        _series(
            "Process CPU",
            [(f"rate(process_cpu_seconds_total{{job={job}}}[{RATE}])", "{{instance}}")],
            unit="percentunit",
        ),
        8,
        8,
    )
    s.add(
        _series(
            "Disk and memory used",
            [
                ("max by (instance, path) (disk_usage_percent)", "{{instance}} disk {{path}}"),
                ("max by (instance) (memory_usage_percent)", "{{instance}} memory"),
            ],
            unit="percent",
            maximum=100,
        ),
        8,
        8,
    )
    return _dashboard(
        "lakelens-self",
        "lakelens / Self-monitoring",
        "lakelens itself: servers up, ingest, the alert evaluator and delivery, resources.",
        s,
        asset=False,
    )


def dashboards(options: GrafanaOptions | None = None) -> dict[str, dict[str, Any]]:
    """Dashboards by uid."""
    o = options or GrafanaOptions()
    built = [_overview(), _asset_health(), _data_quality(), _self(o.job)]
    return {d["uid"]: d for d in built}


def datasources_yaml(options: GrafanaOptions | None = None) -> str:
    """Grafana datasource provisioning: Prometheus (default), Loki, Alertmanager."""
    import yaml

    o = options or GrafanaOptions()
    document = {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": "lakelens-prometheus",
                "type": "prometheus",
                "access": "proxy",
                "url": o.prometheus_url,
                "isDefault": True,
                "editable": False,
                "jsonData": {"timeInterval": "15s", "httpMethod": "POST"},
            },
            {
                "name": "Loki",
                "uid": "lakelens-loki",
                "type": "loki",
                "access": "proxy",
                "url": o.loki_url,
                "editable": False,
            },
            {
                "name": "Alertmanager",
                "uid": "lakelens-alertmanager",
                "type": "alertmanager",
                "access": "proxy",
                "url": o.alertmanager_url,
                "editable": False,
                "jsonData": {"implementation": "prometheus"},
            },
        ],
    }
    return _header("datasources") + yaml.safe_dump(document, sort_keys=False)


def providers_yaml(options: GrafanaOptions | None = None) -> str:
    """Grafana dashboard provisioning: load the JSON files from `dashboards_path`."""
    import yaml

    o = options or GrafanaOptions()
    document = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "lakelens",
                "folder": "lakelens",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": o.dashboards_path, "foldersFromFilesStructure": False},
            }
        ],
    }
    return _header("dashboard providers") + yaml.safe_dump(document, sort_keys=False)


def _header(what: str) -> str:
    return f"# Grafana {what}, generated by `lakelens export grafana`.\n"


def dashboard_files(options: GrafanaOptions | None = None) -> dict[str, str]:
    """Relative path → file text, for everything `lakelens export grafana` writes."""
    files = {
        f"dashboards/{uid}.json": json.dumps(d, indent=2, ensure_ascii=False) + "\n"
        for uid, d in dashboards(options).items()
    }
    files["provisioning/datasources/lakelens.yml"] = datasources_yaml(options)
    files["provisioning/dashboards/lakelens.yml"] = providers_yaml(options)
    return files


def write_grafana(directory: Path, options: GrafanaOptions | None = None) -> list[Path]:
    """Write the dashboards and provisioning files under `directory`; return their paths."""
    written = []
    for relative, text in dashboard_files(options).items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
