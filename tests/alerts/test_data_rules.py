"""Alerts on the data itself, end to end: profiles recorded through the SDK and tables
observed by a real monitor into real stores (SQLite, PostgreSQL), the real evaluator and
incident book, and a real HTTP receiver counting what people would be told."""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import lakelens
from lakelens.alerts.config import AlertingConfig, DataRule, RuleSettings, load_alerting
from lakelens.alerts.destinations import create_destination
from lakelens.alerts.engine import AlertEngine
from lakelens.alerts.incidents import Policy
from lakelens.alerts.outbox import DeliveryWorker
from lakelens.alerts.replay import replay
from lakelens.alerts.rules import RuleContext, evaluate_rules
from lakelens.cli.main import app
from lakelens.config import Settings
from lakelens.errors import ConfigError
from lakelens.events import Batch
from lakelens.model import TableObservation, from_epoch
from lakelens.monitors import MonitorConfig, run_cycle
from lakelens.monitors.state import add_monitor
from lakelens.store import Store, schema
from lakelens.testing import FakeClock

MONDAY = 1_799_625_600.0  # 2027-01-11 00:00 UTC
HOUR = 3600.0
DAY = 24 * HOUR
DATA_RULES = {"row_count_anomaly", "null_rate_shift", "distinct_shift", "range_violation"}
STATUSES = ("new", "paid", "shipped", "refunded")


class Pager:
    """The evaluator and the delivery worker, driven at the times a test chooses."""

    def __init__(self, store: Store, receiver: Any, config: AlertingConfig | None = None) -> None:
        self.store = store
        self.receiver = receiver
        self.config = config or AlertingConfig(
            destinations={"hook": {"type": "webhook", "url": receiver.url_for("/hook")}},
            rules=RuleSettings(),
            incident_policy=Policy(group_wait=0),
        )
        self.destinations = {
            name: create_destination(name, mapping)
            for name, mapping in self.config.destinations.items()
        }

    def cycle(self, now: float) -> list[dict[str, Any]]:
        """Evaluate and deliver at `now`; the message bodies that arrived in this cycle."""
        before = len(self.receiver.requests)
        AlertEngine(self.store, self.config).evaluate(now=now)
        stats = DeliveryWorker(self.store, self.destinations, clock=lambda: now).run_once()
        if stats.delivered:
            self.receiver.wait_for(before + stats.delivered)
        return [r.json()["data"] for r in self.receiver.requests[before:]]


def orders(
    rng: random.Random,
    day: int,
    *,
    nulls: float = 0.0,
    statuses: tuple[str, ...] = STATUSES,
    wild: float | None = None,
    rows: int | None = None,
) -> list[dict[str, Any]]:
    """A day's orders: ids following the last day's, amounts 1–500, four statuses."""
    count = rows if rows is not None else rng.randint(950, 1050)
    out = []
    for i in range(count):
        amount = None if rng.random() < nulls else round(rng.uniform(1, 500), 2)
        out.append({"id": day * 2000 + i, "amount": amount, "status": rng.choice(statuses)})
    if wild is not None:
        out[-1]["amount"] = wild
    return out


def load(clock: FakeClock, day: int, rows: list[dict[str, Any]], asset: str = "orders") -> float:
    """The nightly load of `asset` at 02:00 on `day`, profiled; returns when it ended."""
    clock.set(MONDAY + day * DAY + 2 * HOUR)
    with lakelens.run(f"{asset}_nightly"), lakelens.asset(asset):
        clock.advance(60)
        lakelens.profile(rows)
    lakelens.flush()
    return clock()


def history(clock: FakeClock, days: int, rng: random.Random, asset: str = "orders") -> None:
    for day in range(days):
        load(clock, day, orders(rng, day), asset)


def data_findings(store: Store, now: float, *, as_of: bool = False) -> dict[str, Any]:
    """The data rules' findings at `now` by rule and key."""
    config = AlertingConfig(rules=RuleSettings())
    with store.connect() as conn:
        context = RuleContext(conn, config, now, as_of=as_of)
        found = evaluate_rules(conn, config, now=now, context=context)
    return {f"{f.rule}:{f.key}": f for f in found if f.rule in DATA_RULES}


