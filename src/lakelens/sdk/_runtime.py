"""Process-wide SDK state: settings, clock, id generator, the writer, and the current frame."""

from __future__ import annotations

import atexit
import contextvars
import hashlib
import itertools
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lakelens.config import Settings, load_settings

if TYPE_CHECKING:
    from lakelens.sdk._assets import Materializing
    from lakelens.sdk._runs import RunState
    from lakelens.sdk._spans import Span
    from lakelens.sdk._writer import Writer
    from lakelens.store import Store

__all__ = ["RT", "Frame", "current_frame", "trace_id_for"]

# What the code running now belongs to: (run, materialization, span); any may be None.
Frame = tuple["RunState | None", "Materializing | None", "Span | None"]
_EMPTY: Frame = (None, None, None)
FRAME: contextvars.ContextVar[Frame] = contextvars.ContextVar("lakelens_frame", default=_EMPTY)
current_frame = FRAME.get

ENV_RUN_ID = "LAKELENS_RUN_ID"
ENV_CORRELATION_ID = "LOG_CORRELATION_ID"
ENV_JOB = "LAKELENS_JOB"


def trace_id_for(run_id: str) -> str:
    """The trace id of a run: its UUID's hex when it is one, otherwise a stable hash."""
    compact = run_id.replace("-", "").lower()
    if len(compact) == 32 and all(c in "0123456789abcdef" for c in compact):
        return compact
    return hashlib.blake2b(run_id.encode(), digest_size=16).hexdigest()


