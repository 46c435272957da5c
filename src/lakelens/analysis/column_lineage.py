"""Column-level lineage: which downstream columns a column feeds, and what each column reads.

Built on the column mappings of the lineage edges (OpenLineage `columnLineage`, dbt compiled
SQL). An edge without a mapping says nothing about columns: the assets it reaches are
reported apart, as "may depend", and the walk does not go through them.

A dataset-wide input (OpenLineage `columnLineage.dataset`: a filter, a join key, a grouping)
decides which rows the downstream asset holds, so it affects every column of that asset and,
through its rows, every asset downstream of it. Column impact reports those assets apart, as
indirect, whole assets: the walk goes on from them asset by asset, not column by column.
"""

from __future__ import annotations

import difflib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from lakelens.analysis._db import Reader, borrow
from lakelens.analysis.assets import UnknownAssetError
from lakelens.analysis.lineage import LineageGraph

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "COLUMN_LINEAGE_TAG",
    "ColumnImpact",
    "ColumnIndex",
    "IndirectImpact",
    "UnknownColumnError",
    "asset_columns",
    "column_impact",
    "column_index",
    "column_neighbours",
    "column_sources",
    "column_status",
    "indirect_inputs",
    "resolve_column",
    "transformations_of",
]

# Set by importers that derive column lineage (dbt): "resolved" or "unresolved", and then
# `lakelens.column_lineage_reason` says why.
COLUMN_LINEAGE_TAG = "lakelens.column_lineage"


class UnknownColumnError(UnknownAssetError):
    """A column no schema snapshot or column mapping knows for the asset."""


@dataclass
class ColumnIndex:
    """The column mappings of a graph, indexed both ways."""

    # asset → column → [(downstream asset, downstream column)]
    feeds: dict[str, dict[str, list[tuple[str, str]]]] = field(default_factory=dict)
    # asset → column → [(upstream asset, upstream column)]
    reads: dict[str, dict[str, list[tuple[str, str]]]] = field(default_factory=dict)
    # Dataset-wide inputs: asset → column → [downstream assets whose every row it affects]
    whole_feeds: dict[str, dict[str, list[str]]] = field(default_factory=dict)


# Built once per graph object: the server's graph cache hands out a new graph when lineage
# changes, so an index kept with its graph is current as long as the graph is.
_INDEX_ATTR = "_lakelens_column_index"


def column_index(graph: LineageGraph) -> ColumnIndex:
    """The graph's column mappings indexed upstream → downstream and back (built once)."""
    index: ColumnIndex | None = getattr(graph, _INDEX_ATTR, None)
    if index is not None:
        return index
    index = ColumnIndex()
    for (up, down), mapping in graph.columns.items():
        feeds = index.feeds.setdefault(up, {})
        reads = index.reads.setdefault(down, {})
        for column, sources in mapping.items():
            reads.setdefault(column, []).extend((up, s) for s in sources)
            for source in sources:
                feeds.setdefault(source, []).append((down, column))
    for (up, down), details in graph.column_details.items():
        for item in details.get("dataset", ()):
            index.whole_feeds.setdefault(up, {}).setdefault(item["column"], []).append(down)
    setattr(graph, _INDEX_ATTR, index)
    return index


def transformations_of(
    graph: LineageGraph, upstream: str, downstream: str, column: str, source: str
) -> list[dict[str, Any]]:
    """How `downstream`.`column` uses `upstream`.`source`: [{type, subtype, masking,
    description}], [] when no source said."""
    details = graph.column_details.get((upstream, downstream))
    if not details:
        return []
    return details.get("transformations", {}).get(column, {}).get(source, [])


def indirect_inputs(graph: LineageGraph, asset: str) -> list[dict[str, Any]]:
    """The upstream columns that affect every row (so every column) of `asset`, with how."""
    return [
        {"asset": up, "column": item["column"], "transformations": item["transformations"]}
        for up in graph.upstream.get(asset, ())
        for item in graph.column_details.get((up, asset), {}).get("dataset", ())
    ]


