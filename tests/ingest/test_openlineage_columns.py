"""OpenLineage column lineage beyond the mapping: transformation types (1-2-0 and the 1-0
`transformationType`) and dataset-wide inputs, sent by the real openlineage-python client to a
real `lakelens serve`, and shown by `lineage show --columns`, `lineage impact --column`,
`lineage export` and the API; a dataset-wide input makes every column downstream depend on it."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated import column_lineage_dataset as cl
from openlineage.client.transport.http import HttpConfig, HttpTransport
from typer.testing import CliRunner

from lakelens.cli.main import app

NS = "pg://wh"
ORDERS, CUSTOMERS, REVENUE, WEEKLY = (
    f"{NS}/{n}" for n in ("orders", "customers", "revenue", "weekly")
)
NOW = datetime.now(timezone.utc).replace(microsecond=0)

AGGREGATION = {
    "type": "DIRECT",
    "subtype": "AGGREGATION",
    "masking": False,
    "description": "sum(amount)",
}
IDENTITY = {"type": "DIRECT", "subtype": "IDENTITY"}
FILTER = {"type": "INDIRECT", "subtype": "FILTER", "description": "status = 'paid'"}
JOIN = {"type": "INDIRECT", "subtype": "JOIN"}


def _field(name: str, column: str, *transformations: Any) -> cl.InputField:
    return cl.InputField(NS, name, column, transformations=list(transformations))


def _revenue_lineage() -> cl.ColumnLineageDatasetFacet:
    """revenue = sum(orders.amount) per customer segment, of paid orders joined to customers;
    customer_id's transformations hold three malformed entries beside a good one."""
    return cl.ColumnLineageDatasetFacet(
        fields={
            "total": cl.Fields(
                inputFields=[
                    _field(
                        "orders",
                        "amount",
                        cl.Transformation("DIRECT", "AGGREGATION", "sum(amount)", False),
                    )
                ]
            ),
            "segment": cl.Fields(
                inputFields=[
                    _field("customers", "segment", cl.Transformation("DIRECT", "IDENTITY"))
                ]
            ),
            "customer_id": cl.Fields(
                inputFields=[
                    _field(
                        "orders",
                        "customer_id",
                        cl.Transformation(None, "JOIN"),  # type: ignore[arg-type]
                        "not a transformation",
                        cl.Transformation("SIDEWAYS", "IDENTITY"),
                        cl.Transformation("DIRECT", "IDENTITY"),
                    )
                ]
            ),
        },
        dataset=[
            _field("orders", "status", cl.Transformation("INDIRECT", "FILTER", "status = 'paid'")),
            _field("orders", "customer_id", cl.Transformation("INDIRECT", "JOIN")),
            _field("customers", "id", cl.Transformation("INDIRECT", "JOIN")),
            cl.InputField(NS, "orders", None, transformations=[]),  # type: ignore[arg-type]
        ],
    )


def _weekly_lineage_1_0() -> dict[str, Any]:
    """The 1-0 form: one transformationType per output field, no `dataset` list."""
    return {
        "_producer": "https://example.com/spark-1.0",
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/ColumnLineageDatasetFacet.json",
        "fields": {
            "total": {
                "inputFields": [{"namespace": NS, "name": "revenue", "field": "total"}],
                "transformationType": "IDENTITY",
                "transformationDescription": "identical",
            },
            "segment_hash": {
                "inputFields": [{"namespace": NS, "name": "revenue", "field": "segment"}],
                "transformationType": "MASKED",
                "transformationDescription": "sha256(segment)",
            },
        },
    }


def _send(server: Any) -> None:
    client = OpenLineageClient(transport=HttpTransport(HttpConfig(url=server.url, timeout=10)))

    def event(job: str, inputs: list[str], output: str, lineage: Any, minutes_ago: int) -> RunEvent:
        return RunEvent(
            eventType=RunState.COMPLETE,
            eventTime=(NOW - timedelta(minutes=minutes_ago)).isoformat(),
            run=Run(runId=str(uuid.uuid4())),
            job=Job(namespace="shop", name=job),
            inputs=[InputDataset(NS, name) for name in inputs],
            outputs=[OutputDataset(NS, output, facets={"columnLineage": lineage})],
            producer="https://example.com/lakelens-tests",
        )

    client.emit(event("build_revenue", ["orders", "customers"], "revenue", _revenue_lineage(), 5))
    # Sent as the 1-0 facet it is (the 1-2-0 class would add its own schema URL).
    weekly = event("build_weekly", ["revenue"], "weekly", None, 4)
    weekly.outputs[0].facets = {"columnLineage": _weekly_lineage_1_0()}  # type: ignore[index]
    client.emit(weekly)
    client.close()


