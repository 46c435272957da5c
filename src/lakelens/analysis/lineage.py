"""Lineage: the asset graph, walks up and down it, cycles, and impact analysis."""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakelens import _clean
from lakelens.analysis._db import Reader, borrow

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "EXTERNAL_KINDS",
    "Failure",
    "GraphCache",
    "Impact",
    "LineageGraph",
    "LineageNode",
    "TreeNode",
    "annotate",
    "at_risk",
    "column_lineage",
    "failing_assets",
    "find_cycles",
    "impact",
    "load_graph",
    "nearest_below",
    "neighbourhood",
    "remember",
    "subgraph",
    "tree",
]

# Kinds that consume data outside the pipeline: changes reach people through them.
EXTERNAL_KINDS = frozenset({"external", "dashboard"})
PUBLISHING_LAYERS = frozenset({"mart", "marts", "publish", "publishing", "serving"})


@dataclass
class LineageNode:
    """An asset as lineage sees it, with its health once `annotate()` has run."""

    name: str
    kind: str = "asset"
    owner: str | None = None
    layer: str | None = None
    critical: bool = False
    freshness_seconds: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    status: str | None = None
    last_success: float | None = None
    age_seconds: float | None = None

    @property
    def stale(self) -> bool | None:
        """True when older than its freshness SLA; None when it has no SLA or never succeeded."""
        if self.freshness_seconds is None or self.age_seconds is None:
            return None
        return self.age_seconds > self.freshness_seconds


@dataclass
class LineageGraph:
    nodes: dict[str, LineageNode]
    upstream: dict[str, list[str]]
    downstream: dict[str, list[str]]
    # (upstream, downstream) → {downstream column: [its upstream columns]}, for the edges that
    # have a column mapping (OpenLineage columnLineage, dbt), merged over their sources.
    columns: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)
    # (upstream, downstream) → {"transformations": {downstream column: {upstream column:
    # [{type, subtype, masking, description}]}}, "dataset": [{"column": upstream column,
    # "transformations": [...]}]}: how the columns are used, and the upstream columns that
    # affect every row of the downstream (OpenLineage columnLineage 1-2-0).
    column_details: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def edges(self) -> list[tuple[str, str]]:
        return [(up, down) for up in sorted(self.downstream) for down in self.downstream[up]]

    def __contains__(self, name: object) -> bool:
        return name in self.nodes


# What was derived from the graphs used lately (layers, layouts, drawings, neighbourhoods,
# impacts, cycles), each entry for the graph object it was computed from: GraphCache hands out
# one object until assets or edges change, then a new one, so an entry is right for as long
# as its graph lives. The least recently used entries go first, so that the neighbourhoods of
# a few /lineage/ASSET pages do not evict the whole graph's layout (10,000 nodes take
# 0.5-2 s to lay out).
_REMEMBERED: list[tuple[weakref.ref[LineageGraph], tuple[object, ...], Any]] = []
_REMEMBERED_MAX = 32
_REMEMBERED_LOCK = threading.Lock()


def remember(graph: LineageGraph, key: tuple[object, ...], compute: Callable[[], Any]) -> Any:
    """`compute()` for this graph object and key, kept while the graph lives. Only for what
    depends on the graph's shape, never on the health `annotate()` writes into its nodes."""
    with _REMEMBERED_LOCK:
        for i, (ref, known, value) in enumerate(_REMEMBERED):
            if ref() is graph and known == key:
                _REMEMBERED.append(_REMEMBERED.pop(i))
                return value
    value = compute()  # outside the lock: two threads may both compute; either result is right
    with _REMEMBERED_LOCK:
        live = [entry for entry in _REMEMBERED if entry[0]() is not None]
        _REMEMBERED[:] = [*live[-(_REMEMBERED_MAX - 1) :], (weakref.ref(graph), key, value)]
    return value


