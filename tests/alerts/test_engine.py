"""The evaluator and the delivery worker against real stores and a real HTTP receiver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import sqlalchemy as sa

import lakelens
from lakelens.alerts.config import AbsenceRule, AlertingConfig, RuleSettings, ThresholdRule
from lakelens.alerts.destinations import create_destination
from lakelens.alerts.engine import AlertEngine
from lakelens.alerts.incidents import Policy
from lakelens.alerts.outbox import DeliveryWorker
from lakelens.store import Store, schema
from lakelens.testing import FakeClock

T0 = 1_800_000_000.0
HOUR = 3600.0


class Boom(Exception):
    pass


def materialize(
    clock: FakeClock,
    asset: str,
    *,
    fail: bool = False,
    seconds: float = 1.0,
    rows: int | None = 100,
    deps: tuple[str, ...] = (),
    **options,
) -> None:  # type: ignore[no-untyped-def]
    definition = lakelens.asset(asset, deps=list(deps), **options)
    try:
        with lakelens.run("job"), definition:
            clock.advance(seconds)
            if fail:
                raise Boom("Connection timeout after 30s")
            if rows is not None:
                lakelens.record(rows=rows)
    except Boom:
        pass
    lakelens.flush()


def config(receiver, **rules) -> AlertingConfig:  # type: ignore[no-untyped-def]
    """One webhook; incidents are told at once (no group wait) unless a test says otherwise."""
    return AlertingConfig(
        destinations={"hook": {"type": "webhook", "url": receiver.url_for("/hook")}},
        rules=RuleSettings(**rules),
        incident_policy=Policy(group_wait=0),
    )


def outbox(store: Store) -> list[dict]:
    n = schema.notifications
    with store.connect() as conn:
        return [
            dict(r) for r in conn.execute(sa.select(n).order_by(n.c.created_at, n.c.id)).mappings()
        ]


def alert(store: Store, rule: str, asset: str | None = None) -> dict:
    a = schema.alerts
    query = sa.select(a).where(a.c.rule == rule)
    if asset is not None:
        query = query.where(a.c.asset == asset)
    with store.connect() as conn:
        return dict(conn.execute(query).mappings().one())


def incident(store: Store, incident_id: str) -> dict:
    i = schema.incidents
    with store.connect() as conn:
        return dict(conn.execute(sa.select(i).where(i.c.id == incident_id)).mappings().one())


def test_failure_opens_one_incident_reminds_after_repeat_interval_and_resolves(
    recorder, receiver
) -> None:
    store, clock = recorder
    cfg = config(receiver)
    materialize(clock, "loader", fail=True)
    first = AlertEngine(store, cfg).evaluate(now=clock())
    assert len(first.fired) == 1 and len(first.opened) == 1 and first.notifications == 1
    (incident_id,) = first.opened
    # The same failure again, 10 minutes later: the count grows, nothing is sent.
    clock.advance(600)
    materialize(clock, "loader", fail=True)
    again = AlertEngine(store, cfg).evaluate(now=clock())  # a new engine: state is in the store
    assert (again.fired, again.opened, again.notifications) == ([], [], 0)
    assert alert(store, "asset_failed")["count"] == 2
    # After the 4-hour repeat interval, one reminder.
    clock.advance(4 * HOUR)
    materialize(clock, "loader", fail=True)
    later = AlertEngine(store, cfg).evaluate(now=clock())
    assert later.notified == [(incident_id, "reminder")] and later.notifications == 1
    payloads = [json.loads(n["payload"]) for n in outbox(store)]
    assert [p["kind"] for p in payloads] == ["opened", "reminder"]
    assert payloads[0]["title"] == "Asset Materialization Failed: loader"
    assert payloads[0]["severity"] == "error" and payloads[0]["fingerprint"] == incident_id
    # The next run succeeds: one resolve message to the destination that was told.
    clock.advance(60)
    materialize(clock, "loader")
    resolved = AlertEngine(store, cfg).evaluate(now=clock())
    assert resolved.resolved == first.fired and resolved.notified == [(incident_id, "resolved")]
    assert [n["action"] for n in outbox(store)] == ["trigger", "trigger", "resolve"]
    assert alert(store, "asset_failed")["status"] == "resolved"
    assert incident(store, incident_id)["status"] == "resolved"


def test_delivery_retries_honours_retry_after_and_records_permanent_errors(
    recorder, receiver
) -> None:
    store, clock = recorder
    cfg = config(receiver)
    destinations = {"hook": create_destination("hook", cfg.destinations["hook"])}
    materialize(clock, "loader", fail=True)
    AlertEngine(store, cfg).evaluate(now=clock())
    now = [clock()]
    worker = DeliveryWorker(store, destinations, clock=lambda: now[0], base_delay=10)
    receiver.respond(500)
    assert worker.run_once().retried == 1
    (row,) = outbox(store)
    assert (
        row["status"] == "pending"
        and row["attempts"] == 1
        and 5 <= row["next_attempt_at"] - now[0] <= 15
    )
    assert worker.run_once().delivered == 0  # not due yet
    now[0] += 20
    receiver.respond(429, headers={"Retry-After": "7"})
    worker.run_once()
    (row,) = outbox(store)
    # Retry-After is a floor on the backoff (here 10 s doubled, with jitter), not a replacement.
    assert row["next_attempt_at"] >= now[0] + 7 and row["last_status_code"] == 429
    now[0] = row["next_attempt_at"]
    assert worker.run_once().delivered == 1
    requests = receiver.wait_for(3)
    assert len({r.headers["webhook-id"] for r in requests}) == 1  # the same idempotency key
    assert outbox(store)[0]["status"] == "delivered" and outbox(store)[0]["attempts"] == 3
    # The loader recovers (its resolve is delivered); then another asset fails and its
    # notification meets a 400: permanent, recorded with the body, not retried.
    clock.advance(60)
    materialize(clock, "loader")
    AlertEngine(store, cfg).evaluate(now=clock())
    now[0] = clock()
    assert worker.run_once().delivered == 1
    clock.advance(60)
    materialize(clock, "other", fail=True)
    AlertEngine(store, cfg).evaluate(now=clock())
    now[0] = clock()
    receiver.respond(400, body=b'{"error": "bad payload"}')
    assert worker.run_once().failed == 1
    failed = [n for n in outbox(store) if n["status"] == "failed"]
    assert (
        len(failed) == 1
        and "bad payload" in failed[0]["last_error"]
        and failed[0]["last_status_code"] == 400
    )
    # ... and the failing destination raises an alert of its own (sent to the others).
    AlertEngine(store, cfg).evaluate(now=clock())
    assert alert(store, "alert_delivery_failed")["status"] == "firing"


def test_receiver_down_for_a_while_then_delivered(recorder, receiver) -> None:
    store, clock = recorder
    cfg = config(receiver)
    destinations = {"hook": create_destination("hook", cfg.destinations["hook"])}
    materialize(clock, "loader", fail=True)
    AlertEngine(store, cfg).evaluate(now=clock())
    receiver.stop()
    now = [clock()]
    worker = DeliveryWorker(store, destinations, clock=lambda: now[0], base_delay=1)
    for _ in range(3):
        worker.run_once()
        now[0] += 60
    assert outbox(store)[0]["status"] == "pending" and outbox(store)[0]["attempts"] == 3
    receiver.start()
    assert worker.run_once().delivered == 1
    assert len(receiver.wait_for(1)) == 1


def test_a_worker_killed_between_commit_and_send_loses_nothing(
    recorder, receiver, tmp_path
) -> None:
    store, clock = recorder
    materialize(clock, "loader", fail=True)
    # Another process evaluates (the outbox row commits) and is killed before it sends.
    script = textwrap.dedent(
        """
        import os, signal, sys
        from lakelens.alerts.config import AlertingConfig
        from lakelens.alerts.engine import AlertEngine
        from lakelens.store import Store
        store = Store(sys.argv[1])
        cfg = AlertingConfig(destinations={"hook": {"type": "webhook", "url": sys.argv[2]}})
        AlertEngine(store, cfg).evaluate(now=float(sys.argv[3]), group_wait=0)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, store.url, receiver.url_for("/hook"), str(clock())],
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL
    (row,) = outbox(store)
    assert row["status"] == "pending"
    # A claim whose worker died is taken over once its lease has run out.
    n = schema.notifications
    with store.connect() as conn:
        conn.execute(n.update().values(status="sending", claimed_until=clock() + 60))
        conn.commit()
    destinations = {
        "hook": create_destination("hook", {"type": "webhook", "url": receiver.url_for("/hook")})
    }
    assert DeliveryWorker(store, destinations, clock=clock).run_once().delivered == 0
    assert DeliveryWorker(store, destinations, clock=lambda: clock() + 61).run_once().delivered == 1
    assert len(receiver.wait_for(1)) == 1


