"""`lakelens export grafana`: every panel's PromQL parses (promtool), names series a real
`/metrics` of the demo serves, uses rate()/histogram_quantile() correctly; the JSON has what
Grafana's dashboard schema requires."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from lakelens.cli import export
from lakelens.export.grafana import DASHBOARDS, dashboard_files, dashboards

DEPLOY_GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
# What Grafana substitutes before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$asset": ".*"}
# Series Prometheus makes itself for every target.
SYNTHETIC = {"up"}
_NOT_METRICS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
}


def _exprs() -> Iterator[tuple[str, str, str]]:
    """(dashboard uid, panel title, PromQL with Grafana's variables substituted)."""
    for uid, dashboard in dashboards().items():
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for name, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(name, value)
                yield uid, panel["title"], expr


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (a small tokenizer; promtool checks the syntax)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set(re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text))
    return names - _NOT_METRICS


def test_metric_names_tokenizer() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, asset_name) (rate(asset_execution_seconds_bucket"
        '{asset_name=~"a|b", status="success"}[5m]))) > on (asset_name) group_left x_total'
        " or vector(0)"
    )
    assert metric_names(expr) == {"asset_execution_seconds_bucket", "x_total"}


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Series names in `/metrics` of a server on the demo store, alerting series included."""
    from fastapi.testclient import TestClient

    import lakelens.server.metrics as server_metrics
    from lakelens.alerts.service import AlertingService
    from lakelens.config import load_settings
    from lakelens.demo import run_demo
    from lakelens.server import create_app
    from lakelens.store import Store

    home = tmp_path_factory.mktemp("demo") / "home"
    run_demo(home, runs=24)
    settings = load_settings(home=str(home), log_format="none")
    store = Store(settings=settings)
    AlertingService(store).run_once()  # heartbeats and alerts, as a running server has
    patch = pytest.MonkeyPatch()
    probe_families = server_metrics.runtime_families
    registered = b"lakelens_evaluator_last_run_timestamp" in server_metrics.exposition(
        create_app(settings, store).state.ctx
    )
    if not registered:
        # Until server/metrics.py registers export/alerting_metrics.py, append it the same way.
        from lakelens.export.alerting_metrics import alerting_families

        def runtime_and_alerting(ctx: Any, conn: Any) -> list[Any]:
            return probe_families(ctx, conn) + alerting_families(conn, now=ctx.clock())

        patch.setattr(server_metrics, "runtime_families", runtime_and_alerting)
    try:
        with TestClient(create_app(settings, store)) as client:
            text = client.get("/metrics").text
    finally:
        patch.undo()
        store.close()
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_every_panel_queries_series_lakelens_exposes(exposed: set[str]) -> None:
    assert "asset_execution_seconds_bucket" in exposed  # the demo really was scraped
    used: set[str] = set()
    for uid, title, expr in _exprs():
        names = metric_names(expr)
        assert names, (uid, title, expr)
        missing = names - exposed - SYNTHETIC
        assert not missing, f"{uid} / {title}: {sorted(missing)} not in /metrics ({expr})"
        used |= names
    # Every dashboard family is used somewhere: nothing exposed for dashboards is forgotten.
    for wanted in (
        "validation_pass_rate",
        "asset_rows",
        "lakelens_evaluator_last_run_timestamp",
        "lakelens_alert_deliveries_failed_total",
        "lakelens_ingest_events_total",
        "asset_usage_per_day",
        "asset_usage_readers",
    ):
        assert wanted in used


def test_rates_and_quantiles_are_used_correctly() -> None:
    for uid, title, expr in _exprs():
        where = f"{uid} / {title}: {expr}"
        for name in re.findall(r"\b(?:rate|increase)\((\w+)", expr):
            assert name.endswith(("_total", "_bucket")), f"rate() of a gauge in {where}"
        # A counter is only ever read through rate() or increase().
        for match in re.finditer(r"\b(\w+_total)\b", expr):
            before = expr[: match.start()]
            assert re.search(r"\b(?:rate|increase)\($", before), f"raw counter in {where}"
        for match in re.finditer(r"histogram_quantile\(", expr):
            rest = expr[match.end() :]
            assert re.match(
                r"0\.\d+, sum by \(le(, [a-z_]+)*\) \(rate\(\w+_bucket\{[^}]*\}\[[^\]]+\]\)\)\)",
                rest,
            ), f"histogram_quantile must take sum by (le, …) (rate(…_bucket[…])) in {where}"


def test_promtool_parses_every_panel_query(tmp_path: Path, require_tool: Any) -> None:
    promtool = require_tool("promtool", "apt-get install prometheus")
    rules = [
        {"record": f"lakelens_dashboard:query_{i}", "expr": expr}
        for i, (_uid, _title, expr) in enumerate(_exprs())
    ]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_dashboards_follow_grafanas_schema() -> None:
    built = dashboards()
    assert tuple(built) == DASHBOARDS
    for uid, dashboard in built.items():
        assert dashboard["uid"] == uid and len(uid) <= 40
        assert dashboard["title"].startswith("lakelens / ")
        assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids))
        text = json.dumps(dashboard)
        if "$asset" in text:
            assert variables["asset"]["query"]["query"] == (
                "label_values(asset_executions_total, asset_name)"
            )
            assert variables["asset"]["includeAll"] and variables["asset"]["multi"]
        for panel in dashboard["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, (uid, panel["title"])
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert [t["refId"] for t in panel["targets"]] == [
                chr(ord("A") + i) for i in range(len(panel["targets"]))
            ]
    assert "asset" in {v["name"] for v in built["lakelens-asset-health"]["templating"]["list"]}


def test_export_grafana_writes_dashboards_and_provisioning(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        export.app, ["grafana", "-o", str(tmp_path), "--prometheus-url", "http://p:9090"]
    )
    assert result.exit_code == 0, result.output
    assert "Wrote 4 dashboards and 2 provisioning files" in result.output
    for uid in DASHBOARDS:
        assert json.loads((tmp_path / "dashboards" / f"{uid}.json").read_text())["uid"] == uid
    sources = yaml.safe_load((tmp_path / "provisioning/datasources/lakelens.yml").read_text())
    prometheus = sources["datasources"][0]
    assert prometheus["type"] == "prometheus" and prometheus["url"] == "http://p:9090"
    assert {d["type"] for d in sources["datasources"]} == {"prometheus", "loki", "alertmanager"}
    providers = yaml.safe_load((tmp_path / "provisioning/dashboards/lakelens.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/etc/grafana/dashboards/lakelens"


def test_shipped_grafana_files_are_what_the_generator_writes() -> None:
    for relative, text in dashboard_files().items():
        assert (DEPLOY_GRAFANA / relative).read_text() == text, (
            f"regenerate: lakelens export grafana -o deploy/grafana ({relative} differs)"
        )
