"""Incidents end to end: real stores, the real SDK, and a real HTTP receiver counting what
people would be told."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

import lakelens
from lakelens.alerts.config import AlertingConfig, RuleSettings
from lakelens.alerts.destinations import create_destination
from lakelens.alerts.engine import AlertEngine
from lakelens.alerts.incidents import Policy
from lakelens.alerts.outbox import DeliveryWorker
from lakelens.cli.main import app
from lakelens.store import Store, schema
from lakelens.testing import FakeClock

T0 = 1_800_000_000.0
HOUR = 3600.0


class Boom(Exception):
    pass


class Pager:
    """The evaluator and the delivery worker, driven at the times a test chooses."""

    def __init__(self, store: Store, receiver: Any, **policy: float) -> None:
        self.store = store
        self.receiver = receiver
        self.config = AlertingConfig(
            destinations={"hook": {"type": "webhook", "url": receiver.url_for("/hook")}},
            rules=RuleSettings(),
            incident_policy=Policy(**policy),
        )
        self.destinations = {"hook": create_destination("hook", self.config.destinations["hook"])}

    def cycle(self, now: float) -> list[dict[str, Any]]:
        """Evaluate and deliver at `now`; the message bodies that arrived in this cycle."""
        before = len(self.receiver.requests)
        AlertEngine(self.store, self.config).evaluate(now=now)
        stats = DeliveryWorker(self.store, self.destinations, clock=lambda: now).run_once()
        if stats.delivered:
            self.receiver.wait_for(before + stats.delivered)
        return [r.json()["data"] for r in self.receiver.requests[before:]]


def build(clock: FakeClock, asset: str, *, deps: tuple[str, ...] = (), **options: Any) -> None:
    with lakelens.asset(asset, deps=list(deps), **options):
        clock.advance(1)
        lakelens.record(rows=100)


def shop_run(clock: FakeClock, *, broken: bool = False) -> None:
    """raw_orders → stg_orders (an error check) → fct_revenue; broken: the check fails and
    fct_revenue raises."""
    try:
        with lakelens.run("shop"):
            build(clock, "raw_orders")
            with lakelens.asset("stg_orders", deps=["raw_orders"]):
                clock.advance(1)
                lakelens.record(rows=100)
                lakelens.check("not_null(order_id)", passed=not broken, severity="error")
            with lakelens.asset("fct_revenue", deps=["stg_orders"]):
                clock.advance(1)
                if broken:
                    raise Boom("division by zero in revenue")
                lakelens.record(rows=10)
    except Boom:
        pass
    lakelens.flush()


def test_a_failing_run_is_one_message_with_every_finding(recorder, receiver) -> None:
    store, clock = recorder
    pager = Pager(store, receiver, group_wait=10)
    for _ in range(6):
        shop_run(clock)
        clock.advance(300)
    assert pager.cycle(clock()) == []
    shop_run(clock, broken=True)
    failed_at = clock()
    assert pager.cycle(failed_at) == []  # the group wait: the run's findings gather
    (message,) = pager.cycle(failed_at + 10)
    assert message["kind"] == "opened" and message["asset"] == "stg_orders"
    text = " | ".join(message["findings"])
    assert "not_null(order_id) failed on stg_orders" in text
    assert "fct_revenue failed: Boom: division by zero in revenue" in text
    assert "job shop" in text  # the job's failure rate is the same incident
    assert message["impact"] == ["fct_revenue"]
    # Later cycles while it is still failing send nothing; nothing else opened.
    assert pager.cycle(failed_at + 60) == [] and pager.cycle(failed_at + 600) == []
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.incidents)).scalar() == 1


def test_an_upstream_outage_with_five_downstream_assets_is_one_incident(recorder, receiver) -> None:
    store, clock = recorder
    pager = Pager(store, receiver, group_wait=0)
    below = [f"mart_{i}" for i in range(5)]
    with lakelens.run("load"):
        build(clock, "source", freshness="1h")
        for name in below:
            build(clock, name, deps=("source",), freshness="1h")
    lakelens.flush()
    # The source fails for two hours; nothing below it runs and all of it goes stale.
    for _ in range(8):
        clock.advance(900)
        try:
            with lakelens.run("load"), lakelens.asset("source", freshness="1h"):
                raise Boom("API unreachable")
        except Boom:
            pass
        lakelens.flush()
        pager.cycle(clock())
    messages = [r.json()["data"] for r in receiver.requests]
    assert [m["kind"] for m in messages] == ["opened", "escalated"]  # stale 2 × SLA: critical
    assert {m["fingerprint"] for m in messages} == {messages[0]["fingerprint"]}
    stale = [f for f in messages[-1]["findings"] if "is stale" in f]
    assert len(stale) == 6  # the source and its five marts, in the one incident
    # The source recovers and runs every 15 minutes: one resolve, once the failure rate of
    # the last hour has cleared too.
    kinds = []
    for _ in range(6):
        clock.advance(900)
        with lakelens.run("load"):
            build(clock, "source", freshness="1h")
            for name in below:
                build(clock, name, deps=("source",), freshness="1h")
        lakelens.flush()
        kinds += [m["kind"] for m in pager.cycle(clock())]
    assert kinds == ["resolved"]


def test_a_rules_own_dedup_window_sets_how_often_its_incidents_remind(recorder, receiver) -> None:
    """`alerts.rules.check_failed.dedup_window: 1h` reminds an incident holding a failed check
    every hour; the other rules keep the 4 h repeat interval."""
    from lakelens.alerts.config import load_alerting
    from lakelens.config import Settings

    raw = {
        "alerts": {
            "incidents": {"repeat_interval": "4h"},
            "rules": {"check_failed": {"dedup_window": "1h"}, "freshness": {"dedup_window": "2h"}},
        }
    }
    policy = load_alerting(Settings(raw=raw), env={}).incident_policy
    assert policy.repeat_for(["check_failed", "asset_failed"]) == HOUR
    assert policy.repeat_for(["asset_failed"]) == 4 * HOUR
    store, clock = recorder
    pager = Pager(store, receiver, group_wait=0, repeat_interval=policy.repeat_interval)
    pager.config = dataclasses.replace(
        pager.config, incident_policy=dataclasses.replace(policy, group_wait=0)
    )
    shop_run(clock, broken=True)
    kinds = []
    for step in range(0, 4 * 3600, 900):
        kinds += [m["kind"] for m in pager.cycle(clock() + step)]
    assert kinds == ["opened", "reminder", "reminder", "reminder"]


def test_an_acknowledgement_during_an_evaluation_is_not_written_back(
    recorder, receiver, monkeypatch
) -> None:
    """A person acknowledges while an evaluation cycle holds the incidents it read: the cycle
    must not write the old status back (PostgreSQL runs both at once; SQLite makes the
    acknowledgement wait for the cycle's write lock)."""
    import threading

    from lakelens.alerts import engine, triage

    store, clock = recorder
    pager = Pager(store, receiver, group_wait=0)
    shop_run(clock, broken=True)
    assert [m["kind"] for m in pager.cycle(clock())] == ["opened"]
    (incident_id,) = [i.id for i in engine.load_active(store.connect())]
    real = engine.load_active
    acked = threading.Event()

    def racing(conn: Any) -> Any:
        active = real(conn)
        threading.Thread(
            target=lambda: (
                triage.acknowledge(store, incident_id, config=pager.config, by="ana"),
                acked.set(),
            ),
            daemon=True,
        ).start()
        acked.wait(1.0)  # done on PostgreSQL; waiting for this cycle's lock on SQLite
        return active

    monkeypatch.setattr(engine, "load_active", racing)
    pager.cycle(clock() + 60)
    assert acked.wait(10)
    with store.connect() as conn:
        status = conn.execute(
            sa.select(schema.incidents.c.status).where(schema.incidents.c.id == incident_id)
        ).scalar_one()
    assert status == "acknowledged"


def test_a_weekend_of_silence_after_the_group_wait_tells_nothing_twice(recorder, receiver) -> None:
    """Reminders come every repeat interval, not every evaluation."""
    store, clock = recorder
    pager = Pager(store, receiver, group_wait=0, repeat_interval=4 * HOUR)
    shop_run(clock, broken=True)
    kinds = []
    for step in range(0, 13 * 3600, 1800):
        kinds += [m["kind"] for m in pager.cycle(clock() + step)]
    assert kinds == ["opened", "reminder", "reminder", "reminder"]


def test_an_acknowledged_incident_is_not_reminded_and_a_snoozed_one_is_quiet(
    recorder, receiver
) -> None:
    from lakelens.alerts.triage import acknowledge, note, snooze

    store, clock = recorder
    pager = Pager(store, receiver, group_wait=0, repeat_interval=HOUR)
    shop_run(clock, broken=True)
    (opened,) = pager.cycle(clock())
    incident_id = opened["fingerprint"]
    snooze(store, incident_id[:6], until=clock() + 3 * HOUR, by="ana", now=clock())
    assert pager.cycle(clock() + 2 * HOUR) == []  # snoozed: no reminder
    assert [m["kind"] for m in pager.cycle(clock() + 3 * HOUR + 1)] == ["reminder"]
    acknowledge(store, incident_id, config=pager.config, by="ana", now=clock() + 3 * HOUR + 2)
    note(store, incident_id, "vendor ticket 4411", by="ana", now=clock() + 3 * HOUR + 3)
    assert pager.cycle(clock() + 9 * HOUR) == []  # acknowledged: no reminders
    shop_run(clock)  # fixed
    (resolved,) = pager.cycle(clock() + 10 * HOUR)
    assert resolved["kind"] == "resolved"
    from lakelens.alerts.triage import incident

    with store.connect() as conn:
        view = incident(conn, incident_id[:8])
    events = [e["event"] for e in view.timeline]
    assert events[:2] == ["opened", "joined"]
    assert {"snoozed", "acknowledged", "note", "notified", "cleared", "resolved"} <= set(events)
    assert [e["actor"] for e in view.timeline if e["event"] == "note"] == ["ana"]
    assert [d["kind"] for d in view.deliveries] == ["opened", "reminder", "resolved"]
    assert view.status == "resolved" and view.acknowledged_by == "ana"


def test_a_failed_check_from_openlineage_on_an_input_opens_one_incident(recorder, receiver) -> None:
    """The checking job's run carries the assertion; the checked asset's own run succeeded."""
    from lakelens.ingest.openlineage import to_ingested

    store, clock = recorder
    pager = Pager(store, receiver, group_wait=0)
    with lakelens.run("load"):
        build(clock, "warehouse.orders")
    lakelens.flush()
    clock.advance(60)
    when = datetime.fromtimestamp(clock(), timezone.utc).isoformat()
    event = {
        "eventType": "COMPLETE",
        "eventTime": when,
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "quality", "name": "great_expectations.orders"},
        "producer": "https://example.com/tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent",
        "inputs": [
            {
                "namespace": "warehouse",
                "name": "orders",
                "inputFacets": {
                    "dataQualityAssertions": {
                        "_producer": "https://example.com/tests",
                        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DataQualityAssertionsDatasetFacet.json",
                        "assertions": [
                            {"assertion": "not_null", "success": True, "column": "id"},
                            {
                                "assertion": "unique",
                                "success": False,
                                "column": "id",
                                "severity": "error",
                            },
                        ],
                    }
                },
            }
        ],
        "outputs": [],
    }
    result = to_ingested(event, now=clock())
    assert result.rejected == []
    store.write(result.batch)
    checked = {c.asset for c in result.batch.checks}
    (message,) = pager.cycle(clock())
    assert message["kind"] == "opened"
    assert any("unique" in f and "failed" in f for f in message["findings"]), message
    assert message["asset"] in checked


