"""`lakelens lineage show|impact|export` on a recorded pipeline."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from lakelens.cli.main import app

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_show_both_directions(pipeline_home) -> None:
    home, _ = pipeline_home
    result = invoke("lineage", "show", "stg_entries", "--home", str(home))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("stg_entries (model) ✓ success")
    assert "[upstream]" in result.output and "[downstream]" in result.output
    assert any("dlt_entries (asset) ✗ failure" in line for line in lines)
    assert any("api (external)" in line for line in lines)
    assert any("dashboard (dashboard)" in line for line in lines)


def test_show_json_shape(pipeline_home) -> None:
    home, _ = pipeline_home
    result = invoke(
        "lineage", "show", "dlt_entries", "--home", str(home), "--json", "--direction", "down"
    )
    data = json.loads(result.output)
    assert data["asset"] == "dlt_entries" and data["upstream"] is None
    (stg,) = data["downstream"]
    assert (
        stg["name"] == "stg_entries"
        and stg["status"] == "success"
        and stg["children"][0]["name"] == "dashboard"
    )


def test_impact_text_and_json(pipeline_home) -> None:
    home, _ = pipeline_home
    text = invoke("lineage", "impact", "dlt_entries", "--home", str(home))
    assert text.exit_code == 0, text.output
    assert "• stg_entries (model) — owner analytics" in text.output
    assert "1 asset affected" in text.output and "1 publishing endpoint" in text.output
    assert (
        "1 external dashboard" in text.output and "Owners to notify: analytics, bi" in text.output
    )
    data = json.loads(invoke("lineage", "impact", "api", "--home", str(home), "--json").output)
    assert data["totals"] == {"assets": 2, "publishing_endpoints": 1, "external": 1}
    assert [d["name"] for d in data["direct"]] == ["dlt_entries"]
    assert data["transitive"] == [
        {"name": "stg_entries", "depth": 2, "kind": "model", "owner": "analytics"},
        {"name": "dashboard", "depth": 3, "kind": "dashboard", "owner": "bi"},
    ]


def test_unknown_asset_suggests_the_closest_name(pipeline_home) -> None:
    home, _ = pipeline_home
    result = runner.invoke(app, ["lineage", "impact", "dlt_entrys", "--home", str(home)])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: Unknown asset 'dlt_entrys'. Did you mean 'dlt_entries'?"


def test_export_formats_to_files(pipeline_home, tmp_path) -> None:
    home, _ = pipeline_home
    md = tmp_path / "lineage.md"
    result = invoke(
        "lineage", "export", "--format", "mermaid", "--output", str(md), "--home", str(home)
    )
    assert result.exit_code == 0, result.output
    content = md.read_text()
    assert content.startswith("```mermaid\ngraph LR\n") and content.endswith("```\n")
    data = json.loads(
        invoke(
            "lineage",
            "export",
            "stg_entries",
            "--format",
            "json",
            "--depth",
            "1",
            "--home",
            str(home),
        ).output
    )
    assert sorted(n["name"] for n in data["nodes"]) == ["dashboard", "dlt_entries", "stg_entries"]
    dot = invoke("lineage", "export", "--home", str(home)).output
    assert dot.startswith("digraph lineage {") and dot.count("->") == 3