def asset_columns(conn: Reader | sa.Connection, graph: LineageGraph, asset: str) -> list[str]:
    """Every column known for `asset`: its latest schema snapshot, then any column mapping
    or dataset-wide input."""
    db = borrow(conn)
    row = db.row(
        "SELECT columns FROM schema_snapshots WHERE asset = :asset ORDER BY time DESC, id DESC",
        {"asset": asset},
    )
    names: dict[str, None] = {}
    if row is not None:
        for column in json.loads(row[0]):
            if column:
                names[str(column[0])] = None
    index = column_index(graph)
    sides: tuple[dict[str, dict[str, Any]], ...] = (index.reads, index.feeds, index.whole_feeds)
    for side in sides:
        for column in side.get(asset, {}):
            names[column] = None
    return list(names)


def resolve_column(
    conn: Reader | sa.Connection, graph: LineageGraph, asset: str, column: str
) -> str:
    """`column` as recorded for `asset` (case-insensitively when unambiguous), else
    UnknownColumnError with the closest names."""
    known = asset_columns(conn, graph, asset)
    if column in known:
        return column
    same = [c for c in known if c.lower() == column.lower()]
    if len(same) == 1:
        return same[0]
    if not known:
        raise UnknownColumnError(
            f"Unknown column {column!r} of asset {asset!r}: no columns are recorded for it "
            "(record a schema, send OpenLineage columnLineage, or import dbt models with "
            "compiled SQL)."
        )
    close = (
        difflib.get_close_matches(column, known, n=2, cutoff=0.6)
        or [c for c in known if column.lower() in c.lower()][:2]
    )
    if close:
        options = " or ".join(repr(c) for c in close)
        raise UnknownColumnError(
            f"Unknown column {column!r} of asset {asset!r}. Did you mean {options}?"
        )
    shown = ", ".join(known[:10]) + (", …" if len(known) > 10 else "")
    raise UnknownColumnError(
        f"Unknown column {column!r} of asset {asset!r}; its columns are: {shown}."
    )


class IndirectImpact(NamedTuple):
    """A downstream asset whose every column depends on the column, through its rows.

    `column` is set where the walk met a dataset-wide input (`via`.`column` filters, joins or
    groups the rows of `asset`); None where `asset` reads `via`, itself indirectly affected.
    """

    asset: str
    depth: int
    via: str
    column: str | None = None


