"""A run's spans as a tree with start offsets, like a Jaeger view."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakelens.analysis._db import Reader
from lakelens.model import Run, Span
from lakelens.store import reads

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["SpanNode", "Trace", "load_trace"]


@dataclass
class SpanNode:
    span: Span
    offset_seconds: float
    depth: int
    children: list[SpanNode] = field(default_factory=list)

    @property
    def duration_seconds(self) -> float | None:
        return self.span.duration_seconds


@dataclass
class Trace:
    run: Run | None
    trace_id: str | None
    roots: list[SpanNode]
    span_count: int
    error_count: int
    duration_seconds: float | None

    def walk(self) -> list[SpanNode]:
        """Every node, depth first, in start order."""
        out: list[SpanNode] = []
        stack = list(reversed(self.roots))
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.children))
        return out


def load_trace(conn: Reader | sa.Connection, run_id: str) -> Trace:
    """The spans of `run_id` (by run id, or by its trace id for spans ingested without one)."""
    runs = reads.runs(conn, run_id=run_id)
    run = runs[0] if runs else None
    spans = reads.spans(conn, run_id=run_id, trace_id=run.trace_id if run is not None else None)
    spans.sort(key=lambda s: (s.start_time, s.span_id))
    start = min((s.start_time for s in spans), default=None)
    if run is not None and run.start_time is not None and (start is None or run.start_time < start):
        start = run.start_time
    nodes: dict[str, SpanNode] = {}
    for span in spans:
        offset = (span.start_time - start).total_seconds() if start else 0.0
        nodes[span.span_id] = SpanNode(span, offset, 0)
    roots: list[SpanNode] = []
    for node in nodes.values():
        parent = nodes.get(node.span.parent_id or "")
        if parent is None or parent is node:
            roots.append(node)
        else:
            parent.children.append(node)
    stack = [(r, 0) for r in roots]
    while stack:
        node, depth = stack.pop()
        node.depth = depth
        stack.extend((c, depth + 1) for c in node.children)
    duration = run.duration_seconds if run is not None else None
    if duration is None and spans:
        ends = [s.end_time for s in spans if s.end_time is not None]
        if ends and start is not None:
            duration = (max(ends) - start).total_seconds()
    return Trace(
        run=run,
        trace_id=run.trace_id if run is not None else (spans[0].trace_id if spans else None),
        roots=roots,
        span_count=len(spans),
        error_count=sum(1 for s in spans if s.status == "error"),
        duration_seconds=duration,
    )
