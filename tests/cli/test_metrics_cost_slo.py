"""`lakelens metrics cost` and `metrics slo`: tables, stable JSON, prices, one-line errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from lakelens.cli.main import _Group
from lakelens.cli.metrics_cost import cost
from lakelens.cli.metrics_slo import slo
from lakelens.events import Batch
from lakelens.model import Asset, Materialization
from lakelens.store import Store

runner = CliRunner()
# Registered the way `lakelens metrics` does, behind the CLI's error boundary.
app = typer.Typer(cls=_Group)
app.command("cost")(cost)
app.command("slo")(slo)

H = 3600.0
DAY = 86400.0
GB = 1_000_000_000
NOTHING = "no runs recorded yet — try `lakelens demo`"


def _mat(
    mid: str, asset: str, end: float, status: str = "success", **values: float
) -> Materialization:
    return Materialization(
        mid,
        f"run-{mid}",
        asset,
        status,
        start_time=end - 60,  # type: ignore[arg-type]
        end_time=end,  # type: ignore[arg-type]
        **values,  # type: ignore[arg-type]
    )


@pytest.fixture
def home(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store (SQLite or PostgreSQL) with usage over the last 25 days and SLOs over 12 hours.

    orders: 4 GB and 2 CPU hours in the last 10 days, 2 GB the 10 days before (first record
    25 days ago); events: 0.5 GB and half a CPU hour, nothing before.
    loads (freshness 1h, availability 90%) and marts (freshness 2h) carry SLOs.
    """
    monkeypatch.setenv("LAKELENS_DATABASE_URL", store_url)
    now = time.time()
    events: list[object] = [
        Asset("orders", owner="sales", layer="gold"),
        Asset("loads", freshness_seconds=H, availability_target=0.9, owner="platform"),
        Asset("marts", freshness_seconds=2 * H),
        Asset("api", kind="external"),
        _mat("o0", "orders", now - 25 * DAY, bytes=0),
        _mat("o1", "orders", now - 15 * DAY, bytes=2 * GB),
        _mat("o2", "orders", now - 2 * DAY, bytes=3 * GB, cpu_seconds=7200, rows=1000),
        _mat("o3", "orders", now - 1 * DAY, bytes=GB, rows=500, peak_memory_bytes=2 * GB),
        _mat("e1", "events", now - 3 * DAY, bytes=GB // 2, cpu_seconds=1800, rows=10),
    ]
    # loads: fresh 3.5h of the last 10h (see tests/analysis/test_slo.py), 4 of 6 succeeded.
    events += [_mat(f"l{h}", "loads", now - h * H) for h in (10.5, 9.5, 9, 6, 0.5)]
    events += [_mat(f"lf{h}", "loads", now - h * H, "failure") for h in (8, 7)]
    events += [_mat(f"m{h}", "marts", now - h * H) for h in range(1, 13)]
    batch = Batch()
    for event in events:
        batch.add(event)
    store = Store(store_url)
    store.write(batch)
    store.close()
    return tmp_path / "home"


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_cost_json(home: Path) -> None:
    prices = ["--price-per-gb", "0.02", "--price-per-cpu-hour", "0.1"]
    data = json.loads(invoke("cost", "--home", str(home), "--period", "10d", "--json", *prices))
    assert set(data) == {
        "period",
        "previous_period",
        "comparison",
        "history_start",
        "prices",
        "assets",
        "total",
    }
    assert data["period"]["label"] == "10d" and data["period"]["seconds"] == 10 * DAY
    assert data["comparison"] == "period over period"
    assert data["prices"] == {"per_gb": 0.02, "per_cpu_hour": 0.1}
    # loads and marts ran too, with no bytes and no CPU: they cost nothing and come last.
    assert [a["asset"] for a in data["assets"]] == ["orders", "events", "loads", "marts"]
    orders, events = data["assets"][:2]
    assert set(orders) == {
        "asset",
        "owner",
        "layer",
        "runs",
        "materializations",
        "rows",
        "bytes",
        "cpu_seconds",
        "peak_memory_bytes",
        "bytes_cost",
        "cpu_cost",
        "cost",
        "cost_per_gb",
        "growth",
    }
    assert set(orders["growth"]) == {"current_bytes", "previous_bytes", "change", "state"}
    assert (orders["owner"], orders["runs"], orders["rows"], orders["bytes"]) == (
        "sales",
        2,
        1500,
        4 * GB,
    )
    assert (orders["cpu_seconds"], orders["peak_memory_bytes"]) == (7200, 2 * GB)
    # 4 GB × 0.02 + 2 CPU h × 0.1; half a GB × 0.02 + half a CPU hour × 0.1.
    assert orders["cost"] == pytest.approx(0.28)
    assert orders["cost_per_gb"] == pytest.approx(0.07)
    assert events["cost"] == pytest.approx(0.06)
    assert orders["growth"]["change"] == pytest.approx(1.0)
    assert orders["growth"]["previous_bytes"] == 2 * GB
    assert (events["growth"]["state"], events["growth"]["change"]) == ("new", None)
    total = data["total"]
    assert total["cost"] == pytest.approx(0.34)
    assert total["cost_per_gb"] == pytest.approx(0.34 / 4.5)
    assert total["bytes"] == 4.5 * GB and total["cpu_seconds"] == 9000
    assert total["growth"]["change"] == pytest.approx(4.5 / 2 - 1)


def test_cost_table_and_growth(home: Path) -> None:
    out = invoke("cost", "--home", str(home), "--period", "10d", "--no-color")
    lines = {line.split()[0]: line for line in out.splitlines() if line.split()}
    assert (
        "Growth vs prev 10d" in out and "prices: 0.023 per GB processed, 0.05 per CPU hour" in out
    )
    assert "+100%" in lines["orders"] and "4.0 GB" in lines["orders"]
    assert "new" in lines["events"]
    assert "+125%" in lines["Total"] and "4.5 GB" in lines["Total"]
    assert "Storage growth: bytes written in the last 10d vs the previous 10d." in out

    # 13 days back from 13 days ago is before the first record: no comparison.
    later = invoke("cost", "--home", str(home), "--period", "13d")
    assert "n/a" in later and "+" not in later.split("Total")[1].split("\n")[0]
    assert "Growth is n/a: recorded history starts" in later

    monthly = invoke("cost", "--home", str(home), "--period", "30d")
    assert "Growth (MoM)" in monthly and "(month over month)" in monthly


def test_cost_prices_from_the_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKELENS_PRICE_PER_GB", "1")
    data = json.loads(invoke("cost", "--home", str(home), "--period", "10d", "--json"))
    assert data["prices"] == {"per_gb": 1.0, "per_cpu_hour": 0.05}
    assert data["total"]["cost"] == pytest.approx(4.5 * 1 + 2.5 * 0.05)
    # The option wins over the environment.
    data = json.loads(invoke("cost", "--home", str(home), "--json", "--price-per-gb", "0"))
    assert data["prices"]["per_gb"] == 0.0


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--price-per-gb", "abc"], {}, "Invalid --price-per-gb='abc'"),
        (["--price-per-cpu-hour", "-1"], {}, "Invalid --price-per-cpu-hour='-1'"),
        ([], {"LAKELENS_PRICE_PER_GB": "cheap"}, "Invalid LAKELENS_PRICE_PER_GB='cheap'"),
        (["--period", "soon"], {}, "Invalid --period='soon'"),
    ],
)
def test_bad_input_is_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = runner.invoke(app, ["cost", "--home", str(tmp_path), *args])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: " + message), result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    if args[:1] == ["--period"]:
        result = runner.invoke(app, ["slo", "--home", str(tmp_path), *args])
        assert result.exit_code == 1 and result.output.startswith("Error: " + message)


