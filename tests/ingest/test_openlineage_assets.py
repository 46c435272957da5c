"""An OpenLineage event that names an asset adds what it knows to the asset's row and keeps
the rest: `critical` and the tags the SDK (or dbt, lakelens.yaml) set survive, OpenLineage's
own tags are added and updated. Sent by the real openlineage-python client to a real
`lakelens serve`; the asset declared with the SDK on the same store."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated import ownership_dataset, symlinks_dataset
from openlineage.client.transport.http import HttpConfig, HttpTransport

import lakelens

NS = "pg://wh"
ORDERS, REVENUE = f"{NS}/orders", f"{NS}/revenue"


def _owners(*names: str) -> ownership_dataset.OwnershipDatasetFacet:
    return ownership_dataset.OwnershipDatasetFacet(
        owners=[ownership_dataset.Owner(name=n, type="MAINTAINER") for n in names]
    )


def _send(server: Any, owner: str) -> None:
    """A run that reads orders and writes revenue; both carry an ownership facet, so both get
    an asset row from OpenLineage (revenue also a symlink)."""
    client = OpenLineageClient(transport=HttpTransport(HttpConfig(url=server.url, timeout=10)))
    symlinks = symlinks_dataset.SymlinksDatasetFacet(
        identifiers=[symlinks_dataset.Identifier("hive://meta", "shop.revenue", "TABLE")]
    )
    client.emit(
        RunEvent(
            eventType=RunState.COMPLETE,
            eventTime=datetime.now(timezone.utc).isoformat(),
            run=Run(runId=str(uuid.uuid4())),
            job=Job(namespace="shop", name="build_revenue"),
            inputs=[InputDataset(NS, "orders", facets={"ownership": _owners(owner)})],
            outputs=[
                OutputDataset(
                    NS, "revenue", facets={"ownership": _owners(owner), "symlinks": symlinks}
                )
            ],
            producer="https://example.com/lakelens-tests",
        )
    )
    client.close()


def test_an_openlineage_event_keeps_critical_and_tags_set_by_the_sdk(
    sdk: Any, serve_ol: Any
) -> None:
    lakelens.asset(ORDERS, kind="table", critical=True, tags={"pii": "true"}).declare()
    lakelens.asset(
        REVENUE, kind="table", critical=True, tags={"team": "finance", "tier": "gold"}
    ).declare()
    lakelens.flush()
    server = serve_ol()

    _send(server, "team:payments")
    assets = {a["name"]: a for a in server.get("/api/v1/assets")["assets"]}
    revenue, orders = assets[REVENUE], assets[ORDERS]
    assert revenue["critical"] is True and orders["critical"] is True
    assert revenue["owner"] == "team:payments"
    assert revenue["tags"]["team"] == "finance" and revenue["tags"]["tier"] == "gold"
    assert json.loads(revenue["tags"]["openlineage.owners"]) == [
        {"name": "team:payments", "type": "MAINTAINER"}
    ]
    assert json.loads(revenue["tags"]["openlineage.symlinks"]) == ["hive://meta/shop.revenue"]
    assert orders["tags"]["pii"] == "true" and "openlineage.owners" in orders["tags"]

    # A later event updates OpenLineage's own keys and still keeps the others.
    _send(server, "team:revenue")
    revenue = {a["name"]: a for a in server.get("/api/v1/assets")["assets"]}[REVENUE]
    assert revenue["critical"] is True
    assert revenue["tags"]["team"] == "finance" and revenue["tags"]["tier"] == "gold"
    assert json.loads(revenue["tags"]["openlineage.owners"])[0]["name"] == "team:revenue"
