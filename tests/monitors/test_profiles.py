"""Column profiles from monitors: real PostgreSQL, DuckDB and SQLite warehouses with known
data, profiled in the warehouse and read back as `lakelens profile` shows them; a big table
sampled (PostgreSQL) or approximated (DuckDB); a slow column cut off without losing the
others; a table profiled again only after `profile_interval` and a change."""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lakelens.analysis.profiles import profile_report
from lakelens.cli.main import app
from lakelens.monitors import MonitorConfig, run_cycle
from lakelens.monitors.settings import from_config
from lakelens.monitors.state import add_monitor, load_monitors
from lakelens.sdk._profile import compute
from lakelens.store import schema
from lakelens.testing import FakeClock

T0 = 1_800_000_000.0
ROWS = 1000
runner = CliRunner()

# The same 1,000 rows in every warehouse: 10% of amounts null, one infinite score, strings of
# length 2 and 4, a boolean, a minute-by-minute time.
PG_ORDERS = f"""
CREATE TABLE orders AS SELECT
  g AS id,
  CAST(CASE WHEN g % 10 = 0 THEN NULL ELSE g * 1.5 END AS numeric(10,2)) AS amount,
  CAST(CASE WHEN g % 3 = 0 THEN 'aa' ELSE 'bbbb' END AS varchar(10)) AS name,
  g % 2 = 0 AS flag,
  timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' AS created_at,
  CAST(CASE WHEN g = 5 THEN 'Infinity' ELSE g * 0.25 END AS double precision) AS score,
  CAST('{{}}' AS json) AS doc
FROM generate_series(1, {ROWS}) g
"""
DUCK_ORDERS = f"""
CREATE TABLE orders AS SELECT
  g AS id,
  CAST(CASE WHEN g % 10 = 0 THEN NULL ELSE g * 1.5 END AS DECIMAL(10,2)) AS amount,
  CASE WHEN g % 3 = 0 THEN 'aa' ELSE 'bbbb' END AS name,
  g % 2 = 0 AS flag,
  TIMESTAMP '2024-01-01 00:00:00' + g * INTERVAL 1 MINUTE AS created_at,
  CASE WHEN g = 5 THEN 'inf'::DOUBLE ELSE g * 0.25 END AS score,
  [g] AS doc
FROM range(1, {ROWS + 1}) t(g)
"""


def _python_rows() -> list[dict[str, Any]]:
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    return [
        {
            "id": g,
            "amount": None if g % 10 == 0 else g * 1.5,
            "name": "aa" if g % 3 == 0 else "bbbb",
            "flag": g % 2 == 0,
            "created_at": start + timedelta(minutes=g),
            "score": math.inf if g == 5 else g * 0.25,
        }
        for g in range(1, ROWS + 1)
    ]


