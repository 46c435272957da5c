"""What an OpenLineage `columnLineage` facet says about each edge into its dataset.

Per upstream dataset: the column mapping {output column: [input columns]} that every lineage
reader walks (`lineage_edges.columns`), and beside it the details (`column_details`):

    {"transformations": {output column: {input column: [{"type": "DIRECT",
                                                          "subtype": "AGGREGATION",
                                                          "masking": false,
                                                          "description": "sum(amount)"}]}},
     "dataset": [{"column": input column, "transformations": [...]}]}

`transformations` come from each input field's `transformations` (1-2-0) or, for 1-0-x, from
the output field's `transformationType` / `transformationDescription`. `dataset` lists the
input columns that affect the whole output dataset (a filter, a join key, a grouping).

The facet comes from outside: a malformed transformation is skipped, never the event, and
each edge's details stay within `_MAX_DETAIL_CHARS` of JSON (dataset-wide inputs first: they
change what impact analysis reports).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from lakelens import _clean
from lakelens.ingest.openlineage_facets import dataset_name

__all__ = ["ColumnEdge", "column_edges"]

_TYPES = frozenset({"DIRECT", "INDIRECT"})
# Subtypes are words such as AGGREGATION or GROUP_BY; new ones are kept if they look like one.
_SUBTYPE = re.compile(r"[A-Z][A-Z0-9_]{0,31}")
_MAX_DESCRIPTION = 256
_MAX_COLUMN = 512
# Per input column of one output column (or per dataset-wide input).
_MAX_TRANSFORMATIONS = 8
# Per edge, as JSON; far below the 64 KiB cap of a stored JSON value.
_MAX_DETAIL_CHARS = 32 * 1024

# 1-0-x named the kind of an output field as a whole: IDENTITY, or MASKED (a hash of PII).
_LEGACY: dict[str, dict[str, Any]] = {
    "IDENTITY": {"type": "DIRECT", "subtype": "IDENTITY"},
    "MASKED": {"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": True},
}


@dataclass
class ColumnEdge:
    """What the facet says about the edge from one upstream dataset."""

    columns: dict[str, list[str]] = field(default_factory=dict)
    transformations: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    dataset: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    truncated: bool = False
    used: int = field(default=0, repr=False)  # characters of JSON so far

    def details(self) -> dict[str, Any] | None:
        """The `column_details` value of the edge; None when the facet said nothing more."""
        found: dict[str, Any] = {}
        if self.transformations:
            found["transformations"] = self.transformations
        if self.dataset:
            found["dataset"] = [
                {"column": column, "transformations": entries}
                for column, entries in self.dataset.items()
            ]
        if found and self.truncated:
            found["truncated"] = True
        return found or None

    def fits(self, *parts: object) -> bool:
        """Whether `parts` still fit the edge's budget (and count them if so)."""
        size = sum(len(p) if isinstance(p, str) else _size(p) for p in parts) + 8
        if self.used + size > _MAX_DETAIL_CHARS:
            self.truncated = True
            return False
        self.used += size
        return True

    def add_dataset(self, column: str, entries: list[dict[str, Any]]) -> None:
        known = self.dataset.get(column)
        if known is None:
            if not self.fits(column):
                return
            known = self.dataset[column] = []
        _extend(self, known, entries)

    def add_transformations(self, output: str, column: str, entries: list[dict[str, Any]]) -> None:
        if not entries:
            return
        by_input = self.transformations.get(output)
        if by_input is None:
            if not self.fits(output):
                return
            by_input = self.transformations[output] = {}
        known = by_input.get(column)
        if known is None:
            if not self.fits(column):
                return
            known = by_input[column] = []
        _extend(self, known, entries)


def column_edges(facet: Any) -> dict[str, ColumnEdge]:
    """{upstream asset: ColumnEdge} from a columnLineage facet (any version; {} when unusable)."""
    if not isinstance(facet, dict):
        return {}
    found: dict[str, ColumnEdge] = {}

    def source(item: Any) -> tuple[ColumnEdge, str] | None:
        if not isinstance(item, dict):
            return None
        namespace, name, column = item.get("namespace"), item.get("name"), item.get("field")
        if not (isinstance(name, str) and isinstance(column, str)):
            return None
        upstream = dataset_name(namespace if isinstance(namespace, str) else "", name)
        return found.setdefault(upstream, ColumnEdge()), column

    dataset = facet.get("dataset")
    for item in dataset if isinstance(dataset, list) else ():
        named = source(item)
        if named is not None and len(named[1]) <= _MAX_COLUMN:
            named[0].add_dataset(named[1], _transformations(item.get("transformations")))
    fields = facet.get("fields")
    for output, spec in fields.items() if isinstance(fields, dict) else ():
        inputs = spec.get("inputFields") if isinstance(spec, dict) else None
        if not isinstance(inputs, list):
            continue
        output = str(output)
        legacy = _legacy(spec)
        for item in inputs:
            named = source(item)
            if named is None:
                continue
            edge, column = named
            targets = edge.columns.setdefault(output, [])
            if column not in targets:
                targets.append(column)
            if len(output) > _MAX_COLUMN or len(column) > _MAX_COLUMN:
                continue
            given = item.get("transformations")
            entries = _transformations(given) if given else legacy
            edge.add_transformations(output, column, entries)
    return found


def _transformations(value: Any) -> list[dict[str, Any]]:
    """The well-formed entries of a 1-2-0 `transformations` list, normalized; others skipped."""
    if not isinstance(value, list):
        return []
    found = []
    for item in value:
        entry = _transformation(item)
        if entry is not None and entry not in found:
            found.append(entry)
    return found[:_MAX_TRANSFORMATIONS]


def _transformation(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    kind = item.get("type")
    if not isinstance(kind, str) or kind.strip().upper() not in _TYPES:
        return None
    entry: dict[str, Any] = {"type": kind.strip().upper()}
    subtype = item.get("subtype")
    if isinstance(subtype, str) and _SUBTYPE.fullmatch(subtype.strip().upper()):
        entry["subtype"] = subtype.strip().upper()
    if isinstance(item.get("masking"), bool):
        entry["masking"] = item["masking"]
    description = item.get("description")
    if isinstance(description, str) and description.strip():
        entry["description"] = _clean.cut(description.strip(), _MAX_DESCRIPTION)
    return entry


def _legacy(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The 1-0-x `transformationType` / `transformationDescription` of an output field, as
    the one transformation of each of its inputs (which carry none of their own)."""
    kind, description = spec.get("transformationType"), spec.get("transformationDescription")
    entry: dict[str, Any] | None = None
    if isinstance(kind, str) and kind.strip():
        entry = dict(_LEGACY.get(kind.strip().upper(), {"type": "DIRECT"}))
    if isinstance(description, str) and description.strip():
        entry = entry or {"type": "DIRECT"}
        entry["description"] = _clean.cut(description.strip(), _MAX_DESCRIPTION)
    return [entry] if entry is not None else []


def _extend(edge: ColumnEdge, known: list[dict[str, Any]], entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        if len(known) >= _MAX_TRANSFORMATIONS:
            return
        if entry not in known and edge.fits(entry):
            known.append(entry)


def _size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
