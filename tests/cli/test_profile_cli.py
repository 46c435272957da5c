"""`lakelens profile` and the Data section of `lakelens metrics asset`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import lakelens
from lakelens.cli.main import app
from lakelens.testing import FakeClock, recording

runner = CliRunner()
START = 1_730_000_000.0


def _orders(n: int, *, broken: bool = False) -> list[dict[str, object]]:
    return [
        {
            "amount": None if broken and i % 4 == 0 else 100.0 + (i % 10) * (20 if broken else 1),
            "status": ["new", "paid", "shipped"][i % 3],
            "<b>odd</b>": i,
        }
        for i in range(n)
    ]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """Three profiles of `orders`: the last with a quarter of the amounts missing and doubled."""
    clock = FakeClock(START)
    with recording(tmp_path / "home", clock=clock, id_seed=3):
        for n, broken in ((100, False), (110, False), (120, True)):
            with lakelens.run("shop"), lakelens.asset("orders"):
                lakelens.profile(_orders(n, broken=broken))
            clock.advance(3600)
        with lakelens.run("shop"), lakelens.asset("empty"):
            lakelens.record(rows=1)
    return tmp_path / "home"


def test_profile_shows_the_latest_profile_and_its_change(home: Path) -> None:
    result = runner.invoke(app, ["profile", "orders", "--home", str(home)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Profile of orders" in out and "120 rows" in out and "from sdk" in out
    header = next(line for line in out.splitlines() if line.startswith("Column"))
    assert header.split() == [
        "Column", "Type", "Nulls", "Distinct", "Min", "Max", "Mean", "Std", "p50", "p95"
    ]  # fmt: skip
    amount = next(line for line in out.splitlines() if line.startswith("amount"))
    assert amount.split()[:4] == ["amount", "float", "25.0%", "10"]
    assert "<b>odd</b>" in out  # column names are printed as they are, never as markup
    assert "Change since the previous profile" in out
    assert "amount: nulls 0.0% → 25.0%, mean +" in out
    assert "Row count" in out and "100 → 120" in out


def test_profile_column_shows_its_history_newest_first(home: Path) -> None:
    result = runner.invoke(app, ["profile", "orders", "-c", "amount", "--home", str(home)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "UTC" in line]
    assert len(lines) == 3
    assert "25.0%" in lines[0] and "0.0%" in lines[2]
    assert [line.split()[4] for line in lines] == ["120", "110", "100"]


def test_profile_json_has_latest_changes_and_history(home: Path) -> None:
    result = runner.invoke(
        app, ["profile", "orders", "--json", "--history", "2", "--home", str(home)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["latest"]["row_count"] == 120 and len(data["history"]) == 2
    change = next(c for c in data["changes"] if c["column"] == "amount")
    assert change["status"] == "changed" and change["null_rate_shift"] == pytest.approx(0.25)
    column = runner.invoke(
        app, ["profile", "orders", "-c", "status", "--json", "--home", str(home)]
    )
    rows = json.loads(column.output)["history"]
    assert [r["row_count"] for r in rows] == [120, 110, 100] and rows[0]["distinct"] == 3


def test_unknown_asset_or_column_is_one_line_with_a_suggestion(home: Path) -> None:
    result = runner.invoke(app, ["profile", "ordrs", "--home", str(home)])
    assert result.exit_code == 1
    assert "Unknown asset 'ordrs'. Did you mean 'orders'?" in result.output
    assert "Traceback" not in result.output
    column = runner.invoke(app, ["profile", "orders", "-c", "amout", "--home", str(home)])
    assert column.exit_code == 1 and "Did you mean 'amount'?" in column.output


def test_an_asset_without_profiles_says_how_to_record_one(home: Path) -> None:
    result = runner.invoke(app, ["profile", "empty", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "No profiles recorded for empty yet: call lakelens.profile(df)" in result.output


def test_metrics_asset_has_a_data_section(home: Path) -> None:
    result = runner.invoke(app, ["metrics", "asset", "orders", "--home", str(home)])
    assert result.exit_code == 0, result.output
    data = result.output[result.output.index("Data") :]
    assert "Row count  120" in data and "3 profiled · nulls in: amount 25.0%" in data
    assert "amount: nulls 0.0% → 25.0%" in data
    # --json (the document of /api/v1/assets/NAME) carries the profile the Data section shows:
    # the latest, its changes, the last two; `lakelens profile --json` has the whole history.
    as_json = runner.invoke(app, ["metrics", "asset", "orders", "--json", "--home", str(home)])
    profile = json.loads(as_json.output)["profile"]
    whole = runner.invoke(app, ["profile", "orders", "--json", "--home", str(home)])
    assert profile["latest"] == json.loads(whole.output)["latest"]
    assert profile["latest"]["row_count"] == 120 and len(profile["history"]) == 2
    assert next(c for c in profile["changes"] if c["column"] == "amount")["null_rate_after"] == 0.25
