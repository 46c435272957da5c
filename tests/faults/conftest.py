"""Fault tests reuse the alert tests' real HTTP receiver (tests/alerts/conftest.py)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def _alerts_conftest() -> Any:
    path = Path(__file__).parents[1] / "alerts" / "conftest.py"
    spec = importlib.util.spec_from_file_location("lakelens_tests_alerts_receivers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


receivers = _alerts_conftest()
Receiver = receivers.Receiver
ScriptedResponse = receivers.ScriptedResponse


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A started Receiver (see tests/alerts/conftest.py); stopped after the test."""
    server = Receiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_receiver() -> Iterator[Any]:
    """`make_receiver()` starts another Receiver; all stop after the test."""
    started: list[Any] = []

    def start() -> Any:
        server = Receiver()
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
