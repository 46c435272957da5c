"""Any SQLAlchemy database through the inspector (a real SQLite file here): row counts, columns,
declared timestamp columns, a learned update rhythm, time limits, read-only, missing drivers."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lakelens.alerts.config import AlertingConfig
from lakelens.alerts.rules import evaluate_rules
from lakelens.cli.main import app
from lakelens.monitors import MonitorConfig, MonitorError, run_cycle
from lakelens.monitors.collectors import require_driver
from lakelens.monitors.state import add_monitor
from lakelens.store import schema
from lakelens.testing import FakeClock

T0 = 1_800_000_000.0
HOUR = 3600.0


def _sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


def _rows(store: Any, table: sa.Table, *where: Any) -> list[dict[str, Any]]:
    with store.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).where(*where)).mappings()]


def test_row_counts_columns_and_a_timestamp_column_from_any_sqlalchemy_database(
    make_store: Any, tmp_path: Path
) -> None:
    path = tmp_path / "shop.db"
    _sql(
        path,
        "CREATE TABLE orders (id INTEGER, updated_at TEXT)",
        "INSERT INTO orders VALUES (1, '2027-01-15T08:00:00+00:00'), (2, '2027-01-15T08:30:00Z')",
        "CREATE TABLE events (id INTEGER, payload VARCHAR(20))",
        "CREATE VIEW recent AS SELECT * FROM orders",
    )
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    store = make_store()
    clock = FakeClock(T0)
    config = MonitorConfig.create(f"sqlite:///{path}", timestamp_columns={"orders": "updated_at"})
    add_monitor(store.engine, config, now=T0)
    first = run_cycle(store, config, clock=clock)
    assert first.ok and first.tables == 3, first
    orders_asset = f"sqlite://{path}/main.orders"
    seen = {o["asset"]: o for o in _rows(store, schema.table_observations)}
    assert (
        seen[orders_asset]["row_count"] == 2 and seen[orders_asset]["row_count_estimated"] is False
    )
    assert seen[orders_asset]["modified_source"] == "column"
    # The declared column gives the time at first sight, and with it a materialization.
    (mat,) = _rows(store, schema.materializations)
    assert mat["asset"] == orders_asset and mat["end_time"] == 1_800_001_800.0  # 08:30Z
    assert seen[f"sqlite://{path}/main.recent"]["row_count"] is None  # views are not counted
    snapshots = {s["asset"]: s["columns"] for s in _rows(store, schema.schema_snapshots)}
    assert (
        snapshots[f"sqlite://{path}/main.events"]
        == '[["id", "integer"], ["payload", "varchar(20)"]]'
    )
    # The monitor only read.
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before

    _sql(path, "INSERT INTO events VALUES (1, 'a'), (2, 'b')")
    clock.advance(600)
    second = run_cycle(store, config, clock=clock)
    assert second.changed == 1
    latest = _rows(
        store,
        schema.table_observations,
        schema.table_observations.c.asset == f"sqlite://{path}/main.events",
        schema.table_observations.c.time == T0 + 600,
    )
    assert (latest[0]["row_count"], latest[0]["modified_at"], latest[0]["modified_source"]) == (
        2,
        T0 + 600,
        "row_count",
    )


def test_a_table_no_pipeline_reports_learns_its_rhythm_and_is_late(
    make_store: Any, tmp_path: Path
) -> None:
    path = tmp_path / "feed.db"
    _sql(path, "CREATE TABLE readings (id INTEGER)")
    store = make_store()
    clock = FakeClock(T0)
    config = MonitorConfig.create(f"sqlite:///{path}", interval="1h")
    add_monitor(store.engine, config, now=T0)
    run_cycle(store, config, clock=clock)
    for n in range(12):  # a feed that lands every hour, seen by the hourly cycle
        _sql(path, f"INSERT INTO readings VALUES ({n})")
        clock.advance(HOUR)
        assert run_cycle(store, config, clock=clock).changed == 1
    for _ in range(3):  # then nothing
        clock.advance(HOUR)
        run_cycle(store, config, clock=clock)
    with store.connect() as conn:
        findings = [
            f for f in evaluate_rules(conn, AlertingConfig(), now=clock()) if f.rule == "late"
        ]
    (late,) = findings
    assert late.asset == f"sqlite://{path}/main.readings" and "it updates hourly" in late.summary


def test_a_slow_query_is_interrupted_at_its_limit(make_store: Any, tmp_path: Path) -> None:
    path = tmp_path / "slow.db"
    _sql(
        path,
        "CREATE TABLE t (id INTEGER)",
        "CREATE VIEW endless AS WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r "
        "WHERE x < 10000000000) SELECT x AS ts FROM r",
    )
    store = make_store()
    config = MonitorConfig.create(
        f"sqlite:///{path}", timestamp_columns={"endless": "ts"}, statement_timeout="0.5s"
    )
    add_monitor(store.engine, config, now=T0)
    began = time.monotonic()
    result = run_cycle(store, config)
    assert time.monotonic() - began < 10
    assert result.failed == {
        "main.endless": "max(ts): timed out after 500ms; the query was cancelled"
    }
    assert result.observed == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "mssql+pyodbc://monitor@dwh/sales",
            "Monitoring mssql+pyodbc://… needs the pyodbc package: pip install pyodbc",
        ),
        (
            "mysql://monitor@db/shop",
            "Monitoring mysql://… needs the mysqlclient package: pip install mysqlclient",
        ),
        (
            "snowflake://monitor@account/db",
            "Monitoring snowflake://… needs the snowflake-sqlalchemy package: "
            "pip install snowflake-sqlalchemy",
        ),
    ],
)
def test_a_url_without_its_driver_installed_is_one_line_naming_the_package(
    url: str, message: str, tmp_path: Path
) -> None:
    config = MonitorConfig.create(url)
    with pytest.raises(MonitorError) as raised:
        require_driver(config)
    assert str(raised.value) == message
    result = CliRunner().invoke(app, ["monitor", "add", url, "--home", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {message}"
    assert not (tmp_path / "lakelens.db").exists() or "monitor" not in result.output.lower()
