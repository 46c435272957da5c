"""`GET /metrics`: the Prometheus exposition, computed from the store at scrape time.

Asset and validation series come from export/prometheus.StoreCollector over the whole
store; custom metrics recorded with `lakelens.metric` follow (a gauge's latest value and
a counter's summed increments per name and labels); then this process's ingest counters,
runs in progress, disk and memory usage, alerting and incidents (export/incident_metrics.py),
and the data's row counts, null rates and sizes (export/profile_metrics.py, capped series).
The body is gzipped for a scraper that accepts it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from lakelens.server.security import require_read
from lakelens.store import schema

if TYPE_CHECKING:
    from lakelens.server.commit import GroupCommitter
    from lakelens.server.context import ServerContext

__all__ = ["INGEST_SOURCES", "exposition", "router"]

router = APIRouter(dependencies=[Depends(require_read)], tags=["metrics"])
INGEST_SOURCES = ("native", "openlineage", "otlp_traces", "otlp_logs")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
GZIP_LEVEL = 1


def _labels(text: str | None, asset: str | None) -> dict[str, str] | None:
    """A point's labels (plus asset_name when it was recorded inside one); None if unusable."""
    try:
        labels = json.loads(text) if text else {}
    except ValueError:
        return None
    if not isinstance(labels, dict):
        return None
    if asset is not None and "asset_name" not in labels:
        labels["asset_name"] = asset
    if not all(_LABEL_NAME.fullmatch(str(k)) and not str(k).startswith("__") for k in labels):
        return None
    return {str(k): str(v) for k, v in labels.items()}


def custom_families(conn: sa.Connection, taken: set[str]) -> list[Any]:
    """Families for `lakelens.metric` points; names already exposed by lakelens are skipped."""
    from prometheus_client.core import Metric

    m = schema.metric_points
    ranked = (
        sa.select(
            m.c.name,
            m.c.labels,
            m.c.asset,
            m.c.value,
            m.c.time,
            sa.func.row_number()
            .over(
                partition_by=(m.c.name, m.c.labels, m.c.asset),
                order_by=(m.c.time.desc(), m.c.id.desc()),
            )
            .label("recency"),
        )
        .where(m.c.kind == "gauge")
        .subquery()
    )
    gauges: dict[str, dict[tuple[tuple[str, str], ...], tuple[float, float]]] = {}
    for name, text, asset, value, when in conn.execute(
        sa.select(ranked.c.name, ranked.c.labels, ranked.c.asset, ranked.c.value, ranked.c.time)
        .where(ranked.c.recency == 1)
        .order_by(ranked.c.name)
    ):
        labels = _labels(text, asset)
        if labels is None or not _METRIC_NAME.fullmatch(name):
            continue
        key = tuple(sorted(labels.items()))
        series = gauges.setdefault(name, {})
        # Equal label sets written in another key order are one series: the latest wins.
        if key not in series or series[key][1] < when:
            series[key] = (float(value), float(when))
    counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for name, text, asset, total in conn.execute(
        sa.select(m.c.name, m.c.labels, m.c.asset, sa.func.sum(m.c.value))
        .where(m.c.kind == "counter")
        .group_by(m.c.name, m.c.labels, m.c.asset)
        .order_by(m.c.name)
    ):
        labels = _labels(text, asset)
        if labels is None or not _METRIC_NAME.fullmatch(name):
            continue
        key = tuple(sorted(labels.items()))
        series_c = counters.setdefault(name.removesuffix("_total") or name, {})
        series_c[key] = series_c.get(key, 0.0) + float(total)

    families: list[Any] = []
    for name, gauge_series in sorted(gauges.items()):
        if name in taken:
            continue
        family = Metric(name, "Custom gauge recorded with lakelens.metric().", "gauge")
        for key, (value, _when) in sorted(gauge_series.items()):
            family.add_sample(name, dict(key), value)
        taken.add(name)
        families.append(family)
    for base, counter_series in sorted(counters.items()):
        names = {base, f"{base}_total", f"{base}_created"}
        if names & taken:
            continue
        family = Metric(base, "Custom counter recorded with lakelens.metric().", "counter")
        for key, total in sorted(counter_series.items()):
            family.add_sample(f"{base}_total", dict(key), total)
        taken |= names
        families.append(family)
    return families


