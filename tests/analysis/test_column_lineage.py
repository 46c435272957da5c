"""Column-level lineage: OpenLineage columnLineage (1-2-0) stored, then walked for impact."""

from __future__ import annotations

import time
from typing import Any

import pytest

from lakelens.analysis.column_lineage import (
    IndirectImpact,
    UnknownColumnError,
    column_impact,
    column_neighbours,
    column_sources,
    indirect_inputs,
    resolve_column,
)
from lakelens.analysis.lineage import LineageGraph, LineageNode, load_graph
from lakelens.ingest.openlineage import to_ingested
from lakelens.store import Store

NS = "postgres://warehouse:5432"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.30.0/integration/spark"
FACET_1_2_0 = (
    "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json"
    "#/$defs/ColumnLineageDatasetFacet"
)
RAW, STG, FCT = "raw.glucose_entries", "stg_glucose_entries", "fct_glucose_daily"


def _field(name: str, column: str, kind: str = "DIRECT", subtype: str = "IDENTITY") -> Any:
    return {
        "namespace": NS,
        "name": name,
        "field": column,
        "transformations": [
            {"type": kind, "subtype": subtype, "description": "", "masking": False}
        ],
    }


def _dataset(name: str, columns: list[str], lineage: dict[str, Any] | None = None) -> Any:
    facets: dict[str, Any] = {
        "schema": {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json",
            "fields": [{"name": c, "type": "varchar"} for c in columns],
        }
    }
    if lineage is not None:
        facets["columnLineage"] = {
            "_producer": PRODUCER,
            "_schemaURL": FACET_1_2_0,
            **lineage,
        }
    return {"namespace": NS, "name": name, "facets": facets}


def _event(run: str, job: str, inputs: list[Any], outputs: list[Any]) -> Any:
    return {
        "eventType": "COMPLETE",
        "eventTime": "2025-01-01T06:00:00Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run},
        "job": {"namespace": "spark", "name": job},
        "inputs": inputs,
        "outputs": outputs,
    }


RAW_COLUMNS = ["id", "sgv", "device", "date_string", "direction"]


def glucose_events() -> list[Any]:
    """raw.glucose_entries → stg_glucose_entries → fct_glucose_daily, in the 1-2-0 form."""
    staging = _event(
        "01943b6a-0000-7000-8000-000000000001",
        "stage_glucose",
        [_dataset(RAW, RAW_COLUMNS)],
        [
            _dataset(
                STG,
                ["entry_id", "glucose_mg_dl", "glucose_mmol", "read_at", "trend"],
                {
                    "fields": {
                        "entry_id": {"inputFields": [_field(RAW, "id")]},
                        "glucose_mg_dl": {"inputFields": [_field(RAW, "sgv")]},
                        "glucose_mmol": {
                            "inputFields": [
                                _field(RAW, "sgv", subtype="TRANSFORMATION"),
                                _field(RAW, "device", "INDIRECT", "CONDITIONAL"),
                            ]
                        },
                        "read_at": {"inputFields": [_field(RAW, "date_string")]},
                        "trend": {"inputFields": [_field(RAW, "direction")]},
                    },
                    # Dataset-wide: every output row depends on the filter column.
                    "dataset": [_field(RAW, "device", "INDIRECT", "FILTER")],
                },
            )
        ],
    )
    daily = _event(
        "01943b6a-0000-7000-8000-000000000002",
        "daily_glucose",
        [_dataset(STG, ["entry_id", "glucose_mg_dl", "glucose_mmol", "read_at", "trend"])],
        [
            _dataset(
                FCT,
                ["day", "avg_mg_dl", "avg_mmol", "readings"],
                {
                    "fields": {
                        "day": {"inputFields": [_field(STG, "read_at", subtype="TRANSFORMATION")]},
                        "avg_mg_dl": {
                            "inputFields": [_field(STG, "glucose_mg_dl", subtype="AGGREGATION")]
                        },
                        "avg_mmol": {
                            "inputFields": [_field(STG, "glucose_mmol", subtype="AGGREGATION")]
                        },
                        "readings": {
                            "inputFields": [_field(STG, "entry_id", subtype="AGGREGATION")]
                        },
                    }
                },
            )
        ],
    )
    # A consumer OpenLineage saw without column lineage.
    report = _event(
        "01943b6a-0000-7000-8000-000000000003",
        "weekly_report",
        [_dataset(FCT, ["day", "avg_mg_dl", "avg_mmol", "readings"])],
        [_dataset("weekly_report", ["week", "avg"])],
    )
    return [staging, daily, report]


def _name(dataset: str) -> str:
    from lakelens.ingest.openlineage import dataset_name

    return dataset_name(NS, dataset)