def test_a_destination_added_later_hears_about_the_open_incident_once(recorder, receiver) -> None:
    store, clock = recorder
    pager = Pager(store, receiver, group_wait=0)
    pager.config = AlertingConfig(rules=RuleSettings(), incident_policy=Policy(group_wait=0))
    shop_run(clock, broken=True)
    assert pager.cycle(clock()) == []  # no destination yet: the incident opens, unsent
    pager.config = AlertingConfig(
        destinations={"hook": {"type": "webhook", "url": receiver.url_for("/hook")}},
        rules=RuleSettings(),
        incident_policy=Policy(group_wait=0),
    )
    assert [m["kind"] for m in pager.cycle(clock() + 60)] == ["opened"]
    assert pager.cycle(clock() + 120) == []


def test_incident_commands_explain_bad_ids_in_one_line(tmp_path) -> None:
    home = str(tmp_path / "home")
    (tmp_path / "home").mkdir()
    Store(f"sqlite:///{tmp_path / 'home' / 'lakelens.db'}").engine.dispose()
    runner = CliRunner()
    for args in (
        ["incidents", "show", "nope"],
        ["incidents", "ack", "nope"],
        ["incidents", "resolve", "nope"],
        ["incidents", "note", "nope", "text"],
        ["incidents", "snooze", "nope", "--for", "2h"],
    ):
        result = runner.invoke(app, [*args, "--home", home])
        assert result.exit_code != 0
        assert "No incident id starts with 'nope'" in result.output, result.output
        assert "Traceback" not in result.output
    bad = runner.invoke(app, ["incidents", "snooze", "x", "--for", "soon", "--home", home])
    assert bad.exit_code != 0 and "--for" in bad.output and "Traceback" not in bad.output
    listing = runner.invoke(app, ["incidents", "list", "--status", "closed", "--home", home])
    assert listing.exit_code != 0 and "Unknown incident status 'closed'" in listing.output
    empty = runner.invoke(app, ["incidents", "list", "--json", "--home", home])
    assert empty.exit_code == 0 and json.loads(empty.output) == []


