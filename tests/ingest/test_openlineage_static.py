"""OpenLineage 2-0-2 beyond run events (issue 17): JobEvents and DatasetEvents, ownership and
job dependencies, and the nominalTime / processing_engine / errorMessage facets where users
look. Sent by the real openlineage-python client to a real `lakelens serve`."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    DatasetEvent,
    InputDataset,
    Job,
    JobEvent,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.generated import (
    documentation_dataset,
    error_message_run,
    job_dependencies_run,
    nominal_time_run,
    ownership_dataset,
    ownership_job,
    processing_engine_run,
    schema_dataset,
    symlinks_dataset,
)
from openlineage.client.serde import Serde
from openlineage.client.transport.http import HttpConfig, HttpTransport
from typer.testing import CliRunner

from lakelens.alerts.config import AlertingConfig, RuleSettings
from lakelens.alerts.engine import AlertEngine
from lakelens.alerts.incidents import Policy
from lakelens.cli.main import app
from lakelens.store import Store, reads, schema

NS = "postgres://warehouse:5432"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
PRODUCER = "https://example.com/lakelens-tests"


def _at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


def _send(server: Any, *events: Any) -> None:
    """One request per event, as the client's HttpTransport sends them."""
    client = OpenLineageClient(transport=HttpTransport(HttpConfig(url=server.url, timeout=10)))
    for event in events:
        client.emit(event)
    client.close()


def _send_array(server: Any, *events: Any) -> None:
    """All events in one JSON array (the Marquez-compatible batch body)."""
    body = [Serde.to_dict(event) for event in events]
    response = httpx.post(server.url + "/api/v1/lineage", json=body, timeout=10)
    assert response.status_code < 300, response.text


def _schema(**columns: str) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in columns.items()]
    )


def _job_owners(*names: str) -> ownership_job.OwnershipJobFacet:
    return ownership_job.OwnershipJobFacet(
        owners=[ownership_job.Owner(name=n, type="MAINTAINER") for n in names]
    )


def _dataset_owners(*names: str) -> ownership_dataset.OwnershipDatasetFacet:
    return ownership_dataset.OwnershipDatasetFacet(
        owners=[ownership_dataset.Owner(name=n, type="MAINTAINER") for n in names]
    )


def _static_events() -> list[Any]:
    """A JobEvent (orders → revenue, the job owned by team:payments) and a DatasetEvent for
    `customers` (its own owner, description, schema and a symlink)."""
    job = JobEvent(
        eventTime=_at(30),
        producer=PRODUCER,
        job=Job(
            namespace="shop",
            name="build_revenue",
            facets={"ownership": _job_owners("team:payments", "user:ana")},
        ),
        inputs=[InputDataset(NS, "orders", facets={"schema": _schema(id="INT", amount="NUMERIC")})],
        outputs=[OutputDataset(NS, "revenue", facets={"schema": _schema(day="DATE", total="INT")})],
    )
    dataset = DatasetEvent(
        eventTime=_at(29),
        producer=PRODUCER,
        dataset=StaticDataset(
            NS,
            "customers",
            facets={
                "schema": _schema(id="INT", email="TEXT"),
                "ownership": _dataset_owners("team:crm"),
                "documentation": documentation_dataset.DocumentationDatasetFacet(
                    description="One row per customer."
                ),
                "symlinks": symlinks_dataset.SymlinksDatasetFacet(
                    identifiers=[
                        symlinks_dataset.Identifier("hive://meta", "crm.customers", "TABLE")
                    ]
                ),
            },
        ),
    )
    return [job, dataset]


def _check_static(server: Any, store_url: str) -> None:
    orders, revenue, customers = f"{NS}/orders", f"{NS}/revenue", f"{NS}/customers"
    assets = {a["name"]: a for a in server.get("/api/v1/assets")["assets"]}
    assert assets[revenue]["owner"] == "team:payments"
    assert json.loads(assets[revenue]["tags"]["openlineage.owners"]) == [
        {"name": "team:payments", "type": "MAINTAINER"},
        {"name": "user:ana", "type": "MAINTAINER"},
    ]
    assert assets[orders]["owner"] is None  # the job owns what it writes, not what it reads
    assert assets[customers]["owner"] == "team:crm"
    assert json.loads(assets[customers]["tags"]["openlineage.symlinks"]) == [
        "hive://meta/crm.customers"
    ]
    # Impact analysis names the owners of what a change to orders breaks.
    assert server.get(f"/api/v1/lineage/{orders}/impact")["owners"] == ["team:payments"]
    assert server.get("/api/v1/runs")["runs"] == []  # static lineage opens no run

    store = Store(store_url)
    try:
        with store.connect() as conn:
            edges = {(e.upstream, e.downstream) for e in reads.lineage_edges(conn)}
            assert edges == {(orders, revenue)}
            described = conn.execute(
                sa.select(schema.assets.c.description).where(schema.assets.c.name == customers)
            ).scalar_one()
            assert described == "One row per customer."
            snapshots = {s.asset: s.columns for s in reads.schema_snapshots(conn)}
            assert snapshots[customers] == [("id", "INT"), ("email", "TEXT")]
            assert snapshots[revenue] == [("day", "DATE"), ("total", "INT")]
    finally:
        store.close()


def test_job_and_dataset_events_record_lineage_owners_and_schemas(
    serve_ol: Any, store_url: str
) -> None:
    """A JobEvent gives edges, schemas and its outputs' owner; a DatasetEvent registers its
    dataset with owner, description, schema and symlinks; neither opens a run."""
    server = serve_ol()
    _send(server, *_static_events())
    _check_static(server, store_url)


