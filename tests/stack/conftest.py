"""Fixtures for tests against real Prometheus and Alertmanager processes.

`lakelens serve` and the recording HTTP receiver are the ones tests/server and tests/alerts
use, loaded from their conftest modules so there is one implementation of each.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from _support import listens, load_module

HERE = Path(__file__).resolve().parent


_server = load_module("lakelens_tests_server_helpers", HERE.parent / "server" / "conftest.py")
_alerts = load_module("lakelens_tests_alert_helpers", HERE.parent / "alerts" / "conftest.py")
ServeProcess = _server.ServeProcess
Receiver = _alerts.Receiver
_free_port: Callable[[], int] = _alerts.free_port


@pytest.fixture(name="free_port")
def _free_port_fixture() -> Callable[[], int]:
    """A function returning a free TCP port on 127.0.0.1."""
    return _free_port


class Daemon:
    """A server binary in a subprocess, its output in a log file; `url` once it is ready."""

    def __init__(self, name: str, argv: list[str], port: int, log: Path) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)

    def output(self, tail: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-tail:] if self.log.exists() else ""

    def wait_ready(self, path: str = "/-/ready", timeout: float = 30.0) -> Daemon:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited early:\n{self.output()}")
            try:
                answered = httpx.get(self.url + path, timeout=1.0).status_code == 200
                if answered and listens(self.proc.pid, self.port):  # not another test's server
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not ready within {timeout}s:\n{self.output()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def daemons() -> Iterator[Callable[..., Daemon]]:
    """`daemons(name, argv, port, log)` starts a process; all are killed after the test."""
    started: list[Daemon] = []

    def start(name: str, argv: list[str], port: int, log: Path) -> Daemon:
        daemon = Daemon(name, argv, port, log)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start `lakelens serve` subprocesses; every one is killed at the end of the test."""
    started: list[Any] = []

    def start(home: Path, **kwargs: Any) -> Any:
        server = ServeProcess(home, **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.kill()


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A recording HTTP server on 127.0.0.1 (tests/alerts/conftest.py's Receiver)."""
    server = Receiver()
    server.start()
    yield server
    server.close()
