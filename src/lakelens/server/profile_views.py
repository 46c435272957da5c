"""The asset page's "Data distribution" section: the latest column profile with a small
histogram per numeric column and its change against the previous profile, and the row count
trend from profiles and materializations, all from analysis/profiles.py (the numbers of
`lakelens profile`).

Column names and values are the pipeline's data: the template escapes them, and the SVG here
is built from numbers and `escape()`d text only.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from lakelens.server import charts
from lakelens.server.ticks import count_ticks
from lakelens.units import format_count

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["histogram_svg", "profile_section"]

# A 2,000-column table shows its first 200 profiled columns on the page (the API has all).
COLUMNS_SHOWN = 200
TREND_POINTS = 50
HISTORY = 20
_BAR = "#4c8dff"


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value.replace("T", " ").removesuffix("Z")
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1e6 or (value and abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.1f}"


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def histogram_svg(histogram: dict[str, Any] | None, *, label: str) -> Markup:
    """A 120×28 bar histogram of a column's values (empty when there is none)."""
    counts = (histogram or {}).get("counts") or []
    bins = (histogram or {}).get("bins") or [None, None]
    if not counts or not all(isinstance(c, int) for c in counts):
        return Markup("")
    width, height = 120, 28
    peak = max(counts) or 1
    slot = width / len(counts)
    low, high = bins[0], bins[1]
    step = (
        (high - low) / len(counts)
        if isinstance(low, (int, float)) and isinstance(high, (int, float))
        else None
    )
    parts = [
        f'<svg class="histo" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(label)}"><title>{escape(label)}</title>'
    ]
    for i, count in enumerate(counts):
        h = 0.0 if count == 0 else max(1.0, (height - 2) * count / peak)
        span = ""
        if step is not None:
            span = f"{_fmt(low + i * step)} – {_fmt(low + (i + 1) * step)}: "
        parts.append(
            f'<rect x="{i * slot + 0.5:.1f}" y="{height - h:.1f}" width="{max(slot - 1, 0.5):.1f}" '
            f'height="{h:.1f}" fill="{_BAR}"><title>{escape(span)}{count:,}</title></rect>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _row(name: str, stats: dict[str, Any], change: Any) -> dict[str, Any]:
    quantiles = stats.get("quantiles") or {}
    kind = str(stats.get("type", "other"))
    if kind == "string" and stats.get("min_length") is not None:
        low, high = f"len {stats['min_length']}", f"len {stats['max_length']}"
    else:
        low, high = _fmt(stats.get("min")), _fmt(stats.get("max"))
    distinct = stats.get("distinct")
    rate = stats.get("null_rate")
    top = stats.get("top") or []
    return {
        "name": name,
        "type": kind,
        "dtype": stats.get("dtype"),
        "nulls": "—" if rate is None else f"{rate:.1%}",
        "null_rate": rate,
        "distinct": "—"
        if distinct is None
        else (f"~{distinct:,}" if stats.get("distinct_approx") else f"{distinct:,}"),
        "min": low,
        "max": high,
        "mean": _fmt(stats.get("mean")),
        "std": _fmt(stats.get("std")),
        "p50": _fmt(quantiles.get("p50")),
        "p95": _fmt(quantiles.get("p95")),
        "top": ", ".join(f"{value} ({count:,})" for value, count in top[:3]),
        "histogram": histogram_svg(stats.get("histogram"), label=f"Distribution of {name}"),
        "error": stats.get("error"),
        "change": None if change is None else change.status,
        "notes": [] if change is None else change.notes,
    }


def profile_section(conn: sa.Connection, asset: str) -> dict[str, Any] | None:
    """What the template `_profile.html` shows; None when the asset has neither a profile nor
    a row count."""
    from lakelens.analysis.profiles import profile_report, row_count_trend

    report = profile_report(conn, asset, history=HISTORY)
    trend = row_count_trend(conn, asset, limit=TREND_POINTS)
    if report.latest is None and not trend:
        return None
    latest = report.latest
    changes = {c.column: c for c in report.changes}
    rows = []
    if latest is not None:
        for name, stats in list(latest.columns.items())[:COLUMNS_SHOWN]:
            rows.append(_row(name, stats if isinstance(stats, dict) else {}, changes.get(name)))
    # The newest profile failed: say so beside the last one that worked.
    failed = report.history[0] if report.history and report.history[0].error else None
    bars = [
        charts.Bar(
            float(point.rows),
            title=f"{_when(point.time)} — {point.rows:,} rows ({point.source})",
        )
        for point in trend
    ]
    return {
        "time": None if latest is None else _when(latest.time),
        "row_count": None if latest is None else latest.row_count,
        "sampled_rows": None if latest is None else latest.sampled_rows,
        "source": None if latest is None else latest.source,
        "run_id": None if latest is None else latest.run_id,
        "columns": rows,
        "total": 0 if latest is None else len(latest.columns),
        "more": 0 if latest is None else max(0, len(latest.columns) - COLUMNS_SHOWN),
        "previous": None if report.previous is None else _when(report.previous.time),
        "removed": [c.column for c in report.changes if c.status == "removed"],
        "changed": sum(1 for c in report.changes if c.status != "same"),
        "error": None if failed is None else {"time": _when(failed.time), "message": failed.error},
        "profiles": len(report.history),
        "row_chart": charts.bar_chart(
            bars,
            label=f"Row count of {asset}: profiles and materializations",
            fmt=lambda v: f"{v:,.0f}",
            ticks=count_ticks,
            tick_fmt=format_count,
            start_label=_when(trend[0].time) if trend else "",
            end_label=_when(trend[-1].time) if trend else "",
        ),
    }
