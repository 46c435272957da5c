"""The read API returns exactly what analysis/ computes (the same numbers as the CLI)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from lakelens.analysis.asset_metrics import asset_metrics
from lakelens.analysis.lineage import annotate, impact, load_graph
from lakelens.analysis.logs import LogFilter, last_id, search
from lakelens.analysis.profiles import profile_report
from lakelens.analysis.summary import summary
from lakelens.analysis.trace import load_trace
from lakelens.analysis.usage import asset_usage, usage_at_stake
from lakelens.server.shapes import impact_dict, jsonable, log_dict, node_dict, trace_dict


def test_summary_equals_the_analysis_summary(client: Any, pipeline: Any, monkeypatch) -> None:
    _settings, store, info = pipeline
    frozen = info["now"]
    monkeypatch.setattr("lakelens.analysis.summary.time.time", lambda: frozen)
    response = client.get("/api/v1/summary", params={"period": "24h"})
    assert response.status_code == 200, response.text
    with store.connect() as conn:
        expected = summary(conn, since=frozen - 86400)
    assert response.json() == jsonable({"period": "24h", **expected.to_dict()})
    body = response.json()
    assert body["runs"]["total"] == 3 and body["runs"]["failure"] == 1
    assert body["status"] == "FAILING"


def test_assets_list_every_asset_with_state(client: Any, pipeline: Any) -> None:
    _settings, store, info = pipeline
    with store.connect() as conn:
        graph = load_graph(conn)
        annotate(conn, graph, list(graph.nodes), now=info["now"])
    expected = [node_dict(graph.nodes[n]) for n in sorted(graph.nodes)]
    body = client.get("/api/v1/assets").json()
    # The catalog adds fields (health, description, last_rows, …); lineage's stay as they were.
    assert [{k: a[k] for k in expected[0]} for a in body["assets"]] == json.loads(
        json.dumps(expected)
    )
    assert body["total"] == len(expected) and body["next_after"] is None
    by_name = {a["name"]: a for a in body["assets"]}
    assert by_name["dlt_entries"]["status"] == "failure"
    assert by_name["dlt_entries"]["stale"] is True


def test_asset_detail_equals_asset_metrics_with_neighbours(client: Any, pipeline: Any) -> None:
    _settings, store, info = pipeline
    with store.connect() as conn:
        expected = asset_metrics(conn, "dlt_entries", runs=20, now=info["now"]).to_dict()
        expected["usage"] = asset_usage(conn, "dlt_entries", now=info["now"]).to_dict()
        expected["profile"] = profile_report(conn, "dlt_entries", history=2).to_dict()
    body = client.get("/api/v1/assets/dlt_entries").json()
    assert body.pop("upstream_assets") == ["api"]
    assert body.pop("downstream_assets") == ["stg_entries"]
    assert body == jsonable(expected)
    assert body["failure_rate"] == pytest.approx(100 / 3)
    assert [c["name"] for c in body["checks"]] == ["range_check"]


def test_asset_with_quotes_and_backslash_in_its_name(client: Any, odd_asset: str) -> None:
    response = client.get(f"/api/v1/assets/{odd_asset}")
    assert response.status_code == 200, response.text
    assert response.json()["name"] == odd_asset


def test_unknown_asset_is_404_with_did_you_mean(client: Any) -> None:
    for path in (
        "/api/v1/assets/dlt_entris",
        "/api/v1/lineage/dlt_entris",
        "/api/v1/lineage/dlt_entris/impact",
        "/api/v1/logs?asset=dlt_entris",
        "/api/v1/runs?asset=dlt_entris",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Did you mean 'dlt_entries'" in response.json()["detail"], path


def test_runs_filter_by_asset_status_and_since(client: Any, pipeline: Any) -> None:
    _settings, _store, info = pipeline
    runs = client.get("/api/v1/runs").json()["runs"]
    assert [r["run_id"] for r in runs] == list(reversed(info["run_ids"]))
    failed = client.get("/api/v1/runs", params={"status": "failure"}).json()["runs"]
    assert [r["run_id"] for r in failed] == [info["run_ids"][2]]
    assert failed[0]["error_type"] == "ApiTimeout"
    # The failed run never reached stg_entries.
    stg = client.get("/api/v1/runs", params={"asset": "stg_entries"}).json()["runs"]
    assert {r["run_id"] for r in stg} == set(info["run_ids"][:2])
    recent = client.get("/api/v1/runs", params={"since": "1h"}).json()["runs"]
    assert [r["run_id"] for r in recent] == [info["run_ids"][2]]
    assert client.get("/api/v1/runs", params={"status": "exploded"}).status_code == 400


def test_run_detail_has_the_trace_of_lakelens_trace(client: Any, pipeline: Any) -> None:
    _settings, store, info = pipeline
    run_id = info["run_ids"][2]
    body = client.get(f"/api/v1/runs/{run_id[:8]}").json()
    with store.connect() as conn:
        expected = trace_dict(run_id, load_trace(conn, run_id))
    assert body["trace"] == jsonable(expected)
    assert body["run"]["status"] == "failure"
    assert "ApiTimeout" in body["run"]["error_traceback"]
    assert [m["asset"] for m in body["materializations"]] == ["dlt_entries"]
    assert body["trace"]["error_count"] >= 1
    assert client.get("/api/v1/runs/nope-nope").status_code == 404


def test_logs_first_page_equals_search_and_cursor_walks_every_record(
    client: Any, pipeline: Any
) -> None:
    _settings, store, _info = pipeline
    with store.connect() as conn:
        everything = search(conn, LogFilter(), limit=10_000, up_to_id=last_id(conn))
        newest = search(conn, LogFilter(), limit=5, up_to_id=last_id(conn))
    first = client.get("/api/v1/logs", params={"limit": 5}).json()
    assert first["records"] == [json.loads(json.dumps(log_dict(r), default=str)) for r in newest]
    seen: list[int] = []
    page = first
    while True:
        seen = [r["id"] for r in page["records"]] + seen
        if page["next_cursor"] is None:
            break
        page = client.get("/api/v1/logs", params={"limit": 5, "cursor": page["next_cursor"]}).json()
    assert seen == [r.id for r in everything]


def test_logs_filters_like_the_cli(client: Any, pipeline: Any) -> None:
    _settings, _store, info = pipeline
    errors = client.get("/api/v1/logs", params={"level": "error", "asset": "dlt_entries"}).json()
    messages = [r["message"] for r in errors["records"]]
    assert "Connection refused to api.example" in messages
    assert all(r["level"] in ("ERROR", "CRITICAL") for r in errors["records"])
    by_run = client.get("/api/v1/logs", params={"run_id": info["run_ids"][2][:8]}).json()
    assert {r["run_id"] for r in by_run["records"]} == {info["run_ids"][2]}
    found = client.get("/api/v1/logs", params={"q": "RETRY 1/3"}).json()["records"]
    assert [r["message"] for r in found] == ["Retry 1/3 after timeout"]
    assert client.get("/api/v1/logs", params={"level": "LOUD"}).status_code == 400
    assert client.get("/api/v1/logs", params={"since": "yesterday-ish"}).status_code == 400


def test_impact_equals_the_analysis_impact(client: Any, pipeline: Any) -> None:
    _settings, store, info = pipeline
    with store.connect() as conn:
        graph = load_graph(conn)
        result = impact(graph, "dlt_entries")
        reach = ["dlt_entries", *result.direct, *(n for n, _ in result.transitive)]
        at_stake = usage_at_stake(conn, reach, now=info["now"])
    expected = {**impact_dict(result, graph), "usage": at_stake.to_dict()}
    body = client.get("/api/v1/lineage/dlt_entries/impact").json()
    assert body == json.loads(json.dumps(expected))
    assert body["external"] == ["dashboard"]
    # The pipeline job reads dlt_entries (stg_entries' dep) and stg_entries (the odd asset's).
    assert body["usage"]["jobs"] == 1 and body["usage"]["reads_per_day"] > 0


def test_lineage_depth_and_direction(client: Any, odd_asset: str) -> None:
    body = client.get("/api/v1/lineage/stg_entries", params={"direction": "down"}).json()
    assert body["upstream"] is None
    assert sorted(c["name"] for c in body["downstream"]) == ["dashboard", odd_asset]
    up = client.get("/api/v1/lineage/stg_entries", params={"direction": "up", "depth": 1}).json()
    assert [c["name"] for c in up["upstream"]] == ["dlt_entries"]
    assert up["upstream"][0]["truncated"] is True
    assert client.get("/api/v1/lineage/stg_entries", params={"depth": 0}).status_code == 400
    graph = client.get("/api/v1/lineage").json()
    assert {"upstream": "api", "downstream": "dlt_entries", "columns": None} in graph["edges"]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_api_json_equals_the_cli_json(client: Any, pipeline: Any, monkeypatch) -> None:
    """The CLI's --json output and the API agree field for field (ages aside: time moves)."""
    from lakelens.cli.main import app

    settings, _store, info = pipeline
    monkeypatch.setenv("LAKELENS_DATABASE_URL", settings.resolved_database_url)
    runner = CliRunner()

    def cli(*args: str) -> Any:
        result = runner.invoke(app, [*args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    def without_ages(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: without_ages(v)
                for k, v in value.items()
                if k not in ("age_seconds", "stale", "now", "freshest", "stalest")
            }
        if isinstance(value, list):
            return [without_ages(v) for v in value]
        return value

    assert (
        cli("lineage", "impact", "dlt_entries")
        == client.get("/api/v1/lineage/dlt_entries/impact").json()
    )
    assert without_ages(cli("lineage", "show", "stg_entries")) == without_ages(
        client.get("/api/v1/lineage/stg_entries").json()
    )
    run_id = info["run_ids"][0]
    assert cli("trace", run_id) == client.get(f"/api/v1/runs/{run_id}").json()["trace"]
    api_asset = client.get("/api/v1/assets/stg_entries").json()
    assert without_ages(cli("metrics", "asset", "stg_entries")) == without_ages(api_asset)
    api_summary = client.get("/api/v1/summary", params={"period": "7d"}).json()
    cli_summary = cli("metrics", "summary", "--period", "7d")
    for key in ("runs", "rows", "bytes", "latency", "checks", "failures", "status"):
        assert cli_summary[key] == api_summary[key], key


def test_column_impact_and_columns_of_an_asset(client: Any, pipeline: Any) -> None:
    from lakelens.analysis.column_lineage import column_impact
    from lakelens.events import Batch
    from lakelens.model import LineageEdge

    _settings, store, _info = pipeline
    store.write(
        Batch(
            edges=[
                LineageEdge("api", "dlt_entries", "openlineage", {"sgv": ["value"]}),
                LineageEdge("dlt_entries", "stg_entries", "dbt", {"glucose": ["sgv"]}),
            ]
        )
    )
    body = client.get("/api/v1/lineage/api/impact", params={"column": "value"}).json()
    with store.connect() as conn:
        graph = load_graph(conn)
    assert body == column_impact(graph, "api", "value").to_dict(graph)
    assert [(a["name"], a["count"], a["columns"]) for a in body["assets"]] == [
        ("dlt_entries", 1, ["sgv"]),
        ("stg_entries", 1, ["glucose"]),
    ]
    assert {"name": "dashboard", "via": "stg_entries"} in body["unmapped"]

    missing = client.get("/api/v1/lineage/api/impact", params={"column": "valu"})
    assert missing.status_code == 404
    assert "Unknown column 'valu' of asset 'api'. Did you mean 'value'?" in missing.text

    shown = client.get("/api/v1/lineage/dlt_entries", params={"columns": "true"}).json()
    by_name = {c["name"]: c for c in shown["columns"]}
    assert by_name["sgv"] == {
        "name": "sgv",
        "upstream": [{"asset": "api", "column": "value"}],
        "downstream": [{"asset": "stg_entries", "column": "glucose"}],
    }
    assert "columns" not in client.get("/api/v1/lineage/dlt_entries").json()
