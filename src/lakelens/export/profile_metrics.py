"""Series about the data itself, read from the store at scrape time: each asset's row count
and null rate per column from its latest profile, and its size from its last materialization
that reported bytes.

Cardinality is bounded: at most `MAX_COLUMNS_PER_ASSET` columns of an asset (in profile
order) and `MAX_COLUMN_SERIES` column series in all (assets by name); the columns left out
are counted in `lakelens_profile_series_dropped`, so a scrape never grows with a table's
width beyond these caps.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from lakelens.store import schema

__all__ = ["MAX_COLUMNS_PER_ASSET", "MAX_COLUMN_SERIES", "profile_families"]

MAX_COLUMNS_PER_ASSET = 100
MAX_COLUMN_SERIES = 5_000


def profile_families(conn: sa.Connection) -> list[Any]:
    """The families above: asset_profile_rows, asset_column_null_ratio, asset_size_bytes and
    lakelens_profile_series_dropped."""
    from prometheus_client.core import GaugeMetricFamily

    rows = GaugeMetricFamily(
        "asset_profile_rows",
        "Rows of the asset's data in its latest column profile.",
        labels=["asset_name"],
    )
    nulls = GaugeMetricFamily(
        "asset_column_null_ratio",
        "Share of null values per column in the asset's latest profile (0 to 1); at most "
        f"{MAX_COLUMNS_PER_ASSET} columns per asset, {MAX_COLUMN_SERIES} in all.",
        labels=["asset_name", "column"],
    )
    size = GaugeMetricFamily(
        "asset_size_bytes",
        "Bytes of the asset's last successful materialization that reported a size.",
        labels=["asset_name"],
    )
    dropped = GaugeMetricFamily(
        "lakelens_profile_series_dropped",
        "Column series of asset_column_null_ratio left out by the cardinality caps.",
    )
    p = schema.profiles
    ranked = sa.select(
        p.c.asset,
        p.c.row_count,
        p.c.columns,
        sa.func.row_number()
        .over(partition_by=p.c.asset, order_by=(p.c.time.desc(), p.c.id.desc()))
        .label("recency"),
    ).subquery()
    left_out = 0
    shown = 0
    for asset, row_count, text in conn.execute(
        sa.select(ranked.c.asset, ranked.c.row_count, ranked.c.columns)
        .where(ranked.c.recency == 1)
        .order_by(ranked.c.asset)
    ):
        if row_count is not None:
            rows.add_metric([asset], float(row_count))
        columns = _columns(text)
        for index, (column, stats) in enumerate(columns.items()):
            rate = stats.get("null_rate") if isinstance(stats, dict) else None
            if not isinstance(rate, (int, float)) or isinstance(rate, bool):
                continue
            if index >= MAX_COLUMNS_PER_ASSET or shown >= MAX_COLUMN_SERIES:
                left_out += 1
                continue
            nulls.add_metric([asset, column], float(rate))
            shown += 1
    dropped.add_metric([], float(left_out))
    m = schema.materializations
    latest = (
        sa.select(
            m.c.asset,
            m.c.bytes,
            sa.func.row_number()
            .over(partition_by=m.c.asset, order_by=(m.c.start_time.desc(), m.c.id.desc()))
            .label("recency"),
        )
        .where(m.c.status == "success", m.c.bytes.is_not(None))
        .subquery()
    )
    for asset, count in conn.execute(
        sa.select(latest.c.asset, latest.c.bytes)
        .where(latest.c.recency == 1)
        .order_by(latest.c.asset)
    ):
        size.add_metric([asset], float(count))
    return [rows, nulls, size, dropped]


def _columns(text: str | None) -> dict[str, Any]:
    try:
        document = json.loads(text) if text else {}
    except ValueError:
        return {}
    columns = document.get("columns") if isinstance(document, dict) else None
    return columns if isinstance(columns, dict) else {}
