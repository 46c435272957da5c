"""Series about who uses the data, read from the store at scrape time: each asset's reads and
views per day over the last 7 days and its distinct readers, by reader kind (`job` reads,
`dashboard` views), the numbers of `lakelens metrics asset` and the asset page's Downstream
usage (a dashboard's own views count for the assets it reads directly too).

Cardinality is bounded: the reader itself is never a label (reader names are open-ended),
so an asset has at most two series per family, and at most `MAX_USAGE_ASSETS` assets are
shown, the busiest first; the assets left out are counted in
`lakelens_usage_series_dropped`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["MAX_USAGE_ASSETS", "usage_families"]

MAX_USAGE_ASSETS = 5_000


def usage_families(conn: sa.Connection, *, now: float) -> list[Any]:
    """The families above: asset_usage_per_day, asset_usage_readers and
    lakelens_usage_series_dropped."""
    from prometheus_client.core import GaugeMetricFamily

    from lakelens.analysis.usage import WINDOW_DAYS, usage_by_asset

    window = f"{WINDOW_DAYS:g}"
    per_day = GaugeMetricFamily(
        "asset_usage_per_day",
        f"Uses of the asset per day over the last {window} days: reads by jobs "
        '(reader_kind="job"), views by dashboards (reader_kind="dashboard").',
        labels=["asset_name", "reader_kind"],
    )
    readers = GaugeMetricFamily(
        "asset_usage_readers",
        f"Distinct jobs or dashboards that used the asset in the last {window} days.",
        labels=["asset_name", "reader_kind"],
    )
    dropped = GaugeMetricFamily(
        "lakelens_usage_series_dropped",
        f"Assets left out of the usage series by the cap of {MAX_USAGE_ASSETS}.",
    )
    uses = usage_by_asset(conn, now=now)
    busiest = sorted(uses, key=lambda u: (-(u.reads_per_day + u.views_per_day), u.name))
    shown = sorted(busiest[:MAX_USAGE_ASSETS], key=lambda u: u.name)
    for use in shown:
        for kind, rate, count in (
            ("job", use.reads_per_day, use.jobs),
            ("dashboard", use.views_per_day, use.dashboards),
        ):
            # Both kinds, zeros included: a dashboard's first view is a change, not a new series.
            per_day.add_metric([use.name, kind], rate)
            readers.add_metric([use.name, kind], float(count))
    dropped.add_metric([], float(len(uses) - len(shown)))
    return [per_day, readers, dropped]
