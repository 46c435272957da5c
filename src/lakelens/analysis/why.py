"""`why`: what is wrong with an asset and where it started, with evidence.

The story is told in the order that matters: the asset's own failure or failed error checks,
then an upstream asset that failed (with its error), then a stale asset upstream.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakelens.analysis._db import Reader, borrow
from lakelens.analysis.lineage import EXTERNAL_KINDS, LineageGraph, LineageNode, annotate
from lakelens.model import CheckResult, LogRecord, Materialization, Span
from lakelens.store import reads

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["Anomaly", "Diagnosis", "anomalies", "diagnose", "failed_checks", "problem_of"]

# Check severities that make an asset unhealthy (and alert as errors): warnings do not.
FAILING_SEVERITIES = ("error", "critical")
# Alert rules that find something odd about an asset that still succeeds.
ANOMALY_RULES = (
    "volume_anomaly",
    "slow_run",
    "schema_drift",
    "row_count_anomaly",
    "null_rate_shift",
    "distinct_shift",
    "range_violation",
)


def problem_of(node: LineageNode) -> str | None:
    """'failing', 'stale', or None for a healthy (or unjudgeable) asset."""
    if node.status == "failure":
        return "failing"
    if node.stale:
        return "stale"
    return None


def failed_checks(conn: Reader | sa.Connection, asset: str) -> list[CheckResult]:
    """The error and critical checks of `asset` whose latest result failed, counting results of
    its latest run and those recorded since its latest materialization by another run (a
    `dbt test` after `dbt run`, an OpenLineage job that tested it)."""
    db = borrow(conn)
    state = db.row(
        "SELECT last_run_id, last_start_time FROM assets WHERE name = :asset", {"asset": asset}
    )
    last_run, since = state if state is not None else (None, None)
    params: dict[str, object] = {"asset": asset, "severities": FAILING_SEVERITIES}
    scope = []
    if last_run is not None:
        scope.append("run_id = :last_run")
        params["last_run"] = last_run
    if since is not None:
        scope.append("time >= :since")
        params["since"] = since
    # Never materialized (a source that is only tested): every result counts.
    where = f" AND ({' OR '.join(scope)})" if scope else ""
    rows = db.dicts(
        "SELECT id, asset, run_id, name, passed, severity, time, value, threshold, valid_rows, "
        "total_rows, message FROM check_results "
        f"WHERE asset = :asset AND severity IN :severities{where} ORDER BY time, id",
        params,
    )
    latest = {row["name"]: row for row in rows}  # a later result of the same check wins
    return [reads.check_result_of(r) for r in latest.values() if not r["passed"]]


@dataclass(frozen=True)
class Anomaly:
    """An anomaly or schema drift the alert evaluator found on an asset and has not resolved."""

    rule: str
    summary: str
    since: float


def anomalies(conn: Reader | sa.Connection, asset: str) -> list[Anomaly]:
    """Open volume, duration and schema-drift alerts on `asset`: the same findings the alerts
    sent (so they appear once `lakelens serve`, `alerts run` or a failed run has evaluated)."""
    rows = borrow(conn).rows(
        "SELECT rule, summary, first_seen FROM alerts WHERE asset = :asset AND rule IN :rules "
        "AND status IN ('firing', 'acknowledged', 'silenced') ORDER BY first_seen, rule",
        {"asset": asset, "rules": ANOMALY_RULES},
    )
    return [Anomaly(rule, summary, since) for rule, summary, since in rows]


@dataclass
class Diagnosis:
    """Why `asset` is unhealthy: the chain up to the root cause and what went wrong there.

    `problem` and `root_problem` are 'failing', 'failed_checks' (error or critical checks failed
    though the materialization succeeded), 'anomalous' (volume, duration or schema drift),
    'stale' or None. `also` lists other troubled assets
    upstream, as (name, problem), most important first.
    """

    asset: str
    problem: str | None
    chain: list[str]
    root_cause: str | None
    root_problem: str | None
    failure: Materialization | None = None
    failed_checks: list[CheckResult] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    error_logs: list[LogRecord] = field(default_factory=list)
    failing_span: Span | None = None
    failing_since: float | None = None
    failed_runs: int = 0
    also: list[tuple[str, str]] = field(default_factory=list)
    nodes: dict[str, LineageNode] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.root_cause is None


def diagnose(
    conn: Reader | sa.Connection, graph: LineageGraph, asset: str, *, now: float
) -> Diagnosis:
    """Find what is wrong with `asset` and where it started.

    In this order: the asset's own failure or failed error checks; else an upstream asset that
    failed; else the asset's own anomalies or schema drift; else a stale asset upstream; else
    the asset's own staleness. Assets between an
    upstream problem and `asset` often look healthy (their last run succeeded; they simply have
    not run since), so every ancestor is examined. Upstream, the root cause is the nearest
    failing (then stale) ancestor with no ancestor of its own in the same trouble.
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

    def problem(name: str) -> str | None:
        node = graph.nodes[name]
        return None if node.kind in EXTERNAL_KINDS else problem_of(node)

    def origins(wanted: str) -> list[str]:
        """Ancestors with problem `wanted` and no ancestor of their own with it, nearest first."""

        def has_ancestor_with_it(name: str) -> bool:
            seen, stack = {name}, list(graph.upstream.get(name, []))
            while stack:
                current = stack.pop()
                if current in seen:
                    continue
                seen.add(current)
                if problem(current) == wanted:
                    return True
                stack.extend(graph.upstream.get(current, []))
            return False

        found = [
            n for n in depth if n != asset and problem(n) == wanted and not has_ancestor_with_it(n)
        ]
        return sorted(found, key=lambda n: (depth[n], n))

    own_checks = failed_checks(conn, asset)
    own_anomalies = anomalies(conn, asset)
    own = problem(asset)
    if own != "failing" and own_checks:
        own = "failed_checks"
    elif own != "failing" and own_anomalies:
        own = "anomalous"
    failing = [(n, "failing") for n in origins("failing")]
    upstream = failing + [(n, "stale") for n in origins("stale")]
    first_own = (
        ("failing", "failed_checks") if failing else ("failing", "failed_checks", "anomalous")
    )
    if own in first_own or not upstream:
        root, root_problem = (asset, own) if own else (None, None)
        chain = [asset]
        also = upstream
    else:
        root, root_problem = upstream[0]
        chain = [root]
        while chain[-1] != asset:
            chain.append(parents_of[chain[-1]])
        chain.reverse()
        also = upstream[1:]
    diagnosis = Diagnosis(
        asset=asset,
        problem=own,
        chain=chain,
        root_cause=root,
        root_problem=root_problem,
        also=also,
        nodes={n: graph.nodes[n] for n in [*chain, *(name for name, _ in also)]},
    )
    if root is not None:
        diagnosis.failed_checks = own_checks if root == asset else failed_checks(conn, root)
        diagnosis.anomalies = own_anomalies if root == asset else anomalies(conn, root)
        if root_problem not in ("failed_checks", "anomalous"):
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
