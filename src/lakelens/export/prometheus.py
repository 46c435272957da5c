"""Prometheus exposition of what the store knows, with the metric names of the seed documents.

Counters count events since `since` (the whole store when None): a scrape of `/metrics`
sees ever-growing totals, `lakelens metrics export --period 7d` a snapshot of one window.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from lakelens.store import schema

__all__ = ["DURATION_BUCKETS", "StoreCollector", "exposition"]

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


def _schema_label(asset: str) -> str:
    """'raw' for 'raw.glucose_entries'; '' for names without a namespace."""
    return asset.rpartition(".")[0]


class StoreCollector:
    """A prometheus_client collector that reads the store on each collect()."""

    def __init__(self, conn: sa.Connection, *, since: float | None, now: float) -> None:
        self.conn = conn
        self.since = since
        self.now = now

    def _window(self, column: Any) -> list[Any]:
        return [] if self.since is None else [column >= self.since]

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            HistogramMetricFamily,
        )

        conn, m = self.conn, schema.materializations
        executions = CounterMetricFamily(
            "asset_executions",
            "Materializations by asset and final status.",
            labels=["asset_name", "status"],
        )
        failures = CounterMetricFamily(
            "asset_execution_failures", "Failed materializations by asset.", labels=["asset_name"]
        )
        rows = CounterMetricFamily(
            "asset_rows_processed",
            "Rows processed by materializations.",
            labels=["asset_name", "operation"],
        )
        size = CounterMetricFamily(
            "asset_bytes_processed", "Bytes processed by materializations.", labels=["asset_name"]
        )
        cpu = CounterMetricFamily(
            "asset_cpu_seconds", "CPU seconds used by materializations.", labels=["asset_name"]
        )
        duration = HistogramMetricFamily(
            "asset_execution_seconds",
            "Duration of finished materializations.",
            labels=["asset_name", "status"],
            unit="",
        )
        bucket_columns = [
            sa.func.sum(sa.case((m.c.duration <= bound, 1), else_=0)).label(f"le{i}")
            for i, bound in enumerate(DURATION_BUCKETS)
        ]
        query = (
            sa.select(
                m.c.asset,
                m.c.status,
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(m.c.rows), 0),
                sa.func.coalesce(sa.func.sum(m.c.inserts), 0),
                sa.func.coalesce(sa.func.sum(m.c.updates), 0),
                sa.func.coalesce(sa.func.sum(m.c.bytes), 0),
                sa.func.coalesce(sa.func.sum(m.c.cpu_seconds), 0.0),
                sa.func.coalesce(sa.func.sum(m.c.duration), 0.0),
                sa.func.count(m.c.duration),
                *bucket_columns,
            )
            .where(m.c.status.in_(("success", "failure")), *self._window(m.c.start_time))
            .group_by(m.c.asset, m.c.status)
            .order_by(m.c.asset, m.c.status)
        )
        totals: dict[str, list[float]] = {}
        failed: set[str] = set()
        for row in conn.execute(query):
            asset, status, count, n_rows, inserts, updates, n_bytes, cpu_s, dur_sum, dur_count = (
                row[:10]
            )
            executions.add_metric([asset, status], count)
            if status == "failure":
                failures.add_metric([asset], count)
                failed.add(asset)
            buckets = [
                (str(bound), int(row[10 + i] or 0)) for i, bound in enumerate(DURATION_BUCKETS)
            ]
            buckets.append(("+Inf", int(dur_count)))
            duration.add_metric([asset, status], buckets, float(dur_sum))
            acc = totals.setdefault(asset, [0, 0, 0, 0, 0.0])
            for i, value in enumerate((n_rows, inserts, updates, n_bytes, cpu_s)):
                acc[i] += value
        # Zeros for assets that never failed: an asset's first failure is then an increase
        # that rate() sees, not a new series starting at 1 (which alert rules would miss).
        for asset in sorted(totals.keys() - failed):
            executions.add_metric([asset, "failure"], 0)
            failures.add_metric([asset], 0)
        for asset, (n_rows, inserts, updates, n_bytes, cpu_s) in sorted(totals.items()):
            rows.add_metric([asset, "processed"], n_rows)
            rows.add_metric([asset, "inserted"], inserts)
            rows.add_metric([asset, "updated"], updates)
            size.add_metric([asset], n_bytes)
            cpu.add_metric([asset], cpu_s)
        yield from (executions, failures, duration, rows, size, cpu)
        yield from self._asset_gauges()
        yield from self._validation()

    def _asset_gauges(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        a, m = schema.assets, schema.materializations
        freshness = GaugeMetricFamily(
            "asset_freshness_seconds",
            "Seconds since the asset last materialized successfully.",
            labels=["asset_name"],
        )
        sla = GaugeMetricFamily(
            "asset_freshness_sla_seconds",
            "The asset's declared freshness SLA.",
            labels=["asset_name"],
        )
        last_update = GaugeMetricFamily(
            "asset_last_update_timestamp",
            "Unix time of the asset's last successful materialization.",
            labels=["asset_name"],
        )
        failing = GaugeMetricFamily(
            "asset_failing",
            "1 when the asset's latest materialization failed, else 0.",
            labels=["asset_name"],
        )
        # The seeds call this asset_row_count, but `promtool check metrics` rejects a _count
        # suffix on anything but a histogram or summary, so it is exposed as asset_rows.
        row_count = GaugeMetricFamily(
            "asset_rows",
            "Rows written by the asset's last successful materialization.",
            labels=["asset_name", "schema"],
        )
        state = self.conn.execute(
            sa.select(
                a.c.name,
                a.c.freshness_seconds,
                a.c.last_success_time,
                a.c.last_status,
                a.c.last_run_id,
            )
            .where(a.c.last_status.is_not(None))
            .order_by(a.c.name)
        ).all()
        for name, sla_seconds, last_success, status, _run in state:
            failing.add_metric([name], 1.0 if status == "failure" else 0.0)
            if last_success is not None:
                freshness.add_metric([name], max(0.0, self.now - last_success))
                last_update.add_metric([name], last_success)
            if sla_seconds is not None:
                sla.add_metric([name], sla_seconds)
        last_rows = self.conn.execute(
            sa.select(a.c.name, m.c.rows)
            .join(
                m,
                sa.and_(
                    m.c.asset == a.c.name,
                    m.c.end_time == a.c.last_success_time,
                    m.c.status == "success",
                ),
            )
            .where(m.c.rows.is_not(None))
            .order_by(a.c.name)
        ).all()
        for name, n in dict(last_rows).items():
            row_count.add_metric([name, _schema_label(name)], n)
        yield from (freshness, sla, last_update, failing, row_count)

    def _validation(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        c = schema.check_results
        rate = GaugeMetricFamily(
            "validation_pass_rate",
            "Percent of check results that passed.",
            labels=["asset_name", "check_name"],
        )
        query = (
            sa.select(
                c.c.asset,
                c.c.name,
                sa.func.count(),
                sa.func.sum(sa.case((c.c.passed, 1), else_=0)),
            )
            .where(*self._window(c.c.time))
            .group_by(c.c.asset, c.c.name)
            .order_by(c.c.asset, c.c.name)
        )
        for asset, name, total, passed in self.conn.execute(query):
            rate.add_metric([asset, name], 100.0 * int(passed or 0) / int(total))
        yield rate


def exposition(conn: sa.Connection, *, since: float | None, now: float) -> str:
    """The Prometheus text format (version 0.0.4) for the store."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(conn, since=since, now=now))
    return generate_latest(registry).decode("utf-8")
