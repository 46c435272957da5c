"""`lakelens serve --host`: an IPv6 loopback, bracketed or not, is served (it passed the
loopback check and then failed with 'Name or service not known')."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _ipv6_loopback_port() -> int:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
            return int(probe.getsockname()[1])
    except OSError:
        pytest.skip("this machine has no IPv6 loopback (::1)")


@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_ipv6_loopback_is_served(tmp_path: Path, host: str) -> None:
    port = _ipv6_loopback_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lakelens",
                "serve",
                "--home",
                str(tmp_path / "home"),
                "--host",
                host,
                "--port",
                str(port),
                "--no-alerts",
            ],
            env={**os.environ, "LAKELENS_LOG_FORMAT": "json"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        answered = None
        while time.monotonic() < deadline and proc.poll() is None and answered is None:
            with contextlib.suppress(httpx.HTTPError):
                answered = httpx.get(f"http://[::1]:{port}/livez", timeout=1).status_code
            time.sleep(0.1)
        assert answered == 200, f"exit {proc.poll()}:\n{log.read_text(errors='replace')}"
    finally:
        proc.kill()
        proc.wait(10)
