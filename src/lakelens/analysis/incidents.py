"""Incident statistics for the summary, /metrics and the dashboard: how many, how fast
they were detected, acknowledged and resolved, and where they come from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lakelens.store.sql import Reader

__all__ = ["IncidentStats", "incident_stats"]

_RANK = {"critical": 0, "error": 1, "warning": 2, "info": 3}


@dataclass(frozen=True)
class IncidentStats:
    """Open incidents now (most severe first) and those opened in the window.

    Times are means in seconds: detect = fault → opened, acknowledge and resolve from opened.
    """

    open: int = 0
    top: tuple[tuple[str, str], ...] = ()  # (severity, title) of open ones
    opened: int = 0
    mean_time_to_detect: float | None = None
    mean_time_to_acknowledge: float | None = None
    mean_time_to_resolve: float | None = None
    by_asset: dict[str, int] = field(default_factory=dict)
    by_owner: dict[str, int] = field(default_factory=dict)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _top(counts: dict[str, int], shown: int = 10) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:shown])


def incident_stats(db: Reader, *, since: float, until: float | None = None) -> IncidentStats:
    """What the incidents table says about [since, until)."""
    open_rows = db.rows(
        "SELECT severity, title FROM incidents WHERE status IN ('open', 'acknowledged')"
    )
    ordered = sorted(open_rows, key=lambda r: (_RANK.get(r[0], 9), r[1]))
    window: dict[str, Any] = {"since": since}
    where = "i.opened_at >= :since"
    if until is not None:
        where += " AND i.opened_at < :until"
        window["until"] = until
    rows = db.rows(
        "SELECT i.root_asset, a.owner, i.opened_at, i.fault_at, i.acknowledged_at, i.resolved_at "
        f"FROM incidents i LEFT JOIN assets a ON a.name = i.root_asset WHERE {where}",
        window,
    )
    by_asset: dict[str, int] = {}
    by_owner: dict[str, int] = {}
    for asset, owner, *_ in rows:
        if asset:
            by_asset[asset] = by_asset.get(asset, 0) + 1
        if owner:
            by_owner[owner] = by_owner.get(owner, 0) + 1
    return IncidentStats(
        open=len(ordered),
        top=tuple((str(s), str(t)) for s, t in ordered[:5]),
        opened=len(rows),
        mean_time_to_detect=_mean([max(o - f, 0.0) for _, _, o, f, _, _ in rows if f is not None]),
        mean_time_to_acknowledge=_mean([a - o for _, _, o, _, a, _ in rows if a is not None]),
        mean_time_to_resolve=_mean([r - o for _, _, o, _, _, r in rows if r is not None]),
        by_asset=_top(by_asset),
        by_owner=_top(by_owner),
    )
