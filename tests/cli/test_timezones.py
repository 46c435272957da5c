"""Times in the display zone (--tz, LAKELENS_TIMEZONE, UTC by default) and durations as people
say them, on a store holding one winter and one summer run (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from lakelens.cli.main import app

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_times_are_utc_by_default_and_say_so(story) -> None:
    out = invoke("logs")
    assert "[2025-01-15 09:30:00 UTC] INFO    orders: loading orders" in out
    assert "[2025-07-01 12:00:07 UTC] ERROR   orders: disk full on the warehouse" in out
    trace = invoke("trace", story.winter_run)
    assert "started 2025-01-15 09:30:00 UTC" in trace


def test_logs_date_only_the_lines_of_earlier_days(story) -> None:
    lines = invoke("logs").splitlines()
    (today,) = [line for line in lines if "fresh today" in line]
    assert re.match(r"\[\d\d:\d\d:\d\d UTC\] INFO    nightly: fresh today$", today), today
    earlier = [line for line in lines if line.startswith("[2025-")]
    assert len(earlier) == len(lines) - 1  # every other line is from 2025, and says so


def test_tz_shifts_times_and_names_the_zone_winter_and_summer(story) -> None:
    out = invoke("logs", "--tz", "Europe/Paris")
    assert "[2025-01-15 10:30:00 CET] INFO    orders: loading orders" in out
    assert "[2025-07-01 14:00:07 CEST] ERROR   orders: disk full on the warehouse" in out
    assert re.search(r"^\[\d\d:\d\d:\d\d CET\] INFO    nightly: fresh today$", out, re.M), out
    # Before the command, as --home.
    why = invoke("--tz", "Europe/Paris", "why", "orders")
    assert f"run {story.summer_run} at 2025-07-01 14:00:05 CEST" in why
    assert "[2025-07-01 14:00:07 CEST] ERROR   disk full on the warehouse" in why
    table = invoke("metrics", "asset", "orders", "--tz", "Europe/Paris")
    assert re.search(r"2025-01-15 10:30:00 CET\s+45s\s+1,200\s+✓ success", table), table
    assert re.search(r"2025-07-01 14:00:05 CEST\s+2\.0s\s+-\s+✗ failure", table), table


def test_lakelens_timezone_does_the_same_and_tz_wins_over_it(story, monkeypatch) -> None:
    monkeypatch.setenv("LAKELENS_TIMEZONE", "America/New_York")
    assert "[2025-01-15 04:30:00 EST] INFO    orders: loading orders" in invoke("logs")
    assert "started 2025-01-15 04:30:00 EST" in invoke("trace", story.winter_run)
    assert "[2025-01-15 09:30:00 UTC]" in invoke("logs", "--tz", "UTC")


def test_one_commands_tz_does_not_leak_into_the_next_in_the_same_process(story) -> None:
    assert "CET]" in invoke("--tz", "Europe/Paris", "logs")
    assert "[2025-01-15 09:30:00 UTC]" in invoke("logs")
    assert "LAKELENS_TIMEZONE" not in os.environ


def test_incidents_and_alerts_show_their_times_in_the_zone(story) -> None:
    (incident,) = json.loads(invoke("incidents", "list", "--json"))
    opened = datetime.fromtimestamp(incident["opened_at"], ZoneInfo("Asia/Tokyo"))
    listed = invoke("incidents", "list", "--tz", "Asia/Tokyo")
    assert f"opened {opened:%Y-%m-%d %H:%M:%S} JST, for " in listed
    shown = invoke("incidents", "show", incident["id"][:6], "--tz", "Europe/Paris")
    assert "Fault at: 2025-07-01 14:00:07 CEST" in shown
    history = invoke("alerts", "history", "--tz", "Asia/Tokyo")
    assert f"{opened:%Y-%m-%d %H:%M}" in history and " JST fired " in history


def test_json_stays_utc(story) -> None:
    first = json.loads(invoke("logs", "--json", "--tz", "Asia/Tokyo").splitlines()[0])
    assert first["time"] == "2025-01-15T09:30:00+00:00"
    why = json.loads(invoke("why", "orders", "--json", "--tz", "Asia/Tokyo"))
    assert why["last_error"]["time"] == "2025-07-01T12:00:05+00:00"


def test_durations_read_in_the_units_people_say(story) -> None:
    """45.006 s is '45s' in the trace tree, the SDK's log line, the metrics and incidents."""
    out = invoke("trace", story.winter_run)
    assert "Duration: 45s · 2 spans · 0 errors" in out
    assert "orders [0ms - 45s] 45s" in out and "copy_orders [0ms - 45s] 45s" in out
    assert "45,006" not in out and "45006" not in out
    spans = json.loads(invoke("trace", story.winter_run, "--json"))["spans"]
    assert [round(s["duration_seconds"], 3) for s in spans] == [45.006, 45.006]
    # The SDK's own log line says it the same way; its field keeps the milliseconds.
    assert "orders: orders succeeded in 45s  duration_ms=45006.0 rows=1200" in invoke("logs")
    table = invoke("metrics", "asset", "orders")
    assert re.search(r"Average duration\s+24s", table) and re.search(r"P99 duration\s+45s", table)
    summary = invoke("metrics", "summary", "--period", "800d")
    assert re.search(r"p99:\s+45s", summary) and re.search(r"detect \d+\.\dd\)", summary)
    assert re.search(r"failing for \d+\.\dd, 1 failed run", invoke("why", "orders"))
    assert re.search(r"opened .+, for \d+(ms|\.\ds|s); 1 finding", invoke("incidents", "list"))


@pytest.mark.parametrize(
    "args", [["logs", "--tz", "Europe/Pariss"], ["--tz", "Europe/Pariss", "why", "orders"]]
)
def test_an_unknown_zone_is_one_line_and_exit_status_2(tmp_path, args) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lakelens", *args],
        env={**os.environ, "LAKELENS_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(
        "Error: Unknown time zone 'Europe/Pariss' in --tz: use an IANA name such as"
    )
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""


def test_a_bad_lakelens_timezone_stops_only_the_commands_that_show_times(tmp_path) -> None:
    env = {"LAKELENS_TIMEZONE": "Mars/Olympus"}
    listed = runner.invoke(app, ["incidents", "list", "--home", str(tmp_path)], env=env)
    assert listed.exit_code == 2
    assert "Unknown time zone 'Mars/Olympus' in LAKELENS_TIMEZONE" in listed.output
    upgraded = runner.invoke(app, ["db", "upgrade", "--home", str(tmp_path)], env=env)
    assert upgraded.exit_code == 0, upgraded.output
