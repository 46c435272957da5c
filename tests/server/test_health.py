"""Health: components, user checks (yaml and entry points), caching, timeouts, probes, the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lakelens.server.health import ENTRY_POINT_GROUP, HealthChecker, normalize

CHECKS = """
import time
CALLS = {"queue": 0}

def queue_check():
    CALLS["queue"] += 1
    return "ok", {"depth": 3}

def boom():
    raise RuntimeError("queue backend refused\\nsecond line")

def slow():
    time.sleep(3)
    return True
"""


@pytest.fixture
def user_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A module of checks on sys.path and a lakelens.yaml that registers them."""
    import importlib
    import sys

    monkeypatch.delitem(sys.modules, "hc_mod", raising=False)
    module_dir = tmp_path / "checks"
    module_dir.mkdir()
    (module_dir / "hc_mod.py").write_text(CHECKS)
    monkeypatch.syspath_prepend(str(module_dir))
    config = tmp_path / "lakelens.yaml"
    config.write_text(
        "health:\n"
        "  cache_seconds: 30\n"
        "  checks:\n"
        "    queue: hc_mod:queue_check\n"
        "    broken: hc_mod:boom\n"
        "    slow: {check: 'hc_mod:slow', timeout_seconds: 0.3, critical: false}\n"
        "    missing: hc_mod:nope\n"
    )
    monkeypatch.setenv("LAKELENS_CONFIG", str(config))
    module = importlib.import_module("hc_mod")
    yield module
    sys.modules.pop("hc_mod", None)


def _client(pipeline: Any) -> Any:
    from fastapi.testclient import TestClient

    from lakelens.config import load_settings
    from lakelens.server import create_app

    settings, store, info = pipeline
    settings = load_settings(home=str(settings.home), database_url=store.url, log_format="none")
    return TestClient(create_app(settings, store, clock=lambda: info["now"]))


def test_health_lists_components_and_degrades_on_a_stale_asset(client: Any) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    report = response.json()
    assert set(report["components"]) == {"store", "disk", "memory", "freshness", "pipelines"}
    assert report["components"]["store"]["status"] == "healthy"
    assert report["components"]["store"]["details"]["latency_ms"] >= 0
    freshness = report["components"]["freshness"]
    assert freshness["status"] == "degraded"
    assert [b["asset"] for b in freshness["details"]["breaching"]] == ["dlt_entries"]
    assert report["status"] == "degraded"
    # The pipeline's failing asset degrades health too: the server is fine, the data is not.
    pipelines = report["components"]["pipelines"]
    assert pipelines["status"] == "degraded" and pipelines["details"]["failing"] == ["dlt_entries"]


def test_a_critical_asset_past_its_sla_makes_health_503(client: Any) -> None:
    client.post("/api/v1/events", json=[{"type": "asset", "name": "dlt_entries", "critical": True}])
    response = client.get("/health/freshness")
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    # /health caches each component for 30 s; this one was just re-checked above.
    assert client.get("/health").status_code == 503


def test_component_endpoint_and_unknown_component(client: Any) -> None:
    store = client.get("/health/store")
    assert store.status_code == 200
    assert store.json()["component"] == "store"
    unknown = client.get("/health/crawler")
    assert unknown.status_code == 404
    assert "known: store, disk, memory, freshness, pipelines" in unknown.json()["detail"]


def test_user_checks_from_yaml_errors_timeouts_and_cache(pipeline: Any, user_checks: Any) -> None:
    with _client(pipeline) as client:
        response = client.get("/health")
        report = response.json()
        components = report["components"]
        assert components["queue"]["status"] == "healthy"
        assert components["queue"]["details"] == {"depth": 3}
        assert components["broken"]["status"] == "unhealthy"
        assert components["broken"]["error"] == "RuntimeError: queue backend refused"
        assert components["slow"]["error"] == "timed out after 0.3s"
        assert components["slow"]["critical"] is False
        assert (
            "hc_mod:nope" in components["missing"]["error"]
            or "nope" in components["missing"]["error"]
        )
        assert report["status"] == "unhealthy" and response.status_code == 503
        again = client.get("/health").json()["components"]
        assert again["queue"]["cached"] is True
        assert user_checks.CALLS["queue"] == 1


