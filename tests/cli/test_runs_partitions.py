"""`lakelens runs partitions --job J`: the latest outcome of each partition, missing keys of a
sequence, counts, and the cells, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from lakelens.analysis.partitions import sequence
from lakelens.cli.main import app

runner = CliRunner()
DAY = 86400.0


@pytest.fixture
def now(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    """`daily` runs of 2024-05-01 … 2024-05-06 written as a Batch (2024-05-04 never ran), and an
    unpartitioned `adhoc` job; yields the time the newest run started."""
    from lakelens.events import Batch
    from lakelens.model import Run, from_epoch
    from lakelens.store import Store

    monkeypatch.setenv("LAKELENS_DATABASE_URL", store_url)
    now = time.time()

    def run(run_id: str, partition: str | None, status: str, days_ago: float) -> Run:
        start = now - days_ago * DAY
        return Run(
            run_id,
            "daily" if partition else "adhoc",
            status=status,
            start_time=from_epoch(start),
            end_time=None if status == "started" else from_epoch(start + 60),
            partition=partition,
        )

    batch = Batch()
    for item in (
        run("d1", "2024-05-01", "success", 10),
        run("d2-first", "2024-05-02", "failure", 9),
        run("d2-rerun", "2024-05-02", "success", 1),  # a backfill fixed it
        run("d3-first", "2024-05-03", "success", 8),
        run("d3-rerun", "2024-05-03", "failure", 0.5),  # and broke this one
        run("d5", "2024-05-05", "started", 0.2),
        run("d6", "2024-05-06", "success", 0),
        run("adhoc-1", None, "success", 0),
    ):
        batch.add(item)
    store = Store(store_url)
    store.write(batch)
    store.close()
    yield now


def grid(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["runs", "partitions", "--job", "daily", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_latest_outcome_per_partition_with_the_missing_day(now: float) -> None:
    data = grid()
    assert data["job"] == "daily" and data["step"] == "1d" and data["total"] == 6
    cells = [(p["partition"], p["outcome"], p["run_id"], p["runs"]) for p in data["partitions"]]
    assert cells == [
        ("2024-05-01", "success", "d1", 1),
        ("2024-05-02", "success", "d2-rerun", 2),
        ("2024-05-03", "failure", "d3-rerun", 2),
        ("2024-05-04", "missing", None, 0),
        ("2024-05-05", "running", "d5", 1),
        ("2024-05-06", "success", "d6", 1),
    ]
    assert data["partitions"][4]["status"] == "started"
    assert data["counts"] == {
        "success": 3,
        "failure": 1,
        "running": 1,
        "canceled": 0,
        "skipped": 0,
        "missing": 1,
    }


def test_a_tie_goes_to_the_greater_run_id_and_a_queued_run_still_counts(
    now: float, store_url: str
) -> None:
    from lakelens.events import Batch
    from lakelens.model import Run, from_epoch
    from lakelens.store import Store

    batch = Batch()
    # Started the same moment as d6: the greater id is the latest, as `lakelens runs` sorts.
    batch.add(
        Run("d6-z", "daily", status="failure", start_time=from_epoch(now), partition="2024-05-06")
    )
    batch.add(Run("d7", "daily", status="queued", partition="2024-05-07"))  # not started yet
    store = Store(store_url)
    store.write(batch)
    store.close()
    cells = {p["partition"]: p for p in grid()["partitions"]}
    assert (cells["2024-05-06"]["run_id"], cells["2024-05-06"]["runs"]) == ("d6-z", 2)
    assert cells["2024-05-07"]["outcome"] == "running" and cells["2024-05-07"]["run_id"] == "d7"


def test_since_counts_only_recent_runs(now: float) -> None:
    data = grid("--since", "2d")
    cells = [(p["partition"], p["outcome"], p["runs"]) for p in data["partitions"]]
    assert cells == [
        ("2024-05-02", "success", 1),
        ("2024-05-03", "failure", 1),
        ("2024-05-04", "missing", 0),
        ("2024-05-05", "running", 1),
        ("2024-05-06", "success", 1),
    ]


def test_cells_counts_and_failed_partitions_in_the_terminal(now: float) -> None:
    result = runner.invoke(app, ["runs", "partitions", "--job", "daily", "--no-color"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "daily: 6 partitions (every 1d)"
    assert "# 3 success" in lines[1] and "X 1 failure" in lines[1] and ". 1 missing" in lines[1]
    assert "~ 1 running" in lines[1] and "canceled" not in lines[1]
    assert lines[2] == "##X.~#"
    assert lines[3] == "2024-05-01 … 2024-05-06"
    assert "Failed partitions" in result.output
    assert "✗ 2024-05-03  run d3-rerun" in result.output and "2 runs" in result.output
    last = runner.invoke(
        app, ["runs", "partitions", "--job", "daily", "--no-color", "--limit", "2"]
    )
    assert last.output.splitlines()[2] == "~#"
    assert "The last 2 of 6 partitions" in last.output


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ("dialy", "No partitioned job 'dialy'. Did you mean 'daily'?"),
        ("adhoc", "Job 'adhoc' has no partitioned runs; `lakelens runs --job adhoc`"),
        ("zzzzzz", "No partitioned job 'zzzzzz'; partitioned jobs: daily."),
    ],
)
def test_unknown_or_unpartitioned_job_is_one_line(now: float, job: str, message: str) -> None:
    result = runner.invoke(app, ["runs", "partitions", "--job", job])
    assert result.exit_code == 1 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("keys", "expected", "step"),
    [
        (
            ["2024-01-04", "2024-01-01", "2024-01-02"],
            ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"],
            "1d",
        ),
        (
            ["2024-01-01", "2024-01-15", "2024-01-08"],
            ["2024-01-01", "2024-01-08", "2024-01-15"],
            "7d",
        ),
        (
            ["2024-01-01", "2024-04-01", "2024-02-01"],
            ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"],
            "1mo",
        ),
        (
            ["20240130", "20240131", "20240202"],
            ["20240130", "20240131", "20240201", "20240202"],
            "1d",
        ),
        (
            ["2024-05-01-00:00", "2024-05-01-01:00", "2024-05-01-03:00"],
            ["2024-05-01-00:00", "2024-05-01-01:00", "2024-05-01-02:00", "2024-05-01-03:00"],
            "1h",
        ),
        (
            ["2024-05-01T10:05", "2024-05-01T10:20", "2024-05-01T10:10"],
            ["2024-05-01T10:05", "2024-05-01T10:10", "2024-05-01T10:15", "2024-05-01T10:20"],
            "5m",
        ),
        (["2024-01", "2024-02", "2024-04"], ["2024-01", "2024-02", "2024-03", "2024-04"], "1mo"),
        # Two keys are their own step: nothing is missing between them.
        (["2024-01-01", "2024-01-03"], ["2024-01-01", "2024-01-03"], "2d"),
        (["1", "3", "2", "5"], ["1", "2", "3", "4", "5"], "1"),
        (["007", "009", "008", "011"], ["007", "008", "009", "010", "011"], "1"),
        # Not a sequence: natural order, nothing invented.
        (["p10", "p9", "p1"], ["p1", "p9", "p10"], None),
        (["1", "10", "4"], ["1", "4", "10"], None),
        (["eu", "us", "apac"], ["apac", "eu", "us"], None),
        (["2024-13-01", "2024-01-01"], ["2024-01-01", "2024-13-01"], None),
        (["1", "1000000000"], ["1", "1000000000"], None),
        (["2024-05-01"], ["2024-05-01"], None),
    ],
)
def test_sequence_fills_gaps_only_in_real_sequences(
    keys: list[str], expected: list[str], step: str | None
) -> None:
    assert sequence(keys) == (expected, step)
