"""Series about lakelens' own alerting, read from the store: evaluator and worker heartbeats,
firing alerts, delivery attempts, the outbox backlog and destinations that are failing.

Every server on a store reports the same store-wide numbers, so an ingest-only replica
(`lakelens serve --no-alerts`) still shows whether some evaluator is alive.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from lakelens.store import schema
from lakelens.units import SEVERITIES

__all__ = ["AlertingCollector", "alerting_families", "exposition"]

_HEARTBEATS = {
    "evaluator": (
        "lakelens_evaluator_last_run_timestamp",
        "Unix time the alert evaluator last finished an evaluation (any server on this store).",
    ),
    "worker": (
        "lakelens_alert_worker_last_run_timestamp",
        "Unix time the alert delivery worker last finished a pass (any server on this store).",
    ),
}
_QUEUED = ("pending", "sending")


class AlertingCollector:
    """A prometheus_client collector over the heartbeats, alerts and notifications tables."""

    def __init__(self, conn: sa.Connection, *, now: float) -> None:
        self.conn = conn
        self.now = now

    def collect(self) -> Iterator[Any]:
        yield from self._heartbeats()
        yield self._firing()
        yield from self._deliveries()
        yield self._failing()

    def _heartbeats(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        h = schema.heartbeats
        seen = dict(self.conn.execute(sa.select(h.c.component, h.c.last_run)).all())
        for component, (name, documentation) in _HEARTBEATS.items():
            family = GaugeMetricFamily(name, documentation)
            if seen.get(component) is not None:
                family.add_metric([], float(seen[component]))
            yield family

    def _firing(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        a = schema.alerts
        counts: dict[str, int] = dict(
            self.conn.execute(
                sa.select(a.c.severity, sa.func.count())
                .where(a.c.status == "firing")
                .group_by(a.c.severity)
            ).all()
        )
        family = GaugeMetricFamily(
            "lakelens_alerts_firing",
            "lakelens alerts firing now, by severity.",
            labels=["severity"],
        )
        # Every severity, zeros included, so dashboards and sums never see a missing series.
        for severity in sorted(set(SEVERITIES) | set(counts), key=lambda s: SEVERITIES.get(s, 0)):
            family.add_metric([severity], float(counts.get(severity, 0)))
        return family

    def _deliveries(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        n = schema.notifications
        delivered = sa.func.sum(sa.case((n.c.status == "delivered", 1), else_=0))
        queued = sa.func.sum(sa.case((n.c.status.in_(_QUEUED), 1), else_=0))
        oldest = sa.func.min(sa.case((n.c.status.in_(_QUEUED), n.c.created_at), else_=None))
        rows = self.conn.execute(
            sa.select(
                n.c.destination,
                sa.func.coalesce(sa.func.sum(n.c.attempts), 0),
                sa.func.coalesce(delivered, 0),
                sa.func.coalesce(queued, 0),
                oldest,
            )
            .group_by(n.c.destination)
            .order_by(n.c.destination)
        ).all()
        attempts = CounterMetricFamily(
            "lakelens_alert_deliveries",
            "Delivery attempts of alert notifications, by destination.",
            labels=["destination"],
        )
        failed = CounterMetricFamily(
            "lakelens_alert_deliveries_failed",
            "Delivery attempts that failed (retried or given up), by destination.",
            labels=["destination"],
        )
        pending = GaugeMetricFamily(
            "lakelens_alert_outbox_pending",
            "Notifications waiting to be delivered, by destination.",
            labels=["destination"],
        )
        oldest_age = GaugeMetricFamily(
            "lakelens_alert_outbox_oldest_pending_seconds",
            "Age of the oldest notification not yet delivered (0 when none wait).",
        )
        first_queued: float | None = None
        for destination, tries, ok, waiting, created in rows:
            # A delivered notification's last attempt succeeded; every other attempt failed.
            attempts.add_metric([destination], float(tries))
            failed.add_metric([destination], float(max(int(tries) - int(ok), 0)))
            pending.add_metric([destination], float(waiting))
            if created is not None:
                first_queued = created if first_queued is None else min(first_queued, created)
        oldest_age.add_metric(
            [], 0.0 if first_queued is None else max(0.0, self.now - first_queued)
        )
        yield from (attempts, failed, pending, oldest_age)

    def _failing(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        from lakelens.alerts.outbox import failing_destinations

        family = GaugeMetricFamily(
            "lakelens_alert_destination_failing_seconds",
            "How long a destination's deliveries have been failing (retried, failed or given "
            "up since its last delivery); absent for a healthy destination.",
            labels=["destination"],
        )
        for destination, since in sorted(failing_destinations(self.conn, self.now).items()):
            family.add_metric([destination], max(0.0, self.now - since))
        return family


def alerting_families(conn: sa.Connection, *, now: float) -> list[Any]:
    """The collector's families, for `server/metrics.exposition` to append to a scrape."""
    return list(AlertingCollector(conn, now=now).collect())


def exposition(conn: sa.Connection, *, now: float) -> str:
    """These series alone, in the Prometheus text format 0.0.4."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(AlertingCollector(conn, now=now))
    return generate_latest(registry).decode("utf-8")
