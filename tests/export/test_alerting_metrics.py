"""The alerting series (heartbeats, firing alerts, deliveries, outbox) read from the store."""

from __future__ import annotations

import subprocess
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from lakelens.export.alerting_metrics import exposition
from lakelens.store import Store, schema

NOW = 1_700_000_000.0


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _notification(id_: str, destination: str, status: str, attempts: int, created: float) -> dict:
    return {
        "id": id_,
        "fingerprint": "fp",
        "destination": destination,
        "action": "trigger",
        "status": status,
        "payload": "{}",
        "attempts": attempts,
        "created_at": created,
        "next_attempt_at": created,
    }


def _alert(fingerprint: str, severity: str, status: str) -> dict:
    return {
        "fingerprint": fingerprint,
        "rule": "asset_failure",
        "severity": severity,
        "status": status,
        "summary": "s",
        "first_seen": NOW,
        "last_seen": NOW,
    }


def test_an_empty_store_has_zero_series_and_no_heartbeats(store: Store) -> None:
    with store.connect() as conn:
        samples = _samples(exposition(conn, now=NOW))
    assert samples[("lakelens_alerts_firing", (("severity", "critical"),))] == 0
    assert samples[("lakelens_alert_outbox_oldest_pending_seconds", ())] == 0
    assert not any(name.endswith("_last_run_timestamp") for name, _ in samples)


def test_heartbeats_firing_alerts_and_deliveries(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            schema.heartbeats.insert(),
            [
                {"component": "evaluator", "last_run": NOW - 12, "owner": "a:1"},
                {"component": "worker", "last_run": NOW - 1, "owner": "a:1"},
            ],
        )
        conn.execute(
            schema.alerts.insert(),
            [
                _alert("a", "error", "firing"),
                _alert("b", "error", "firing"),
                _alert("c", "critical", "resolved"),
                _alert("d", "warning", "silenced"),
            ],
        )
        conn.execute(
            schema.notifications.insert(),
            [
                # Delivered at the third attempt: 3 attempts, 2 failed.
                _notification("n1", "slack", "delivered", 3, NOW - 600),
                # Gave up after 8 attempts, all failed.
                _notification("n2", "slack", "gave_up", 8, NOW - 500),
                # Still retrying: 2 failed attempts; the oldest waiting one.
                _notification("n3", "pagerduty", "pending", 2, NOW - 300),
                # Just queued, never tried.
                _notification("n4", "slack", "pending", 0, NOW - 5),
                _notification("n5", "email", "delivered", 1, NOW - 100),
            ],
        )
    with store.connect() as conn:
        samples = _samples(exposition(conn, now=NOW))
    assert samples[("lakelens_evaluator_last_run_timestamp", ())] == NOW - 12
    assert samples[("lakelens_alert_worker_last_run_timestamp", ())] == NOW - 1
    firing = {
        labels[0][1]: v for (n, labels), v in samples.items() if n == "lakelens_alerts_firing"
    }
    assert firing == {"info": 0, "warning": 0, "error": 2, "critical": 0}

    def by_destination(name: str) -> dict[str, float]:
        return {labels[0][1]: v for (n, labels), v in samples.items() if n == name}

    assert by_destination("lakelens_alert_deliveries_total") == {
        "email": 1,
        "pagerduty": 2,
        "slack": 11,
    }
    assert by_destination("lakelens_alert_deliveries_failed_total") == {
        "email": 0,
        "pagerduty": 2,
        "slack": 10,
    }
    assert by_destination("lakelens_alert_outbox_pending") == {
        "email": 0,
        "pagerduty": 1,
        "slack": 1,
    }
    assert samples[("lakelens_alert_outbox_oldest_pending_seconds", ())] == 300


def test_promtool_accepts_the_alerting_series(store: Store, require_tool: Any) -> None:
    promtool = require_tool("promtool", "apt-get install prometheus")
    with store.engine.begin() as conn:
        conn.execute(schema.heartbeats.insert().values(component="evaluator", last_run=NOW))
        conn.execute(
            schema.notifications.insert().values(**_notification("n", "x", "failed", 1, NOW))
        )
    with store.connect() as conn:
        text = exposition(conn, now=NOW)
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