def test_a_broken_profile_is_one_incident_told_once_and_resolved_by_a_normal_one(
    recorder, receiver
) -> None:
    store, clock = recorder
    pager = Pager(store, receiver)
    rng = random.Random(1)
    history(clock, 10, rng)
    assert pager.cycle(clock() + 60) == []  # ten normal nights: nothing to tell
    # Night 10: 40 % of the amounts are null, every order is "new", one amount is a million.
    broken = load(clock, 10, orders(rng, 10, nulls=0.4, statuses=("new",), wild=1_000_000.0))
    found = data_findings(store, broken + 60)
    assert set(found) == {
        "null_rate_shift:orders|amount",
        "distinct_shift:orders|status",
        "range_violation:orders|amount",
    }, [f.summary for f in found.values()]
    null_rate = found["null_rate_shift:orders|amount"]
    assert null_rate.summary.startswith("orders.amount is 4") and "null, up from 0.0%" in (
        null_rate.summary
    )
    assert null_rate.details["before"] == 0.0 and 0.35 < null_rate.details["after"] < 0.45
    assert found["distinct_shift:orders|status"].summary.startswith(
        "orders.status has 1 distinct values, fewer than its expected"
    )
    assert "max 1,000,000 is above" in found["range_violation:orders|amount"].summary
    assert all(f.asset == "orders" and f.severity == "warning" for f in found.values())

    (message,) = pager.cycle(broken + 60)
    assert message["kind"] == "opened" and message["asset"] == "orders"
    text = " | ".join(message["findings"])
    assert "orders.amount is 4" in text and "orders.status has 1 distinct" in text
    assert "max 1,000,000" in text and len(message["findings"]) == 3
    assert pager.cycle(broken + 3600) == []  # still broken: nothing new to tell
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.incidents)).scalar() == 1
        keys = conn.execute(sa.select(schema.alerts.c.fingerprint)).scalars().all()
    assert sorted(keys) == sorted(f.fingerprint for f in found.values())  # stable, no flapping

    fixed = load(clock, 11, orders(rng, 11))
    assert data_findings(store, fixed + 60) == {}
    (resolved,) = pager.cycle(fixed + 60)
    assert resolved["kind"] == "resolved" and resolved["fingerprint"] == message["fingerprint"]


def test_too_little_history_finds_nothing(recorder) -> None:
    """min_history (5 profiles) before a column is judged: four are not enough, five are."""
    store, clock = recorder
    rng = random.Random(2)
    history(clock, 4, rng, "four")
    history(clock, 5, rng, "five")
    wrong = dict(nulls=0.5, statuses=("new",), wild=1e9)
    load(clock, 4, orders(rng, 4, **wrong), "four")
    broken = load(clock, 5, orders(rng, 5, **wrong), "five")
    assert sorted(data_findings(store, broken + 60)) == [
        "distinct_shift:five|status",
        "null_rate_shift:five|amount",
        "range_violation:five|amount",
    ]


def test_a_shift_upstream_and_downstream_is_one_incident_rooted_upstream(
    recorder, receiver
) -> None:
    store, clock = recorder
    pager = Pager(store, receiver)
    rng = random.Random(3)

    def night(day: int, **broken: Any) -> float:
        clock.set(MONDAY + day * DAY + 2 * HOUR)
        rows = orders(rng, day, **broken)
        with lakelens.run("nightly"):
            with lakelens.asset("raw_orders"):
                clock.advance(30)
                lakelens.profile(rows)
            with lakelens.asset("orders", deps=["raw_orders"]):
                clock.advance(30)
                lakelens.profile([r for r in rows if r["id"] % 10])
        lakelens.flush()
        return clock()

    for day in range(8):
        night(day)
    broken = night(8, nulls=0.5)
    (message,) = pager.cycle(broken + 60)
    assert message["asset"] == "raw_orders"
    assert sorted(message["details"]["assets"]) == ["orders", "raw_orders"]
    assert any(f.startswith("orders.amount is") for f in message["findings"])
    assert any(f.startswith("raw_orders.amount is") for f in message["findings"])