def test_slo_json(home: Path) -> None:
    data = json.loads(invoke("slo", "--home", str(home), "--period", "10h", "--json"))
    assert set(data) == {"period", "default_target", "assets", "no_slo_declared"}
    assert data["default_target"] == 0.99 and data["period"]["label"] == "10h"
    assert [(a["asset"], a["status"]) for a in data["assets"]] == [
        ("loads", "BREACHED"),
        ("marts", "OK"),
    ]
    assert data["no_slo_declared"] == ["events", "orders"]
    loads, marts = data["assets"]
    assert set(loads) == {
        "asset",
        "owner",
        "layer",
        "status",
        "target",
        "target_source",
        "freshness_sla_seconds",
        "availability",
        "freshness",
    }
    assert (loads["target"], loads["target_source"], loads["freshness_sla_seconds"]) == (
        0.9,
        "declared",
        H,
    )
    availability = loads["availability"]
    assert set(availability) == {
        "actual",
        "target",
        "successes",
        "finished",
        "status",
        "error_budget",
    }
    assert (availability["successes"], availability["finished"]) == (4, 6)
    assert availability["actual"] == pytest.approx(4 / 6)
    budget = availability["error_budget"]
    assert set(budget) == {"allowed", "bad", "consumed", "remaining", "burn_rate", "exhausted"}
    # 1/3 bad against 10% allowed.
    assert budget["consumed"] == pytest.approx(10 / 3)
    assert budget["remaining"] == pytest.approx(1 - 10 / 3)
    assert budget["burn_rate"] == pytest.approx(10 / 3) and budget["exhausted"] is True
    freshness = loads["freshness"]
    assert set(freshness) == {
        "actual",
        "target",
        "fresh_seconds",
        "measured_since",
        "measured_seconds",
        "status",
        "error_budget",
    }
    assert freshness["actual"] == pytest.approx(0.35, abs=1e-4)
    assert freshness["error_budget"]["consumed"] == pytest.approx(6.5, abs=1e-3)
    assert (marts["target"], marts["target_source"]) == (0.99, "default")
    assert marts["freshness"]["actual"] == pytest.approx(1.0)
    assert marts["availability"]["error_budget"]["remaining"] == pytest.approx(1.0)


