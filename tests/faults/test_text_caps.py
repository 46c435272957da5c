"""Texts are capped at ingest with a visible marker (a 10 MB log message was stored and
served back whole), and every destination's message body has a cap (a 4 MB error made a
4.2 MB webhook body)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lakelens import _clean
from lakelens.config import load_settings
from lakelens.events import Batch
from lakelens.model import Run
from lakelens.store import Store

TEN_MB = 10 * 1024 * 1024
FOUR_MB = 4 * 1024 * 1024


def test_cut_keeps_the_beginning_says_how_long_and_is_idempotent() -> None:
    value = "a" * TEN_MB
    once = _clean.cut(value)
    assert _clean.MAX_TEXT_CHARS - 2 <= len(once) <= _clean.MAX_TEXT_CHARS
    assert once.startswith("a" * 60_000)
    assert once.endswith(f"… [cut: 10,485,760 chars, first {once.index('…'):,} kept]")
    assert _clean.cut(once) == once
    assert _clean.cut("short") == "short"


def test_a_10_mb_log_message_and_a_4_mb_error_are_cut_at_ingest(served: Any) -> None:
    client, _ = served
    events = [
        {"type": "run", "run_id": "r1", "job": "j", "status": "failure",
         "error_message": "E" * FOUR_MB, "error_traceback": "T" * 100_000},
        {"type": "log", "run_id": "r1", "level": "ERROR", "message": "m" * TEN_MB,
         "attributes": {"payload": "p" * 100_000}},
    ]  # fmt: skip
    response = client.post("/api/v1/events", json=events)
    assert response.status_code == 200, response.text[:500]
    logs = client.get("/api/v1/logs", params={"run_id": "r1"})
    assert logs.status_code == 200
    assert len(logs.content) < 512 * 1024  # was 18.9 MB
    (record,) = logs.json()["records"]
    assert len(record["message"]) <= _clean.MAX_TEXT_CHARS
    assert "… [cut: 10,485,760 chars, first" in record["message"]
    run = client.get("/api/v1/runs/r1").json()["run"]
    assert len(run["error_message"]) <= _clean.MAX_TEXT_CHARS
    assert "[cut: 4,194,304 chars" in run["error_message"]
    assert "[cut: 100,000 chars" in run["error_traceback"]


def test_writes_that_bypass_the_ingest_boundary_are_cut_too(tmp_path: Path) -> None:
    """The SDK in-process and the importers write Batches straight to the store."""
    store = Store(settings=load_settings(home=str(tmp_path)))
    batch = Batch()
    batch.runs.append(
        Run(run_id="r1", job="j", status="failure", error_message="E" * FOUR_MB,
            error_type="X" * 5000)
    )  # fmt: skip
    batch.logs.append((1.0, 40, "m" * TEN_MB, "l" * 5000, "r1", None, None, None, None, None))
    store.write(batch)
    with store.reader() as db:
        message, logger = db.row("SELECT message, logger FROM logs")
        error, error_type = db.row("SELECT error_message, error_type FROM runs")
    store.close()
    assert len(message) <= _clean.MAX_TEXT_CHARS and "[cut: 10,485,760 chars" in message
    assert len(error) <= _clean.MAX_TEXT_CHARS
    assert len(logger) <= _clean.MAX_LABEL_CHARS and len(error_type) <= _clean.MAX_LABEL_CHARS
    assert logger.startswith("l" * 900) and error_type.endswith(
        "… [cut: 5,000 chars, first 988 kept]"
    )


def _huge_message() -> Any:
    from lakelens.alerts.destinations.base import AlertMessage

    return AlertMessage(
        notification_id="n1",
        fingerprint="f1",
        action="trigger",
        rule="failure",
        severity="critical",
        title="Asset materialization failed " + "t" * 100_000,
        summary="s" * FOUR_MB,
        time=1_700_000_000.0,
        first_seen=1_700_000_000.0,
        asset="raw.orders",
        run_id="r1",
        error="E" * FOUR_MB,
        impact=[f"mart.table_{i}" for i in range(50_000)],
        findings=["f" * 10_000 for _ in range(500)],
        details={"blob": "d" * FOUR_MB},
    )


def _sent_bodies(monkeypatch: Any) -> dict[str, int]:
    """The size in bytes of what each built-in destination sends for a message with a 4 MB
    error, a 4 MB summary, 4 MB of details and 5 MB of findings."""
    from lakelens.alerts.destinations import alertmanager, email, pagerduty, slack, webhook
    from lakelens.alerts.destinations.base import DeliveryResult

    sizes: dict[str, Any] = {}
    message = _huge_message()
    http_kinds = [
        (webhook.WebhookDestination, {"type": "webhook", "url": "http://127.0.0.1:9/hook"}),
        (slack.SlackDestination, {"type": "slack", "url": "http://127.0.0.1:9/s"}),
        (pagerduty.PagerDutyDestination, {"type": "pagerduty", "routing_key": "k" * 32}),
        (alertmanager.AlertmanagerDestination, {"type": "alertmanager", "url": "http://127.0.0.1:9"}),
    ]  # fmt: skip
    for cls, config in http_kinds:
        destination = cls.from_config("d", config)

        def post(body: bytes, headers: Any, kind: str = cls.kind) -> DeliveryResult:
            sizes[kind] = body
            return DeliveryResult(ok=True)

        monkeypatch.setattr(destination._http, "post", post)
        assert destination.send(message).ok
    mail = email.EmailDestination.from_config(
        "e", {"type": "email", "host": "127.0.0.1", "sender": "a@b.c", "recipients": ["d@e.f"]}
    )

    def deliver(built: Any) -> DeliveryResult:
        sizes["email"] = built.as_bytes()
        return DeliveryResult(ok=True)

    monkeypatch.setattr(mail, "_deliver", deliver)
    assert mail.send(message).ok
    return sizes


def test_every_destination_caps_a_whole_message_body(monkeypatch: Any) -> None:
    bodies = _sent_bodies(monkeypatch)
    limits = {  # documented in docs/deploy.md, "Timeouts and limits"
        "webhook": 256 * 1024,
        "slack": 64 * 1024,
        "pagerduty": 400 * 1024,
        "alertmanager": 256 * 1024,
        "email": 1024 * 1024,
    }
    assert set(bodies) == set(limits)
    for kind, body in bodies.items():
        assert len(body) <= limits[kind], (kind, len(body))
    # What was cut says so: the webhook's error keeps its start and the original length.
    import json

    data = json.loads(bodies["webhook"])["data"]
    assert data["error"].startswith("EEEE")
    assert "[cut: 4,194,304 chars" in data["error"]
    assert data["impact"][-1].startswith("… and ")
