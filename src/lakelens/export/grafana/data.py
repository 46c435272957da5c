"""The dashboards about the data: overview, asset health (with usage) and data quality."""

from __future__ import annotations

from typing import Any

from lakelens.export.grafana.panels import (
    ASSET,
    RATE,
    _dashboard,
    _Layout,
    _quantiles,
    _series,
    _stat,
    _table,
)


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
