"""A stand-in HTTP endpoint on 127.0.0.1 (Marquez, an OTLP collector) that keeps every request,
and a real `lakelens serve` for the real OpenLineage client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from _support import listens


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
    """`lakelens serve` in a subprocess on 127.0.0.1, on the store at `database_url`."""

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
        for _attempt in range(3):  # a port picked as free can be taken before the server binds it
            if self._start(tmp_path, env, args):
                return
        raise AssertionError(f"lakelens serve found no free port:\n{self.log.read_text()}")

    def _start(self, tmp_path: Path, env: dict[str, str], args: tuple[str, ...]) -> bool:
        """Start on a free port and wait until it answers; False when the port was taken."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"serve-{self.port}.log"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lakelens",
                    "serve",
                    "--home",
                    str(tmp_path / "serve-home"),
                    "--port",
                    str(self.port),
                    *args,
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if "Address already in use" in self.log.read_text():
                    return False
                raise AssertionError(f"lakelens serve exited early:\n{self.log.read_text()}")
            try:
                answered = httpx.get(self.url + "/livez", timeout=1.0).status_code == 200
                if answered and listens(self.proc.pid, self.port):  # not another test's server
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"lakelens serve did not answer:\n{self.log.read_text()}")

    def get(self, path: str, **params: Any) -> Any:
        """GET an API path with the token; the JSON answer."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = httpx.get(self.url + path, params=params, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


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
