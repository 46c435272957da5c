"""A stand-in HTTP endpoint on 127.0.0.1 (Marquez, an OTLP collector) that keeps every request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


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