def test_job_and_dataset_events_in_one_array(serve_ol: Any, store_url: str) -> None:
    server = serve_ol()
    _send_array(server, *_static_events())
    _check_static(server, store_url)


def _failed_run(run_id: str) -> list[RunEvent]:
    facets = {
        "nominalTime": nominal_time_run.NominalTimeRunFacet(
            nominalStartTime="2024-10-15T06:00:00Z", nominalEndTime="2024-10-15T07:00:00Z"
        ),
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version="3.5.0", name="spark", openlineageAdapterVersion="1.54.0"
        ),
        "jobDependencies": job_dependencies_run.JobDependenciesRunFacet(
            upstream=[
                job_dependencies_run.JobDependency(
                    job=job_dependencies_run.JobIdentifier("shop", "load_orders")
                )
            ],
            downstream=[
                job_dependencies_run.JobDependency(
                    job=job_dependencies_run.JobIdentifier("bi", "refresh_dashboard")
                )
            ],
        ),
    }
    error = error_message_run.ErrorMessageRunFacet(
        message="java.lang.ArithmeticException: / by zero",
        programmingLanguage="JAVA",
        stackTrace="java.lang.ArithmeticException: / by zero\n\tat Revenue.run(Revenue.scala:12)",
    )
    job = Job(
        namespace="shop", name="build_revenue", facets={"ownership": _job_owners("team:payments")}
    )
    common: dict[str, Any] = {
        "job": job,
        "producer": PRODUCER,
        "inputs": [InputDataset(NS, "orders")],
        "outputs": [OutputDataset(NS, "revenue")],
    }
    return [
        RunEvent(eventType=RunState.START, eventTime=_at(6), run=Run(run_id, facets), **common),
        RunEvent(
            eventType=RunState.FAIL,
            eventTime=_at(5),
            run=Run(run_id, {**facets, "errorMessage": error}),
            **common,
        ),
    ]


def test_scheduled_time_engine_and_error_are_shown_where_users_look(
    serve_ol: Any, store_url: str, tmp_path: Path, monkeypatch: Any
) -> None:
    """nominalTime is the scheduled time, processing_engine is "spark 3.5.0", errorMessage is
    the run's error: in /api/v1/runs/{id}, on the run page, in `lakelens trace` and `why`."""
    server = serve_ol()
    run_id = str(uuid.uuid4())
    _send(server, *_failed_run(run_id))

    run = server.get(f"/api/v1/runs/{run_id}")["run"]
    assert run["status"] == "failure"
    assert run["scheduled_time"] == "2024-10-15T06:00:00+00:00"
    assert run["scheduled_end_time"] == "2024-10-15T07:00:00+00:00"
    assert run["engine"] == "spark 3.5.0"
    assert run["adapter_version"] == "1.54.0"
    assert run["upstream_jobs"] == ["shop/load_orders"]
    assert run["downstream_jobs"] == ["bi/refresh_dashboard"]
    assert run["error_type"] == "java.lang.ArithmeticException"
    assert run["error_message"] == "java.lang.ArithmeticException: / by zero"
    assert "Revenue.scala:12" in run["error_traceback"]

    page = httpx.get(f"{server.url}/runs/{run_id}", timeout=10)
    assert page.status_code == 200
    html = page.text
    assert "Scheduled" in html and "2024-10-15 06:00:00 UTC" in html
    assert 'data-metric="engine" data-value="spark 3.5.0"' in html
    assert "shop/load_orders" in html and "bi/refresh_dashboard" in html
    assert "/ by zero" in html

    monkeypatch.setenv("LAKELENS_DATABASE_URL", store_url)
    runner = CliRunner()
    home = str(tmp_path / "cli-home")
    trace = runner.invoke(app, ["trace", run_id, "--home", home, "--no-color"])
    assert trace.exit_code == 0, trace.output
    assert "Scheduled 2024-10-15 06:00:00 UTC · engine spark 3.5.0" in trace.output
    assert "ArithmeticException" in trace.output
    why = runner.invoke(app, ["why", f"{NS}/revenue", "--home", home, "--no-color"])
    assert why.exit_code == 0, why.output
    assert "/ by zero" in why.output
    assert "scheduled 2024-10-15 06:00:00 UTC · engine spark 3.5.0" in why.output
    why_json = runner.invoke(app, ["why", f"{NS}/revenue", "--home", home, "--json"])
    assert why_json.exit_code == 0, why_json.output
    assert json.loads(why_json.output)["last_error"]["engine"] == "spark 3.5.0"


def test_an_owner_from_the_ownership_facet_routes_the_incident(
    serve_ol: Any, store_url: str
) -> None:
    """The job's ownership facet makes team:payments the owner of revenue, so revenue's failed
    run opens an incident that goes to the team:payments route as well as the severity route."""
    server = serve_ol(None, "--no-alerts")  # this test's engine opens the incident
    run_id = str(uuid.uuid4())
    _send(server, *_failed_run(run_id))

    hook = {"type": "webhook", "url": "http://127.0.0.1:9/hook"}
    config = AlertingConfig(
        destinations={"oncall": hook, "payments": hook},
        routes={s: ("oncall",) for s in ("info", "warning", "error", "critical")},
        owner_routes={"team:payments": ("payments",)},
        rules=RuleSettings(),
        incident_policy=Policy(group_wait=0),
    )
    store = Store(store_url)
    try:
        result = AlertEngine(store, config).evaluate(group_wait=0)
        assert result.opened
        with store.connect() as conn:
            incidents = conn.execute(sa.select(schema.incidents.c.root_asset)).scalars().all()
            destinations = set(
                conn.execute(sa.select(schema.notifications.c.destination)).scalars()
            )
    finally:
        store.close()
    assert f"{NS}/revenue" in incidents
    assert destinations == {"oncall", "payments"}
