"""A run's spans as a tree with start offsets, like a Jaeger view."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakelens.analysis._db import Reader, borrow
from lakelens.model import Run, Span
from lakelens.store import reads

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["SpanNode", "Trace", "load_trace", "load_trace_by_id", "resolve_trace"]


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


def load_trace(conn: Reader | sa.Connection, run_id: str, *, run: Run | None = None) -> Trace:
    """The spans of `run_id` (by run id, or by its trace id for spans ingested without one);
    `run` is its runs row when the caller has read it already."""
    if run is None or run.run_id != run_id:
        runs = reads.runs(conn, run_id=run_id)
        run = runs[0] if runs else None
    spans = reads.spans(conn, run_id=run_id)
    # Spans of the run's traces that carry no run id (OpenTelemetry sets `lakelens.run_id` on
    # the spans it was given to, often only the root).
    traces = {s.trace_id for s in spans}
    if run is not None and run.trace_id:
        traces.add(run.trace_id)
    seen = {(s.trace_id, s.span_id) for s in spans}
    for trace_id in sorted(traces):
        spans += [
            s
            for s in reads.spans(conn, trace_id=trace_id)
            if s.run_id is None and (s.trace_id, s.span_id) not in seen
        ]
    return _tree(run, spans)


def load_trace_by_id(conn: Reader | sa.Connection, trace_id: str) -> Trace:
    """Every span of one trace, whether or not a run id came with it."""
    return _tree(None, reads.spans(conn, trace_id=trace_id))


def resolve_trace(conn: Reader | sa.Connection, text: str) -> tuple[str, Trace]:
    """What `lakelens trace TEXT` shows: the run TEXT names (id or unique prefix, including
    runs known only from their spans), else the trace TEXT names (id or unique prefix)."""
    from lakelens.analysis.runs import UnknownRunError, resolve_run_id

    db = borrow(conn)
    try:
        run_id = resolve_run_id(conn, text)
    except UnknownRunError as exc:
        if db.row("SELECT 1 FROM spans WHERE run_id = :text", {"text": text}):
            return text, load_trace(conn, text)
        if "ambiguous" in str(exc):
            raise
        escaped = text.lower().replace("/", "//").replace("%", "/%").replace("_", "/_")
        traces = [
            t
            for t in db.column(
                "SELECT DISTINCT trace_id FROM spans WHERE trace_id LIKE :prefix ESCAPE '/' "
                "ORDER BY trace_id LIMIT 6",
                {"prefix": escaped + "%"},
            )
            if t.startswith(text.lower())
        ]
        if len(traces) == 1:
            return traces[0], load_trace_by_id(conn, traces[0])
        if len(traces) > 1:
            raise UnknownRunError(
                f"Trace id prefix {text!r} is ambiguous ({', '.join(traces[:5])}); "
                "type more characters."
            ) from None
        raise UnknownRunError(
            f"No run id or trace id starts with {text!r}; "
            "`lakelens metrics asset NAME` lists recent runs."
        ) from None
    return run_id, load_trace(conn, run_id)


def _tree(run: Run | None, spans: list[Span]) -> Trace:
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
