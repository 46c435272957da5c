"""`lakelens runs diff A B`: two runs of a job recorded through the SDK, on SQLite and
PostgreSQL, and every difference between them in the text report and in --json."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lakelens.cli.main import app

runner = CliRunner()

GOOD, BAD, OTHER = "nightly-0001-a", "nightly-0002-b", "weekly-0001"


def about(seconds: float) -> Any:
    """Equal to the millisecond (times are stored with microseconds)."""
    return pytest.approx(seconds, abs=1e-3)


def _nightly(clock: Any, run_id: str, *, broken: bool) -> None:
    """raw.orders then stg.orders; the broken run fetches slower, retries, changes the schema,
    loads more rows, fails its row_count check and then fails in stg.orders."""
    import lakelens

    try:
        with lakelens.run(
            "nightly", run_id=run_id, partition="2024-05-02" if broken else "2024-05-01"
        ):
            with lakelens.asset("raw.orders"):
                with lakelens.span("fetch"):
                    clock.advance(2.0 if broken else 0.5)
                    with lakelens.span("http.request"):
                        clock.advance(0.1)
                if broken:
                    with lakelens.span("retry"):
                        clock.advance(0.3)
                else:
                    with lakelens.span("cleanup"):
                        clock.advance(0.05)
                lakelens.schema(
                    {"id": "bigint", "amount": "float", "currency": "text"}
                    if broken
                    else {"id": "int", "amount": "float", "legacy": "text"}
                )
                lakelens.check("not_null_id", passed=True, severity="error")
                lakelens.check(
                    "row_count",
                    passed=not broken,
                    severity="error",
                    valid_rows=90 if broken else 100,
                    total_rows=100,
                    message="10 rows below the floor" if broken else None,
                )
                lakelens.record(rows=1250 if broken else 1000, bytes=20_000 if broken else 10_000)
            with lakelens.asset("stg.orders"):
                clock.advance(0.2)
                if broken:
                    raise RuntimeError("stg exploded")
                lakelens.record(rows=1000)
    except RuntimeError:
        pass


@pytest.fixture
def store_env(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Two runs of `nightly` (good, then broken ten minutes later) and one of `weekly`, in a
    store the CLI finds through LAKELENS_DATABASE_URL."""
    import lakelens
    from lakelens.config import load_settings
    from lakelens.store import Store
    from lakelens.testing import FakeClock, recording

    monkeypatch.setenv("LAKELENS_DATABASE_URL", store_url)
    settings = load_settings(home=str(tmp_path / "home"), log_format="none")
    store = Store(settings=settings)
    clock = FakeClock(time.time() - 3600)
    with recording(settings=settings, store=store, clock=clock):
        _nightly(clock, GOOD, broken=False)
        clock.advance(600)
        _nightly(clock, BAD, broken=True)
        clock.advance(600)
        with lakelens.run("weekly", run_id=OTHER), lakelens.asset("raw.orders"):
            clock.advance(1.0)
            lakelens.record(rows=7)
    yield
    store.close()


def diff(*args: str) -> str:
    result = runner.invoke(app, ["runs", "diff", *args, "--no-color"])
    assert result.exit_code == 0, result.output
    return result.output