def test_replay_finds_what_the_live_evaluator_found_as_of_a_past_time(
    recorder, store_url: str
) -> None:
    store, clock = recorder
    rng = random.Random(4)
    history(clock, 10, rng)
    broken = load(clock, 10, orders(rng, 10, nulls=0.4, statuses=("new",), wild=1e6))
    live = {key: f.summary for key, f in data_findings(store, broken + 60).items()}
    assert len(live) == 3
    fixed = load(clock, 11, orders(rng, 11))
    # Later: the normal night 11 is recorded. As of the broken night, the same findings.
    assert data_findings(store, fixed + 60) == {}
    then = {k: f.summary for k, f in data_findings(store, broken + 60, as_of=True).items()}
    assert then == live
    config = AlertingConfig(
        destinations={"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
        incident_policy=Policy(group_wait=0, repeat_interval=7 * DAY),
    )
    result = replay(store, config, since=MONDAY + 9 * DAY, until=MONDAY + 12 * DAY, step=6 * HOUR)
    told = [(n.action, n.root_asset, sorted(n.findings)) for n in result.notifications]
    assert told == [
        ("opened", "orders", sorted(live.values())),
        ("resolved", "orders", sorted(live.values())),
    ]
    assert result.notifications[0].time == MONDAY + 10 * DAY + 6 * HOUR
    assert result.notifications[1].time == MONDAY + 11 * DAY + 6 * HOUR

    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, timezone.utc).isoformat()

    cli = CliRunner().invoke(
        app,
        [
            "alerts",
            "replay",
            "--since",
            iso(MONDAY + 9 * DAY),
            "--until",
            iso(MONDAY + 12 * DAY),
            "--step",
            "6h",
            "--json",
            "--home",
            str(Path(store.settings.home)),
        ],
        env={"LAKELENS_DATABASE_URL": store_url},
    )
    assert cli.exit_code == 0, cli.output
    *items, _totals = [json.loads(line) for line in cli.output.splitlines()]
    told_by_cli = [(i["action"], sorted(i["findings"])) for i in items if i["action"] != "reminder"]
    assert told_by_cli == [
        ("opened", sorted(live.values())),
        ("resolved", sorted(live.values())),
    ]


def test_feedback_expected_makes_the_changed_data_the_new_normal(recorder, receiver) -> None:
    from lakelens.alerts.triage import feedback

    store, clock = recorder
    pager = Pager(store, receiver)
    rng = random.Random(5)
    history(clock, 8, rng)
    changed = load(clock, 8, orders(rng, 8, nulls=0.3))
    (opened,) = pager.cycle(changed + 60)
    assert [f.split(" is ")[0] for f in opened["findings"]] == ["orders.amount"]
    assert (
        feedback(store, opened["fingerprint"], kind="expected", reason="amount optional now") == 1
    )
    (resolved,) = pager.cycle(changed + 120)
    assert resolved["kind"] == "resolved"
    # The next nights have as many nulls: learned again from night 9, so nothing is told.
    for day in range(9, 16):
        assert pager.cycle(load(clock, day, orders(rng, day, nulls=0.3)) + 60) == []
    # Once learned (five profiles since), a further jump is news again.
    jump = load(clock, 16, orders(rng, 16, nulls=0.8))
    assert set(data_findings(store, jump + 60)) == {"null_rate_shift:orders|amount"}


def test_a_profiled_row_count_is_judged_unless_its_run_wrote_those_rows(recorder) -> None:
    store, clock = recorder
    rng = random.Random(6)
    # A table profiled whole, outside any run (no monitor watches it): its size is judged.
    for day in range(11):
        clock.set(MONDAY + day * DAY + 6 * HOUR)
        lakelens.profile(orders(rng, day, rows=1000 + 10 * day), asset="dim_orders")
    clock.set(MONDAY + 11 * DAY + 6 * HOUR)
    lakelens.profile(orders(rng, 11, rows=300), asset="dim_orders")
    # A run's profile is what the run wrote: volume_anomaly's, not judged twice.
    history(clock, 11, rng)
    load(clock, 11, orders(rng, 11, rows=300))
    lakelens.flush()
    with store.connect() as conn:
        found = evaluate_rules(conn, AlertingConfig(), now=MONDAY + 11 * DAY + 7 * HOUR)
    by_rule = {(f.rule, f.asset): f for f in found}
    size = by_rule[("row_count_anomaly", "dim_orders")]
    assert size.summary.startswith("dim_orders profiled 300 rows, below its expected")
    assert size.details["source"] == "profile"
    assert ("volume_anomaly", "orders") in by_rule
    assert ("row_count_anomaly", "orders") not in by_rule


