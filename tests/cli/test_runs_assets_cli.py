"""`lakelens runs` and `lakelens assets`: every filter, and --json with its content."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from lakelens.cli.main import app

runner = CliRunner()


def run_json(home: Any, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["runs", "--home", str(home), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def asset_json(home: Any, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["assets", "--home", str(home), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_runs_lists_newest_first_with_check_counts(pipeline_home) -> None:
    home, info = pipeline_home
    body = run_json(home)
    assert [r["run_id"] for r in body["runs"]] == list(reversed(info["run_ids"]))
    assert body["next_cursor"] is None
    by_id = {r["run_id"]: r for r in body["runs"]}
    first, second, failed = info["run_ids"]
    assert (by_id[first]["checks_passed"], by_id[first]["checks_failed"]) == (1, 0)
    assert (by_id[second]["checks_passed"], by_id[second]["checks_failed"]) == (0, 1)
    assert by_id[failed]["status"] == "failure"
    assert by_id[first]["assets"] == 2 and by_id[first]["partition"] == "p0"


def test_runs_filters(pipeline_home) -> None:
    home, info = pipeline_home
    first, second, failed = info["run_ids"]
    assert [r["run_id"] for r in run_json(home, "--status", "failure")["runs"]] == [failed]
    assert [r["run_id"] for r in run_json(home, "--partition", "p1")["runs"]] == [second]
    assert len(run_json(home, "--job", "pipeline")["runs"]) == 3
    assert run_json(home, "--job", "other")["runs"] == []
    # The failed run never reached stg_entries.
    stg = run_json(home, "--asset", "stg_entries")["runs"]
    assert [r["run_id"] for r in stg] == [second, first]
    assert [r["run_id"] for r in run_json(home, "--since", "1h")["runs"]] == [failed]


def test_runs_limit_pages_by_cursor(pipeline_home) -> None:
    home, info = pipeline_home
    body = run_json(home, "--limit", "2")
    assert [r["run_id"] for r in body["runs"]] == list(reversed(info["run_ids"]))[:2]
    assert body["next_cursor"]


def test_runs_table_and_errors(pipeline_home) -> None:
    home, info = pipeline_home
    result = runner.invoke(app, ["runs", "--home", str(home), "--no-color"])
    assert result.exit_code == 0, result.output
    assert info["run_ids"][2][:12] in result.output
    assert "1 passed" in result.output and "1 failed" in result.output
    bad = runner.invoke(app, ["runs", "--home", str(home), "--status", "exploded"])
    assert bad.exit_code == 1 and "Invalid status 'exploded'" in bad.output
    typo = runner.invoke(app, ["runs", "--home", str(home), "--asset", "stg_entris"])
    assert typo.exit_code == 1 and "Did you mean 'stg_entries'" in typo.output
    empty = runner.invoke(app, ["runs", "--home", str(home), "--partition", "nope"])
    assert "No runs match these filters." in empty.output


def test_assets_catalog_json(pipeline_home) -> None:
    home, _ = pipeline_home
    body = asset_json(home)
    names = [a["name"] for a in body["assets"]]
    assert names == sorted(names) and body["total"] == 4
    by_name = {a["name"]: a for a in body["assets"]}
    dlt = by_name["dlt_entries"]
    assert dlt["health"] == "failing" and dlt["status"] == "failure"
    assert dlt["owner"] == "platform" and dlt["freshness_seconds"] == 7200
    assert dlt["last_rows"] == 487 and dlt["stale"] is True
    assert by_name["stg_entries"]["health"] == "healthy"
    assert by_name["api"]["health"] == "never" and by_name["api"]["last_rows"] is None


def test_assets_filters(pipeline_home) -> None:
    home, _ = pipeline_home

    def names(*args: str) -> list[str]:
        return [a["name"] for a in asset_json(home, *args)["assets"]]

    assert names("--search", "ENTRIES") == ["dlt_entries", "stg_entries"]
    assert names("--search", "analytics") == ["stg_entries"]  # the owner matches
    assert names("--owner", "bi") == ["dashboard"]
    assert names("--kind", "model") == ["stg_entries"]
    assert names("--status", "failing") == ["dlt_entries"]
    assert names("--status", "never") == ["api", "dashboard"]
    assert names("--layer", "gold") == []
    assert names("--search", "%") == []  # a LIKE wildcard is a plain character


def test_assets_table(pipeline_home) -> None:
    home, _ = pipeline_home
    result = runner.invoke(app, ["assets", "--home", str(home), "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert "api" in result.output and "dashboard" in result.output
    assert "2 more assets" in result.output
    bad = runner.invoke(app, ["assets", "--home", str(home), "--status", "sad"])
    assert bad.exit_code == 1 and "Invalid status 'sad'" in bad.output


def test_unknown_asset_hint_names_lakelens_assets(pipeline_home) -> None:
    home, _ = pipeline_home
    result = runner.invoke(app, ["runs", "--home", str(home), "--asset", "zzzzzzzzzzzzzz"])
    assert result.exit_code == 1
    assert "lakelens assets" in result.output and "lineage export" not in result.output
