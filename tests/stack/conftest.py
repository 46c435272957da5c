"""Fixtures for tests against real Prometheus and Alertmanager processes.

`lakelens serve` and the recording HTTP receiver are the ones tests/server and tests/alerts
use, loaded from their conftest modules so there is one implementation of each.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from _support import load_module, serving

HERE = Path(__file__).resolve().parent

_server = load_module("lakelens_tests_server_helpers", HERE.parent / "server" / "conftest.py")
_alerts = load_module("lakelens_tests_alerts_receivers", HERE.parent / "alerts" / "conftest.py")
serve = _server.serve
receiver = _alerts.receiver


class Daemon:
    """A server binary in a subprocess, `argv(port)`, its output in a log file; started once
    `probe` answers (`_support.serving`: on another port when another test's server took the
    one picked as free first; a config file that names the port is for `argv` to write)."""

    def __init__(
        self, name: str, argv: Callable[[int], list[str]], log: Path, probe: str = "/-/ready"
    ) -> None:
        self.name = name
        self.log = log
        self._serving = contextlib.ExitStack()
        self.proc, self.url = self._serving.enter_context(serving(argv, log, probe=probe))
        self.port = int(self.url.rsplit(":", 1)[1])

    def output(self, tail: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-tail:] if self.log.exists() else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._serving.close()


@pytest.fixture
def daemons() -> Iterator[Callable[..., Daemon]]:
    """`daemons(name, argv, log)` starts a process on a free port, `argv(port)`, and returns
    it ready; all are killed after the test."""
    started: list[Daemon] = []

    def start(name: str, argv: Callable[[int], list[str]], log: Path) -> Daemon:
        daemon = Daemon(name, argv, log)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()
