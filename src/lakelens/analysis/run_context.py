"""When a run was scheduled for and what ran it: read from the run's tags for the run views."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakelens.model import Run

__all__ = ["RunContext", "run_context"]


@dataclass(frozen=True)
class RunContext:
    """The scheduled (nominal) time, the engine ("spark 3.5.0") and the jobs around a run."""

    scheduled_time: datetime | None = None
    scheduled_end_time: datetime | None = None
    engine: str | None = None
    adapter_version: str | None = None
    upstream_jobs: tuple[str, ...] = ()
    downstream_jobs: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of the runs API."""
        return {
            "scheduled_time": _iso(self.scheduled_time),
            "scheduled_end_time": _iso(self.scheduled_end_time),
            "engine": self.engine,
            "adapter_version": self.adapter_version,
            "upstream_jobs": list(self.upstream_jobs),
            "downstream_jobs": list(self.downstream_jobs),
        }

    def line(self) -> str | None:
        """One line for a terminal: "scheduled 2024-10-15 06:00:00 UTC · engine spark 3.5.0",
        the time in the display zone (--tz, LAKELENS_TIMEZONE)."""
        from lakelens.display import format_moment

        parts = []
        if self.scheduled_time is not None:
            parts.append(f"scheduled {format_moment(self.scheduled_time)}")
        if self.engine:
            parts.append(f"engine {self.engine}")
        return " · ".join(parts) or None


def run_context(run: Run) -> RunContext:
    """What the run's tags say about its schedule and engine (OpenLineage facets today)."""
    from lakelens.ingest.openlineage import ENGINE_TAG, SCHEDULED_END_TAG, SCHEDULED_TAG

    tags = run.tags or {}
    return RunContext(
        scheduled_time=_time(tags.get(SCHEDULED_TAG)),
        scheduled_end_time=_time(tags.get(SCHEDULED_END_TAG)),
        engine=tags.get(ENGINE_TAG) or None,
        adapter_version=tags.get("openlineage.adapter_version") or None,
        upstream_jobs=_names(tags.get("openlineage.upstream_jobs")),
        downstream_jobs=_names(tags.get("openlineage.downstream_jobs")),
    )


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _names(text: str | None) -> tuple[str, ...]:
    """Job names from a JSON array tag."""
    try:
        names = json.loads(text) if text else []
    except ValueError:
        return ()
    return tuple(n for n in names if isinstance(n, str)) if isinstance(names, list) else ()


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
