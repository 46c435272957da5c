"""The SDK recording on a fake clock that starts at the test module's `T0`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import lakelens
from lakelens.config import load_settings
from lakelens.store import Store
from lakelens.testing import FakeClock


@pytest.fixture
def recorder(
    request: pytest.FixtureRequest, store_url: str, tmp_path: Path
) -> Iterator[tuple[Store, FakeClock]]:
    """(store, clock): the SDK records into `store_url` on a fake clock starting at `T0`."""
    clock = FakeClock(request.module.T0)
    settings = load_settings(home=str(tmp_path / "home"), database_url=store_url, log_format="none")
    store = Store(settings=settings)
    lakelens.configure(settings=settings, store=store, clock=clock)
    try:
        yield store, clock
    finally:
        lakelens.flush()
        lakelens.configure(settings=load_settings(home=str(tmp_path / "after"), log_format="none"))
        store.close()
