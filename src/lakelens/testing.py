"""Helpers for testing code instrumented with lakelens (and for reproducible recordings)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakelens.config import Settings
    from lakelens.store import Store

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
def recording(
    home: str | Path | None = None,
    *,
    settings: Settings | None = None,
    store: Store | None = None,
    clock: Callable[[], float] | None = None,
    id_seed: int | None = None,
    **options: Any,
) -> Iterator[Store]:
    """Record into a private store for the duration of the block; yields the Store.

        with lakelens.testing.recording(tmp_path) as store:
            my_pipeline()
        # everything recorded is committed and readable here

    Everything queued is flushed at the end, and the SDK's previous configuration (settings,
    store, clock, id stream) is put back.
    """
    import lakelens
    from lakelens.config import load_settings
    from lakelens.sdk._runtime import RT
    from lakelens.store import Store

    if settings is None:
        options.setdefault("log_format", "none")
        settings = load_settings(home=None if home is None else str(home), **options)
    if store is None:
        store = Store(settings=settings)
    saved = RT.save()
    lakelens.configure(settings=settings, store=store, clock=clock, id_seed=id_seed)
    try:
        yield store
    finally:
        lakelens.flush()
        RT.restore(saved)