def test_recording_the_demo_twice_tells_only_the_live_outage_once(
    tmp_path, receiver, monkeypatch
) -> None:
    """History recorded with a simulated clock opens nothing about moments already over."""
    from lakelens.demo.runner import run_demo

    monkeypatch.setenv("LAKELENS_ALERT_WEBHOOK_URL", receiver.url_for("/hook"))
    home = tmp_path / "demo"
    first = run_demo(home, seed=42)
    assert first.ongoing_outage
    messages = [r.json()["data"] for r in receiver.wait_for(1)]
    assert [m["kind"] for m in messages] == ["opened"]
    assert messages[0]["asset"] == "dlt_glucose_entries"
    assert not any("stale" in f or "Freshness" in f for m in messages for f in m["findings"])
    run_demo(home, seed=42)
    assert len(receiver.requests) == 1  # the same outage, still open: nothing new, nothing false
    result = CliRunner().invoke(app, ["incidents", "list", "--json", "--home", str(home)])
    assert result.exit_code == 0, result.output
    (open_incident,) = json.loads(result.output)
    assert open_incident["root_asset"] == "dlt_glucose_entries"
    firing = CliRunner().invoke(app, ["alerts", "firing", "--home", str(home)])
    assert "dlt_glucose_entries failed" in firing.output


