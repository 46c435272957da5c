"""The whole path for real: pipelines record through the SDK → `lakelens serve` /metrics →
Prometheus evaluating the generated rules → Alertmanager → a webhook.

An asset fails and another goes stale; both alerts are seen pending, then firing in
Prometheus' HTTP API, then arrive at the webhook receiver configured in Alertmanager.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import lakelens
from lakelens.export.prom_rules import RuleOptions, rules_for_store
from lakelens.testing import recording

FOR_SECONDS = 3  # a short `for:`, so pending is observable and firing comes quickly
SLA = "8s"
WANTED = {("AssetErrorRate", "orders"), ("DatasetFreshness", "inventory")}


class PipelineDown(Exception):
    pass


def _get(url: str, **params: str) -> Any:
    try:
        return httpx.get(url, params=params, timeout=2).json()["data"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def _states(prometheus: str) -> dict[tuple[str, str], str]:
    """(alertname, asset_name) → state of the alerts Prometheus holds now."""
    data = _get(f"{prometheus}/api/v1/alerts") or {"alerts": []}
    return {
        (a["labels"]["alertname"], a["labels"].get("asset_name", "")): a["state"]
        for a in data["alerts"]
    }


def _delivered(receiver: Any) -> set[tuple[str, str]]:
    """(alertname, asset_name) of every firing alert in the webhook bodies so far."""
    found = set()
    for request in receiver.requests:
        if request.method == "POST":
            for alert in request.json().get("alerts", []):
                if alert["status"] == "firing":
                    labels = alert["labels"]
                    found.add((labels["alertname"], labels.get("asset_name", "")))
    return found


def _wait(what: Any, predicate: Any, timeout: float, *logs: Any) -> None:
    """Poll `predicate` until true; `what` (a string or a callable giving one) names it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    details = "\n".join(f"--- {log.name}:\n{log.output()}" for log in logs)
    text = what() if callable(what) else what
    raise AssertionError(f"timed out after {timeout}s waiting for {text}\n{details}")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_failing_and_stale_assets_fire_through_prometheus_and_alertmanager(
    tmp_path: Path,
    require_tool: Any,
    serve: Any,
    daemons: Any,
    receiver: Any,
) -> None:
    prometheus_bin = require_tool("prometheus", "apt-get install prometheus")
    alertmanager_bin = require_tool(
        "prometheus-alertmanager", "apt-get install prometheus-alertmanager"
    )
    began = time.monotonic()
    home = tmp_path / "home"
    with recording(home) as store:
        lakelens.asset("orders").declare()
        for _ in range(3):
            with lakelens.run("orders_job"), lakelens.asset("orders"):
                lakelens.record(rows=10)
        with lakelens.run("inventory_job"), lakelens.asset("inventory", freshness=SLA):
            lakelens.record(rows=5)
        lakelens.flush()
        rules = rules_for_store(store, RuleOptions().with_for(FOR_SECONDS))
    # The store's SLA became a per-asset rule.
    assert 'asset_freshness_seconds{asset_name="inventory"} > 8' in rules
    (tmp_path / "rules.yml").write_text(rules)

    lakelens_server = serve(home)

    (tmp_path / "alertmanager.yml").write_text(
        "route:\n"
        "  receiver: hook\n"
        "  group_by: [alertname, asset_name]\n"
        "  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: hook\n"
        "    webhook_configs:\n"
        f"      - url: {receiver.url_for('/alertmanager')}\n"
        "        send_resolved: false\n"
    )
    alertmanager = daemons(
        "alertmanager",
        lambda port: [
            alertmanager_bin,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip port: one instance
        ],
        tmp_path / "alertmanager.log",
    )

    # Alertmanager is up, so its port (in Prometheus' config) is settled.
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        "rule_files: [rules.yml]\n"
        "alerting:\n"
        "  alertmanagers:\n"
        f"    - static_configs: [{{targets: ['127.0.0.1:{alertmanager.port}']}}]\n"
        "scrape_configs:\n"
        "  - job_name: lakelens\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{lakelens_server.port}']}}]\n"
    )
    prometheus = daemons(
        "prometheus",
        lambda port: [
            prometheus_bin,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        tmp_path / "prometheus.log",
    )
    logs = (prometheus, alertmanager)

    # Prometheus has seen orders healthy (its failure counter at 0) before the failure.
    _wait(
        "a scrape of orders' zero failure counter",
        lambda: (
            _get(
                f"{prometheus.url}/api/v1/query",
                query='asset_execution_failures_total{asset_name="orders"} == 0',
            )
            or {"result": []}
        )["result"],
        20,
        *logs,
    )
    assert "AssetErrorRate" not in {name for name, _ in _states(prometheus.url)}

    with recording(home):
        try:
            with lakelens.run("orders_job"), lakelens.asset("orders"):
                raise PipelineDown("orders database unreachable")
        except PipelineDown:
            pass

    seen: dict[tuple[str, str], list[str]] = {key: [] for key in WANTED}

    def all_firing() -> bool:
        for key, state in _states(prometheus.url).items():
            if key in seen and (not seen[key] or seen[key][-1] != state):
                seen[key].append(state)
        return all(states and states[-1] == "firing" for states in seen.values())

    _wait(lambda: f"both alerts to fire in Prometheus (seen: {seen})", all_firing, 45, *logs)
    for key, states in seen.items():
        assert states == ["pending", "firing"], (key, states)

    _wait("both alerts at the webhook", lambda: _delivered(receiver) >= WANTED, 30, *logs)
    bodies = [r.json() for r in receiver.requests if r.method == "POST"]
    alerts = [a for body in bodies for a in body["alerts"]]
    orders = next(a for a in alerts if a["labels"]["alertname"] == "AssetErrorRate")
    assert orders["labels"]["severity"] == "critical"
    assert orders["annotations"]["summary"].startswith("orders fails ")
    inventory = next(a for a in alerts if a["labels"]["alertname"] == "DatasetFreshness")
    assert inventory["labels"]["sla"] == "8s"
    assert "its freshness SLA is 8s" in inventory["annotations"]["description"]
    assert time.monotonic() - began < 110