# -- warehouse tables --------------------------------------------------------------------------


def _sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


class Warehouse:
    """A SQLite file with one `events` table, watched by a monitor every 3 hours."""

    def __init__(self, store: Store, path: Path) -> None:
        self.store = store
        self.path = path
        self.clock = FakeClock(MONDAY)
        self.next_id = 0
        _sql(path, "CREATE TABLE events (id INTEGER)")
        self.config = MonitorConfig.create(f"sqlite:///{path}", interval="3h")
        self.asset = f"sqlite://{path}/main.events"
        add_monitor(store.engine, self.config, now=MONDAY)

    def insert(self, rows: int) -> None:
        ids = ", ".join(f"({self.next_id + i})" for i in range(rows))
        self.next_id += rows
        _sql(self.path, f"INSERT INTO events VALUES {ids}")

    def cycle(self) -> float:
        self.clock.advance(3 * HOUR)
        assert run_cycle(self.store, self.config, clock=self.clock).ok
        return self.clock()

    def grows(self, days: float, rng: random.Random) -> None:
        """~100 rows a cycle for `days`."""
        self.cycle()
        for _ in range(int(days * 8)):
            self.insert(rng.randint(90, 110))
            self.cycle()


@pytest.fixture
def warehouse(recorder, tmp_path: Path) -> Warehouse:
    store, _ = recorder
    return Warehouse(store, tmp_path / "warehouse.db")


def test_a_monitored_table_that_loses_rows_is_a_row_count_anomaly_until_they_are_back(
    warehouse: Warehouse,
) -> None:
    store = warehouse.store
    warehouse.grows(8, random.Random(7))
    quiet = data_findings(store, warehouse.clock() + 60)
    assert quiet == {}
    _sql(warehouse.path, "DELETE FROM events WHERE id % 2 = 0")
    dropped = warehouse.cycle()
    with store.connect() as conn:
        found = evaluate_rules(conn, AlertingConfig(), now=dropped + 60)
    (size,) = [f for f in found if f.rule in DATA_RULES | {"volume_anomaly"}]
    assert size.rule == "row_count_anomaly" and size.asset == warehouse.asset
    assert size.summary.startswith(f"{warehouse.asset} holds 3,")
    assert ", below its expected " in size.summary and "growing by about 800 a day" in (
        size.summary
    )
    assert size.run_id == f"monitor:{warehouse.config.name}:{round(dropped * 1000)}"
    assert size.details["source"] == "monitor" and size.details["direction"] == "drop"
    assert data_findings(store, dropped + 2 * HOUR)  # still: it is one lasting condition
    # The rows are reloaded: the size is back in its band.
    _sql(warehouse.path, "INSERT INTO events SELECT id + 1000000 FROM events")
    warehouse.insert(100)
    back = warehouse.cycle()
    assert data_findings(store, back + 60) == {}


def test_a_mass_insert_is_one_volume_anomaly_not_also_a_row_count_one(
    warehouse: Warehouse,
) -> None:
    warehouse.grows(8, random.Random(8))
    warehouse.insert(20_000)
    spiked = warehouse.cycle()
    with warehouse.store.connect() as conn:
        found = evaluate_rules(conn, AlertingConfig(), now=spiked + 60)
    rules = sorted((f.rule, f.details.get("direction")) for f in found)
    assert rules == [("volume_anomaly", "spike")], [f.summary for f in found]
    # What the size rule would have said on its own: the same spike.
    config = AlertingConfig(rules=RuleSettings())
    with warehouse.store.connect() as conn:
        from lakelens.alerts.rules.data import _data

        alone = _data(RuleContext(conn, config, spiked + 60))
    assert [(f.rule, f.details["direction"]) for f in alone] == [("row_count_anomaly", "spike")]