@pytest.fixture
def store(store_url: str) -> Any:
    store = Store(store_url)
    result = to_ingested(glucose_events(), now=time.time())
    assert result.rejected == [] and result.accepted == 3
    store.write(result.batch)
    yield store
    store.close()


def test_openlineage_1_2_0_column_lineage_is_stored_as_the_edges_mapping(store: Store) -> None:
    with store.connect() as conn:
        graph = load_graph(conn)
    raw, stg, fct = _name(RAW), _name(STG), _name(FCT)
    # Per-field inputs are the mapping, DIRECT and INDIRECT alike; the transformation types
    # and the dataset-wide dependencies are its details.
    assert graph.columns[(raw, stg)] == {
        "entry_id": ["id"],
        "glucose_mg_dl": ["sgv"],
        "glucose_mmol": ["sgv", "device"],
        "read_at": ["date_string"],
        "trend": ["direction"],
    }
    assert graph.columns[(stg, fct)]["avg_mmol"] == ["glucose_mmol"]
    assert (fct, _name("weekly_report")) not in graph.columns
    details = graph.column_details[(raw, stg)]
    assert details["transformations"]["glucose_mmol"] == {
        "sgv": [{"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": False}],
        "device": [{"type": "INDIRECT", "subtype": "CONDITIONAL", "masking": False}],
    }
    assert details["dataset"] == [
        {
            "column": "device",
            "transformations": [{"type": "INDIRECT", "subtype": "FILTER", "masking": False}],
        }
    ]
    assert "dataset" not in graph.column_details[(stg, fct)]


def test_column_impact_is_transitive_and_names_assets_without_column_lineage(
    store: Store,
) -> None:
    with store.connect() as conn:
        graph = load_graph(conn)
    raw, stg, fct = _name(RAW), _name(STG), _name(FCT)
    found = column_impact(graph, raw, "sgv")
    assert found.columns == [
        (stg, "glucose_mg_dl", 1),
        (stg, "glucose_mmol", 1),
        (fct, "avg_mg_dl", 2),
        (fct, "avg_mmol", 2),
    ]
    assert found.by_asset() == {
        stg: ["glucose_mg_dl", "glucose_mmol"],
        fct: ["avg_mg_dl", "avg_mmol"],
    }
    assert found.unmapped == [(_name("weekly_report"), fct)]
    assert found.totals == {"columns": 4, "assets": 2, "unmapped_assets": 1, "indirect_assets": 0}
    # A column nothing reads affects nothing, not even the unmapped consumer further down.
    lonely = column_impact(graph, stg, "trend")
    assert lonely.columns == [] and lonely.unmapped == []


def test_a_dataset_wide_input_affects_every_column_downstream_as_indirect(store: Store) -> None:
    """raw.device filters the rows of stg: all of stg, and through its rows fct and the report
    that reads fct without column lineage, depend on it; its own mapping (glucose_mmol) stays
    a column dependency."""
    with store.connect() as conn:
        graph = load_graph(conn)
    raw, stg, fct, report = _name(RAW), _name(STG), _name(FCT), _name("weekly_report")
    found = column_impact(graph, raw, "device")
    assert found.columns == [(stg, "glucose_mmol", 1), (fct, "avg_mmol", 2)]
    assert found.indirect == [
        IndirectImpact(stg, 1, raw, "device"),
        IndirectImpact(fct, 2, stg),
        IndirectImpact(report, 3, fct),
    ]
    assert found.unmapped == []  # the report is known to depend on it: indirectly
    assert found.totals["indirect_assets"] == 3
    data = found.to_dict(graph)
    assert data["indirect"][0] == {
        "name": stg,
        "kind": "asset",
        "owner": None,
        "depth": 1,
        "via": {"asset": raw, "column": "device"},
        "transformations": [{"type": "INDIRECT", "subtype": "FILTER", "masking": False}],
    }
    assert data["indirect"][1]["via"] == {"asset": stg, "column": None}
    assert data["columns"][0] == {
        "asset": stg,
        "column": "glucose_mmol",
        "depth": 1,
        "transformations": [{"type": "INDIRECT", "subtype": "CONDITIONAL", "masking": False}],
    }
    # A column that only maps: no indirect assets.
    assert column_impact(graph, raw, "sgv").indirect == []


