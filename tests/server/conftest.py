"""Server fixtures: a store recorded through the SDK, the app in-process, and real servers."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _support import UvicornThread, serving
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
def thread_server() -> type[UvicornThread]:
    """`with thread_server(app) as server:` runs the app under uvicorn in this process."""
    return UvicornThread


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


_LOGS = itertools.count(1)


class ServeProcess:
    """`lakelens serve` in a subprocess on 127.0.0.1 and a free port (`_support.serving`: on
    another port when another test's server took it first). A restart is a new ServeProcess,
    on a new port: the old one could be taken meanwhile."""

    def __init__(
        self, home: Path, *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ):
        self.home = home
        self.args = args
        self.env = {**os.environ, "LAKELENS_LOG_FORMAT": "json", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.url = ""
        self.log = home.parent / f"serve-{next(_LOGS)}.log"
        self._serving = contextlib.ExitStack()

    def start(self, timeout: float = 30.0) -> ServeProcess:
        argv = [sys.executable, "-m", "lakelens", "serve", "--home", str(self.home), *self.args]
        self.proc, self.url = self._serving.enter_context(
            serving(
                lambda port: [*argv, "--port", str(port)], self.log, env=self.env, timeout=timeout
            )
        )
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("lakelens serve did not stop on SIGTERM") from None
        finally:
            self._serving.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._serving.close()


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