def test_severity_routing(recorder, receiver) -> None:
    store, clock = recorder
    destinations = {
        name: {"type": kind, **extra}
        for name, kind, extra in [
            ("slack", "slack", {"url": receiver.url_for("/slack")}),
            (
                "email",
                "email",
                {"host": "127.0.0.1", "port": 2525, "recipients": ["a@b.c"], "sender": "x@y.z"},
            ),
            ("pagerduty", "pagerduty", {"routing_key": "k" * 32, "url": receiver.url_for("/pd")}),
        ]
    }
    cfg = AlertingConfig(destinations=destinations)  # the default 10 s group wait
    assert cfg.route("info") == ["slack"]
    assert cfg.route("warning") == ["slack", "email"]
    assert cfg.route("error") == ["slack", "email", "pagerduty"]
    assert cfg.route("critical") == ["slack", "email", "pagerduty"]
    overridden = AlertingConfig(
        destinations=destinations, routes={"error": ("pagerduty",)}, owner_routes={"bi": ("email",)}
    )
    assert overridden.route("error") == ["pagerduty"]
    assert overridden.route("error", owner="bi") == ["pagerduty", "email"]
    # A failure of a critical asset pages everyone.
    materialize(clock, "marts", fail=True, critical=True)
    assert AlertEngine(store, cfg).evaluate(now=clock()).notifications == 0  # waiting
    assert AlertEngine(store, cfg).evaluate(now=clock() + 10).notifications == 3
    assert Counter(n["destination"] for n in outbox(store)) == {
        "slack": 1,
        "email": 1,
        "pagerduty": 1,
    }
    assert alert(store, "asset_failed")["severity"] == "critical"


