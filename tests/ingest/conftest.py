"""A stand-in HTTP endpoint on 127.0.0.1 (Marquez, an OTLP collector) that keeps every request,
and a real `lakelens serve` for the real OpenLineage client."""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from _support import serving

_LOGS = itertools.count(1)


class Recorder(ThreadingHTTPServer):
    """Every POST as (path, content type, content encoding, body), answered 200 and empty."""

    requests: list[tuple[str, str, str, bytes]]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def bodies(self, path: str | None = None) -> list[tuple[str, bytes]]:
        """(content type, body) of the requests to `path` (every request when None)."""
        return [(kind, body) for p, kind, _, body in self.requests if path in (None, p)]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        server: Recorder = self.server  # type: ignore[assignment]
        server.requests.append(
            (
                self.path,
                self.headers.get("Content-Type", ""),
                self.headers.get("Content-Encoding", "identity"),
                self.rfile.read(length),
            )
        )
        self.send_response(200)
        self.send_header("Content-Type", self.headers.get("Content-Type", "application/json"))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_recorder() -> Iterator[Recorder]:
    server = Recorder(("127.0.0.1", 0), _Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class Serve:
    """`lakelens serve` in a subprocess on 127.0.0.1, on the store at `database_url`, started
    by `_support.serving` (on another port when another test's server took it first)."""

    def __init__(
        self, tmp_path: Path, database_url: str, token: str | None, args: tuple[str, ...] = ()
    ) -> None:
        self.token = token
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("LAKELENS_", "OPENLINEAGE"))
        }
        env.update(LAKELENS_DATABASE_URL=database_url, LAKELENS_LOG_FORMAT="json")
        if token:
            env["LAKELENS_API_TOKEN"] = token
        argv = [sys.executable, "-m", "lakelens", "serve", "--home", str(tmp_path / "serve-home")]
        self.log = tmp_path / f"serve-{next(_LOGS)}.log"
        self._serving = contextlib.ExitStack()
        self.proc, self.url = self._serving.enter_context(
            serving(lambda port: [*argv, "--port", str(port), *args], self.log, env=env)
        )
        self.port = int(self.url.rsplit(":", 1)[1])

    def get(self, path: str, **params: Any) -> Any:
        """GET an API path with the token; the JSON answer."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = httpx.get(self.url + path, params=params, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL (safe to call twice)."""
        self._serving.close()


@pytest.fixture
def serve_ol(tmp_path: Path, store_url: str) -> Iterator[Callable[..., Serve]]:
    """Start `lakelens serve` on the test's store (SQLite and PostgreSQL); stopped at the end."""
    started: list[Serve] = []

    def start(token: str | None = None, *args: str) -> Serve:
        server = Serve(tmp_path, store_url, token, args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
