"""`lakelens serve --host`: an IPv6 loopback, bracketed or not, is served (it passed the
loopback check and then failed with 'Name or service not known')."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from _support import serving


def _require_ipv6_loopback() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("this machine has no IPv6 loopback (::1)")


@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_ipv6_loopback_is_served(tmp_path: Path, host: str) -> None:
    _require_ipv6_loopback()
    argv = [sys.executable, "-m", "lakelens", "serve", "--home", str(tmp_path / "home")]
    argv += ["--host", host, "--no-alerts", "--port"]
    env = {**os.environ, "LAKELENS_LOG_FORMAT": "json"}
    # Served: /livez on [::1] answers 200 from this server's own socket.
    with serving(lambda port: [*argv, str(port)], tmp_path / "serve.log", env=env, host="::1"):
        pass
