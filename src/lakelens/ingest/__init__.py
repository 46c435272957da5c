"""Ingest: turning what the ecosystem sends (native events, OpenLineage, OTLP) into store batches.

Every converter returns an `Ingested`: the batch of accepted events and the rejected ones
with a reason, so one bad event never sinks the good ones and never becomes a 500.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lakelens.events import Batch

__all__ = ["OTLP_RUN_TAGS", "Ingested", "Rejection"]

# The tags of a run known only from OTLP spans and logs. The store inserts such a run when it
# is missing, widens it with later spans, and lets an SDK or OpenLineage report replace it;
# it never changes a run that one of those wrote (store/statements.py).
OTLP_RUN_TAGS = {"lakelens.source": "otlp"}


@dataclass(frozen=True)
class Rejection:
    """An event that was not stored: its position in the request and why."""

    index: int
    reason: str


@dataclass
class Ingested:
    """What a request contributed: events to write in one transaction, and what was refused."""

    batch: Batch = field(default_factory=Batch)
    rejected: list[Rejection] = field(default_factory=list)
    accepted: int = 0
