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
