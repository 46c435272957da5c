"""`lakelens export prometheus-rules`: promtool-clean, per-asset SLAs from the store, and the
shipped promtool unit tests prove every rule fires on a sick series and not on a healthy one."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import lakelens
from lakelens.cli import export
from lakelens.export.prom_rules import (
    RULE_NAMES,
    AssetSla,
    RuleOptions,
    build_rules,
    prom_duration,
    promql_string,
    render_rules,
    rules_for_store,
)
from lakelens.testing import recording

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
ODD = 'odd "quoted" \\ name'


def invoke(*args: str) -> Any:
    """Run `lakelens export ARGS` through the root app's error boundary, registered as main.py
    registers it."""
    import typer

    from lakelens.cli.main import _Group

    root = typer.Typer(cls=_Group)
    root.add_typer(export.app, name="export")
    return CliRunner().invoke(root, ["export", *args])


def _promtool(require_tool: Any) -> str:
    path: str = require_tool("promtool", "apt-get install prometheus")
    return path


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def _record_assets(home: Path) -> None:
    with recording(home):
        lakelens.asset("raw.entries", freshness="2h", owner="platform").declare()
        lakelens.asset(ODD, freshness="30m").declare()
        lakelens.asset("no_sla").declare()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "500ms"),
        (1, "1s"),
        (300, "5m"),
        (5400, "1h30m"),
        (90061.5, "1d1h1m1s500ms"),
    ],
)
def test_prom_duration_writes_prometheus_durations(seconds: float, text: str) -> None:
    assert prom_duration(seconds) == text


def test_promql_string_escapes_quotes_and_backslashes() -> None:
    assert promql_string(ODD) == '"odd \\"quoted\\" \\\\ name"'


def test_every_seed_rule_has_for_severity_and_annotations() -> None:
    document = build_rules([AssetSla("raw.entries", 7200.0, "platform")])
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} == set(RULE_NAMES)
    for rule in rules:
        assert rule["for"], rule
        assert rule["labels"]["severity"] in ("warning", "critical"), rule
        assert set(rule["annotations"]) == {"summary", "description"}, rule
    per_asset = [r for r in rules if r["labels"].get("asset_name") == "raw.entries"]
    assert per_asset[0]["expr"] == 'asset_freshness_seconds{asset_name="raw.entries"} > 7200'
    assert per_asset[0]["labels"].items() >= {"owner": "platform", "sla": "2h"}.items()
    generic = [r for r in rules if r["alert"] == "DatasetFreshness" and r not in per_asset]
    assert generic[0]["expr"] == (
        'asset_freshness_seconds{asset_name!="raw.entries"} > asset_freshness_sla_seconds'
    )


def test_shipped_rules_are_what_the_generator_writes() -> None:
    """deploy/prometheus/rules/lakelens.yml is `lakelens export prometheus-rules` without a store."""
    shipped = (DEPLOY / "rules" / "lakelens.yml").read_text()
    assert shipped == rules_for_store(None), (
        "regenerate: lakelens export prometheus-rules -o deploy/prometheus/rules/lakelens.yml "
        "--home /nonexistent"
    )


def test_promtool_accepts_the_rules_from_a_store(tmp_path: Path, require_tool: Any) -> None:
    promtool = _promtool(require_tool)
    home = tmp_path / "home"
    _record_assets(home)
    out = tmp_path / "rules.yml"
    result = invoke("prometheus-rules", "--home", str(home), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "Wrote Prometheus rules to" in result.output
    checked = _run(promtool, "check", "rules", out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 11 rules found" in checked.stdout
    exprs = [r["expr"] for g in yaml.safe_load(out.read_text())["groups"] for r in g["rules"]]
    assert 'asset_freshness_seconds{asset_name="odd \\"quoted\\" \\\\ name"} > 1800' in exprs


def test_without_a_store_only_the_generic_freshness_rule_is_written(tmp_path: Path) -> None:
    result = invoke("prometheus-rules", "--home", str(tmp_path / "nothing-here"), "--for", "2s")
    assert result.exit_code == 0, result.output
    document = yaml.safe_load(result.output)
    rules = [r for g in document["groups"] for r in g["rules"]]
    assert [r["alert"] for r in rules].count("DatasetFreshness") == 1
    assert {r["for"] for r in rules} == {"2s"}
    assert not (tmp_path / "nothing-here").exists(), "exporting rules must not create a store"


def test_a_bad_for_duration_is_one_line(tmp_path: Path) -> None:
    result = invoke("prometheus-rules", "--home", str(tmp_path), "--for", "soon")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Invalid --for='soon'" in lines[0], result.output


def test_shipped_promtool_unit_tests_pass(require_tool: Any) -> None:
    """Every rule fires on a synthetic sick series and stays quiet on a healthy one."""
    promtool = _promtool(require_tool)
    tests = sorted((DEPLOY / "tests").glob("*.yml"))
    assert len(tests) >= 2
    result = _run(promtool, "test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        t["alertname"]
        for path in tests
        for case in yaml.safe_load(path.read_text())["tests"]
        for t in case["alert_rule_test"]
        if t["exp_alerts"]
    }
    assert tested == set(RULE_NAMES)


def test_per_asset_freshness_rule_fires_with_the_owner_label(
    tmp_path: Path, require_tool: Any
) -> None:
    """A rule generated from the store's SLA fires for its asset; the generic one does not
    fire a second time for the same asset."""
    promtool = _promtool(require_tool)
    home = tmp_path / "home"
    _record_assets(home)
    store_rules = tmp_path / "rules.yml"
    with recording(home) as store:
        store_rules.write_text(rules_for_store(store, RuleOptions().with_for(60)))
    (tmp_path / "test.yml").write_text(
        textwrap.dedent(
            """\
            rule_files: [rules.yml]
            evaluation_interval: 1m
            tests:
              - interval: 1m
                input_series:
                  - series: 'asset_freshness_seconds{asset_name="raw.entries"}'
                    values: '7000+60x10'
                  - series: 'asset_freshness_sla_seconds{asset_name="raw.entries"}'
                    values: '7200x10'
                  - series: 'asset_freshness_seconds{asset_name="no_sla"}'
                    values: '99999x10'
                alert_rule_test:
                  - eval_time: 6m
                    alertname: DatasetFreshness
                    exp_alerts:
                      - exp_labels:
                          severity: warning
                          service: lakelens
                          asset_name: raw.entries
                          owner: platform
                          sla: 2h
                        exp_annotations:
                          summary: raw.entries is stale
                          description: raw.entries last materialized successfully 2h 2m 40s ago; its freshness SLA is 2h.
            """
        )
    )
    result = _run(promtool, "test", "rules", "test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_render_rules_names_its_source() -> None:
    text = render_rules(build_rules([]), source="sqlite:///x.db")
    assert text.startswith("# Prometheus alerting rules generated by")
    assert "from sqlite:///x.db" in text
