"""`/metrics`: the seed names, custom metrics, runtime gauges; parseable and promtool-clean."""

from __future__ import annotations

import gzip
import subprocess
import time
from typing import Any

from prometheus_client.parser import text_string_to_metric_families


def _samples(text: str) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def _value(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    matches = [
        s.value
        for s in samples.get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(matches) == 1, (name, labels, samples.get(name))
    return float(matches[0])


def test_metrics_expose_assets_custom_metrics_and_runtime(client: Any, odd_asset: str) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(response.text)
    assert (
        _value(samples, "asset_executions_total", asset_name="dlt_entries", status="failure") == 1
    )
    assert (
        _value(samples, "asset_executions_total", asset_name="dlt_entries", status="success") == 2
    )
    assert _value(samples, "asset_execution_failures_total", asset_name="dlt_entries") == 1
    assert (
        _value(samples, "asset_execution_seconds_count", asset_name="stg_entries", status="success")
        == 2
    )
    assert (
        _value(
            samples, "asset_rows_processed_total", asset_name="stg_entries", operation="processed"
        )
        == 974
    )
    assert _value(samples, "asset_freshness_seconds", asset_name="dlt_entries") > 7200
    assert _value(samples, "asset_last_update_timestamp", asset_name="stg_entries") > 0
    assert (
        _value(samples, "validation_pass_rate", asset_name="dlt_entries", check_name="range_check")
        == 50.0
    )
    # Label values that need escaping survive the round trip.
    assert _value(samples, "asset_freshness_seconds", asset_name=odd_asset) >= 0
    # lakelens.metric(): a gauge's latest value, a counter's summed increments.
    assert _value(samples, "queue_size", queue="articles", asset_name="dlt_entries") == 6
    assert _value(samples, "rows_loaded_total", source="api", asset_name="dlt_entries") == 20
    assert _value(samples, "lakelens_runs_in_progress") == 0
    assert _value(samples, "lakelens_ingest_events_total", source="native") == 0
    assert 0 <= _value(samples, "memory_usage_percent") <= 100
    assert len(samples["disk_usage_percent"]) == 1


def test_metrics_are_gzipped_for_a_scraper_that_accepts_it(client: Any) -> None:
    """Prometheus sends `Accept-Encoding: gzip`: 5,000 assets were 14 MB of text unzipped."""
    plain = client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    with client.stream("GET", "/metrics", headers={"Accept-Encoding": "gzip"}) as zipped:
        raw = b"".join(zipped.iter_raw())
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.headers["vary"] == "Accept-Encoding"
        assert zipped.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = gzip.decompress(raw).decode()
    assert len(raw) * 3 < len(text)
    assert set(_samples(text)) == set(_samples(plain.text))


def test_ingest_counters_count_accepted_and_rejected_events(client: Any) -> None:
    client.post("/api/v1/events", json=[{"type": "log", "message": "a"}, {"type": "log"}])
    client.post(
        "/api/v1/events",
        json=[{"type": "run", "run_id": "live", "job": "j", "status": "started", "start_time": 1}],
    )
    samples = _samples(client.get("/metrics").text)
    assert _value(samples, "lakelens_ingest_events_total", source="native") == 2
    assert _value(samples, "lakelens_ingest_rejected_events_total", source="native") == 1
    assert _value(samples, "lakelens_runs_in_progress") == 1


def test_the_ingest_writer_says_how_busy_it_is(client: Any) -> None:
    before = _samples(client.get("/metrics").text)
    for name in ("transactions", "transaction_requests", "writer_busy_seconds"):
        assert _value(before, f"lakelens_ingest_{name}_total") == 0  # before the first request
    started = time.monotonic()
    for i in range(3):
        client.post("/api/v1/events", json=[{"type": "log", "message": f"m{i}"}] * 5)
    took = time.monotonic() - started
    after = _samples(client.get("/metrics").text)
    # One request at a time from this client: a transaction each.
    assert _value(after, "lakelens_ingest_transactions_total") == 3
    assert _value(after, "lakelens_ingest_transaction_requests_total") == 3
    assert 0 < _value(after, "lakelens_ingest_writer_busy_seconds_total") <= took


def test_custom_metrics_never_shadow_lakelens_series(client: Any) -> None:
    client.post(
        "/api/v1/events",
        json=[
            {"type": "metric", "name": "asset_freshness_seconds", "value": 1},
            {"type": "metric", "name": "disk_usage_percent", "value": 1, "kind": "counter"},
            {"type": "metric", "name": "jobs_done_total", "value": 2, "kind": "counter"},
            {"type": "metric", "name": "jobs_done_total", "value": 3, "kind": "counter"},
            {
                "type": "metric",
                "name": "temp",
                "value": 1,
                "labels": {"a": "1", "b": "2"},
                "time": 10,
            },
            {
                "type": "metric",
                "name": "temp",
                "value": 2,
                "labels": {"b": "2", "a": "1"},
                "time": 20,
            },
        ],
    )
    text = client.get("/metrics").text
    samples = _samples(text)
    # Only the assets' own series: the custom one of the same name is left out.
    assert {s.labels["asset_name"] for s in samples["asset_freshness_seconds"]} == {
        "dlt_entries",
        "stg_entries",
        'odd "quoted" \\ name',
    }
    assert len(samples["disk_usage_percent"]) == 1
    assert _value(samples, "jobs_done_total") == 5
    assert _value(samples, "temp", a="1", b="2") == 2


def test_promtool_accepts_the_exposition(client: Any, require_tool: Any, tmp_path: Any) -> None:
    promtool = require_tool("promtool", "apt-get install prometheus")
    text = client.get("/metrics").text
    # The incident families are there on a store with none (test_incidents.py has some).
    for family in (
        "lakelens_incidents_open",
        "lakelens_incidents_opened_total",
        "lakelens_incidents_by_owner",
        "lakelens_incident_time_to_detect_seconds",
        "lakelens_incident_time_to_acknowledge_seconds",
        "lakelens_incident_time_to_resolve_seconds",
    ):
        assert f"# TYPE {family} " in text, family
    assert 'lakelens_incidents_open{severity="critical"} 0.0' in text
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_demos_metrics(require_tool: Any, tmp_path: Any) -> None:
    """The demo's own custom metric is in base units (it was nightscout_api_latency_ms)."""
    from fastapi.testclient import TestClient

    from lakelens.config import load_settings
    from lakelens.demo import run_demo
    from lakelens.server import create_app
    from lakelens.store import Store

    promtool = require_tool("promtool", "apt-get install prometheus")
    home = tmp_path / "demo"
    run_demo(home, runs=24)
    settings = load_settings(home=str(home), log_format="none")
    store = Store(settings=settings)
    try:
        with TestClient(create_app(settings, store, run_alerts=False)) as client:
            text = client.get("/metrics").text
    finally:
        store.close()
    assert "nightscout_api_latency_seconds" in text
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
