"""Replay decides what a live evaluator decided, on the same history, at the same times."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

import lakelens
from lakelens.alerts.config import AlertingConfig, RuleSettings
from lakelens.alerts.engine import AlertEngine
from lakelens.alerts.incidents import Policy
from lakelens.alerts.replay import replay
from lakelens.cli.main import app
from lakelens.config import load_settings
from lakelens.store import Store, schema
from lakelens.testing import FakeClock

T0 = 1_800_000_000.0 - (1_800_000_000.0 % 3600)
HOUR = 3600.0
STEP = 900.0


class Outage(Exception):
    pass


def hourly(clock: FakeClock, hour: int) -> None:
    """source → staged → mart, every hour; a few faults on the way."""
    failing = 20 <= hour < 23
    silent = 40 <= hour < 45
    bad_check = hour == 60
    if silent:
        return
    try:
        with lakelens.run("hourly"):
            with lakelens.asset("source", freshness="2h"):
                clock.advance(5)
                if failing:
                    raise Outage("API unreachable")
                lakelens.record(rows=1000 + hour % 7)
            with lakelens.asset("staged", deps=["source"], freshness="2h"):
                clock.advance(5)
                lakelens.record(rows=900)
                lakelens.check("not_null(id)", passed=not bad_check, severity="error")
            with lakelens.asset("mart", deps=["staged"], freshness="2h"):
                clock.advance(5)
                lakelens.record(rows=50)
    except Outage:
        pass
    lakelens.flush()


def test_replay_agrees_with_the_live_evaluator_on_the_same_history(recorder) -> None:
    store, clock = recorder
    config = AlertingConfig(
        destinations={"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
        rules=RuleSettings(),
        incident_policy=Policy(group_wait=0, repeat_interval=4 * HOUR),
    )
    live: list[tuple[float, str, str | None, str]] = []
    end = T0 + 72 * HOUR
    moment = T0
    hour = 0
    while moment <= end:
        # Runs start a minute after each hour; evaluations happen every 15 minutes.
        while T0 + hour * HOUR + 60 < moment:
            clock.set(T0 + hour * HOUR + 60)
            hourly(clock, hour)
            hour += 1
        result = AlertEngine(store, config).evaluate(now=moment)
        i = schema.incidents
        with store.connect() as conn:
            for incident_id, kind in result.notified:
                root, severity = conn.execute(
                    sa.select(i.c.root_asset, i.c.severity).where(i.c.id == incident_id)
                ).one()
                live.append((moment, kind, root, severity))
        moment += STEP
    replayed = replay(store, config, since=T0, until=end, step=STEP)
    again = [(n.time, n.action, n.root_asset, n.severity) for n in replayed.notifications]
    assert again == live, (again, live)
    kinds = [kind for _, kind, _, _ in live]
    # The outage, the silence and the failed check: each opened and resolved once.
    assert kinds.count("opened") == 3 and kinds.count("resolved") == 3, live
    assert replayed.totals()["incidents"] == 3


def test_alerts_replay_prints_notifications_then_totals_as_json_lines(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = load_settings(home=str(home), log_format="none")
    store = Store(settings=settings)
    clock = FakeClock(T0)
    lakelens.configure(settings=settings, store=store, clock=clock)
    try:
        for hour in range(30):
            clock.set(T0 + hour * HOUR + 60)
            hourly(clock, hour)
    finally:
        lakelens.flush()
        lakelens.configure(settings=load_settings(home=str(tmp_path / "after"), log_format="none"))
        store.close()
    from datetime import datetime, timezone

    start = datetime.fromtimestamp(T0, timezone.utc).isoformat()
    stop = datetime.fromtimestamp(T0 + 30 * HOUR, timezone.utc).isoformat()
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "alerts",
            "replay",
            "--since",
            start,
            "--until",
            stop,
            "--step",
            "15m",
            "--json",
            "--home",
            str(home),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    *items, last = lines
    assert [(i["action"], i["root_asset"]) for i in items] == [
        ("opened", "source"),
        ("resolved", "source"),
    ]
    assert items[0]["findings"] and "source failed" in items[0]["findings"][0]
    assert last["totals"]["notifications"] == 2 and last["totals"]["incidents"] == 1
    bad = runner.invoke(app, ["alerts", "replay", "--step", "never", "--home", str(home)])
    assert bad.exit_code != 0 and "--step" in bad.output and "Traceback" not in bad.output
    empty = runner.invoke(
        app, ["alerts", "replay", "--since", "1h", "--until", "2h", "--home", str(home)]
    )
    assert empty.exit_code != 0 and "--until must come after --since" in empty.output