def test_slo_table(home: Path) -> None:
    out = invoke("slo", "--home", str(home), "--period", "10h", "--no-color")
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0] == "SLOs over the last 10h"
    loads = next(line for line in lines if line.split()[0] == "loads")
    assert "availability" in loads and "66.66% (4/6)" in loads and "90%" in loads
    assert "exhausted" in loads and "3.33×" in loads and "BREACHED" in loads
    assert any("freshness ≤ 1.0h" in line and "35.00%" in line for line in lines)
    marts = next(line for line in lines if line.split()[0] == "marts")
    assert "99% (default)" in marts and "OK" in marts and "100%" in marts
    assert "(default) target 99%: the asset declares only a freshness SLA" in out
    assert lines[-1] == "No SLO declared: events, orders"


def test_limit_keeps_the_tables_short_and_the_worst_first(home: Path) -> None:
    slo = invoke("slo", "--home", str(home), "--period", "10h", "--no-color", "--limit", "1")
    shown = [
        line.split()[0] for line in slo.splitlines() if line.split()[:1] in (["loads"], ["marts"])
    ]
    assert shown == ["loads"]  # BREACHED comes before OK
    assert "… and 1 more assets (--limit 0 shows all; --json lists them)" in slo
    assert "No SLO declared: events … and 1 more (--limit 0 shows all)" in slo
    cost = invoke("cost", "--home", str(home), "--period", "10d", "--no-color", "--limit", "1")
    rows = [line.split()[0] for line in cost.splitlines() if line.split()]
    assert "orders" in rows and "Total" in rows and "more assets" in cost
    everything = invoke(
        "cost", "--home", str(home), "--period", "10d", "--no-color", "--limit", "0"
    )
    assert "more assets" not in everything
    assert (
        len(
            json.loads(
                invoke("slo", "--home", str(home), "--period", "10h", "--json", "--limit", "1")
            )["assets"]
        )
        == 2
    )


def test_empty_store_is_friendly(tmp_path: Path) -> None:
    from lakelens.store import Store

    (tmp_path / "empty").mkdir()
    Store(f"sqlite:///{tmp_path / 'empty' / 'lakelens.db'}").engine.dispose()
    for command in ("cost", "slo"):
        out = invoke(command, "--home", str(tmp_path / "empty"))
        assert NOTHING in out.lower()
    cost_json = json.loads(invoke("cost", "--home", str(tmp_path / "empty"), "--json"))
    assert cost_json["assets"] == [] and cost_json["history_start"] is None
    assert cost_json["total"]["cost"] == 0.0
    slo_json = json.loads(invoke("slo", "--home", str(tmp_path / "empty"), "--json"))
    assert (slo_json["assets"], slo_json["no_slo_declared"]) == ([], [])


def test_demo_smoke(tmp_path: Path) -> None:
    from lakelens.demo import run_demo

    home = tmp_path / "demo"
    run_demo(home, runs=288)
    produced = [
        "dlt_glucose_entries",
        "stg_glucose_entries",
        "fct_glucose_readings",
        "mrt_glucose_readings",
        "publish_glucose_marts",
        "fct_daily_glucose_metrics",
        "mrt_glucose_hourly_patterns",
    ]
    cost_out = invoke("cost", "--home", str(home))
    slo_out = invoke("slo", "--home", str(home))
    for name in produced:
        assert name in cost_out and name in slo_out
    cost_json = json.loads(invoke("cost", "--home", str(home), "--json", "--period", "24h"))
    assert {a["asset"] for a in cost_json["assets"]} == set(produced)
    assert cost_json["total"]["bytes"] > 0 and cost_json["total"]["cost"] > 0
    slo_json = json.loads(invoke("slo", "--home", str(home), "--json"))
    statuses = {a["asset"]: a["status"] for a in slo_json["assets"]}
    assert set(statuses) == set(produced)
    # The demo ends in an API outage: the raw load fails its 99.9% availability.
    assert statuses["dlt_glucose_entries"] == "BREACHED"
