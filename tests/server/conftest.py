"""Server fixtures: a store recorded through the SDK, the app in-process, and real servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _support import listens
from lakelens.config import Settings, load_settings
from lakelens.store import Store

ODD_ASSET = 'odd "quoted" \\ name'


@pytest.fixture
def pipeline(
    store_url: str, tmp_path: Path, record_pipeline: Callable[..., dict[str, Any]]
) -> Iterator[tuple[Settings, Store, dict[str, Any]]]:
    """(settings, store, info) of the recorded pipeline, on SQLite and on PostgreSQL, with
    custom metrics, a schema and an asset whose name needs escaping."""
    settings = load_settings(home=str(tmp_path / "home"), database_url=store_url, log_format="none")
    store = Store(settings=settings)
    info = record_pipeline(settings, store, extras=True)
    yield settings, store, info
    store.close()


@pytest.fixture
def free_port() -> Callable[[], int]:
    """A function returning a free TCP port on 127.0.0.1."""
    return _free_port


@pytest.fixture
def odd_asset() -> str:
    return ODD_ASSET


@pytest.fixture
def thread_server() -> type[ThreadServer]:
    """`with thread_server(app) as server:` runs the app under uvicorn in this process."""
    return ThreadServer


@pytest.fixture
def client(pipeline: tuple[Settings, Store, dict[str, Any]]) -> Iterator[Any]:
    """A TestClient on the pipeline store; its clock stands still at the recording's `now`."""
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    settings, store, info = pipeline
    app = create_app(settings, store, clock=lambda: info["now"])
    with TestClient(app) as test_client:
        yield test_client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url + "/livez", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


class ServeProcess:
    """`lakelens serve` in a subprocess on 127.0.0.1 and a free port."""

    def __init__(
        self,
        home: Path,
        *,
        env: dict[str, str] | None = None,
        port: int | None = None,
        args: tuple[str, ...] = (),
    ):
        self.home = home
        self.args = args
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "LAKELENS_LOG_FORMAT": "json", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home.parent / f"serve-{self.port}.log"

    def start(self, timeout: float = 30.0) -> ServeProcess:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lakelens",
                    "serve",
                    "--home",
                    str(self.home),
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"lakelens serve exited early:\n{self.output()}")
            if _answers(self.url) and listens(self.proc.pid, self.port):
                return self
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"lakelens serve did not answer within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("lakelens serve did not stop on SIGTERM") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Start `lakelens serve` subprocesses; every one is killed at the end of the test."""
    started: list[ServeProcess] = []

    def start(home: Path | None = None, **kwargs: Any) -> ServeProcess:
        server = ServeProcess(home or tmp_path / "server-home", **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.kill()


class ThreadServer:
    """uvicorn in a thread of this process (for streaming tests on a real socket)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        wait_until(lambda: self.server.started, 15, "uvicorn to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
