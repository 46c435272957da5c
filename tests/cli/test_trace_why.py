"""`lakelens trace` and `lakelens why` on a pipeline whose upstream just failed."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from lakelens.cli.main import app

runner = CliRunner()


def test_trace_tree_with_offsets_and_errors(pipeline_home) -> None:
    home, info = pipeline_home
    failed_run = info["run_ids"][2]
    result = runner.invoke(app, ["trace", failed_run[:8], "--home", str(home)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"run {failed_run}" in out and "✗ failure" in out
    assert "3 spans · 3 errors" in out  # the downstream asset never ran
    assert "✗ fetch_from_api [0ms - 70ms] 70ms" in out
    assert "✗ http.request [40ms - 70ms] 30ms ApiTimeout: Connection timeout after 30s" in out
    assert "Error: ApiTimeout: Connection timeout after 30s" in out


def test_trace_json_and_last_run_of_asset(pipeline_home) -> None:
    home, info = pipeline_home
    result = runner.invoke(
        app, ["trace", "--asset", "stg_entries", "--last", "--json", "--attrs", "--home", str(home)]
    )
    data = json.loads(result.output)
    assert data["run_id"] == info["run_ids"][1] and data["status"] == "success"
    names = [(s["name"], s["depth"]) for s in data["spans"]]
    assert names == [
        ("dlt_entries", 0),
        ("fetch_from_api", 1),
        ("http.request", 2),
        ("stg_entries", 0),
    ]
    fetch = data["spans"][1]
    assert fetch["attributes"] == {"endpoint": "/entries", "rows_fetched": 487}
    assert fetch["offset_seconds"] == 0 and round(fetch["duration_seconds"], 3) == 0.07


def test_trace_input_errors(pipeline_home) -> None:
    home, _ = pipeline_home
    for args, message in [
        (["trace", "zzzz"], "No run id starts with 'zzzz'"),
        (["trace"], "Give a RUN_ID, or --asset NAME --last"),
        (["trace", "--asset", "stg_entries"], "Give a RUN_ID, or --asset NAME --last"),
    ]:
        result = runner.invoke(app, [*args, "--home", str(home)])
        assert result.exit_code == 1 and message in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_why_walks_upstream_to_the_failing_asset(pipeline_home) -> None:
    home, info = pipeline_home
    result = runner.invoke(app, ["why", "stg_entries", "--home", str(home)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "stg_entries is healthy itself" in out
    assert (
        "Root cause: upstream dlt_entries is failing" in out
        and "path: stg_entries ← dlt_entries" in out
    )
    assert "ApiTimeout: Connection timeout after 30s" in out
    assert "failing span: http.request" in out
    assert "Connection refused to api.example" in out and "Retry 1/3 after timeout" in out
    assert "1 failed run(s) in a row" in out
    assert "breaches its freshness SLA in" in out
    data = json.loads(
        runner.invoke(app, ["why", "stg_entries", "--json", "--home", str(home)]).output
    )
    assert data["chain"] == ["stg_entries", "dlt_entries"] and data["root_cause"] == "dlt_entries"
    assert data["last_error"]["run_id"] == info["run_ids"][2]
    assert data["failing_span"]["name"] == "http.request"


def test_why_on_a_healthy_asset(tmp_path) -> None:
    import lakelens
    from lakelens.config import load_settings

    lakelens.configure(settings=load_settings(home=str(tmp_path), log_format="none"))
    with lakelens.run("job"), lakelens.asset("fine", freshness="1h"):
        pass
    lakelens.flush()
    result = runner.invoke(app, ["why", "fine", "--home", str(tmp_path)])
    assert result.exit_code == 0 and "✓ fine looks healthy" in result.output
