"""The dashboard about lakelens itself: servers up, ingest and its writer, the alert
evaluator and delivery, resources."""

from __future__ import annotations

from typing import Any

from lakelens.export.grafana.panels import RATE, _dashboard, _Layout, _series, _stat
from lakelens.export.prom_rules import promql_string


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
