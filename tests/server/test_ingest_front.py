"""The ingest front answers exactly as FastAPI's stack does: same status, body, headers and
log lines for good, bad, oversized, unauthenticated, gzip, refused and failing requests."""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from lakelens.config import load_settings

TOKEN = "front-token-value"
NOW = 1_800_000_000.0
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def _run_event(event_type: str = "START") -> dict[str, Any]:
    return {
        "eventType": event_type,
        "eventTime": "2027-01-15T08:00:00.000Z",
        "producer": "https://example.com/test",
        "run": {"runId": "3f5e83fa-3480-44ff-99c5-ff943904e5e8"},
        "job": {"namespace": "test", "name": "job_a"},
        "inputs": [{"namespace": "warehouse", "name": "raw.orders"}],
        "outputs": [{"namespace": "warehouse", "name": "stg.orders"}],
    }


def _gz(data: Any) -> bytes:
    return gzip.compress(json.dumps(data).encode())


# (method, path, headers, body): each sent once to each app.
REQUESTS: list[tuple[str, dict[str, str], bytes]] = [
    ("/api/v1/lineage", AUTH, json.dumps(_run_event()).encode()),
    ("/api/v1/lineage", AUTH, json.dumps([_run_event(), {"eventType": "START"}]).encode()),
    ("/api/v1/lineage", AUTH, json.dumps([{"nothing": 1}]).encode()),
    ("/api/v1/lineage", AUTH, b"{not json"),
    ("/api/v1/lineage", {"Content-Type": "application/json"}, b"{}"),
    ("/api/v1/lineage", {"Authorization": "Bearer wrong"}, b"{}"),
    ("/api/v1/lineage", {**AUTH, "Content-Encoding": "gzip"}, _gz(_run_event("COMPLETE"))),
    ("/api/v1/lineage", {**AUTH, "Content-Encoding": "gzip"}, b"\x1f\x8bnot gzip"),
    ("/api/v1/lineage", {**AUTH, "Content-Encoding": "br"}, b"{}"),
    ("/api/v1/lineage", AUTH, b"[" + b" " * 5000 + b"]"),
    ("/api/v1/lineage", {**AUTH, "Content-Encoding": "gzip"}, gzip.compress(b" " * 5000)),
    ("/api/v1/events", AUTH, json.dumps([{"type": "log", "message": "hi"}]).encode()),
    ("/api/v1/events", {**AUTH, "Idempotency-Key": "batch-1"}, b'[{"type":"log"}]'),
    ("/api/v1/events", {**AUTH, "Idempotency-Key": "batch-1"}, b'[{"type":"log"}]'),
    ("/api/v1/events", {**AUTH, "Idempotency-Key": "bad key!"}, b"[]"),
    ("/api/v1/events", AUTH, b'[{"type":"nonsense"}]'),
    ("/api/v1/usage", AUTH, b'{"asset":"mart","views":3}'),
    ("/v1/traces", {**AUTH, "Content-Type": "text/plain"}, b""),
    ("/v1/logs", AUTH, b"{}"),
]


@pytest.fixture
def apps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    """(served by the front, served by FastAPI's stack): two apps on two fresh stores."""
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    monkeypatch.setenv("LAKELENS_API_TOKEN", TOKEN)
    clients = []
    for name in ("front", "stack"):
        settings = load_settings(home=str(tmp_path / name), log_format="none")
        app = create_app(settings, clock=lambda: NOW, run_alerts=False)
        app.state.ctx.max_body_bytes = 4096

        async def stack(scope: Any, receive: Any, send: Any, app: Any = app) -> None:
            await FastAPI.__call__(app, scope, receive, send)  # past LakelensAPI's front

        clients.append((app, TestClient(app if name == "front" else stack)))
    (front_app, front), (stack_app, stacked) = clients
    with front, stacked:
        yield (front_app, front), (stack_app, stacked)
    front_app.state.ctx.store.close()
    stack_app.state.ctx.store.close()


