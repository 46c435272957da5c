"""HTTP faults: idle and half-sent connections, keep-alive after errors, clients that leave."""

from __future__ import annotations

import logging
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from _support import UvicornThread

IDLE = 1000


@pytest.fixture
def open_files() -> None:
    """Room for a thousand sockets in this process (the server raises its own limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * IDLE if hard == resource.RLIM_INFINITY else min(hard, 4 * IDLE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 2 * IDLE + 100:
        pytest.skip(f"the open-files limit ({hard}) is too low for {IDLE} sockets")


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@pytest.mark.slow
def test_a_thousand_idle_connections_neither_lock_out_requests_nor_stay(
    serve: Any, open_files: None
) -> None:
    server = serve(LAKELENS_HTTP_HEADER_TIMEOUT="4")
    idle = []
    for i in range(IDLE):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        if i % 2:
            sock.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Le")
        idle.append(sock)
    livez, ingest = [], []
    with httpx.Client(base_url=server.url, timeout=5) as http:
        for i in range(200):
            began = time.perf_counter()
            response = http.get("/livez")
            livez.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, response.text
            if i % 10 == 0:
                began = time.perf_counter()
                response = http.post("/api/v1/events", json=[{"type": "log", "message": "x"}])
                ingest.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200, response.text
    print(
        f"with {IDLE} idle connections: /livez p99 {_p99(livez):.1f} ms, "
        f"ingest p99 {_p99(ingest):.1f} ms"
    )
    assert _p99(livez) < 250 and _p99(ingest) < 1000
    closed = 0
    deadline = time.monotonic() + 10
    for sock in idle:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            answer = sock.recv(4096)
            closed += answer == b"" or answer.startswith(b"HTTP/1.1 408")
        except OSError:
            pass
        sock.close()
    assert closed == IDLE, f"only {closed} of {IDLE} idle connections were closed"


@pytest.fixture
def app_server(tmp_path: Path) -> Iterator[tuple[str, list[logging.LogRecord]]]:
    """The app with a failing route under uvicorn (as `lakelens serve` runs it) in a thread,
    and the log records of lakelens and uvicorn."""
    from lakelens.config import load_settings
    from lakelens.server import create_app
    from lakelens.server.limits import header_timeout_protocol

    app = create_app(load_settings(home=str(tmp_path / "home"), log_format="none"))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/port")
    async def port(request: Any) -> int:
        return int(request.client.port)

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in ("lakelens.server", "uvicorn.error")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    # log_level=None: uvicorn leaves the levels set above as they are.
    server = UvicornThread(app, log_config=None, log_level=None, http=header_timeout_protocol(10))
    try:
        with server:
            yield server.url, records
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def test_keep_alive_survives_a_500_and_a_404(app_server: Any) -> None:
    url, records = app_server
    with httpx.Client(base_url=url, timeout=5) as http:
        first = http.get("/port").json()
        assert http.get("/boom").status_code == 500
        assert http.get("/port").json() == first  # the same connection
        assert http.get("/api/v1/assets/no-such-asset").status_code == 404
        assert http.get("/port").json() == first
    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info, [r.getMessage() for r in errors]


def test_a_client_that_leaves_mid_body_is_one_info_line(app_server: Any) -> None:
    url, records = app_server
    port = int(url.rpartition(":")[2])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n[{"
        )
        time.sleep(0.3)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any("went away" in r.getMessage() for r in records):
        time.sleep(0.05)
    assert [r.getMessage() for r in records if r.levelno >= logging.WARNING] == []
    assert any("went away" in r.getMessage() for r in records), [r.getMessage() for r in records]


def test_requests_past_the_bound_get_503_and_livez_still_answers(tmp_path: Path) -> None:
    import asyncio

    from lakelens.config import load_settings
    from lakelens.server import create_app

    settings = load_settings(home=str(tmp_path / "home"), log_format="none", http_max_requests=2)
    app = create_app(settings)
    release = asyncio.Event()

    @app.get("/slow")
    async def slow() -> str:
        await asyncio.wait_for(release.wait(), 10)
        return "done"

    asyncio.run(_three_slow_requests(app, release))


async def _three_slow_requests(app: Any, release: Any) -> None:
    import asyncio

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=10) as http:
        held = [asyncio.create_task(http.get("/slow")) for _ in range(2)]
        await asyncio.sleep(0.2)
        busy = await http.get("/slow")
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert (await http.get("/livez")).status_code == 200
        release.set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
        assert (await http.get("/slow")).status_code == 200