def test_silent_asset_breaches_freshness_without_new_events(recorder, receiver) -> None:
    store, clock = recorder
    cfg = config(receiver)
    materialize(clock, "hourly", freshness="1h")
    engine = AlertEngine(store, cfg)
    assert engine.evaluate(now=clock() + 30 * 60).fired == []
    warn = engine.evaluate(now=clock() + 90 * 60)
    assert len(warn.fired) == 1 and alert(store, "freshness")["severity"] == "warning"
    critical = engine.evaluate(now=clock() + 150 * 60)
    assert critical.notified == [(warn.opened[0], "escalated")]
    assert alert(store, "freshness")["severity"] == "critical"
    clock.set(clock() + 151 * 60)
    materialize(clock, "hourly", freshness="1h")
    done = engine.evaluate(now=clock())
    assert done.resolved == warn.fired and done.notified == [(warn.opened[0], "resolved")]


def test_upstream_failure_groups_downstream_alerts(recorder, receiver) -> None:
    store, clock = recorder
    cfg = config(receiver)
    materialize(clock, "raw", freshness="1h")
    materialize(clock, "staged", deps=("raw",), freshness="1h")
    lakelens.asset("dashboard", deps=["staged"], kind="dashboard").declare()
    lakelens.flush()
    clock.advance(2 * HOUR)
    materialize(clock, "raw", fail=True, freshness="1h")
    result = AlertEngine(store, cfg).evaluate(now=clock())
    a = schema.alerts
    with store.connect() as conn:
        rows = {r.rule + ":" + (r.asset or ""): r for r in conn.execute(sa.select(a))}
    upstream = rows["asset_failed:raw"]
    staged = rows["freshness:staged"]
    # One incident: the root cause and what it explains downstream.
    assert result.opened == [upstream.incident_id] and staged.incident_id == upstream.incident_id
    assert result.notifications == 1
    found = incident(store, upstream.incident_id)
    details = json.loads(found["details"])
    assert found["root_asset"] == "raw" and found["severity"] == "critical"  # feeds a dashboard
    assert details["impact"] == ["dashboard", "staged"]
    assert {f["asset"] for f in details["findings"]} >= {"raw", "staged"}
    assert {n["fingerprint"] for n in outbox(store)} == {upstream.incident_id}