def _same(actual: Any, expected: Any, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            _same(actual.get(key), value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (where, actual)
        for n, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _same(a, e, f"{where}[{n}]")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-9), (where, actual, expected)
    else:
        assert actual == expected, (where, actual, expected)


def _matches_the_sdk(columns: dict[str, dict[str, Any]]) -> None:
    """What the warehouse computed is what lakelens.profile() computes from the same rows."""
    expected = compute(_python_rows()).columns
    for name, stats in expected.items():
        _same(columns[name], stats, name)
    amount = columns["amount"]
    assert (amount["count"], amount["nulls"], amount["null_rate"]) == (900, 100, 0.1)
    assert (amount["min"], amount["max"], amount["mean"]) == (1.5, 1498.5, 750.0)
    assert amount["quantiles"]["p50"] == 750.0 and sum(amount["histogram"]["counts"]) == 900
    assert columns["name"]["top"] == [["bbbb", 667], ["aa", 333]]
    assert (columns["name"]["min_length"], columns["name"]["max_length"]) == (2, 4)
    assert columns["score"]["non_finite"] == 1 and columns["score"]["max"] == 250.0
    assert columns["created_at"]["min"] == "2024-01-01T00:01:00Z"


def _monitor(store: Any, url: str, **options: Any) -> MonitorConfig:
    config = MonitorConfig.create(url, name="wh", **options)
    add_monitor(store.engine, config, now=T0)
    return config


def _profiles(store: Any, asset: str) -> list[Any]:
    with store.connect() as conn:
        return profile_report(conn, asset, history=50).history


@pytest.mark.postgres
def test_postgres_profiles_are_what_lakelens_profile_computes_from_the_same_rows(
    make_store: Any, pg_warehouse: Any, monkeypatch: pytest.MonkeyPatch, store_url: str
) -> None:
    pg_warehouse.sql(PG_ORDERS, "CREATE TABLE other (id int)")
    store = make_store()
    config = _monitor(
        store,
        pg_warehouse.url,
        profile_columns={"orders": ["*", "dropped_column"], "other": ["gone"], "none*": ["id"]},
    )
    result = run_cycle(store, config, clock=FakeClock(T0))
    assert result.ok and result.profiled == 2, result
    gone = "no column 'gone' in public.other (named in profile_columns)"
    assert result.profile_errors == {
        "public.orders": "dropped_column: no column 'dropped_column' in public.orders "
        "(named in profile_columns)",
        "public.other": gone,
    }
    # Nothing of it could be profiled: a failed profile, no columns.
    (other,) = _profiles(store, f"postgres://127.0.0.1:5432/{pg_warehouse.name}.public.other")
    assert (other.columns, other.error, other.row_count) == ({}, gone, None)
    asset = f"postgres://127.0.0.1:5432/{pg_warehouse.name}.public.orders"

    # Read back as `lakelens profile ASSET --json` shows it.
    monkeypatch.setenv("LAKELENS_DATABASE_URL", store_url)
    shown = runner.invoke(app, ["profile", asset, "--json"])
    assert shown.exit_code == 0, shown.output
    latest = json.loads(shown.output)["latest"]
    assert (latest["source"], latest["row_count"], latest["sampled_rows"]) == (
        "monitor",
        ROWS,
        None,
    )
    assert latest["time"] == T0 and latest["run_id"].startswith("monitor:wh:")
    columns = latest["columns"]
    _matches_the_sdk(columns)
    assert columns["amount"]["dtype"] == "numeric(10,2)"
    assert columns["doc"] == {
        "type": "other",
        "dtype": "json",
        "count": ROWS,
        "nulls": 0,
        "null_rate": 0.0,
    }
    # A column named in profile_columns that the table does not have: a note, not a failure.
    assert columns["dropped_column"] == {
        "type": "other",
        "error": "no column 'dropped_column' in public.orders (named in profile_columns)",
    }
    text = runner.invoke(app, ["profile", asset])
    assert text.exit_code == 0 and "from monitor" in text.output, text.output
    assert "dropped_column: no column 'dropped_column'" in text.output


@pytest.mark.postgres
def test_a_big_postgres_table_is_profiled_from_a_sample(make_store: Any, pg_warehouse: Any) -> None:
    pg_warehouse.sql(
        "CREATE TABLE events AS SELECT g AS id, g % 50 AS kind, 'k' || (g % 50) AS label "
        "FROM generate_series(1, 200000) g",
        "ANALYZE events",
    )
    store = make_store()
    config = _monitor(
        store,
        pg_warehouse.url,
        profile_columns={"events": ["id", "kind", "label"]},
        profile_sample_above=20_000,
    )
    result = run_cycle(store, config, clock=FakeClock(T0))
    assert result.ok and result.profiled == 1 and not result.profile_errors, result
    (profile,) = _profiles(store, f"postgres://127.0.0.1:5432/{pg_warehouse.name}.public.events")
    # About 20,000 rows read (whole pages: TABLESAMPLE SYSTEM of 10%), the table's own count kept.
    assert profile.row_count == 200_000 and 10_000 <= (profile.sampled_rows or 0) <= 30_000
    ids, kinds, labels = (profile.columns[c] for c in ("id", "kind", "label"))
    assert ids["count"] == profile.sampled_rows and ids["nulls"] == 0
    # Every sampled id is unique: the estimate is the table's non-null count.
    assert ids["distinct_approx"] is True and ids["distinct"] == pytest.approx(200_000, rel=0.01)
    assert kinds["distinct_approx"] is True and kinds["distinct"] == 50
    assert labels["distinct"] == 50 and (labels["min_length"], labels["max_length"]) == (2, 3)
    assert kinds["mean"] == pytest.approx(24.5, rel=0.05) and kinds["max"] == 49
    assert sum(kinds["histogram"]["counts"]) == profile.sampled_rows
    assert sum(n for _, n in labels["top"]) <= profile.sampled_rows and len(labels["top"]) == 5


@pytest.mark.postgres
def test_a_slow_column_is_cut_off_and_the_other_columns_are_recorded(
    make_store: Any, pg_warehouse: Any
) -> None:
    pg_warehouse.sql(
        PG_ORDERS,
        # 5 ms a row (declared immutable, so a query that does not ask for it never runs it).
        "CREATE FUNCTION slow(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS "
        "$$ BEGIN PERFORM pg_sleep(0.005); RETURN x; END $$",
        "CREATE VIEW slow_orders AS SELECT id, slow(id) AS slow, amount, name FROM orders",
    )
    store = make_store()
    config = _monitor(
        store,
        pg_warehouse.url,
        tables=["slow_orders"],
        statement_timeout="1s",
        profile_columns={"slow_orders": ["id", "slow", "amount", "name"]},
    )
    result = run_cycle(store, config, clock=FakeClock(T0))
    # The table was read: the profile's problem is reported apart from failures.
    assert result.ok and result.profiled == 1, result
    assert result.profile_errors == {
        "public.slow_orders": "slow: timed out after 1.0s (statement_timeout); the query was "
        "cancelled"
    }
    assert result.seconds < 10
    (profile,) = _profiles(
        store, f"postgres://127.0.0.1:5432/{pg_warehouse.name}.public.slow_orders"
    )
    assert profile.columns["slow"] == {
        "type": "integer",
        "dtype": "integer",
        "error": "timed out after 1.0s (statement_timeout); the query was cancelled",
    }
    assert profile.row_count == ROWS and profile.error is None
    assert profile.columns["amount"]["mean"] == 750.0
    assert profile.columns["name"]["top"] == [["bbbb", 667], ["aa", 333]]
    assert profile.columns["id"]["histogram"]["counts"] == [50] * 20


@pytest.mark.postgres
def test_a_table_is_profiled_again_only_after_the_interval_and_a_change(
    make_store: Any, pg_warehouse: Any
) -> None:
    pg_warehouse.sql(PG_ORDERS)
    store = make_store()
    config = _monitor(
        store, pg_warehouse.url, profile_columns={"orders": ["amount"]}, profile_interval="1h"
    )
    asset = f"postgres://127.0.0.1:5432/{pg_warehouse.name}.public.orders"
    clock = FakeClock(T0)
    assert run_cycle(store, config, clock=clock).profiled == 1
    pg_warehouse.sql("INSERT INTO orders (id, amount) SELECT g, 1 FROM generate_series(1, 10) g")
    clock.advance(600)
    changed = run_cycle(store, config, clock=clock)
    # Changed, but profiled 10 minutes ago: not yet.
    assert changed.changed == 1 and changed.profiled == 0
    clock.set(T0 + 3600)
    again = run_cycle(store, config, clock=clock)
    assert again.changed == 0 and again.profiled == 1
    clock.set(T0 + 3 * 3600)
    # Unchanged since: its profile still holds.
    assert run_cycle(store, config, clock=clock).profiled == 0
    history = _profiles(store, asset)
    assert [(p.time, p.row_count) for p in history] == [(T0 + 3600, ROWS + 10), (T0, ROWS)]
    assert history[0].columns["amount"]["count"] == 910


def _duck(path: Path, *statements: str) -> None:
    conn = duckdb.connect(str(path))
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


def test_duckdb_profiles_are_what_lakelens_profile_computes_from_the_same_rows(
    make_store: Any, tmp_path: Path
) -> None:
    path = tmp_path / "lake.duckdb"
    _duck(path, DUCK_ORDERS)
    store = make_store()
    config = _monitor(store, f"duckdb:///{path}", profile_columns={"orders": ["*"]})
    result = run_cycle(store, config, clock=FakeClock(T0))
    assert result.ok and result.profiled == 1 and not result.profile_errors, result
    (profile,) = _profiles(store, f"duckdb://{path}/lake.main.orders")
    assert (profile.source, profile.row_count, profile.sampled_rows) == ("monitor", ROWS, None)
    _matches_the_sdk(profile.columns)
    assert profile.columns["amount"]["dtype"] == "DECIMAL(10,2)"
    assert profile.columns["doc"]["type"] == "other" and profile.columns["doc"]["count"] == ROWS


def test_a_big_duckdb_table_is_profiled_whole_with_approximate_functions(
    make_store: Any, tmp_path: Path
) -> None:
    path = tmp_path / "lake.duckdb"
    _duck(
        path,
        "CREATE TABLE events AS SELECT range AS id, range % 50 AS kind FROM range(200000)",
    )
    store = make_store()
    config = _monitor(
        store,
        f"duckdb:///{path}",
        profile_columns={"events": ["id", "kind"]},
        profile_sample_above="20k",
    )
    assert run_cycle(store, config, clock=FakeClock(T0)).profiled == 1
    (profile,) = _profiles(store, f"duckdb://{path}/lake.main.events")
    # Every row read: counts, min, max and mean exact; distinct values and quantiles estimated.
    assert (profile.row_count, profile.sampled_rows) == (200_000, None)
    ids = profile.columns["id"]
    assert (ids["count"], ids["min"], ids["max"], ids["mean"]) == (200_000, 0, 199_999, 99_999.5)
    assert ids["distinct_approx"] is True and ids["distinct"] == pytest.approx(200_000, rel=0.05)
    assert ids["quantiles"]["p50"] == pytest.approx(100_000, rel=0.02)
    # HyperLogLog: close, not exact, even for 50 values.
    assert profile.columns["kind"]["distinct"] == pytest.approx(50, abs=2)


def test_a_sqlite_warehouse_gets_the_statistics_plain_sql_can_give(
    make_store: Any, tmp_path: Path
) -> None:
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE orders (id INTEGER, amount REAL, name TEXT)")
    conn.executemany(
        "INSERT INTO orders VALUES (?, ?, ?)",
        [
            (g, None if g % 10 == 0 else g * 1.5, "aa" if g % 3 == 0 else "bbbb")
            for g in range(1, 1001)
        ],
    )
    conn.commit()
    conn.close()
    store = make_store()
    config = _monitor(store, f"sqlite:///{path}", profile_columns={"orders": ["amount", "name"]})
    assert run_cycle(store, config, clock=FakeClock(T0)).profiled == 1
    (profile,) = _profiles(store, f"sqlite://{path}/main.orders")
    amount, name = profile.columns["amount"], profile.columns["name"]
    assert (amount["nulls"], amount["min"], amount["max"], amount["mean"]) == (
        100,
        1.5,
        1498.5,
        750.0,
    )
    assert "std" not in amount and "quantiles" not in amount
    assert name["top"] == [["bbbb", 667], ["aa", 333]] and name["mean_length"] == 3.334


def test_profile_settings_from_the_cli_and_lakelens_yaml(tmp_path: Path, make_store: Any) -> None:
    home = str(tmp_path / "home")
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    sqlite3.connect(tmp_path / "shop.db").close()
    added = runner.invoke(
        app,
        [
            "monitor",
            "add",
            url,
            "--profile",
            "orders=amount, status",
            "--profile",
            "raw.*=*",
            "--profile-interval",
            "2h",
            "--profile-sample-above",
            "100k",
            "--home",
            home,
            "--json",
        ],
    )
    assert added.exit_code == 0, added.output
    summary = json.loads(added.output)
    assert summary["profile_columns"] == {"orders": ["amount", "status"], "raw.*": ["*"]}
    assert summary["profile_interval_seconds"] == 7200.0
    bad = runner.invoke(
        app, ["monitor", "add", url, "--name", "b", "--profile", "orders", "--home", home]
    )
    assert bad.exit_code != 0 and "expected TABLE=COLUMN" in bad.output

    (config,) = from_config(
        {
            "monitors": {
                "wh": {
                    "url": url,
                    "profile_columns": {"orders": "amount, status", "*": ["id"]},
                    "profile_interval": "30m",
                    "profile_sample_above": "250k",
                }
            }
        },
        "lakelens.yaml",
    )
    assert config.profile_for("public", "orders") == ["amount", "status", "id"]
    assert config.profile_for("public", "customers") == ["id"]
    assert (config.profile_interval, config.profile_sample_above) == (1800.0, 250_000)
    store = make_store()
    add_monitor(store.engine, config, now=T0)
    with store.connect() as conn:
        (state,) = load_monitors(conn)
    assert state.config == config


@pytest.mark.postgres
def test_a_table_slow_as_a_whole_stops_at_the_fallback_budget(
    make_store: Any, pg_warehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakelens.monitors import profiles

    pg_warehouse.sql(
        PG_ORDERS,
        "CREATE FUNCTION slow(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS "
        "$$ BEGIN PERFORM pg_sleep(0.005); RETURN x; END $$",
        "CREATE VIEW slow_orders AS SELECT slow(id) AS a, slow(id) AS b, slow(id) AS c FROM orders",
    )
    # One statement limit in all: the aggregate query spends it, no column is tried alone.
    monkeypatch.setattr(profiles, "FALLBACK_BUDGET", 1)
    store = make_store()
    config = _monitor(
        store,
        pg_warehouse.url,
        tables=["slow_orders"],
        statement_timeout="1s",
        profile_columns={"slow_orders": ["*"]},
    )
    result = run_cycle(store, config, clock=FakeClock(T0))
    assert result.ok and result.seconds < 5, result
    (profile,) = _profiles(
        store, f"postgres://127.0.0.1:5432/{pg_warehouse.name}.public.slow_orders"
    )
    assert profile.columns == {} and profile.error == (
        "every column failed; a: not profiled: the table's queries failed (timed out after "
        "1.0s (statement_timeout); the query was cancelled) and ran past 1s"
    )


def test_a_profile_with_a_failed_column_is_tried_again_after_the_interval(
    make_store: Any, tmp_path: Path
) -> None:
    path = tmp_path / "lake.duckdb"
    _duck(path, "CREATE TABLE t AS SELECT range AS id FROM range(10)")
    store = make_store()
    config = _monitor(store, f"duckdb:///{path}", profile_columns={"t": ["id", "later"]})
    clock = FakeClock(T0)
    assert run_cycle(store, config, clock=clock).profiled == 1
    clock.advance(600)
    assert run_cycle(store, config, clock=clock).profiled == 0
    # Unchanged, but its last profile missed a column: once the interval has passed, again.
    clock.set(T0 + 3600)
    assert run_cycle(store, config, clock=clock).profiled == 1


@pytest.mark.postgres
def test_an_emptied_table_with_a_stale_estimate_is_read_whole(
    make_store: Any, pg_warehouse: Any
) -> None:
    pg_warehouse.sql(
        "CREATE TABLE events WITH (autovacuum_enabled = false) AS "
        "SELECT g AS id FROM generate_series(1, 50000) g",
        "ANALYZE events",
        "DELETE FROM events",  # the planner still thinks 50,000 rows
    )
    store = make_store()
    config = _monitor(
        store,
        pg_warehouse.url,
        exact_count_max_bytes=1,  # the estimate, as for a big table
        profile_columns={"events": ["id"]},
        profile_sample_above=5_000,
    )
    assert run_cycle(store, config, clock=FakeClock(T0)).profiled == 1
    asset = f"postgres://127.0.0.1:5432/{pg_warehouse.name}.public.events"
    with store.connect() as conn:
        observed = conn.execute(
            sa.select(schema.table_observations.c.row_count).where(
                schema.table_observations.c.asset == asset
            )
        ).scalar()
    assert observed == 50_000
    (profile,) = _profiles(store, asset)
    # The sample found no row: read whole, the profile says so (0 rows, no sample).
    assert (profile.row_count, profile.sampled_rows) == (0, None)
    assert profile.columns["id"]["count"] == 0 and "distinct_approx" not in profile.columns["id"]
