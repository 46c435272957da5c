"""Column-level lineage: which downstream columns a column feeds, and what each column reads.

Built on the column mappings of the lineage edges (OpenLineage `columnLineage`, dbt compiled
SQL). An edge without a mapping says nothing about columns: the assets it reaches are
reported apart, as "may depend", and the walk does not go through them.
"""

from __future__ import annotations

import difflib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakelens.analysis._db import Reader, borrow
from lakelens.analysis.assets import UnknownAssetError
from lakelens.analysis.lineage import LineageGraph

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "COLUMN_LINEAGE_TAG",
    "ColumnImpact",
    "ColumnIndex",
    "UnknownColumnError",
    "asset_columns",
    "column_impact",
    "column_index",
    "column_neighbours",
    "column_status",
    "resolve_column",
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
    setattr(graph, _INDEX_ATTR, index)
    return index


def asset_columns(conn: Reader | sa.Connection, graph: LineageGraph, asset: str) -> list[str]:
    """Every column known for `asset`: its latest schema snapshot, then any column mapping."""
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
    for side in (index.reads, index.feeds):
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


@dataclass
class ColumnImpact:
    """Every downstream column that depends on `asset`.`column`, transitively."""

    asset: str
    column: str
    # (asset, column, depth in asset hops), nearest first
    columns: list[tuple[str, str, int]]
    # Downstream assets reached by an edge with no column mapping: they may depend on it.
    unmapped: list[tuple[str, str]]  # (asset, the asset it reads)

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
        }

    def to_dict(self, graph: LineageGraph) -> dict[str, Any]:
        depths: dict[str, int] = {}
        for asset, _column, depth in self.columns:
            depths.setdefault(asset, depth)
        return {
            "asset": self.asset,
            "column": self.column,
            "columns": [{"asset": a, "column": c, "depth": d} for a, c, d in self.columns],
            "assets": [
                {
                    "name": asset,
                    "kind": graph.nodes[asset].kind if asset in graph.nodes else "asset",
                    "owner": graph.nodes[asset].owner if asset in graph.nodes else None,
                    "depth": depths[asset],
                    "count": len(columns),
                    "columns": columns,
                }
                for asset, columns in self.by_asset().items()
            ],
            "unmapped": [{"name": a, "via": via} for a, via in self.unmapped],
            "totals": self.totals,
        }


def column_impact(graph: LineageGraph, asset: str, column: str) -> ColumnImpact:
    """Breadth-first down the column mappings from `asset`.`column`; cycles are walked once."""
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
    unmapped: dict[str, str] = {}
    for name in sorted(reached_assets):
        for child in graph.downstream.get(name, ()):
            if (name, child) not in graph.columns and child not in reached_assets:
                unmapped.setdefault(child, name)
    del depths[start]
    ordered = sorted(depths.items(), key=lambda item: (item[1], item[0]))
    return ColumnImpact(
        asset=asset,
        column=column,
        columns=[(a, c, d) for (a, c), d in ordered],
        unmapped=sorted(unmapped.items()),
    )


def column_neighbours(
    conn: Reader | sa.Connection, graph: LineageGraph, asset: str
) -> list[dict[str, Any]]:
    """Each column of `asset` with the columns it reads and the columns that read it."""
    index = column_index(graph)
    reads, feeds = index.reads.get(asset, {}), index.feeds.get(asset, {})
    return [
        {
            "name": column,
            "upstream": [{"asset": a, "column": c} for a, c in reads.get(column, [])],
            "downstream": [{"asset": a, "column": c} for a, c in feeds.get(column, [])],
        }
        for column in asset_columns(conn, graph, asset)
    ]


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