def load_graph(conn: Reader | sa.Connection) -> LineageGraph:
    """Every asset and every edge (edges from several sources count once)."""
    import json

    db = borrow(conn)
    nodes = {
        name: LineageNode(
            name=name,
            kind=kind or "asset",
            owner=owner,
            layer=layer,
            critical=bool(critical),
            freshness_seconds=freshness,
            tags=json.loads(tags) if tags else {},
        )
        for name, kind, owner, layer, critical, freshness, tags in db.rows(
            "SELECT name, kind, owner, layer, critical, freshness_seconds, tags FROM assets"
        )
    }
    upstream: dict[str, set[str]] = {}
    downstream: dict[str, set[str]] = {}
    columns: dict[tuple[str, str], dict[str, list[str]]] = {}
    details: dict[tuple[str, str], dict[str, Any]] = {}
    for up, down, mapping, detail in db.rows(
        "SELECT upstream, downstream, columns, column_details FROM lineage_edges"
    ):
        downstream.setdefault(up, set()).add(down)
        upstream.setdefault(down, set()).add(up)
        for name in (up, down):
            if name not in nodes:
                nodes[name] = LineageNode(name)
        if mapping:
            _merge_columns(columns.setdefault((up, down), {}), json.loads(mapping))
        if detail:
            _merge_details(details.setdefault((up, down), {}), _clean.stored_json(detail, None))
    return LineageGraph(
        nodes=nodes,
        upstream={k: sorted(v) for k, v in upstream.items()},
        downstream={k: sorted(v) for k, v in downstream.items()},
        columns={edge: mapping for edge, mapping in columns.items() if mapping},
        column_details={edge: found for edge, found in details.items() if found},
    )


def _merge_columns(into: dict[str, list[str]], mapping: object) -> None:
    """Add a stored {column: [upstream columns]} mapping (anything else is skipped)."""
    if not isinstance(mapping, dict):
        return
    for column, sources in mapping.items():
        if not isinstance(sources, list):
            continue
        merged = into.setdefault(str(column), [])
        merged.extend(str(s) for s in sources if str(s) not in merged)


def _merge_details(into: dict[str, Any], details: object) -> None:
    """Add stored column details (see LineageGraph.column_details); malformed parts are skipped."""
    if not isinstance(details, dict):
        return
    given = details.get("transformations")
    for column, by_input in given.items() if isinstance(given, dict) else ():
        if not isinstance(by_input, dict):
            continue
        merged = into.setdefault("transformations", {}).setdefault(str(column), {})
        for source, entries in by_input.items():
            _add_entries(merged.setdefault(str(source), []), entries)
    listed = details.get("dataset")
    for item in listed if isinstance(listed, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get("column"), str):
            continue
        dataset = into.setdefault("dataset", [])
        known = next((d for d in dataset if d["column"] == item["column"]), None)
        if known is None:
            known = {"column": item["column"], "transformations": []}
            dataset.append(known)
        _add_entries(known["transformations"], item.get("transformations"))


def _add_entries(into: list[dict[str, Any]], entries: object) -> None:
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("type"), str) and entry not in into:
            into.append(entry)


def column_lineage(
    graph: LineageGraph, names: Iterable[str] | None = None
) -> list[dict[str, object]]:
    """The edges with a column mapping or column details (between `names` when given), as
    plain data; `column_details` only where there are some."""
    keep = None if names is None else set(names)
    found: list[dict[str, object]] = []
    for up, down in sorted(graph.columns.keys() | graph.column_details.keys()):
        if keep is not None and not (up in keep and down in keep):
            continue
        entry: dict[str, object] = {
            "upstream": up,
            "downstream": down,
            "columns": graph.columns.get((up, down), {}),
        }
        if (up, down) in graph.column_details:
            entry["column_details"] = graph.column_details[(up, down)]
        found.append(entry)
    return found


class GraphCache:
    """The last graph loaded from a store, reloaded only when assets or edges changed.

    A long-running process (the server) answers lineage requests from memory; the check is
    one small aggregate query. Callers must `annotate()` the nodes they show: the nodes are
    shared between calls.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._marker: tuple[object, ...] | None = None
        self._graph: LineageGraph | None = None

    @staticmethod
    def _marker_of(conn: Reader | sa.Connection) -> tuple[object, ...]:
        db = borrow(conn)
        # An edge's columns can change in an event older than the newest edge (a late event,
        # another producer's clock), which count and max(updated_at) miss. On PostgreSQL every
        # write gives the row a newer xmin, so their sum moves on each one, whichever server
        # wrote it; on SQLite the sum of the times moves unless the event time stays the same.
        version = (
            "CAST(CAST(xmin AS text) AS bigint)" if db.dialect == "postgresql" else "updated_at"
        )
        edges = db.rows(f"SELECT count(*), max(updated_at), sum({version}) FROM lineage_edges")[0]
        assets = db.rows(
            "SELECT count(*), max(updated_at), "
            "sum(CASE WHEN kind = 'source' THEN 1 ELSE 0 END) FROM assets"
        )[0]
        return (*edges, *assets)

    def get(self, conn: Reader | sa.Connection) -> LineageGraph:
        marker = self._marker_of(conn)
        with self._lock:
            if self._graph is None or marker != self._marker:
                self._graph = load_graph(conn)
                self._marker = marker
            return self._graph


_ANNOTATE_BY_NAME_MAX = 500
_ANNOTATE_SQL = "SELECT name, last_status, last_success_time FROM assets"


def annotate(
    conn: Reader | sa.Connection, graph: LineageGraph, names: Iterable[str], *, now: float
) -> None:
    """Fill in last status, last success and age for `names` from the assets' kept state."""
    db = borrow(conn)
    wanted = [n for n in dict.fromkeys(names) if n in graph.nodes]
    if len(wanted) > _ANNOTATE_BY_NAME_MAX:
        # Most of a big graph (the overview, /lineage): one pass over the assets table beats
        # 21 queries of 500 bound names each (10,500 assets: 0.2 s -> 0.03 s).
        keep = set(wanted)
        rows = [row for row in db.rows(_ANNOTATE_SQL) if row[0] in keep]
    else:
        rows = db.rows(f"{_ANNOTATE_SQL} WHERE name IN :names", {"names": wanted}) if wanted else []
    for name, status, last_success in rows:
        node = graph.nodes[name]
        node.status = status
        node.last_success = last_success
        node.age_seconds = None if last_success is None else max(0.0, now - last_success)


