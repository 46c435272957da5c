"""A real PostgreSQL database as the monitored warehouse: tables created, loaded, altered and
left stale by the test; what the monitor records, the alerts it causes (delivered to a real
HTTP receiver), and that its queries stop at their limits without getting in a writer's way."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from lakelens.alerts.config import AlertingConfig
from lakelens.alerts.destinations import create_destination
from lakelens.alerts.engine import AlertEngine
from lakelens.alerts.incidents import Policy
from lakelens.alerts.outbox import DeliveryWorker
from lakelens.alerts.rules import evaluate_rules
from lakelens.events import Batch
from lakelens.model import Asset, Materialization, Run
from lakelens.monitors import MonitorConfig, run_cycle
from lakelens.monitors.state import add_monitor, load_monitors
from lakelens.server.health import HealthChecker, check_monitors
from lakelens.store import schema
from lakelens.testing import FakeClock

pytestmark = pytest.mark.postgres

T0 = 1_800_000_000.0


def _monitor(store: Any, url: str, **options: Any) -> MonitorConfig:
    config = MonitorConfig.create(url, name=options.pop("name", "wh"), **options)
    add_monitor(store.engine, config, now=T0)
    return config


def _rows(store: Any, table: sa.Table, *where: Any) -> list[dict[str, Any]]:
    with store.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).where(*where)).mappings()]


def _asset(pg: Any, table: str) -> str:
    return f"postgres://127.0.0.1:5432/{pg.name}.public.{table}"


def _alerting(receiver: Any) -> AlertingConfig:
    return AlertingConfig(
        destinations={"hook": {"type": "webhook", "url": receiver.url_for("/hook")}},
        incident_policy=Policy(group_wait=0),
    )


def test_counts_sizes_changes_and_an_altered_column_become_observations_and_drift(
    make_store: Any, pg_warehouse: Any
) -> None:
    pg_warehouse.sql(
        "CREATE TABLE orders (id int PRIMARY KEY, amount numeric(10,2))",
        "INSERT INTO orders SELECT g, g FROM generate_series(1, 500) g",
        "ANALYZE orders",
        "CREATE TABLE customers (id int, name varchar(40))",
        "INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 20) g",
        "CREATE TABLE events (id int, day date) PARTITION BY RANGE (day)",
        "CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')",
        "INSERT INTO events SELECT g, '2027-01-02' FROM generate_series(1, 30) g",
    )
    store = make_store()
    clock = FakeClock(T0)
    # Tables above 20 kB get the planner's estimate instead of count(*).
    config = _monitor(store, pg_warehouse.url, exact_count_max_bytes=20_000)
    first = run_cycle(store, config, clock=clock)
    # A partitioned table is one table (its partitions are read through it).
    assert first.ok and (first.tables, first.observed, first.changed) == (3, 3, 0), first
    seen = {o["asset"]: o for o in _rows(store, schema.table_observations)}
    orders, customers = (
        seen[_asset(pg_warehouse, "orders")],
        seen[_asset(pg_warehouse, "customers")],
    )
    assert (orders["row_count"], orders["row_count_estimated"]) == (500, True)
    assert (customers["row_count"], customers["row_count_estimated"]) == (20, False)
    assert orders["bytes"] > customers["bytes"] > 0 and orders["monitor"] == "wh"
    events = seen[_asset(pg_warehouse, "events")]
    assert (events["row_count"], events["row_count_estimated"]) == (30, False) and events["bytes"]
    # First sight: when the tables last changed is not known yet, so nothing materialized.
    assert orders["modified_at"] is None and not _rows(store, schema.materializations)
    assets = {a["name"]: a for a in _rows(store, schema.assets)}
    assert assets[_asset(pg_warehouse, "orders")]["kind"] == "table"
    assert json.loads(assets[_asset(pg_warehouse, "orders")]["tags"]) == {
        "lakelens.monitor": "wh",
        "warehouse.table": "public.orders",
    }
    columns = {s["asset"]: json.loads(s["columns"]) for s in _rows(store, schema.schema_snapshots)}
    assert columns[_asset(pg_warehouse, "customers")] == [
        ["id", "integer"],
        ["name", "character varying(40)"],
    ]
    assert columns[_asset(pg_warehouse, "orders")] == [
        ["id", "integer"],
        ["amount", "numeric(10,2)"],
    ]

    # A load into one table, a new column in the other.
    pg_warehouse.sql(
        "INSERT INTO customers SELECT g, 'n' || g FROM generate_series(21, 120) g",
        "ALTER TABLE orders ADD COLUMN note text",
        "DELETE FROM events WHERE id <= 5",
    )
    clock.advance(600)
    second = run_cycle(store, config, clock=clock)
    assert second.ok and (second.changed, second.schema_changes) == (2, 1), second
    mats = {m["asset"]: m for m in _rows(store, schema.materializations)}
    # Rows went down: no rows written to report (volume rules judge what was written).
    assert mats[_asset(pg_warehouse, "events")]["rows"] is None
    mat = mats[_asset(pg_warehouse, "customers")]
    assert mat["rows"] == 100
    assert mat["end_time"] == T0 + 600 and mat["status"] == "success"
    assert json.loads(mat["attributes"])["modified_source"] == "statistics"
    (run,) = _rows(store, schema.runs, schema.runs.c.run_id == mat["run_id"])
    assert run["job"] == "monitor:wh" and run["status"] == "success"
    assert json.loads(run["tags"]) == {"lakelens.source": "monitor", "lakelens.monitor": "wh"}
    latest = _rows(
        store,
        schema.table_observations,
        schema.table_observations.c.time == T0 + 600,
        schema.table_observations.c.asset == _asset(pg_warehouse, "customers"),
    )
    assert latest[0]["row_count"] == 120 and latest[0]["modified_source"] == "statistics"
    with store.connect() as conn:
        findings = evaluate_rules(conn, AlertingConfig(), now=clock())
    (drift,) = [f for f in findings if f.rule == "schema_drift"]
    assert drift.asset == _asset(pg_warehouse, "orders") and "+note" in drift.summary


def test_a_table_left_stale_fires_freshness_through_incidents_to_a_webhook(
    make_store: Any, pg_warehouse: Any, receiver: Any
) -> None:
    pg_warehouse.sql("CREATE TABLE orders (id int)", "INSERT INTO orders VALUES (1)")
    store = make_store()
    clock = FakeClock(T0)
    config = _monitor(store, pg_warehouse.url, freshness={"orders": "1h"})
    run_cycle(store, config, clock=clock)
    pg_warehouse.sql("INSERT INTO orders VALUES (2), (3)")
    clock.advance(600)
    assert run_cycle(store, config, clock=clock).changed == 1
    alerting = _alerting(receiver)
    engine = AlertEngine(store, alerting)
    assert not engine.evaluate(now=clock()).fired  # fresh
    # Nobody writes for 90 minutes; the monitor keeps looking.
    for _ in range(9):
        clock.advance(600)
        assert run_cycle(store, config, clock=clock).changed == 0
    evaluation = engine.evaluate(now=clock())
    assert len(evaluation.opened) == 1
    worker = DeliveryWorker(
        store, {"hook": create_destination("hook", alerting.destinations["hook"])}, clock=clock
    )
    assert worker.run_once().delivered == 1
    (request,) = receiver.wait_for(1)
    body = request.text
    assert "Freshness SLA Breached" in body and _asset(pg_warehouse, "orders") in body
    assert "last success 1.5h ago" in body
    # A write arrives: the next cycle sees it and the incident resolves.
    pg_warehouse.sql("INSERT INTO orders VALUES (4)")
    clock.advance(60)
    assert run_cycle(store, config, clock=clock).changed == 1
    assert engine.evaluate(now=clock()).resolved


def test_a_slow_query_is_cut_off_by_its_limit_while_writers_go_on(
    make_store: Any, pg_warehouse: Any
) -> None:
    pg_warehouse.sql(
        "CREATE TABLE orders (id int, updated_at timestamptz DEFAULT now())",
        "INSERT INTO orders (id) SELECT generate_series(1, 50)",
        # max(ts) of this view sleeps for a minute: the monitor must give up after 1 s.
        "CREATE VIEW slow_orders AS SELECT o.updated_at AS ts FROM orders o, pg_sleep(60) s",
    )
    store = make_store()
    config = _monitor(
        store,
        pg_warehouse.url,
        timestamp_columns={"slow_orders": "ts", "orders": "updated_at"},
        statement_timeout="1s",
    )
    done: list[Any] = []
    cycle = threading.Thread(target=lambda: done.append(run_cycle(store, config)))
    began = time.monotonic()
    cycle.start()
    # While the slow statement runs: one monitor connection, active, and a writer not blocked.
    deadline = time.monotonic() + 5
    active: list[Any] = []
    while time.monotonic() < deadline and not active:
        active = pg_warehouse.sql(
            "SELECT state, query FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'lakelens monitor wh' AND query LIKE '%slow_orders%'",
            flush_stats=False,
        )
    assert active and active[0][0] == "active"
    # This warehouse's only: another test process may be running the same test beside it.
    (connections,) = pg_warehouse.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'lakelens monitor wh'",
        flush_stats=False,
    )
    assert connections == (1,)
    wrote = time.monotonic()
    pg_warehouse.sql("INSERT INTO orders (id) VALUES (51)", "UPDATE orders SET id = id")
    assert time.monotonic() - wrote < 0.5
    cycle.join(timeout=30)
    (result,) = done
    assert time.monotonic() - began < 10
    assert result.failed == {
        "public.slow_orders": "max(ts): timed out after 1.0s (statement_timeout); "
        "the query was cancelled"
    }
    assert result.observed == 1  # orders was read as usual
    # Nothing of the monitor's is left on the server.
    assert pg_warehouse.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name LIKE 'lakelens monitor%'",
        flush_stats=False,
    ) == [(0,)]
    with store.connect() as conn:
        (state,) = load_monitors(conn)
    assert state.last_error.startswith("1 of 2 tables failed: public.slow_orders: max(ts): timed")


def test_a_table_locked_by_ddl_is_not_waited_for(make_store: Any, pg_warehouse: Any) -> None:
    pg_warehouse.sql(
        "CREATE TABLE orders (id int, updated_at timestamptz DEFAULT now())",
        "INSERT INTO orders (id) SELECT generate_series(1, 50)",
        "ANALYZE orders",
        "CREATE TABLE customers (id int)",
    )
    store = make_store()
    config = _monitor(
        store, pg_warehouse.url, timestamp_columns={"orders": "updated_at"}, lock_timeout="0.5s"
    )
    with psycopg.connect(pg_warehouse.url) as holder:  # an ALTER in progress, say
        holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        began = time.monotonic()
        result = run_cycle(store, config)
        took = time.monotonic() - began
        holder.execute("INSERT INTO orders (id) VALUES (51)")
        holder.commit()
    assert took < 5, took
    assert result.failed == {
        "public.orders": "max(updated_at): locked by another session; gave up after 500ms "
        "(lock_timeout)"
    }
    seen = {o["asset"]: o for o in _rows(store, schema.table_observations)}
    locked = seen[_asset(pg_warehouse, "orders")]
    # Its size would have waited for the lock: the estimate instead, and no size this time.
    assert (locked["row_count"], locked["row_count_estimated"], locked["bytes"]) == (50, True, None)
    assert seen[_asset(pg_warehouse, "customers")]["row_count_estimated"] is False


def test_a_missing_privilege_and_a_vanished_table_are_findings_and_the_rest_goes_on(
    make_store: Any, pg_warehouse: Any
) -> None:
    role = f"{pg_warehouse.name}_ro"
    pg_warehouse.sql(
        f'CREATE ROLE "{role}" LOGIN',
        "CREATE TABLE orders (id int)",
        "INSERT INTO orders VALUES (1), (2)",
        "CREATE TABLE secret (id int)",
        "CREATE TABLE scratch (id int)",
        f'GRANT SELECT ON orders, scratch TO "{role}"',
    )
    store = make_store()
    url = pg_warehouse.url.replace("postgres@", f"{role}@")
    config = _monitor(store, url)
    first = run_cycle(store, config)
    assert list(first.failed) == ["public.secret"]
    assert first.failed["public.secret"].startswith("missing privilege: SELECT on public.secret")
    pg_warehouse.sql("DROP TABLE scratch")
    second = run_cycle(store, config)
    assert sorted(second.failed) == ["public.scratch", "public.secret"]
    assert second.failed["public.scratch"].startswith("vanished: not in the warehouse since")
    assert second.observed == 1 and second.error is None
    with store.connect() as conn:
        (state,) = load_monitors(conn)
        findings = [f for f in evaluate_rules(conn, AlertingConfig(), now=time.time())]
    assert state.last_error.startswith("2 of 3 tables failed: public.scratch: vanished")
    failed = {f.key: f for f in findings if f.rule == "monitor_failed"}
    assert set(failed) == {"wh|public.scratch", "wh|public.secret"}
    assert failed["wh|public.secret"].asset == _asset(pg_warehouse, "secret")
    assert failed["wh|public.secret"].severity == "warning"
    status, details = check_monitors(store, time.time())
    assert status == "degraded" and details["failing"][0]["monitor"] == "wh"
    report = HealthChecker.from_settings(store.settings, store).check_all()
    assert report["components"]["monitors"]["status"] == "degraded"
    assert report["components"]["monitors"]["critical"] is False
    # The table is back: its failure clears.
    pg_warehouse.sql("CREATE TABLE scratch (id int)", f'GRANT SELECT ON scratch TO "{role}"')
    assert list(run_cycle(store, config).failed) == ["public.secret"]


def test_wrong_credentials_fail_the_monitor_not_the_cycle_of_others(
    make_store: Any, pg_warehouse: Any, receiver: Any
) -> None:
    pg_warehouse.sql("CREATE TABLE orders (id int)")
    store = make_store()
    secret = "Sup3r-s3cret-pw"
    env = {"WH_PASSWORD": secret}
    wrong = _monitor(
        store,
        pg_warehouse.url.replace("postgres@", "nobody_here@"),
        name="wrong",
        password_env="WH_PASSWORD",
    )
    right = _monitor(store, pg_warehouse.url, name="right")
    failed = run_cycle(store, wrong, environ=env)
    assert failed.error is not None and 'role "nobody_here" does not exist' in failed.error
    assert failed.error.startswith(
        f"cannot connect to postgresql://nobody_here@127.0.0.1:5432/{pg_warehouse.name}"
    )
    assert run_cycle(store, right).ok
    with store.connect() as conn:
        states = {s.name: s for s in load_monitors(conn)}
        findings = [
            f
            for f in evaluate_rules(conn, AlertingConfig(), now=time.time())
            if f.rule == "monitor_failed"
        ]
    assert states["wrong"].unreachable and states["right"].last_error is None
    (finding,) = findings
    assert (finding.key, finding.severity, finding.asset) == ("wrong", "error", None)
    assert check_monitors(store, time.time())[0] == "unhealthy"
    assert secret not in json.dumps([s.summary() for s in states.values()])
    # An incident of its own, told to the webhook.
    alerting = _alerting(receiver)
    assert len(AlertEngine(store, alerting).evaluate().opened) == 1
    hook = create_destination("hook", alerting.destinations["hook"])
    assert DeliveryWorker(store, {"hook": hook}).run_once().delivered == 1
    (request,) = receiver.wait_for(1)
    assert (
        "Monitor Failing" in request.text
        and 'role \\"nobody_here\\" does not exist' in request.text
    )
    assert secret not in request.text


def test_a_warehouse_table_is_the_dbt_model_that_builds_it(
    make_store: Any, pg_warehouse: Any
) -> None:
    pg_warehouse.sql("CREATE TABLE orders (id int)", "INSERT INTO orders VALUES (1)")
    store = make_store()
    relation = f'"{pg_warehouse.name}"."public"."orders"'
    store.write(Batch(assets=[Asset("orders", kind="model", tags={"dbt.relation": relation})]))
    clock = FakeClock(T0)
    config = _monitor(store, pg_warehouse.url, freshness={"*": "2h"})
    run_cycle(store, config, clock=clock)
    # dbt builds it and reports so; the monitor then sees the change but adds nothing.
    pg_warehouse.sql("INSERT INTO orders VALUES (2)")
    store.write(
        Batch(
            runs=[Run("dbt-1", "dbt run", status="success")],
            materializations=[
                Materialization(
                    "m1",
                    "dbt-1",
                    "orders",
                    status="success",
                    start_time=_at(T0 + 200),
                    end_time=_at(T0 + 300),
                )
            ],
        )
    )
    clock.advance(600)
    assert run_cycle(store, config, clock=clock).changed == 0
    # Someone else writes to it: that change is the monitor's to record.
    pg_warehouse.sql("INSERT INTO orders VALUES (3)")
    clock.advance(600)
    assert run_cycle(store, config, clock=clock).changed == 1
    assets = {a["name"]: a for a in _rows(store, schema.assets)}
    assert set(assets) == {"orders"}
    # Its own definition stays; the monitor's SLA fills the one it lacked.
    assert assets["orders"]["kind"] == "model" and assets["orders"]["freshness_seconds"] == 7200
    assert {o["asset"] for o in _rows(store, schema.table_observations)} == {"orders"}
    assert [m["run_id"][:11] for m in _rows(store, schema.materializations)] == [
        "dbt-1",
        "monitor:wh:",
    ]


def _at(seconds: float) -> Any:
    from lakelens.model import from_epoch

    return from_epoch(seconds)
