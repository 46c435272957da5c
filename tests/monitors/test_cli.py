"""`lakelens monitor add|list|remove|run` and the monitors in `lakelens health`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lakelens.cli.main import app

runner = CliRunner()


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE orders (id INTEGER, updated_at TEXT);"
        "INSERT INTO orders VALUES (1, '2026-01-01T00:00:00Z');"
        "CREATE TABLE events (id INTEGER);"
    )
    conn.close()
    return path


def test_add_list_run_and_remove(warehouse: Path, tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    added = runner.invoke(
        app,
        [
            "monitor",
            "add",
            f"sqlite:///{warehouse}",
            "--interval",
            "15m",
            "--timestamp-column",
            "orders=updated_at",
            "--freshness",
            "2h",
            "--home",
            home,
        ],
    )
    assert added.exit_code == 0, added.output
    assert f"Added monitor shop: sqlite:///{warehouse}, every 15.0m." in added.output
    again = runner.invoke(app, ["monitor", "add", f"sqlite:///{warehouse}", "--home", home])
    assert again.exit_code == 1 and "exists already; pass --replace" in again.output

    listed = runner.invoke(app, ["monitor", "list", "--home", home])
    assert listed.exit_code == 0, listed.output
    assert "shop" in listed.output and "not run yet" in listed.output

    ran = runner.invoke(app, ["monitor", "run", "--once", "--home", home])
    assert ran.exit_code == 0, ran.output
    assert ran.output.startswith("shop: 2 tables in ") and "1 changed" in ran.output

    as_json = json.loads(runner.invoke(app, ["monitor", "list", "--json", "--home", home]).output)
    assert as_json[0]["name"] == "shop" and as_json[0]["tables_listed"] == 2
    assert as_json[0]["last_error"] is None and as_json[0]["interval_seconds"] == 900.0

    health = runner.invoke(app, ["health", "--json", "--home", home])
    report = json.loads(health.output)
    assert report["components"]["monitors"]["status"] == "healthy"

    removed = runner.invoke(app, ["monitor", "remove", "shop", "--home", home])
    assert removed.exit_code == 0 and "Removed monitor shop." in removed.output
    gone = runner.invoke(app, ["monitor", "remove", "shop", "--home", home])
    assert gone.exit_code == 1 and "No monitor named 'shop'; none exist." in gone.output


def test_run_once_exits_1_when_something_failed_and_health_says_so(
    warehouse: Path, tmp_path: Path
) -> None:
    home = str(tmp_path / "home")
    assert (
        runner.invoke(
            app,
            [
                "monitor",
                "add",
                f"sqlite:///{warehouse}",
                "--timestamp-column",
                "events=created_at",
                "--home",
                home,
            ],
        ).exit_code
        == 0
    )
    missing = tmp_path / "gone.db"
    assert (
        runner.invoke(
            app, ["monitor", "add", f"sqlite:///{missing}", "--name", "gone", "--home", home]
        ).exit_code
        == 0
    )
    ran = runner.invoke(app, ["monitor", "run", "--once", "--home", home])
    assert ran.exit_code == 1, ran.output
    assert (
        f"gone: ✗ cannot connect to sqlite:///{missing}: no SQLite file at {missing}" in ran.output
    )
    assert "✗ main.events: has no column 'created_at'" in ran.output
    only = runner.invoke(app, ["monitor", "run", "--once", "nope", "--home", home])
    assert only.exit_code == 1 and "No monitor named 'nope'; known: gone, shop." in only.output

    health = runner.invoke(app, ["health", "--home", home])
    assert health.exit_code == 1, health.output  # degraded: a monitor is not critical
    line = next(line for line in health.output.splitlines() if line.startswith("monitors"))
    assert "unhealthy" in line and "2 failing" in line


def test_run_with_no_monitors_says_how_to_add_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["monitor", "run", "--once", "--home", str(tmp_path)])
    assert result.exit_code == 1
    assert "No monitors to run; add one with `lakelens monitor add URL`." in result.output
