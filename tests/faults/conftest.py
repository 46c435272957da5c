"""Fault fixtures: the real app over a real store (SQLite file and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lakelens.config import load_settings
from lakelens.store import Store


@pytest.fixture
def served(store_url: str, tmp_path: Path) -> Iterator[tuple[Any, Store]]:
    """(TestClient, Store): the app in-process on an empty store; server errors are answers."""
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    settings = load_settings(home=str(tmp_path / "home"), database_url=store_url, log_format="none")
    store = Store(settings=settings)
    with TestClient(create_app(settings, store), raise_server_exceptions=False) as client:
        yield client, store
    store.close()