@dataclass(frozen=True)
class Failure:
    """An asset whose latest run failed: when, and in which run."""

    asset: str
    at: float | None
    run_id: str | None


def failing_assets(conn: Reader | sa.Connection) -> dict[str, Failure]:
    """Every asset whose latest run failed (one indexed read, whatever the graph's size)."""
    db = borrow(conn)
    return {
        name: Failure(name, at, run_id)
        for name, at, run_id in db.rows(
            "SELECT name, last_failure_time, last_run_id FROM assets "
            "WHERE last_status = 'failure' ORDER BY name"
        )
    }


def at_risk(graph: LineageGraph, failing: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Asset → the failing assets above it in lineage, nearest first: its next run reads
    broken data. Failing assets themselves are not listed (they are worse than at risk).

    `failing` defaults to the nodes `annotate()` found failing.
    """
    roots = sorted(
        set(failing)
        if failing is not None
        else (n for n, node in graph.nodes.items() if node.status == "failure")
    )
    broken = set(roots)
    found: dict[str, list[tuple[int, str]]] = {}
    for root in roots:
        depths = {root: 0}
        queue = deque([root])
        while queue:
            name = queue.popleft()
            for below in graph.downstream.get(name, []):
                if below not in depths:
                    depths[below] = depths[name] + 1
                    queue.append(below)
        for name, depth in depths.items():
            if name not in broken:
                found.setdefault(name, []).append((depth, root))
    return {name: [root for _, root in sorted(sources)] for name, sources in found.items()}


@dataclass
class TreeNode:
    """One line of a lineage tree. `cycle`: the name repeats an ancestor; `repeated`: shown above."""

    name: str
    depth: int
    children: list[TreeNode] = field(default_factory=list)
    cycle: bool = False
    repeated: bool = False
    truncated: bool = False


def tree(graph: LineageGraph, root: str, direction: str, depth: int | None = None) -> TreeNode:
    """The upstream ('up') or downstream ('down') tree of `root`, never looping on cycles."""
    links = graph.upstream if direction == "up" else graph.downstream
    seen: set[str] = {root}
    top = TreeNode(root, 0)
    # Iterative DFS: graphs of thousands of nodes must not hit the recursion limit.
    stack: list[tuple[TreeNode, frozenset[str]]] = [(top, frozenset({root}))]
    while stack:
        node, ancestors = stack.pop()
        targets = links.get(node.name, [])
        if depth is not None and node.depth >= depth:
            node.truncated = bool(targets)
            continue
        for name in targets:
            child = TreeNode(name, node.depth + 1)
            node.children.append(child)
            if name in ancestors:
                child.cycle = True
            elif name in seen:
                child.repeated = True
            else:
                seen.add(name)
                stack.append((child, ancestors | {name}))
    return top


def find_cycles(graph: LineageGraph, among: Iterable[str] | None = None) -> list[list[str]]:
    """Strongly connected components with a loop (Tarjan, iterative), each sorted."""
    names = sorted(graph.nodes if among is None else set(among))
    allowed = set(names)
    # Each node's children within `allowed`, computed once (not on every visit).
    children_of = {n: [c for c in graph.downstream.get(n, []) if c in allowed] for n in names}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for start in names:
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            name, child_index = work[-1]
            if child_index == 0:
                index[name] = low[name] = counter
                counter += 1
                stack.append(name)
                on_stack.add(name)
            children = children_of[name]
            if child_index < len(children):
                work[-1] = (name, child_index + 1)
                child = children[child_index]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[name] = min(low[name], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[name])
            if low[name] == index[name]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == name:
                        break
                if len(component) > 1 or name in graph.downstream.get(name, []):
                    cycles.append(sorted(component))
    return sorted(cycles)


@dataclass
class Impact:
    """What changing (or breaking) `asset` affects downstream."""

    asset: str
    direct: list[str]
    transitive: list[tuple[str, int]]
    publishing: list[str]
    external: list[str]
    owners: list[str]
    cycles: list[list[str]]

    @property
    def affected_assets(self) -> list[str]:
        """Affected assets inside the platform (external consumers and dashboards excluded)."""
        external = set(self.external)
        return [n for n in self.direct + [t for t, _ in self.transitive] if n not in external]

    @property
    def totals(self) -> dict[str, int]:
        return {
            "assets": len(self.affected_assets),
            "publishing_endpoints": len(self.publishing),
            "external": len(self.external),
        }

    @property
    def recommendation(self) -> str:
        if self.external:
            return (
                "Coordinate the change with the owners of the external consumers before deploying."
            )
        if self.publishing:
            return "Check the publishing endpoints' consumers, then update downstream assets before deploying."
        if self.direct:
            return "Update the downstream assets first, then deploy."
        return "Nothing depends on this asset: safe to change."


def impact(graph: LineageGraph, asset: str) -> Impact:
    """Everything downstream of `asset` with its shortest depth; cycles are reported, not followed twice."""
    depths: dict[str, int] = {}
    queue = deque([(asset, 0)])
    while queue:
        name, depth = queue.popleft()
        for child in graph.downstream.get(name, []):
            if child not in depths and child != asset:
                depths[child] = depth + 1
                queue.append((child, depth + 1))
    ordered = sorted(depths.items(), key=lambda item: (item[1], item[0]))
    external = [n for n, _ in ordered if graph.nodes[n].kind in EXTERNAL_KINDS]
    external_set = set(external)
    publishing = [
        n
        for n, _ in ordered
        if n not in external_set
        and (
            any(graph.nodes[c].kind in EXTERNAL_KINDS for c in graph.downstream.get(n, []))
            or (graph.nodes[n].layer or "").lower() in PUBLISHING_LAYERS
            or graph.nodes[n].tags.get("publishing", "").lower() in ("1", "true", "yes")
        )
    ]
    owners = sorted({owner for n in depths if (owner := graph.nodes[n].owner)})
    reach = set(depths) | {asset}
    return Impact(
        asset=asset,
        direct=[n for n, d in ordered if d == 1],
        transitive=[(n, d) for n, d in ordered if d > 1],
        publishing=publishing,
        external=external,
        owners=owners,
        cycles=find_cycles(graph, reach),
    )


def neighbourhood(graph: LineageGraph, asset: str, depth: int | None = None) -> LineageGraph:
    """The subgraph of everything upstream and downstream of `asset` (within `depth`)."""
    keep = {asset}
    for links in (graph.upstream, graph.downstream):
        frontier = [asset]
        level = 0
        seen = {asset}
        while frontier and (depth is None or level < depth):
            level += 1
            nxt = []
            for name in frontier:
                for other in links.get(name, []):
                    if other not in seen:
                        seen.add(other)
                        nxt.append(other)
            frontier = nxt
        keep |= seen
    return subgraph(graph, keep)


def subgraph(graph: LineageGraph, names: Iterable[str]) -> LineageGraph:
    """The graph of `names` and the edges between them (the nodes are shared)."""
    keep = set(names) & graph.nodes.keys()
    return LineageGraph(
        nodes={n: graph.nodes[n] for n in sorted(keep)},
        upstream={k: [u for u in v if u in keep] for k, v in graph.upstream.items() if k in keep},
        downstream={
            k: [d for d in v if d in keep] for k, v in graph.downstream.items() if k in keep
        },
        columns={e: c for e, c in graph.columns.items() if e[0] in keep and e[1] in keep},
        column_details={
            e: d for e, d in graph.column_details.items() if e[0] in keep and e[1] in keep
        },
    )


def nearest_below(graph: LineageGraph, roots: Iterable[str], limit: int) -> list[str]:
    """The roots, then what lies downstream of them nearest first, at most `limit` names: one
    breadth-first walk from all the roots at once, so each root's closest consumers come
    before anyone's distant ones."""
    found: dict[str, None] = {}
    queue = deque(r for r in roots if r in graph.nodes)
    for root in queue:
        found.setdefault(root)
    while queue and len(found) < limit:
        for below in graph.downstream.get(queue.popleft(), []):
            if below not in found and below in graph.nodes:
                found[below] = None
                queue.append(below)
    return list(found)[:limit]