def _answer(client: Any, path: str, headers: dict[str, str], body: bytes) -> tuple[Any, ...]:
    response = client.post(path, headers=headers, content=body)
    return response.status_code, response.content, sorted(response.headers.items())


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The access log's lines without their milliseconds."""
    lines = [
        re.sub(r" [0-9.]+ms$", "", r.getMessage())
        for r in caplog.records
        if r.name == "lakelens.server.access"
    ]
    caplog.clear()
    return lines


def test_every_ingest_answer_is_the_stacks(
    apps: tuple[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    (front_app, front), (_stack_app, stacked) = apps
    caplog.set_level(logging.INFO, logger="lakelens.server.access")
    statuses = []
    for path, headers, body in REQUESTS:
        served = _answer(front, path, headers, body)
        front_lines = _access_lines(caplog)
        expected = _answer(stacked, path, headers, body)
        assert served == expected, (path, headers, body[:60])
        assert front_lines == _access_lines(caplog) and len(front_lines) == 1
        statuses.append(served[0])
    # The cases above cover what they claim (and the front did serve them).
    assert {200, 207, 400, 401, 413, 415, 422} <= set(statuses), statuses
    assert front_app.state.committer.requests > 0
    assert b'"duplicate":true' in _answer(front, *REQUESTS[13])[1]


def test_the_front_shares_the_in_flight_bound(
    apps: tuple[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    (front_app, front), (stack_app, stacked) = apps
    caplog.set_level(logging.INFO, logger="lakelens.server.access")
    front_app.front.gate.limit = stack_app.front.gate.limit = 0
    path, headers, body = REQUESTS[0]
    served = _answer(front, path, headers, body)
    assert served[0] == 503 and ("retry-after", "1") in served[2]
    assert served == _answer(stacked, path, headers, body)
    lines = _access_lines(caplog)
    assert len(lines) == 2 and lines[0] == lines[1] and lines[0].endswith(" 503")
    assert front.get("/livez").status_code == 200  # exempt, and served by FastAPI


def test_an_unexpected_error_is_the_same_500_and_one_error_line(
    apps: tuple[Any, Any], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakelens.server.commit import GroupCommitter

    (_front_app, front), (_stack_app, stacked) = apps

    async def broken(self: Any, *args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(GroupCommitter, "commit", broken)
    caplog.set_level(logging.INFO, logger="lakelens.server")
    path, headers, body = REQUESTS[0]
    served = _answer(front, path, headers, body)
    assert served[0] == 500 and b"server log has the details" in served[1]
    assert served == _answer(stacked, path, headers, body)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert (
        errors == ["internal error on POST /api/v1/lineage: RuntimeError: the disk caught fire"] * 2
    )
    assert _access_lines(caplog)[-1].endswith('"POST /api/v1/lineage" 500')


def test_other_methods_and_paths_go_to_fastapi(apps: tuple[Any, Any]) -> None:
    (_front_app, front), (_stack_app, stacked) = apps
    for method, path, status in (
        ("GET", "/api/v1/lineage", 200),  # the lineage graph, a read
        ("PUT", "/api/v1/events", 405),
        ("POST", "/api/v1/lineage/", 405),  # not an ingest path: no trailing slash
    ):
        served = front.request(method, path, headers=AUTH, follow_redirects=False)
        expected = stacked.request(method, path, headers=AUTH, follow_redirects=False)
        assert (served.status_code, served.content) == (expected.status_code, expected.content)
        assert served.status_code == status, (method, path, served.status_code)


@pytest.mark.parametrize("duplicate", [False, True])
def test_the_usual_answer_is_the_response_starlette_would_make(duplicate: bool) -> None:
    """The 200 answer, its headers made without Response's generic assembly: the same status,
    headers and body as `Response(body, media_type="application/json")`."""
    from starlette.responses import Response

    from lakelens.ingest import Ingested
    from lakelens.server.ingest import _result

    ingested = Ingested()
    ingested.accepted = 12
    answer = _result(ingested, duplicate=duplicate)
    said = {"accepted": 12, "rejected": [], **({"duplicate": True} if duplicate else {})}
    expected = Response(json.dumps(said, separators=(",", ":")), media_type="application/json")
    assert (answer.status_code, answer.raw_headers, answer.body) == (
        expected.status_code,
        expected.raw_headers,
        expected.body,
    )
    assert answer.headers["content-length"] == str(len(expected.body))
