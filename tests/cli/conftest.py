"""A small store built through the SDK with a fake clock: known failures, spans, logs, lineage."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lakelens.config import load_settings
from lakelens.store import Store


@pytest.fixture
def pipeline_home(
    tmp_path: Path, record_pipeline: Callable[..., dict[str, object]]
) -> Iterator[tuple[Path, dict[str, object]]]:
    """A SQLite home holding the small pipeline of tests/conftest.py (without the extras)."""
    home = tmp_path / "home"
    settings = load_settings(home=str(home), log_format="none")
    store = Store(settings=settings)
    info = record_pipeline(settings, store)
    store.close()
    yield home, info