def test_silence_and_acknowledge(recorder, receiver) -> None:
    from lakelens.alerts.state import acknowledge, silence, unsilence

    store, clock = recorder
    cfg = config(receiver)
    silence(store, asset="loader", seconds=HOUR, reason="maintenance", now=clock())
    materialize(clock, "loader", fail=True)
    engine = AlertEngine(store, cfg)
    assert engine.evaluate(now=clock()).notifications == 0
    assert alert(store, "asset_failed")["status"] == "silenced"
    assert unsilence(store, asset="loader", now=clock()) == 1
    assert engine.evaluate(now=clock()).notifications == 1
    fingerprint = alert(store, "asset_failed")["fingerprint"]
    acknowledge(store, fingerprint, now=clock())
    assert engine.evaluate(now=clock() + 2 * HOUR).notifications == 0  # acknowledged: no reminders
    assert alert(store, "asset_failed")["status"] == "acknowledged"


def test_slow_run_volume_anomaly_and_schema_drift(recorder, receiver) -> None:
    store, clock = recorder
    cfg = config(receiver)
    for i in range(12):  # over a week: the 10 points and the 7 days a baseline needs
        with lakelens.run("job"), lakelens.asset("publish"):
            clock.advance(5)
            lakelens.record(rows=480 + i)
            lakelens.schema({"id": "int", "value": "float"})
        clock.advance(16 * HOUR)
    engine = AlertEngine(store, cfg)
    lakelens.flush()
    assert engine.evaluate(now=clock()).fired == []
    with lakelens.run("job"), lakelens.asset("publish"):
        clock.advance(12.4)
        lakelens.record(rows=12)
        lakelens.schema({"id": "int", "value": "double", "device": "text"})
    lakelens.flush()
    result = engine.evaluate(now=clock())
    summaries = {
        alert(store, rule)["rule"]: alert(store, rule)["summary"]
        for rule in ("slow_run", "volume_anomaly", "schema_drift")
    }
    assert len(result.fired) == 3
    assert summaries["slow_run"] == "publish running slow (12s vs 5.0s expected, 2.5×)"
    assert summaries["volume_anomaly"].startswith("publish wrote 12 rows, below its expected")
    assert summaries["schema_drift"] == "publish schema changed: +device, value: float → double"
    clock.advance(300)
    with lakelens.run("job"), lakelens.asset("publish"):
        clock.advance(5)
        lakelens.record(rows=482)
    lakelens.flush()
    resolved = engine.evaluate(now=clock())
    assert {alert(store, r)["status"] for r in ("slow_run", "volume_anomaly")} == {"resolved"}
    assert len(resolved.resolved) == 2


