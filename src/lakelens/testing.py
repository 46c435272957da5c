"""Helpers for testing code instrumented with lakelens (and for reproducible recordings)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["FakeClock", "recording"]


class FakeClock:
    """A clock you move by hand: pass it as `lakelens.configure(clock=FakeClock(start))`."""

    def __init__(self, start: float) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward (as if the code had taken `seconds`); return the new time."""
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, moment: float) -> None:
        with self._lock:
            self._now = float(moment)


@contextlib.contextmanager
def recording(home: str | Path, **options: Any) -> Iterator[Any]:
    """Record into a private store under `home` for the duration of the block; yields the Store.

    with lakelens.testing.recording(tmp_path) as store:
        my_pipeline()
    # everything recorded is committed and readable here
    """
    import lakelens
    from lakelens.config import load_settings
    from lakelens.sdk._runtime import RT
    from lakelens.store import Store

    previous = (RT._settings, RT._store, RT.clock)
    settings = load_settings(
        home=str(home), log_format=options.pop("log_format", "none"), **options
    )
    store = Store(settings=settings)
    lakelens.configure(settings=settings, store=store)
    try:
        yield store
    finally:
        lakelens.flush()
        RT.configure(settings=previous[0] or load_settings(), store=previous[1], clock=previous[2])
