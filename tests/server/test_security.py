"""Bearer tokens, public reads, probes without credentials, and log lines user input cannot forge."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lakelens.config import load_settings
from lakelens.server.security import Access, clean, is_loopback

TOKEN = "s3cret-token-value"


@pytest.fixture
def secured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    monkeypatch.setenv("LAKELENS_API_TOKEN", TOKEN)
    settings = load_settings(home=str(tmp_path / "home"), log_format="none")
    with TestClient(create_app(settings)) as client:
        yield client


READS = ["/api/v1/summary", "/api/v1/assets", "/api/v1/runs", "/api/v1/logs", "/metrics", "/health"]


def test_writes_need_the_token(secured: Any) -> None:
    events = [{"type": "log", "message": "hi"}]
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
    ):
        response = secured.post("/api/v1/events", json=events, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in response.text
    ok = secured.post("/api/v1/events", json=events, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    for path in ("/api/v1/lineage", "/v1/traces", "/v1/logs"):
        assert secured.post(path, content=b"{}").status_code == 401, path


def test_reads_need_the_token_unless_public(
    secured: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path in READS:
        assert secured.get(path).status_code == 401, path
        assert secured.get(path, headers=auth).status_code in (200, 503), path
    # Probes answer anyone, and say nothing about the data.
    assert secured.get("/livez").status_code == 200
    assert secured.get("/readyz").json() == {"status": "ready"}
    assert secured.get("/openapi.json").status_code == 200

    monkeypatch.setenv("LAKELENS_PUBLIC_READ", "1")
    settings = load_settings(home=str(tmp_path / "home"), log_format="none")
    with TestClient(create_app(settings)) as public:
        for path in READS:
            assert public.get(path).status_code in (200, 503), path
        assert public.post("/api/v1/events", json=[]).status_code == 401


def test_no_token_means_open_on_loopback(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    settings = load_settings(home=str(tmp_path / "home"), log_format="none")
    with TestClient(create_app(settings)) as client:
        assert client.post("/api/v1/events", json=[]).status_code == 200
        assert client.get("/api/v1/assets").status_code == 200


def test_the_token_never_appears_in_repr_or_settings() -> None:
    access = Access(TOKEN)
    assert TOKEN not in repr(access)
    assert TOKEN not in str(vars(access))
    settings = load_settings(api_token=TOKEN, log_format="none")
    assert TOKEN not in repr(settings)


def test_constant_time_comparison_accepts_only_the_exact_token() -> None:
    access = Access(TOKEN)
    assert access.allows(f"Bearer {TOKEN}", write=True)
    assert access.allows(f"bearer   {TOKEN}  ", write=True)
    assert not access.allows(f"Bearer {TOKEN}x", write=True)
    assert not access.allows(f"Bearer {TOKEN[:-1]}", write=True)
    assert not access.allows("Bearer ", write=True)
    assert not access.allows(None, write=False)
    assert Access(TOKEN, public_read=True).allows(None, write=False)
    assert Access(None).allows(None, write=True)


def test_log_lines_strip_cr_and_lf_from_user_values(
    secured: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lakelens.server")
    forged = "/api/v1/assets/x%0d%0a2024-01-01 INFO forged line"
    secured.get(forged, headers={"Authorization": f"Bearer {TOKEN}"})
    lines = [r.getMessage() for r in caplog.records if r.name == "lakelens.server.access"]
    assert lines, "no access log line"
    assert all("\n" not in line and "\r" not in line for line in lines)
    assert any("forged line" in line for line in lines)
    assert TOKEN not in caplog.text
    assert clean("a\r\nb\x1b[31mc\u2028d") == "a  b [31mc d"
    assert clean("x" * 500, 10) == "x" * 9 + "…"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