def test_failure_rate_checks_threshold_and_heartbeat(recorder, receiver) -> None:
    store, clock = recorder
    cfg = config(
        receiver,
        thresholds=(
            ThresholdRule(
                "queue_backlog",
                "queue_size",
                ">",
                10_000,
                "critical",
                for_seconds=300,
                labels={"queue": "articles"},
            ),
        ),
        absences=(AbsenceRule("nightly heartbeat", 2 * HOUR, "error", job="nightly"),),
    )
    for i in range(6):
        materialize(clock, "flaky", fail=i % 2 == 0)
        clock.advance(60)
    with lakelens.run("job"), lakelens.asset("checked"):
        lakelens.check("range", passed=False, severity="error", valid_rows=480, total_rows=487)
    for _minute in range(7):
        lakelens.metric("queue_size", 12_000, queue="articles")
        lakelens.metric("queue_size", 5, queue="other")
        clock.advance(60)
    with lakelens.run("nightly"):
        pass
    lakelens.flush()
    engine = AlertEngine(store, cfg)
    result = engine.evaluate(now=clock())
    assert alert(store, "failure_rate", "flaky")["summary"].startswith(
        "asset flaky: 50% of 6 runs failed"
    )
    a = schema.alerts
    with store.connect() as conn:
        job_scope = conn.execute(
            sa.select(a.c.summary).where(a.c.rule == "failure_rate", a.c.asset.is_(None))
        ).scalar_one()
    assert job_scope.startswith("job job: 43% of 7 runs failed")  # the checked run is of job too
    assert alert(store, "check_failed")["summary"] == "range failed on checked: 480/487 rows valid"
    assert (
        alert(store, "threshold")["summary"]
        == "queue_size{queue=articles} = 12000 > 10000 for 5.0m"
    )
    assert alert(store, "threshold")["severity"] == "critical"
    assert result.fired and all(
        alert(store, r)["status"] == "firing" for r in ("check_failed", "threshold")
    )
    late = engine.evaluate(now=clock() + 3 * HOUR)
    assert alert(store, "absence")["summary"].startswith("No run of job nightly for 2.0h")
    assert late.fired


def test_the_loop_reacts_to_a_failure_committed_by_another_process(tmp_path, receiver) -> None:
    """With a 60 s evaluation interval, only the change marker (and the end of the group
    wait it started) can deliver within seconds."""
    import threading

    from lakelens.alerts.service import AlertingService

    url = f"sqlite:///{tmp_path / 'l.db'}"
    store = Store(url)
    cfg = AlertingConfig(
        destinations={"hook": {"type": "webhook", "url": receiver.url_for("/hook")}},
        evaluation_interval=60,
        incident_policy=Policy(group_wait=2),
    )
    service = AlertingService(store, cfg)
    stop = threading.Event()
    loop = threading.Thread(target=service.run_forever, args=(stop,), daemon=True)
    loop.start()
    try:
        time.sleep(0.5)  # the first (empty) evaluation has run
        script = textwrap.dedent(
            """
            import sys, lakelens
            lakelens.configure(database_url=sys.argv[1], log_format="none")
            try:
                with lakelens.run("job"), lakelens.asset("loader"):
                    raise RuntimeError("Connection timeout after 30s")
            except RuntimeError:
                pass
            lakelens.flush()
            """
        )
        env = dict(os.environ, LAKELENS_ALERT_IN_PROCESS="0")
        subprocess.run([sys.executable, "-c", script, url], check=True, timeout=60, env=env)
        committed = time.time()
        (request,) = receiver.wait_for(1, timeout=10)
        assert request.json()["data"]["asset"] == "loader"
        assert request.received_at - committed >= 1.0  # it waited for the group to gather
    finally:
        stop.set()
        loop.join(timeout=10)
        service.close()
        store.close()


def test_failed_checks_of_assets_sharing_their_latest_run_each_alert(recorder, receiver) -> None:
    store, clock = recorder
    with lakelens.run("job"):
        for asset in ("orders", "customers"):
            with lakelens.asset(asset):
                lakelens.check(
                    "not_null", passed=False, severity="error", valid_rows=9, total_rows=10
                )
    lakelens.flush()
    AlertEngine(store, config(receiver)).evaluate(now=clock())
    a = schema.alerts
    with store.connect() as conn:
        assets = sorted(
            conn.execute(sa.select(a.c.asset).where(a.c.rule == "check_failed")).scalars()
        )
    assert assets == ["customers", "orders"]
