"""A real DuckDB file as the monitored warehouse: loaded, altered and left stale by the test;
a query past its limit interrupted; a file held by a writer recorded as the monitor's failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa

from lakelens.alerts.config import AlertingConfig
from lakelens.alerts.rules import evaluate_rules
from lakelens.events import Batch
from lakelens.model import Asset
from lakelens.monitors import MonitorConfig, run_cycle
from lakelens.monitors.state import add_monitor, load_monitors
from lakelens.store import schema
from lakelens.testing import FakeClock

T0 = 1_800_000_000.0


def _sql(path: Path, *statements: str, mtime: float | None = None) -> None:
    """Run statements in a write connection, closed after (DuckDB: one writer at a time);
    `mtime` then sets the file's time, as if written then."""
    conn = duckdb.connect(str(path))
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def _rows(store: Any, table: sa.Table, *where: Any) -> list[dict[str, Any]]:
    with store.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).where(*where)).mappings()]


def test_a_duckdb_file_gives_counts_schema_changes_and_staleness(
    make_store: Any, tmp_path: Path
) -> None:
    path = tmp_path / "warehouse.duckdb"
    _sql(
        path,
        "CREATE TABLE orders (id INTEGER, amount DOUBLE)",
        "INSERT INTO orders SELECT range, range FROM range(300)",
        "CREATE TABLE events (id INTEGER)",
        "INSERT INTO events VALUES (1), (2)",
        "CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 100",
        mtime=T0 - 100,
    )
    store = make_store()
    # dbt-duckdb builds orders in this file: the table and the model are one asset.
    store.write(
        Batch(
            assets=[
                Asset("orders", kind="model", tags={"dbt.relation": '"warehouse"."main"."orders"'})
            ]
        )
    )
    clock = FakeClock(T0)
    config = MonitorConfig.create(f"duckdb:///{path}", freshness={"events": "1h"})
    assert config.name == "warehouse" and config.url == f"duckdb:///{path}"
    add_monitor(store.engine, config, now=T0)
    first = run_cycle(store, config, clock=clock)
    assert first.ok and (first.tables, first.changed) == (3, 0), first
    events = f"duckdb://{path}/warehouse.main.events"
    seen = {o["asset"]: o for o in _rows(store, schema.table_observations)}
    assert set(seen) == {"orders", events, f"duckdb://{path}/warehouse.main.big_orders"}
    assert (seen["orders"]["row_count"], seen["orders"]["row_count_estimated"]) == (300, False)
    assert seen[events]["row_count"] == 2
    kinds = {a["name"]: a["kind"] for a in _rows(store, schema.assets)}
    assert (
        kinds["orders"] == "model" and kinds[f"duckdb://{path}/warehouse.main.big_orders"] == "view"
    )

    # A load into events and a new column in orders, written at T0 + 500.
    _sql(
        path,
        "INSERT INTO events SELECT range FROM range(10)",
        "ALTER TABLE orders ADD COLUMN note VARCHAR",
        mtime=T0 + 500,
    )
    clock.advance(600)
    second = run_cycle(store, config, clock=clock)
    assert second.ok and (second.changed, second.schema_changes) == (2, 1), second
    mats = {m["asset"]: m for m in _rows(store, schema.materializations)}
    assert mats[events]["rows"] == 10 and mats[events]["end_time"] == T0 + 500
    assert json.loads(mats[events]["attributes"])["modified_source"] == "file"
    # Nothing written since: the file's time does not make unchanged tables change.
    clock.advance(600)
    assert run_cycle(store, config, clock=clock).changed == 0

    # Two hours without a write: events is past its one-hour SLA; orders drifted.
    clock.advance(2 * 3600)
    run_cycle(store, config, clock=clock)
    with store.connect() as conn:
        findings = {f.rule: f for f in evaluate_rules(conn, AlertingConfig(), now=clock())}
    assert findings["freshness"].asset == events
    assert findings["freshness"].severity == "critical"  # more than twice the SLA
    assert (
        findings["schema_drift"].asset == "orders" and "+note" in findings["schema_drift"].summary
    )


