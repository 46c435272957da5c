"""`why`: walk upstream from an unhealthy asset to the first failing or stale asset, with evidence."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakelens.analysis._db import Reader, borrow
from lakelens.analysis.lineage import EXTERNAL_KINDS, LineageGraph, LineageNode, annotate
from lakelens.model import LogRecord, Materialization, Span
from lakelens.store import reads

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["Diagnosis", "diagnose", "problem_of"]


def problem_of(node: LineageNode) -> str | None:
    """'failing', 'stale', or None for a healthy (or unjudgeable) asset."""
    if node.status == "failure":
        return "failing"
    if node.stale:
        return "stale"
    return None


@dataclass
class Diagnosis:
    """Why `asset` is unhealthy: the chain up to the root cause and what went wrong there."""

    asset: str
    problem: str | None
    chain: list[str]
    root_cause: str | None
    root_problem: str | None
    failure: Materialization | None = None
    error_logs: list[LogRecord] = field(default_factory=list)
    failing_span: Span | None = None
    failing_since: float | None = None
    failed_runs: int = 0
    nodes: dict[str, LineageNode] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.root_cause is None


def diagnose(
    conn: Reader | sa.Connection, graph: LineageGraph, asset: str, *, now: float
) -> Diagnosis:
    """Find the upstream problem behind `asset`.

    Assets between the problem and `asset` often look healthy (their last run succeeded; they
    simply have not run since), so every ancestor is examined. The root cause is a failing or
    stale ancestor with no failing or stale ancestor of its own: failing before stale, then
    the nearest. With no troubled ancestor, the asset's own problem (if any) is the answer.
    """
    parents_of: dict[str, str] = {}
    depth = {asset: 0}
    queue = deque([asset])
    while queue:
        name = queue.popleft()
        for parent in graph.upstream.get(name, []):
            if parent not in depth:
                depth[parent] = depth[name] + 1
                parents_of[parent] = name
                queue.append(parent)
    annotate(conn, graph, depth, now=now)

    def troubled(name: str) -> bool:
        node = graph.nodes[name]
        return node.kind not in EXTERNAL_KINDS and problem_of(node) is not None

    def has_troubled_ancestor(name: str) -> bool:
        seen, stack = {name}, list(graph.upstream.get(name, []))
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            if troubled(current):
                return True
            stack.extend(graph.upstream.get(current, []))
        return False

    origins = [n for n in depth if n != asset and troubled(n) and not has_troubled_ancestor(n)]
    origins.sort(key=lambda n: (problem_of(graph.nodes[n]) != "failing", depth[n], n))
    if origins:
        root: str | None = origins[0]
        chain = [origins[0]]
        while chain[-1] != asset:
            chain.append(parents_of[chain[-1]])
        chain.reverse()
    else:
        root = asset if troubled(asset) else None
        chain = [asset]
    diagnosis = Diagnosis(
        asset=asset,
        problem=problem_of(graph.nodes[asset]),
        chain=chain,
        root_cause=root,
        root_problem=problem_of(graph.nodes[root]) if root else None,
        nodes={n: graph.nodes[n] for n in chain},
    )
    if root is not None:
        _evidence(conn, diagnosis, root)
    return diagnosis


def _evidence(conn: Reader | sa.Connection, diagnosis: Diagnosis, root: str) -> None:
    """The root cause's last failure, how long it has been failing, its error logs and failing span."""
    db = borrow(conn)
    last_failure = db.row(
        "SELECT id, run_id FROM materializations WHERE asset = :root AND status = 'failure' "
        "ORDER BY start_time DESC LIMIT 1",
        {"root": root},
    )
    if last_failure is None:
        return
    failure_id, run_id = last_failure
    failure = next(x for x in reads.materializations(db, run_id=run_id) if x.id == failure_id)
    diagnosis.failure = failure
    last_success = db.value(
        "SELECT max(start_time) FROM materializations WHERE asset = :root AND status = 'success'",
        {"root": root},
    )
    after = "" if last_success is None else " AND start_time > :last_success"
    count, first = db.rows(
        "SELECT count(*), min(start_time) FROM materializations "
        f"WHERE asset = :root AND status = 'failure'{after}",
        {"root": root, "last_success": last_success} if after else {"root": root},
    )[0]
    diagnosis.failed_runs = int(count or 0)
    diagnosis.failing_since = first
    wanted = set(
        db.column(
            "SELECT id FROM logs WHERE run_id = :run_id AND level >= 30 ORDER BY id DESC LIMIT 8",
            {"run_id": failure.run_id},
        )
    )
    diagnosis.error_logs = [r for r in reads.logs(db, run_id=failure.run_id) if r.id in wanted]
    error_spans = [s for s in reads.spans(db, run_id=failure.run_id) if s.status == "error"]
    if error_spans:
        parents = {s.parent_id for s in error_spans}
        # The deepest failing span: an error span none of whose children failed.
        leaves = [s for s in error_spans if s.span_id not in parents]
        diagnosis.failing_span = (leaves or error_spans)[0]