def diff_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["runs", "diff", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_diff_text_leads_with_failing_checks_then_status_then_schema(store_env: None) -> None:
    out = diff(GOOD, BAD)
    assert f"A  {GOOD}" in out and f"B  {BAD}" in out and "partition 2024-05-02" in out
    assert "B started 10.0m after A." in out
    assert "raw.orders · row_count (error)  passed → failed" in out
    assert "90/100 rows valid" in out and "10 rows below the floor" in out
    assert "Status: ✓ success → ✗ failure" in out
    assert "B error: RuntimeError: stg exploded" in out
    assert "~ id  int → bigint" in out
    assert "+ currency  text" in out and "- legacy  text" in out
    assert "Duration: 850ms → 2.6s (+1.8s, +206%)" in out
    # Per asset: rows, bytes and duration, the newly failing asset first with its error.
    assert "1,000 → 1,250 (+25%)" in out and "10.0 KB → 20.0 KB (+100%)" in out
    assert "stg.orders in B: RuntimeError: stg exploded" in out
    # Per span: matched by path, the biggest change first, spans only one run had.
    assert "raw.orders › fetch " in out and "+1.5s (+250%)" in out
    assert "raw.orders › retry" in out and "only in B" in out
    assert "raw.orders › cleanup" in out and "only in A" in out
    assert "raw.orders › fetch › http.request" in out
    assert "1 check(s) passed in both runs." in out
    order = [
        out.index("Checks that started failing"),
        out.index("Status:"),
        out.index("Schema changes"),
        out.index("Duration:"),
        out.index("Assets"),
        out.index("Spans"),
    ]
    assert order == sorted(order), out
    lines = out.splitlines()
    assets = lines[lines.index(next(x for x in lines if x.startswith("Asset "))) + 1 :]
    assert assets[0].startswith("stg.orders") and "✓ success → ✗ failure" in assets[0]
    spans = out[out.index("Spans") :].splitlines()[2:]
    assert spans[0].startswith("raw.orders ") and "+1.8s" in spans[0]
    assert spans[1].startswith("raw.orders › fetch ")


def test_diff_json_has_every_difference(store_env: None) -> None:
    data = diff_json(GOOD, BAD)
    assert data["a"]["run_id"] == GOOD and data["b"]["run_id"] == BAD
    assert data["same_job"] is True and data["warnings"] == []
    assert data["status"] == {"a": "success", "b": "failure", "changed": True}
    assert data["error"] == {"a": None, "b": "RuntimeError: stg exploded"}
    assert data["duration_seconds"]["a"] == about(0.85)
    assert data["duration_seconds"]["b"] == about(2.6)
    assert data["duration_seconds"]["delta"] == about(1.75)
    assert data["start_gap_seconds"] == about(600.85)

    checks = {(c["asset"], c["name"]): c for c in data["checks"]}
    assert data["checks"][0]["name"] == "row_count"
    row_count = checks[("raw.orders", "row_count")]
    assert row_count["change"] == "newly_failing" and row_count["severity"] == "error"
    assert row_count["a"]["passed"] is True and row_count["b"]["passed"] is False
    assert row_count["b"]["valid_rows"] == 90 and row_count["b"]["message"]
    assert checks[("raw.orders", "not_null_id")]["change"] == "passing"
    counts = data["counts"]
    assert counts["newly_failing"] == 1 and counts["passing"] == 1 and counts["fixed"] == 0
    assert counts["schema_changes"] == 1
    assert counts["spans_only_in_a"] == 1 and counts["spans_only_in_b"] == 1

    [schema] = data["schemas"]
    assert schema["asset"] == "raw.orders" and schema["changed"] is True
    assert {(c["column"], c["change"], c["type_a"], c["type_b"]) for c in schema["changes"]} == {
        ("id", "type_changed", "int", "bigint"),
        ("currency", "added", None, "text"),
        ("legacy", "removed", "text", None),
    }
    assert schema["a"]["columns"] == [["id", "int"], ["amount", "float"], ["legacy", "text"]]
    assert schema["b"]["run_id"] == BAD

    assets = {a["asset"]: a for a in data["assets"]}
    assert [a["asset"] for a in data["assets"]] == ["stg.orders", "raw.orders"]
    raw = assets["raw.orders"]
    assert raw["status"] == {"a": "success", "b": "success"} and raw["only_in"] is None
    assert raw["rows"] == {"a": 1000, "b": 1250, "delta": 250, "percent": 25.0}
    assert raw["bytes"]["percent"] == 100.0
    assert raw["duration_seconds"]["a"] == about(0.65)
    assert raw["duration_seconds"]["b"] == about(2.4)
    stg = assets["stg.orders"]
    assert stg["status"] == {"a": "success", "b": "failure"}
    assert stg["rows"]["b"] is None and stg["error"]["b"] == "RuntimeError: stg exploded"

    spans = {tuple(s["path"]): s for s in data["spans"]}
    fetch = spans[("raw.orders", "fetch")]
    assert fetch["duration_seconds"]["a"] == about(0.6)
    assert fetch["duration_seconds"]["b"] == about(2.1)
    assert fetch["count"] == {"a": 1, "b": 1} and fetch["only_in"] is None
    assert spans[("raw.orders", "retry")]["only_in"] == "b"
    assert spans[("raw.orders", "cleanup")]["only_in"] == "a"
    assert spans[("stg.orders",)]["errors"] == {"a": 0, "b": 1}
    assert spans[("raw.orders", "fetch", "http.request")]["duration_seconds"]["delta"] == about(0.0)


def test_diff_takes_unique_prefixes_and_one_run_means_its_previous(store_env: None) -> None:
    data = diff_json("nightly-0001", "nightly-0002")
    assert (data["a"]["run_id"], data["b"]["run_id"]) == (GOOD, BAD)
    previous = diff_json("nightly-0002")
    assert (previous["a"]["run_id"], previous["b"]["run_id"]) == (GOOD, BAD)
    # Backwards is allowed: A is whichever run comes first on the command line.
    backwards = diff_json(BAD, GOOD)
    assert backwards["status"] == {"a": "failure", "b": "success", "changed": True}
    assert backwards["checks"][0]["change"] == "fixed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nightly-000", BAD], "Run id prefix 'nightly-000' is ambiguous"),
        (["zzz", BAD], "No run id starts with 'zzz'; `lakelens runs` lists recent runs"),
        ([GOOD, "nope"], "No run id starts with 'nope'"),
        ([GOOD], "is the first run of job 'nightly'"),
    ],
)
def test_diff_bad_ids_are_one_line_errors(store_env: None, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["runs", "diff", *args])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if "ambiguous" in message:
        assert GOOD in result.output and BAD in result.output


def test_diff_of_different_jobs_warns_and_still_compares(store_env: None) -> None:
    out = diff(BAD, OTHER)
    assert "Run diff nightly / weekly" in out
    assert (
        "! The runs are of different jobs ('nightly' and 'weekly'); compared all the same." in out
    )
    data = diff_json(BAD, OTHER)
    assert data["same_job"] is False and "different jobs" in data["warnings"][0]
    assets = {a["asset"]: a for a in data["assets"]}
    assert assets["raw.orders"]["rows"]["b"] == 7
    assert assets["stg.orders"]["only_in"] == "a"
    assert data["counts"]["removed"] == 2  # the checks only the nightly run had


def test_runs_is_still_a_listing_beside_its_subcommands(store_env: None) -> None:
    listing = runner.invoke(app, ["runs", "--since", "1d", "--json"])
    assert listing.exit_code == 0, listing.output
    assert [r["run_id"] for r in json.loads(listing.output)["runs"]] == [OTHER, BAD, GOOD]
    helped = runner.invoke(app, ["runs", "--help"])
    assert "diff" in helped.output and "partitions" in helped.output