def test_entry_point_checks_are_registered(
    pipeline: Any, user_checks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.metadata

    real = importlib.metadata.entry_points

    def fake(**kwargs: Any) -> Any:
        if kwargs.get("group") == ENTRY_POINT_GROUP:
            return [EntryPoint(name="crawler", value="hc_mod:queue_check", group=ENTRY_POINT_GROUP)]
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    with _client(pipeline) as client:
        body = client.get("/health/crawler").json()
    assert body["status"] == "healthy" and body["details"] == {"depth": 3}


@pytest.mark.parametrize(
    ("value", "status", "error"),
    [
        (None, "healthy", None),
        (True, "healthy", None),
        (False, "unhealthy", None),
        ("WARNING", "degraded", None),
        (("down", {"x": 1}), "unhealthy", None),
        ({"status": "ok", "lag": 4}, "healthy", None),
        ({"status": "sideways"}, "unhealthy", "the check returned an unknown status 'sideways'"),
        (42, "unhealthy", "the check returned int, not a status"),
    ],
)
def test_what_a_check_may_return(value: Any, status: str, error: str | None) -> None:
    got_status, _details, got_error = normalize(value)
    assert (got_status, got_error) == (status, error)


def test_a_stuck_check_is_not_started_twice() -> None:
    import threading

    release = threading.Event()
    started: list[int] = []

    def stuck() -> bool:
        started.append(1)
        release.wait(5)
        return True

    checker = HealthChecker()
    checker.register("stuck", stuck, timeout=0.1, ttl=0.01)
    for _ in range(3):
        assert checker.check("stuck").error == "timed out after 0.1s"
    assert len(started) == 1
    release.set()


def test_readyz_needs_the_migrations(client: Any, pipeline: Any) -> None:
    _settings, store, _info = pipeline
    assert client.get("/readyz").json() == {"status": "ready"}
    with store.engine.begin() as conn:
        head = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0002'"))
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "expected" in response.json()["reason"]
    finally:  # the PostgreSQL database is shared by the session
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": head})


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_cli_health_matches_the_endpoint(
    pipeline: Any, thread_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakelens.cli.main import app
    from lakelens.server import create_app

    settings, store, _info = pipeline
    monkeypatch.setenv("LAKELENS_DATABASE_URL", store.url)
    runner = CliRunner()
    local = runner.invoke(app, ["health", "--json", "--home", str(settings.home)])
    assert local.exit_code == 1, local.output  # degraded
    report = json.loads(local.output)
    assert report["status"] == "degraded"
    assert report["components"]["freshness"]["details"]["breaching"][0]["asset"] == "dlt_entries"
    text = runner.invoke(app, ["health", "--home", str(settings.home)])
    assert "freshness" in text.output and "dlt_entries" in text.output

    with thread_server(create_app(settings, store)) as server:
        remote = runner.invoke(app, ["health", "--json", "--url", server.url])
    assert remote.exit_code == 1, remote.output
    assert json.loads(remote.output)["components"].keys() == report["components"].keys()
    down = runner.invoke(app, ["health", "--url", "http://127.0.0.1:9"])
    assert down.exit_code == 2  # unreachable is unhealthy, not a usage error
    assert "Cannot reach the server at http://127.0.0.1:9" in down.output


def test_health_is_a_page_in_a_browser_and_json_for_clients(client: Any) -> None:
    page = client.get("/health", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.headers["content-type"].startswith("text/html")
    assert "Health: <span" in page.text and 'data-component="pipelines"' in page.text
    assert "failing=[&#39;dlt_entries&#39;]" in page.text  # escaped, as every page is
    assert client.get("/health").json()["status"] == "degraded"  # no Accept: JSON, as before
    as_json = client.get("/health?format=json", headers={"Accept": "text/html"})
    assert as_json.headers["content-type"].startswith("application/json")