def test_a_duckdb_file_gives_each_tables_estimated_size(make_store: Any, tmp_path: Path) -> None:
    """Sizes from the storage each table's segments occupy: 1M incompressible 8-byte hashes
    take at least 8 MB, the tables together no more than the file's used blocks, a table
    twice as big twice the size; an empty table 0, a view none."""
    path = tmp_path / "sized.duckdb"
    _sql(
        path,
        "CREATE TABLE big AS SELECT hash(range) AS h FROM range(1000000)",
        "CREATE TABLE small (id INTEGER)",
        "INSERT INTO small VALUES (1), (2), (3)",
        "CREATE TABLE empty (id INTEGER)",
        'CREATE TABLE "it\'s ""odd""" AS SELECT range::VARCHAR AS s FROM range(5000)',
        "CREATE VIEW everything AS SELECT * FROM big",
    )
    conn = duckdb.connect(str(path), read_only=True)
    try:
        ((used, block),) = conn.execute(
            "SELECT used_blocks, block_size FROM pragma_database_size()"
        ).fetchall()
    finally:
        conn.close()
    store = make_store()
    config = MonitorConfig.create(f"duckdb:///{path}")
    add_monitor(store.engine, config, now=T0)
    assert run_cycle(store, config, clock=FakeClock(T0)).ok

    def sizes() -> dict[str, int | None]:
        rows = _rows(store, schema.table_observations)
        latest = {o["asset"].rsplit(".", 1)[1]: o["bytes"] for o in sorted(rows, key=_time)}
        return latest

    first = sizes()
    assert first["everything"] is None and first["empty"] == 0
    assert 8_000_000 <= first["big"] <= 10_000_000
    assert 0 < first["small"] <= block and 0 < first['it\'s "odd"'] <= block
    assert sum(v or 0 for v in first.values()) <= used * block
    _sql(path, "INSERT INTO big SELECT hash(range + 1000000) FROM range(1000000)")
    assert run_cycle(store, config, clock=FakeClock(T0 + 600)).ok
    second = sizes()
    assert 1.8 <= second["big"] / first["big"] <= 2.2
    assert second["small"] == first["small"]


def _time(observation: dict[str, Any]) -> float:
    return observation["time"]


def test_a_duckdb_query_past_its_limit_is_interrupted(make_store: Any, tmp_path: Path) -> None:
    path = tmp_path / "slow.duckdb"
    _sql(
        path,
        "CREATE TABLE orders (id INTEGER)",
        "INSERT INTO orders VALUES (1)",
        "CREATE VIEW endless AS SELECT a.range + b.range AS ts FROM range(1000000) a, range(1000000) b",
    )
    store = make_store()
    config = MonitorConfig.create(
        f"duckdb:///{path}", timestamp_columns={"endless": "ts"}, statement_timeout="0.5s"
    )
    add_monitor(store.engine, config, now=T0)
    began = time.monotonic()
    result = run_cycle(store, config)
    assert time.monotonic() - began < 10
    assert result.failed == {
        "main.endless": "max(ts): timed out after 500ms; the query was interrupted"
    }
    assert result.observed == 1
    # The monitor closed the file: a writer can open it again.
    _sql(path, "INSERT INTO orders VALUES (2)")


def test_a_file_held_by_a_writer_is_the_monitors_failure(make_store: Any, tmp_path: Path) -> None:
    path = tmp_path / "busy.duckdb"
    _sql(path, "CREATE TABLE orders (id INTEGER)")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import duckdb, sys, time
                conn = duckdb.connect({str(path)!r})
                print("open", flush=True)
                sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        store = make_store()
        config = MonitorConfig.create(f"duckdb:///{path}")
        add_monitor(store.engine, config, now=T0)
        result = run_cycle(store, config)
    finally:
        holder.communicate("", timeout=30)
    assert result.error is not None
    assert result.error.startswith(
        f"cannot open duckdb:///{path}: the file is held by a writing process"
    )
    with store.connect() as conn:
        (state,) = load_monitors(conn)
    assert state.unreachable and state.last_error == result.error
    # Once the writer is done, the next cycle reads it.
    assert run_cycle(store, config).ok


def test_a_missing_duckdb_file_is_said_plainly(make_store: Any, tmp_path: Path) -> None:
    store = make_store()
    config = MonitorConfig.create(f"duckdb:///{tmp_path / 'nope.duckdb'}")
    add_monitor(store.engine, config, now=T0)
    result = run_cycle(store, config)
    assert result.error == (
        f"cannot connect to duckdb:///{tmp_path / 'nope.duckdb'}: no DuckDB file at "
        f"{tmp_path / 'nope.duckdb'}"
    )


@pytest.mark.parametrize("url", ["duckdb:///:memory:", "duckdb://"])
def test_a_duckdb_monitor_needs_a_file(url: str) -> None:
    from lakelens.monitors import MonitorError

    with pytest.raises(MonitorError, match="needs a database file"):
        MonitorConfig.create(url)