def test_a_monitored_table_that_stops_changing_is_late_and_nothing_more(
    warehouse: Warehouse,
) -> None:
    """ "A table that stopped changing" is the learned rhythm's `late` (freshness.py): its
    unchanged size is no second finding."""
    warehouse.grows(8, random.Random(9))
    for _ in range(3):  # nine hours without a row
        last = warehouse.cycle()
    with warehouse.store.connect() as conn:
        found = evaluate_rules(conn, AlertingConfig(), now=last + 60)
    assert [(f.rule, f.asset) for f in found] == [("late", warehouse.asset)]
    for _ in range(16):  # two more days: the trend expects 1,600 more rows by now
        last = warehouse.cycle()
    with warehouse.store.connect() as conn:
        found = evaluate_rules(conn, AlertingConfig(), now=last + 60)
        from lakelens.alerts.rules.data import _data

        alone = _data(RuleContext(conn, AlertingConfig(), last + 60))
    assert [(f.rule, f.asset) for f in found] == [("late", warehouse.asset)]
    # On its own the size rule sees it below its trend: the same fact, said once, by `late`.
    assert [(f.rule, f.details["direction"]) for f in alone] == [("row_count_anomaly", "drop")]


def test_an_estimated_size_has_a_wider_tolerance_than_a_counted_one(recorder) -> None:
    store, _ = recorder
    rng = random.Random(10)
    batch = Batch()
    for hour in range(8 * 24 + 1):
        moment = from_epoch(MONDAY + hour * HOUR)
        assert moment is not None
        last = hour == 8 * 24
        for asset, estimated in (("pg.big_estimated", True), ("pg.big_counted", False)):
            rows = 880_000 if last else round(1_000_000 * rng.uniform(0.995, 1.005))
            batch.observations.append(
                TableObservation(
                    asset=asset,
                    monitor="wh",
                    time=moment,
                    row_count=rows,
                    row_count_estimated=estimated,
                )
            )
    store.write(batch, source="monitor")
    found = data_findings(store, MONDAY + 8 * DAY + 60)
    # −12 %: inside an estimate's ± 20 %, outside a count's ± 10 %.
    assert set(found) == {"row_count_anomaly:pg.big_counted"}
    assert found["row_count_anomaly:pg.big_counted"].summary.startswith(
        "pg.big_counted holds 880,000 rows, below"
    )


def test_the_data_rules_settings_come_from_lakelens_yaml() -> None:
    raw = {
        "alerts": {
            "rules": {
                "null_rate_shift": {
                    "min_history": 8,
                    "sensitivity": 6,
                    "severity": "error",
                    "min_change": "10%",
                },
                "distinct_shift": False,
                "range_violation": {"enabled": False},
            }
        }
    }
    rules = load_alerting(Settings(raw=raw), env={}).rules
    assert rules.null_rate_shift == DataRule(
        min_history=8, sensitivity=6.0, severity="error", min_change=0.1
    )
    assert not rules.distinct_shift.enabled and not rules.range_violation.enabled
    assert rules.row_count_anomaly == DataRule(min_history=10)
    for bad, message in (
        ({"null_rate_shift": {"min_histroy": 3}}, "unknown key 'min_histroy'"),
        ({"range_violation": {"min_change": 0.1}}, "unknown key 'min_change'"),
        ({"distinct_shift": {"min_history": 1}}, "min_history must be a whole number of 2"),
        ({"row_count_anomaly": {"sensitivity": 0}}, "sensitivity must be a positive number"),
    ):
        with pytest.raises(ConfigError, match=message):
            load_alerting(Settings(raw={"alerts": {"rules": bad}}), env={})


def test_disabled_rules_and_their_own_settings_are_honoured(recorder) -> None:
    store, clock = recorder
    rng = random.Random(11)
    history(clock, 8, rng)
    broken = load(clock, 8, orders(rng, 8, nulls=0.4, statuses=("new",), wild=1e6))
    rules = RuleSettings(
        null_rate_shift=DataRule(severity="error"),
        distinct_shift=DataRule(enabled=False),
        range_violation=DataRule(min_history=20),
    )
    config = AlertingConfig(rules=rules)
    with store.connect() as conn:
        found = [f for f in evaluate_rules(conn, config, now=broken + 60) if f.rule in DATA_RULES]
    assert [(f.rule, f.severity) for f in found] == [("null_rate_shift", "error")]
