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


# -- column level -----------------------------------------------------------------------------


def _with_columns(home) -> None:  # type: ignore[no-untyped-def]
    """Column mappings on the pipeline's edges api → dlt_entries → stg_entries, and a schema."""
    from datetime import datetime, timezone

    from lakelens.config import load_settings
    from lakelens.events import Batch
    from lakelens.model import LineageEdge, SchemaSnapshot
    from lakelens.store import Store

    store = Store(settings=load_settings(home=str(home), log_format="none"))
    columns = [("sgv", "int"), ("device", "text"), ("date_string", "text")]
    store.write(
        Batch(
            edges=[
                LineageEdge("api", "dlt_entries", "manual", {"sgv": ["sgv"], "device": ["device"]}),
                LineageEdge(
                    "dlt_entries",
                    "stg_entries",
                    "manual",
                    {"glucose_mg_dl": ["sgv"], "glucose_mmol": ["sgv"], "source": ["device"]},
                ),
            ],
            schemas=[
                SchemaSnapshot("dlt_entries", columns, time=datetime.now(timezone.utc), hash="h1")
            ],
        )
    )
    store.close()


def test_impact_of_a_column_lists_downstream_columns_per_asset(pipeline_home) -> None:
    home, _ = pipeline_home
    _with_columns(home)
    text = invoke("lineage", "impact", "api", "--column", "sgv", "--home", str(home))
    assert text.exit_code == 0, text.output
    assert "Column impact: api.sgv" in text.output
    assert "• dlt_entries (asset) — 1 column: sgv" in text.output
    assert "• stg_entries (model) depth 2 — 2 columns: glucose_mg_dl, glucose_mmol" in text.output
    # stg_entries → dashboard has no column mapping: named as a possible dependant.
    assert "? dashboard (reads stg_entries)" in text.output
    assert "3 columns in 2 assets" in text.output
    data = json.loads(
        invoke(
            "lineage", "impact", "dlt_entries", "-c", "device", "--home", str(home), "--json"
        ).output
    )
    assert data["assets"] == [
        {
            "name": "stg_entries",
            "kind": "model",
            "owner": "analytics",
            "depth": 1,
            "count": 1,
            "columns": ["source"],
        }
    ]


def test_an_unknown_column_is_one_line_with_a_suggestion(pipeline_home) -> None:
    home, _ = pipeline_home
    _with_columns(home)
    result = runner.invoke(
        app, ["lineage", "impact", "dlt_entries", "--column", "date_strng", "--home", str(home)]
    )
    assert result.exit_code != 0
    assert "Unknown column 'date_strng' of asset 'dlt_entries'. Did you mean 'date_string'?" in (
        result.output
    )
    assert "Traceback" not in result.output


def test_show_columns_lists_each_columns_upstream_and_downstream(pipeline_home) -> None:
    home, _ = pipeline_home
    _with_columns(home)
    text = invoke("lineage", "show", "dlt_entries", "--columns", "--home", str(home))
    assert text.exit_code == 0, text.output
    after = text.output.split("Columns of dlt_entries:")[1]
    assert (
        "sgv\n    ← reads api.sgv\n    → feeds stg_entries.glucose_mg_dl, stg_entries.glucose_mmol"
        in after
    )
    assert "date_string\n    (no column lineage)" in after
    data = json.loads(
        invoke("lineage", "show", "dlt_entries", "--columns", "--home", str(home), "--json").output
    )
    assert [c["name"] for c in data["columns"]] == ["sgv", "device", "date_string"]
    assert data["columns"][1]["downstream"] == [{"asset": "stg_entries", "column": "source"}]
    plain = json.loads(
        invoke("lineage", "show", "dlt_entries", "--home", str(home), "--json").output
    )
    assert "columns" not in plain


def test_export_carries_column_mappings_in_json_and_dot(pipeline_home) -> None:
    home, _ = pipeline_home
    _with_columns(home)
    data = json.loads(invoke("lineage", "export", "--format", "json", "--home", str(home)).output)
    edge = next(e for e in data["edges"] if e["downstream"] == "stg_entries")
    assert edge["columns"] == {
        "glucose_mg_dl": ["sgv"],
        "glucose_mmol": ["sgv"],
        "source": ["device"],
    }
    dot = invoke("lineage", "export", "--format", "dot", "--columns", "--home", str(home)).output
    assert 'label="glucose_mg_dl ← sgv\\nglucose_mmol ← sgv\\nsource ← device"' in dot
    assert 'tooltip="sgv ← sgv\\ndevice ← device"' in dot