def test_routes_send_by_owner_glob_and_tags_and_a_bad_route_never_stops_the_others(
    recorder, receiver
) -> None:
    from dataclasses import replace

    from lakelens.alerts.config import load_alerting

    store, clock = recorder
    hooks = {
        name: {"type": "webhook", "url": receiver.url_for(f"/{name}")}
        for name in ("oncall", "finance", "bi")
    }
    settings = replace(
        store.settings,
        raw={
            "alerts": {
                "destinations": [{"name": n, **c} for n, c in hooks.items()],
                "routing": {"error": ["oncall"], "critical": ["oncall"], "warning": ["oncall"]},
                "routes": [
                    {"match": {"owner": "finance"}, "to": "finance"},
                    {"match": {"asset": "stg_*", "severity": "error"}, "to": ["bi"]},
                    {"match": {"asset": "raw.[ab"}, "to": "bi"},  # bad glob
                    {"match": {"owner": "x"}, "to": "pagerduty"},  # unknown destination
                    {"matchh": {"owner": "x"}, "to": "bi"},  # unknown key
                ],
                "incidents": {"group_wait": "0s"},
            }
        },
    )
    config = load_alerting(settings, env={})
    assert [r.to for r in config.extra_routes] == [("finance",), ("bi",)]
    assert config.route_errors == (
        "alerts.routes[2].match.asset 'raw.[ab' is not a valid glob (e.g. 'fct_*' or 'raw.[ab]*').",
        "alerts.routes[3].to names unknown destination 'pagerduty'; configured: oncall, finance, bi.",
        "alerts.routes[4] has unknown key 'matchh'; known keys: name, match, to.",
    )
    lakelens.asset("stg_orders", owner="finance").declare()
    lakelens.flush()
    shop_run(clock, broken=True)
    AlertEngine(store, config).evaluate(now=clock())
    destinations = {n: create_destination(n, c) for n, c in hooks.items()}
    assert DeliveryWorker(store, destinations, clock=clock).run_once().delivered == 3
    assert sorted(r.path for r in receiver.wait_for(3)) == ["/bi", "/finance", "/oncall"]