@dataclass
class ColumnImpact:
    """Every downstream column that depends on `asset`.`column`, transitively."""

    asset: str
    column: str
    # (asset, column, depth in asset hops), nearest first
    columns: list[tuple[str, str, int]]
    # Downstream assets reached by an edge with no column mapping: they may depend on it.
    unmapped: list[tuple[str, str]]  # (asset, the asset it reads)
    # Whole assets affected through a dataset-wide input, nearest first.
    indirect: list[IndirectImpact] = field(default_factory=list)

    def by_asset(self) -> dict[str, list[str]]:
        """Affected columns grouped by asset, nearest asset first."""
        grouped: dict[str, list[str]] = {}
        for asset, column, _depth in self.columns:
            grouped.setdefault(asset, []).append(column)
        return grouped

    @property
    def totals(self) -> dict[str, int]:
        return {
            "columns": len(self.columns),
            "assets": len(self.by_asset()),
            "unmapped_assets": len(self.unmapped),
            "indirect_assets": len(self.indirect),
        }

    def to_dict(self, graph: LineageGraph) -> dict[str, Any]:
        """Plain data; a column entry carries `transformations` where a source said how it
        reads the column that reached it."""
        depths: dict[str, int] = {}
        for asset, _column, depth in self.columns:
            depths.setdefault(asset, depth)

        def node(name: str) -> dict[str, Any]:
            found = graph.nodes.get(name)
            return {
                "kind": found.kind if found else "asset",
                "owner": found.owner if found else None,
            }

        return {
            "asset": self.asset,
            "column": self.column,
            "columns": self._column_entries(graph),
            "assets": [
                {
                    "name": asset,
                    **node(asset),
                    "depth": depths[asset],
                    "count": len(columns),
                    "columns": columns,
                }
                for asset, columns in self.by_asset().items()
            ],
            "unmapped": [{"name": a, "via": via} for a, via in self.unmapped],
            "indirect": [
                {
                    "name": hit.asset,
                    **node(hit.asset),
                    "depth": hit.depth,
                    "via": {"asset": hit.via, "column": hit.column},
                    "transformations": _dataset_transformations(
                        graph, hit.via, hit.asset, hit.column
                    ),
                }
                for hit in self.indirect
            ],
            "totals": self.totals,
        }

    def _column_entries(self, graph: LineageGraph) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        # The hops that reached each column: from a reached column one asset nearer.
        index = column_index(graph) if graph.column_details else None
        reached = {(a, c): d for a, c, d in self.columns}
        reached[(self.asset, self.column)] = 0
        for asset, column, depth in self.columns:
            entry: dict[str, Any] = {"asset": asset, "column": column, "depth": depth}
            entries.append(entry)
            if index is None:
                continue
            found: list[dict[str, Any]] = []
            for up, source in index.reads.get(asset, {}).get(column, ()):
                if reached.get((up, source)) == depth - 1:
                    for item in transformations_of(graph, up, asset, column, source):
                        if item not in found:
                            found.append(item)
            if found:
                entry["transformations"] = found
        return entries


def _dataset_transformations(
    graph: LineageGraph, upstream: str, downstream: str, column: str | None
) -> list[dict[str, Any]]:
    """How `upstream`.`column` affects every row of `downstream` (as a dataset-wide input)."""
    for item in graph.column_details.get((upstream, downstream), {}).get("dataset", ()):
        if item["column"] == column:
            return list(item["transformations"])
    return []


def column_impact(graph: LineageGraph, asset: str, column: str) -> ColumnImpact:
    """Breadth-first down the column mappings from `asset`.`column`; cycles are walked once.

    Where a reached column is a dataset-wide input of a downstream asset, that asset and
    everything downstream of it are affected as whole assets (`indirect`).
    """
    index = column_index(graph)
    start = (asset, column)
    depths: dict[tuple[str, str], int] = {start: 0}
    reached_assets = {asset}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        depth = depths[here] + 1
        for target in index.feeds.get(here[0], {}).get(here[1], ()):
            if target not in depths:
                depths[target] = depth
                reached_assets.add(target[0])
                queue.append(target)
    indirect = _indirect(graph, index, asset, depths) if index.whole_feeds else {}
    unmapped: dict[str, str] = {}
    for name in sorted(reached_assets):
        for child in graph.downstream.get(name, ()):
            if (
                (name, child) not in graph.columns
                and child not in reached_assets
                and child not in indirect
            ):
                unmapped.setdefault(child, name)
    del depths[start]
    ordered = sorted(depths.items(), key=lambda item: (item[1], item[0]))
    return ColumnImpact(
        asset=asset,
        column=column,
        columns=[(a, c, d) for (a, c), d in ordered],
        unmapped=sorted(unmapped.items()),
        indirect=sorted(indirect.values(), key=_nearest),
    )


def _nearest(hit: IndirectImpact) -> tuple[int, str]:
    return hit.depth, hit.asset