def runtime_families(ctx: ServerContext, conn: sa.Connection) -> list[Any]:
    """Runs in progress, this process's ingest counters, disk and memory usage."""
    import psutil
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    from lakelens.server.health import _data_path

    r = schema.runs
    running = conn.execute(
        sa.select(sa.func.count()).where(r.c.status.in_(("queued", "started")))
    ).scalar_one()
    in_progress = GaugeMetricFamily(
        "lakelens_runs_in_progress", "Runs queued or started and not finished."
    )
    in_progress.add_metric([], float(running))
    accepted = CounterMetricFamily(
        "lakelens_ingest_events",
        "Events this server accepted and committed, by source.",
        labels=["source"],
    )
    rejected = CounterMetricFamily(
        "lakelens_ingest_rejected_events",
        "Events this server rejected as invalid, by source.",
        labels=["source"],
    )
    counters = ctx.counters
    for source in sorted(set(INGEST_SOURCES) | set(counters.accepted) | set(counters.rejected)):
        accepted.add_metric([source], float(counters.accepted.get(source, 0)))
        rejected.add_metric([source], float(counters.rejected.get(source, 0)))
    path = _data_path(ctx.settings, ctx.store)
    disk = GaugeMetricFamily(
        "disk_usage_percent", "Used space of the store's filesystem, percent.", labels=["path"]
    )
    disk.add_metric([path], psutil.disk_usage(path).percent)
    memory = GaugeMetricFamily("memory_usage_percent", "Used memory of this machine, percent.")
    memory.add_metric([], psutil.virtual_memory().percent)
    return [in_progress, accepted, rejected, disk, memory]


def writer_families(committer: GroupCommitter | None) -> list[Any]:
    """This server's ingest writer: its transactions, the requests they held and the seconds
    spent in them (zeros until the first ingest request starts it)."""
    from prometheus_client.core import CounterMetricFamily

    transactions = CounterMetricFamily(
        "lakelens_ingest_transactions",
        "Transactions this server's ingest writer ran, committed or not (each holds a group "
        "of requests).",
    )
    requests = CounterMetricFamily(
        "lakelens_ingest_transaction_requests",
        "Ingest requests held by those transactions (÷ transactions: requests per group).",
    )
    busy = CounterMetricFamily(
        "lakelens_ingest_writer_busy_seconds",
        "Seconds this server's ingest writer spent in transactions; a rate near 1 means "
        "ingest waits for the writer.",
    )
    transactions.add_metric([], float(committer.groups if committer else 0))
    requests.add_metric([], float(committer.requests if committer else 0))
    busy.add_metric([], committer.busy_so_far() if committer else 0.0)
    return [transactions, requests, busy]


class _Families:
    def __init__(self, families: Iterable[Any]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Any]:
        return iter(self.families)


def exposition(ctx: ServerContext, committer: GroupCommitter | None = None) -> bytes:
    """The whole scrape, in the Prometheus text format 0.0.4."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.process_collector import ProcessCollector

    from lakelens.export.alerting_metrics import alerting_families
    from lakelens.export.incident_metrics import incident_families
    from lakelens.export.profile_metrics import profile_families
    from lakelens.export.prometheus import StoreCollector
    from lakelens.export.usage_metrics import usage_families

    with ctx.store.connect() as conn:
        families = list(StoreCollector(conn, since=None, now=ctx.clock()).collect())
        families += runtime_families(ctx, conn)
        families += writer_families(committer)
        families += alerting_families(conn, now=ctx.clock())
        families += incident_families(conn, now=ctx.clock())
        families += profile_families(conn)
        families += usage_families(conn, now=ctx.clock())
        families += list(ProcessCollector(registry=None).collect())
        taken = {f.name for f in families} | {s.name for f in families for s in f.samples}
        families += custom_families(conn, taken)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


@router.get(
    "/metrics",
    summary="Prometheus exposition (text format 0.0.4)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}}},
)
async def metrics(request: Request) -> Response:
    from prometheus_client.exposition import gzip_accepted
    from starlette.concurrency import run_in_threadpool

    compress = gzip_accepted(request.headers.get("accept-encoding", ""))
    committer = getattr(request.app.state, "committer", None)
    body = await run_in_threadpool(_scrape, request.app.state.ctx, compress, committer)
    headers = {"Vary": "Accept-Encoding"}
    if compress:
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=CONTENT_TYPE, headers=headers)


def _scrape(ctx: ServerContext, compress: bool, committer: GroupCommitter | None = None) -> bytes:
    """The exposition, gzipped when the scraper accepts it (Prometheus always does).

    The text repeats each asset name in every series (5,000 assets: 14 MB); level 1 makes
    it 0.6 MB in about 40 ms, as prometheus_client's own handlers gzip it.
    """
    import gzip

    body = exposition(ctx, committer)
    return gzip.compress(body, compresslevel=GZIP_LEVEL) if compress else body
