"""The asset page's "Downstream usage" section: the jobs that read the asset and the
dashboards that show it, busiest first, and the uses of each day of the window, all from
analysis/usage.py (the numbers of `lakelens metrics asset`).

Reader names come from pipelines and from whoever reports views: the template escapes them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["days_svg", "usage_section"]

# Readers listed on the page; the API has them all.
READERS_SHOWN = 50
_READ, _VIEW = "#4c8dff", "#9b6bff"


def days_svg(daily: list[Any], *, label: str) -> Markup:
    """Reads (blue) and views (violet) of each day as stacked bars, oldest first."""
    if not daily:
        return Markup("")
    slot, height = 24, 40
    width = slot * len(daily)
    peak = max(d.reads + d.views for d in daily) or 1
    parts = [
        f'<svg class="usage-days" width="{width}" height="{height + 14}" '
        f'viewBox="0 0 {width} {height + 14}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
    ]
    for i, d in enumerate(daily):
        day = datetime.fromtimestamp(d.day, tz=timezone.utc)
        x = i * slot + 3
        top = float(height)
        for value, colour in ((d.reads, _READ), (d.views, _VIEW)):
            h = 0.0 if not value else max(1.0, (height - 2) * value / peak)
            top -= h
            if h:
                parts.append(
                    f'<rect x="{x}" y="{top:.1f}" width="{slot - 6}" height="{h:.1f}" '
                    f'fill="{colour}"></rect>'
                )
        parts.append(
            f'<rect x="{i * slot}" y="0" width="{slot}" height="{height + 14}" fill="transparent">'
            f"<title>{day:%a %Y-%m-%d}: {d.reads:,} reads, {d.views:,} views</title></rect>"
            f'<text x="{i * slot + slot / 2}" y="{height + 11}" text-anchor="middle" '
            f'font-size="9">{day:%d}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def usage_section(conn: sa.Connection, asset: str, *, now: float) -> dict[str, Any]:
    """The template context of `_usage.html` for `asset` over the default window."""
    from lakelens.analysis.usage import asset_usage, rate_text

    usage = asset_usage(conn, asset, now=now)
    readers = [
        {
            "name": r.name,
            "kind": r.kind,
            "rate": rate_text(r.per_day, r.kind),
            "per_day": r.per_day,
            "count": r.count,
            "last": r.last,
            # A dashboard downstream reporting its own views: its name links to its page.
            "link": r.name if r.via == r.name else None,
            # Views of a dashboard downstream under a reader name of their own.
            "via": r.via if r.via != r.name else None,
        }
        for r in usage.readers[:READERS_SHOWN]
    ]
    return {
        "summary": usage.summary,
        "days": f"{usage.window_days:g}",
        "jobs": usage.jobs,
        "dashboards": usage.dashboards,
        "reads_per_day": usage.reads_per_day,
        "views_per_day": usage.views_per_day,
        "readers": readers,
        "more": max(0, len(usage.readers) - READERS_SHOWN),
        "daily": days_svg(
            usage.daily if usage.readers else [],
            label=f"Reads and views per day of {asset}, last {usage.window_days:g} days (UTC)",
        ),
    }
