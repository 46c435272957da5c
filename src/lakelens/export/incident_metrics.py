"""Series about incidents, read from the store at scrape time: how many are open (by severity
and by owner), how many were ever opened, and how fast the last day's were handled.

The times are means over incidents opened in the last 24 hours (the numbers of
`lakelens metrics summary --period 24h`); a series is absent while nothing qualifies, so an
empty day never reads as "0 seconds to resolve".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from lakelens.alerts.incidents import ACTIVE_INCIDENT
from lakelens.store import schema
from lakelens.units import SEVERITIES

__all__ = ["TIMES_WINDOW", "IncidentCollector", "incident_families"]

# The window the mean-time series average over, in seconds.
TIMES_WINDOW = 86400.0
_TIMES = (
    (
        "lakelens_incident_time_to_detect_seconds",
        "mean_time_to_detect",
        "Mean seconds from the fault to the incident opening, incidents opened in the last 24 h.",
    ),
    (
        "lakelens_incident_time_to_acknowledge_seconds",
        "mean_time_to_acknowledge",
        "Mean seconds from opening to acknowledgement, incidents opened in the last 24 h.",
    ),
    (
        "lakelens_incident_time_to_resolve_seconds",
        "mean_time_to_resolve",
        "Mean seconds from opening to resolution, incidents opened in the last 24 h.",
    ),
)


class IncidentCollector:
    """A prometheus_client collector over the incidents table."""

    def __init__(self, conn: sa.Connection, *, now: float) -> None:
        self.conn = conn
        self.now = now

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from lakelens.analysis.incidents import incident_stats
        from lakelens.store.sql import reading

        i, a = schema.incidents, schema.assets
        active = i.c.status.in_(ACTIVE_INCIDENT)
        by_severity: dict[str, int] = dict(
            self.conn.execute(
                sa.select(i.c.severity, sa.func.count()).where(active).group_by(i.c.severity)
            ).all()
        )
        open_ = GaugeMetricFamily(
            "lakelens_incidents_open",
            "Incidents not yet resolved (open or acknowledged), by severity.",
            labels=["severity"],
        )
        # Every severity, zeros included, so sums and alert rules never see a missing series.
        for severity in sorted(
            set(SEVERITIES) | set(by_severity), key=lambda s: SEVERITIES.get(s, 0)
        ):
            open_.add_metric([severity], float(by_severity.get(severity, 0)))
        yield open_

        opened = CounterMetricFamily(
            "lakelens_incidents_opened",
            "Incidents ever opened on this store (lowered only by retention pruning).",
        )
        opened.add_metric(
            [], float(self.conn.execute(sa.select(sa.func.count(i.c.id))).scalar_one())
        )
        yield opened

        by_owner = GaugeMetricFamily(
            "lakelens_incidents_by_owner",
            "Incidents not yet resolved, by the owner of their root asset ('' when it has none).",
            labels=["owner"],
        )
        owners: dict[str, int] = {}
        for owner, count in self.conn.execute(
            sa.select(a.c.owner, sa.func.count())
            .select_from(i.outerjoin(a, a.c.name == i.c.root_asset))
            .where(active)
            .group_by(a.c.owner)
        ):
            owners[owner or ""] = owners.get(owner or "", 0) + int(count)
        for owner, count in sorted(owners.items()):
            by_owner.add_metric([owner], float(count))
        yield by_owner

        with reading(self.conn) as db:
            stats = incident_stats(db, since=self.now - TIMES_WINDOW)
        for name, attribute, documentation in _TIMES:
            family = GaugeMetricFamily(name, documentation)
            value = getattr(stats, attribute)
            if value is not None:
                family.add_metric([], float(value))
            yield family


def incident_families(conn: sa.Connection, *, now: float) -> list[Any]:
    """The collector's families, for `server/metrics.exposition` to append to a scrape."""
    return list(IncidentCollector(conn, now=now).collect())