class Runtime:
    """The SDK's shared state; `lakelens.configure()` replaces its parts."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._settings: Settings | None = None
        self._store: Store | None = None
        self._writer: Writer | None = None
        self.clock: Callable[[], float] = time.time
        self.rng = random.Random()
        self.deterministic = False
        self._new_span_ids()
        self.ambient: RunState | None = None
        self._ambient_checked = False
        self._stdlib_installed = False
        self._atexit_registered = False
        self.log_render: Callable[[str, dict[str, Any], float], Any] | None = None

    # -- configuration ---------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        if self._settings is None:
            with self._lock:
                if self._settings is None:
                    self._settings = load_settings()
        return self._settings

    def configure(
        self,
        *,
        settings: Settings | None = None,
        store: Store | None = None,
        clock: Callable[[], float] | None = None,
        id_seed: int | None = None,
        **overrides: Any,
    ) -> None:
        with self._lock:
            self.shutdown()
            if settings is None:
                settings = load_settings(**overrides) if overrides else load_settings()
            elif overrides:
                settings = settings.replace(**overrides)
            self._settings = settings
            self._store = store
            self._writer = None
            self.log_render = None
            self.clock = clock or time.time
            self.deterministic = id_seed is not None
            self.rng = random.Random(id_seed)
            self._new_span_ids()
            self._ambient_checked = False
            self.ambient = None

    def save(self) -> tuple[Any, ...]:
        """The current configuration, for `restore()` (used by lakelens.testing.recording)."""
        return (self._settings, self._store, self.clock, self.rng, self.deterministic)

    def restore(self, saved: tuple[Any, ...]) -> None:
        """Flush, then go back to a configuration returned by `save()`."""
        with self._lock:
            self.shutdown()
            self._settings, self._store, self.clock, self.rng, self.deterministic = saved
            self._new_span_ids()
            self._writer = None
            self.log_render = None
            self._ambient_checked = False
            self.ambient = None

    def _new_span_ids(self) -> None:
        """Span ids are a random per-process prefix and a counter: unique, and appended in
        order to the spans index (random ids scatter inserts across it)."""
        self.span_prefix = f"{self.rng.getrandbits(32):08x}"
        self.span_counter = itertools.count(1)

    # -- ids -------------------------------------------------------------------------------
    def new_id(self) -> str:
        """A UUID4-shaped id (random, or reproducible after configure(id_seed=…))."""
        bits = self.rng.getrandbits(128)
        bits = (bits & ~(0xF << 76)) | (4 << 76)
        bits = (bits & ~(0x3 << 62)) | (0x2 << 62)
        text = f"{bits:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    # -- store and writer ------------------------------------------------------------------
    @property
    def store(self) -> Store:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    from lakelens.store import Store

                    self._store = Store(settings=self.settings)
        return self._store

    @property
    def writer(self) -> Writer:
        writer = self._writer
        if writer is None:
            with self._lock:
                if self._writer is None:
                    from lakelens.sdk._writer import Writer

                    settings = self.settings
                    if settings.url:
                        # LAKELENS_URL: batches go to a lakelens server, spooled to disk first.
                        from lakelens.sdk._remote import remote_sink_factory

                        sink = remote_sink_factory(settings)
                    else:
                        sink = lambda: self.store.write  # noqa: E731
                    if (
                        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                        or os.environ.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
                    ):
                        # Telemetry out: spans and logs also go to an OTLP collector.
                        from lakelens.sdk._otlp import OtlpExporter

                        inner = sink
                        sink = lambda: OtlpExporter(inner())  # noqa: E731
                    self._writer = Writer(
                        sink,
                        queue_size=settings.queue_size,
                        batch_size=settings.batch_size,
                        flush_interval=settings.flush_interval,
                        clock=lambda: self.clock(),
                    )
                    if not self._atexit_registered:
                        atexit.register(self._at_exit)
                        self._atexit_registered = True
                    _flush_at_multiprocessing_exit(self)
                writer = self._writer
        return writer

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until everything enqueued so far is committed; False on timeout."""
        writer = self._writer
        return True if writer is None else writer.flush(timeout)

    def shutdown(self) -> None:
        if self._writer is not None:
            self._writer.close(timeout=30.0)
            self._writer = None

    def _at_exit(self) -> None:
        from lakelens.sdk._alerting import wait_for_alerts

        wait_for_alerts()
        writer = self._writer
        if writer is not None and not writer.flush(timeout=30.0):
            pending = writer.pending()
            print(
                f"lakelens: {pending} events were not written to the store before exit "
                "(is it reachable?).",
                file=sys.stderr,
            )

    def after_fork_in_child(self) -> None:
        """A forked child gets its own queue, thread, connections and id stream."""
        if self._writer is not None:
            self._writer.abandon()
            self._writer = None
        if self._store is not None:
            self._store.dispose()
        if self.deterministic:
            # Same seed in parent and child would give both the same ids.
            self.rng = random.Random(self.rng.getrandbits(64) ^ os.getpid())
        else:
            self.rng = random.Random()
        # Never share span ids with the parent: a new random prefix for this process.
        self._new_span_ids()
        self._lock = threading.RLock()

    # -- the run a child process inherits ------------------------------------------------
    def ambient_run(self) -> RunState | None:
        """The run named by LAKELENS_RUN_ID when this process was started inside one."""
        if not self._ambient_checked:
            run_id = os.environ.get(ENV_RUN_ID)
            if run_id:
                from lakelens.sdk._runs import RunState

                self.ambient = RunState(
                    run_id=run_id,
                    job=os.environ.get(ENV_JOB) or "unknown",
                    trace_id=trace_id_for(run_id),
                    joined=True,
                    correlation_id=os.environ.get(ENV_CORRELATION_ID) or run_id,
                )
                # Its `logging` records belong to the run too, as in the parent.
                from lakelens.sdk._logs import install_stdlib_capture

                install_stdlib_capture()
            self._ambient_checked = True
        return self.ambient


def _flush_at_multiprocessing_exit(runtime: Runtime) -> None:
    """A multiprocessing child ends with os._exit(), which skips atexit: flush in its own
    exit hook instead (the one that runs its finalizers), or its events are lost."""
    mp = sys.modules.get("multiprocessing")
    if mp is None or mp.parent_process() is None:
        return
    from multiprocessing import util

    util.Finalize(runtime, runtime._at_exit, exitpriority=100)


RT = Runtime()
os.register_at_fork(after_in_child=RT.after_fork_in_child)