def _indirect(
    graph: LineageGraph, index: ColumnIndex, start: str, depths: dict[tuple[str, str], int]
) -> dict[str, IndirectImpact]:
    """The assets whose rows the reached columns decide, and everything downstream of them,
    each at its nearest depth (a breadth-first walk seeded at several depths)."""
    # Plain tuples (depth, via, column): the walk may reach every asset of the graph.
    nearest: dict[str, tuple[int, str, str | None]] = {}
    for up, by_column in index.whole_feeds.items():
        for column, downs in by_column.items():
            depth = depths.get((up, column))
            if depth is None:
                continue
            seed = (depth + 1, up, column)
            for down in downs:
                known = nearest.get(down)
                if known is None or seed < known:
                    nearest[down] = seed
    waiting = deque(sorted((d, down, up, c) for down, (d, up, c) in nearest.items()))
    found: dict[str, tuple[int, str, str, str | None]] = {}
    queue: deque[tuple[int, str, str, str | None]] = deque()
    downstream = graph.downstream
    while queue or waiting:
        # The queue's depths never decrease: take a seed whenever it is not deeper.
        if waiting and (not queue or waiting[0][0] <= queue[0][0]):
            hit = waiting.popleft()
        else:
            hit = queue.popleft()
        name = hit[1]
        if name in found or name == start:
            continue
        found[name] = hit
        depth = hit[0] + 1
        for child in downstream.get(name, ()):
            if child not in found:
                queue.append((depth, child, name, None))
    return {name: IndirectImpact(name, d, via, c) for name, (d, _, via, c) in found.items()}


def column_neighbours(
    conn: Reader | sa.Connection, graph: LineageGraph, asset: str
) -> list[dict[str, Any]]:
    """Each column of `asset` with the columns it reads and the columns that read it."""
    index = column_index(graph)
    reads, feeds = index.reads.get(asset, {}), index.feeds.get(asset, {})
    whole = index.whole_feeds.get(asset, {})

    def ref(name: str, column: str, how: list[dict[str, Any]]) -> dict[str, Any]:
        entry: dict[str, Any] = {"asset": name, "column": column}
        if how:
            entry["transformations"] = how
        return entry

    found = []
    for column in asset_columns(conn, graph, asset):
        entry = {
            "name": column,
            "upstream": [
                ref(a, c, transformations_of(graph, a, asset, column, c))
                for a, c in reads.get(column, [])
            ],
            "downstream": [
                ref(a, c, transformations_of(graph, asset, a, c, column))
                for a, c in feeds.get(column, [])
            ],
        }
        if column in whole:
            # Assets whose every column this one affects (a filter, a join key, a grouping).
            entry["indirect_downstream"] = [
                {
                    "asset": down,
                    "transformations": _dataset_transformations(graph, asset, down, column),
                }
                for down in whole[column]
            ]
        found.append(entry)
    return found


def column_status(graph: LineageGraph, asset: str) -> dict[str, str] | None:
    """What the importer that derives column lineage said of `asset`, if one did."""
    tags = graph.nodes[asset].tags if asset in graph.nodes else {}
    status = tags.get(COLUMN_LINEAGE_TAG)
    if status is None:
        return None
    found = {"status": status}
    # Tags merge across imports: a reason left from an unresolved one is no longer current.
    if status == "unresolved" and COLUMN_LINEAGE_TAG + "_reason" in tags:
        found["reason"] = tags[COLUMN_LINEAGE_TAG + "_reason"]
    return found


def column_sources(graph: LineageGraph, asset: str, column: str) -> list[tuple[str, str, int]]:
    """Every upstream column `asset`.`column` reads, transitively: (asset, column, depth in
    asset hops), nearest first. The mirror of `column_impact`; cycles are walked once."""
    index = column_index(graph)
    start = (asset, column)
    depths: dict[tuple[str, str], int] = {start: 0}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        depth = depths[here] + 1
        for source in index.reads.get(here[0], {}).get(here[1], ()):
            if source not in depths:
                depths[source] = depth
                queue.append(source)
    del depths[start]
    ordered = sorted(depths.items(), key=lambda item: (item[1], item[0]))
    return [(a, c, d) for (a, c), d in ordered]
