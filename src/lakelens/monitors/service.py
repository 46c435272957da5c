"""Running monitors on their schedule: in `lakelens serve` (a background thread, as the alert
evaluator) and in `lakelens monitor run`.

Each pass syncs lakelens.yaml's `monitors:` into the store, then runs every monitor whose
interval has passed, one after the other. A cycle is claimed in the store first
(state.claim), so several servers sharing a store run each cycle once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from lakelens.monitors.base import CycleResult, run_cycle
from lakelens.monitors.state import (
    MonitorState,
    claim,
    load_monitors,
    record_cycle,
    sync_config,
)

if TYPE_CHECKING:
    from lakelens.store import Store

__all__ = ["POLL_SECONDS", "MonitorService"]

log = logging.getLogger("lakelens.monitors")
# How often the loop looks for a due monitor (and for monitors added meanwhile).
POLL_SECONDS = 5.0


class MonitorService:
    """Runs the monitors of one store when they are due."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
        on_monitors: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.environ = environ
        # Called once a pass finds any monitor (the server adds its health component then).
        self.on_monitors = on_monitors

    def monitors(self, names: list[str] | None = None) -> list[MonitorState]:
        sync_config(self.store.engine, self.store.settings, now=self.clock())
        with self.store.connect() as conn:
            return load_monitors(conn, names)

    def run_due(
        self,
        names: list[str] | None = None,
        *,
        force: bool = False,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> list[CycleResult]:
        """Run each (named) monitor that is due (every one with `force`); return their results."""
        results = []
        found = self.monitors(names)
        if found and self.on_monitors is not None:
            self.on_monitors()
        for state in found:
            now = self.clock()
            if not force and not state.due(now):
                continue
            if not claim(self.store.engine, state, now, force=force):
                continue  # another server took this cycle

            def step(done: int, total: int, name: str = state.name) -> None:
                if progress is not None:
                    progress(name, done, total)

            try:
                result = run_cycle(
                    self.store, state.config, clock=self.clock, progress=step, environ=self.environ
                )
            except Exception as exc:  # a bug or the store: this monitor only, said masked
                result = self._failed(state, now, exc)
            results.append(result)
        return results

    def _failed(self, state: MonitorState, now: float, exc: Exception) -> CycleResult:
        mask = state.config.masker(self.environ)
        reason = mask(f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        log.error("monitor %s: the cycle failed (%s)", state.name, reason)
        result = CycleResult(state.name, now, error=f"the cycle failed: {reason}")
        with contextlib.suppress(Exception):
            record_cycle(
                self.store.engine,
                state.name,
                now=self.clock(),
                error=result.error,
                details={**result.to_dict(), "state": state.details.get("state", {})},
            )
        return result

    def next_due(self, names: list[str] | None = None) -> float | None:
        """Seconds until the next (named) monitor is due (None: no monitors)."""
        with self.store.connect() as conn:
            found = load_monitors(conn, names)
        if not found:
            return None
        now = self.clock()
        return max(
            0.0,
            min(
                (s.last_run + s.config.interval - now) if s.last_run is not None else 0.0
                for s in found
            ),
        )

    def run_forever(
        self,
        stop: threading.Event,
        *,
        names: list[str] | None = None,
        poll: float = POLL_SECONDS,
        report: Callable[[CycleResult], None] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Run due monitors until `stop` is set; a failing pass is logged and retried."""
        last_error = None
        while not stop.is_set():
            try:
                for result in self.run_due(names, progress=progress):
                    if report is not None:
                        report(result)
                    elif not result.ok:
                        log.warning(
                            "monitor %s: %s",
                            result.name,
                            result.error or f"{len(result.failed)} tables failed",
                        )
                last_error = None
                wait = self.next_due(names)
            except Exception as exc:  # the store may be away for a moment; keep trying
                message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                if message != last_error:
                    log.error("monitors: a pass failed (%s); retrying.", message)
                last_error = message
                wait = None
            stop.wait(poll if wait is None else min(max(wait, 0.05), poll))