@pytest.fixture
def lineage(serve_ol: Any, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    server = serve_ol()
    _send(server)
    monkeypatch.setenv("LAKELENS_DATABASE_URL", store_url)
    return server


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_transformation_types_and_dataset_wide_inputs_reach_show_columns(lineage: Any) -> None:
    data = json.loads(_cli("lineage", "show", REVENUE, "--columns", "--json"))
    columns = {c["name"]: c for c in data["columns"]}
    assert columns["total"]["upstream"] == [
        {"asset": ORDERS, "column": "amount", "transformations": [AGGREGATION]}
    ]
    # The malformed entries are skipped; the good one, and the mapping, are kept.
    assert columns["customer_id"]["upstream"] == [
        {"asset": ORDERS, "column": "customer_id", "transformations": [IDENTITY]}
    ]
    assert data["indirect_inputs"] == [
        {"asset": CUSTOMERS, "column": "id", "transformations": [JOIN]},
        {"asset": ORDERS, "column": "status", "transformations": [FILTER]},
        {"asset": ORDERS, "column": "customer_id", "transformations": [JOIN]},
    ]
    edges = {(e["upstream"], e["downstream"]): e for e in data["column_lineage"]}
    assert edges[(ORDERS, REVENUE)]["columns"] == {
        "total": ["amount"],
        "customer_id": ["customer_id"],
    }
    assert edges[(ORDERS, REVENUE)]["column_details"]["dataset"] == [
        {"column": "status", "transformations": [FILTER]},
        {"column": "customer_id", "transformations": [JOIN]},
    ]
    # The API answers what the CLI prints.
    api = lineage.get(f"/api/v1/lineage/{REVENUE}", columns="true")
    assert api["columns"] == data["columns"]
    assert api["indirect_inputs"] == data["indirect_inputs"]
    assert api["column_lineage"] == data["column_lineage"]

    text = _cli("lineage", "show", REVENUE, "--columns")
    assert f"← reads {ORDERS}.amount (AGGREGATION)" in text
    assert f"indirect: {CUSTOMERS}.id (JOIN), {ORDERS}.status (FILTER)" in text
    upstream = _cli("lineage", "show", ORDERS, "--columns")
    assert f"→ feeds {REVENUE}.total (AGGREGATION)" in upstream
    assert f"→ affects every column of {REVENUE} (FILTER)" in upstream


def test_a_dataset_wide_input_makes_every_downstream_column_depend_on_it(lineage: Any) -> None:
    """orders.status filters revenue's rows: revenue, and weekly through revenue, are affected
    as whole assets, though no column of either is computed from it."""
    data = json.loads(_cli("lineage", "impact", ORDERS, "--column", "status", "--json"))
    assert data["columns"] == []
    assert [(i["name"], i["depth"], i["via"]) for i in data["indirect"]] == [
        (REVENUE, 1, {"asset": ORDERS, "column": "status"}),
        (WEEKLY, 2, {"asset": REVENUE, "column": None}),
    ]
    assert data["indirect"][0]["transformations"] == [FILTER]
    assert data["unmapped"] == []
    assert data["totals"]["indirect_assets"] == 2
    assert lineage.get(f"/api/v1/lineage/{ORDERS}/impact", column="status") == data

    text = _cli("lineage", "impact", ORDERS, "--column", "status")
    assert f"{REVENUE} (asset) — indirect: {ORDERS}.status (FILTER)" in text
    assert f"{WEEKLY} (asset) depth 2 — reads {REVENUE}" in text
    assert "2 assets indirectly (every column)" in text

    # A column that is both mapped and a join key: its columns, and all of revenue.
    both = json.loads(_cli("lineage", "impact", ORDERS, "--column", "customer_id", "--json"))
    assert both["columns"][0] == {
        "asset": REVENUE,
        "column": "customer_id",
        "depth": 1,
        "transformations": [IDENTITY],
    }
    assert [i["name"] for i in both["indirect"]] == [REVENUE, WEEKLY]
    amount = _cli("lineage", "impact", ORDERS, "--column", "amount")
    assert f"{REVENUE} (asset) — 1 column: total (AGGREGATION)" in amount
    assert f"{WEEKLY} (asset) depth 2 — 1 column: total (IDENTITY)" in amount


def test_a_1_0_facet_with_transformation_type_still_works(lineage: Any, tmp_path: Path) -> None:
    data = json.loads(_cli("lineage", "show", WEEKLY, "--columns", "--json"))
    columns = {c["name"]: c for c in data["columns"]}
    assert columns["total"]["upstream"] == [
        {
            "asset": REVENUE,
            "column": "total",
            "transformations": [{**IDENTITY, "description": "identical"}],
        }
    ]
    assert columns["segment_hash"]["upstream"] == [
        {
            "asset": REVENUE,
            "column": "segment",
            "transformations": [
                {
                    "type": "DIRECT",
                    "subtype": "TRANSFORMATION",
                    "masking": True,
                    "description": "sha256(segment)",
                }
            ],
        }
    ]
    assert data["indirect_inputs"] == []
    text = _cli("lineage", "show", WEEKLY, "--columns")
    assert f"← reads {REVENUE}.segment (TRANSFORMATION, masked)" in text

    out = tmp_path / "lineage.json"
    _cli("lineage", "export", "--format", "json", "--output", str(out))
    edges = {(e["upstream"], e["downstream"]): e for e in json.loads(out.read_text())["edges"]}
    assert edges[(REVENUE, WEEKLY)]["columns"] == {"total": ["total"], "segment_hash": ["segment"]}
    assert "dataset" not in edges[(REVENUE, WEEKLY)]["column_details"]
    assert edges[(CUSTOMERS, REVENUE)]["column_details"]["dataset"] == [
        {"column": "id", "transformations": [JOIN]}
    ]
    assert lineage.get("/api/v1/lineage")["edges"] == json.loads(out.read_text())["edges"]