def test_each_column_lists_what_it_reads_and_what_reads_it(store: Store) -> None:
    with store.connect() as conn:
        graph = load_graph(conn)
        columns = {c["name"]: c for c in column_neighbours(conn, graph, _name(STG))}
    assert list(columns) == ["entry_id", "glucose_mg_dl", "glucose_mmol", "read_at", "trend"]
    direct = {"type": "DIRECT", "masking": False}
    assert columns["glucose_mmol"]["upstream"] == [
        {
            "asset": _name(RAW),
            "column": "sgv",
            "transformations": [{**direct, "subtype": "TRANSFORMATION"}],
        },
        {
            "asset": _name(RAW),
            "column": "device",
            "transformations": [{"type": "INDIRECT", "subtype": "CONDITIONAL", "masking": False}],
        },
    ]
    assert columns["glucose_mmol"]["downstream"] == [
        {
            "asset": _name(FCT),
            "column": "avg_mmol",
            "transformations": [{**direct, "subtype": "AGGREGATION"}],
        }
    ]
    with store.connect() as conn:
        raw = {c["name"]: c for c in column_neighbours(conn, graph, _name(RAW))}
    assert raw["device"]["indirect_downstream"] == [
        {
            "asset": _name(STG),
            "transformations": [{"type": "INDIRECT", "subtype": "FILTER", "masking": False}],
        }
    ]
    assert "indirect_downstream" not in raw["sgv"]
    assert indirect_inputs(graph, _name(STG)) == [
        {
            "asset": _name(RAW),
            "column": "device",
            "transformations": [{"type": "INDIRECT", "subtype": "FILTER", "masking": False}],
        }
    ]


def test_column_sources_walk_every_upstream_column_nearest_first(store: Store) -> None:
    with store.connect() as conn:
        graph = load_graph(conn)
    raw, stg, fct = _name(RAW), _name(STG), _name(FCT)
    assert column_sources(graph, fct, "avg_mmol") == [
        (stg, "glucose_mmol", 1),
        (raw, "device", 2),
        (raw, "sgv", 2),
    ]
    # A column read from nothing mapped (a source's own column) has no sources.
    assert column_sources(graph, raw, "sgv") == []


def test_an_unknown_column_suggests_the_closest(store: Store) -> None:
    with store.connect() as conn:
        graph = load_graph(conn)
        assert resolve_column(conn, graph, _name(RAW), "SGV") == "sgv"
        with pytest.raises(UnknownColumnError) as caught:
            resolve_column(conn, graph, _name(RAW), "devise")
    assert (
        str(caught.value)
        == f"Unknown column 'devise' of asset '{_name(RAW)}'. Did you mean 'device'?"
    )


def _wide_graph(assets: int, columns: int) -> LineageGraph:
    """A chain-of-layers graph: each asset reads two earlier ones, column by column."""
    names = [f"a{i}" for i in range(assets)]
    graph = LineageGraph(nodes={n: LineageNode(n) for n in names}, upstream={}, downstream={})
    for i in range(1, assets):
        for parent in {(i - 1) // 2, i - 1}:
            up, down = names[parent], names[i]
            graph.downstream.setdefault(up, []).append(down)
            graph.upstream.setdefault(down, []).append(up)
            graph.columns[(up, down)] = {f"c{c}": [f"c{c}"] for c in range(columns)}
    return graph


def test_column_impact_walks_a_large_graph_once_per_column_and_asset() -> None:
    graph = _wide_graph(2_000, 20)
    found = column_impact(graph, "a0", "c3")
    assert len(found.columns) == 1_999
    assert {c for _a, c, _d in found.columns} == {"c3"}
    assert found.unmapped == []


def test_a_later_event_without_column_lineage_keeps_the_details_and_one_with_it_replaces_them(
    store: Store,
) -> None:
    """The mapping and its details are one statement: kept together, replaced together."""
    raw, stg = _name(RAW), _name(STG)
    silent = _event(
        "01943b6a-0000-7000-8000-000000000009",
        "stage_glucose",
        [_dataset(RAW, RAW_COLUMNS)],
        [_dataset(STG, ["entry_id"])],
    )
    store.write(to_ingested([silent], now=time.time()).batch)
    with store.connect() as conn:
        graph = load_graph(conn)
    assert graph.column_details[(raw, stg)]["dataset"][0]["column"] == "device"
    assert graph.columns[(raw, stg)]["entry_id"] == ["id"]

    plain = {
        "fields": {"entry_id": {"inputFields": [{"namespace": NS, "name": RAW, "field": "id"}]}}
    }
    restated = _event(
        "01943b6a-0000-7000-8000-000000000010",
        "stage_glucose",
        [_dataset(RAW, RAW_COLUMNS)],
        [_dataset(STG, ["entry_id"], plain)],
    )
    store.write(to_ingested([restated], now=time.time()).batch)
    with store.connect() as conn:
        graph = load_graph(conn)
    assert graph.columns[(raw, stg)] == {"entry_id": ["id"]}
    assert (raw, stg) not in graph.column_details
