"""What every endpoint shares: settings, the store, access rules, the clock and ingest counters."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timezone, tzinfo
from typing import TYPE_CHECKING, Any

from lakelens.server.limits import FailureLimit
from lakelens.server.security import BODY_TIMEOUT, MAX_BODY_BYTES, Access

if TYPE_CHECKING:
    from lakelens.config import Settings
    from lakelens.server.health import HealthChecker
    from lakelens.store import Store

__all__ = ["ServerContext", "env_flag"]


def env_flag(name: str) -> bool:
    """A LAKELENS_* switch: 1, true, yes or on."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass
class IngestCounters:
    """Events this process accepted and rejected, by source (exposed on /metrics)."""

    accepted: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, source: str, accepted: int, rejected: int) -> None:
        with self._lock:
            self.accepted[source] += accepted
            self.rejected[source] += rejected


@dataclass
class ServerContext:
    settings: Settings
    store: Store
    access: Access
    health: HealthChecker
    clock: Callable[[], float] = time.time
    max_body_bytes: int = MAX_BODY_BYTES
    body_timeout: float = BODY_TIMEOUT
    run_alerts: bool = True
    # The AlertingService when this process runs the evaluator (`lakelens serve`).
    alerts: Any = None
    counters: IngestCounters = field(default_factory=IngestCounters)
    # Failed sign-ins per client address (server/signin.py).
    signin_failures: FailureLimit = field(default_factory=lambda: FailureLimit(5, 60.0))
    # Set when the server begins to shut down: live log streams end so the shutdown is prompt.
    stopping: threading.Event = field(default_factory=threading.Event)
    max_streams: int = 32
    streams: int = 0
    streams_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # The lineage graph, read again only when assets or edges change (every page and
    # lineage endpoint needs it; a 10,000-node graph takes ~100 ms to load).
    graphs: Any = field(default=None, repr=False)
    # The zone the dashboard shows times in unless a viewer picks another (LAKELENS_TIMEZONE).
    zone: tzinfo = timezone.utc

    def graph(self, conn: Any) -> Any:
        """The store's lineage graph (analysis.lineage.LineageGraph), from the cache."""
        if self.graphs is None:
            from lakelens.analysis.lineage import GraphCache

            self.graphs = GraphCache()
        return self.graphs.get(conn)

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        *,
        clock: Callable[[], float] | None = None,
        zone: tzinfo | None = None,
    ) -> ServerContext:
        from lakelens.display import display_zone
        from lakelens.server.health import HealthChecker
        from lakelens.server.tokens import declared_tokens

        clock = clock or time.time
        access = Access(
            settings.api_token,
            # LAKELENS_PUBLIC_READ is not a Settings field (yet): read it here, once.
            public_read=env_flag("LAKELENS_PUBLIC_READ"),
            tokens=declared_tokens(settings),
            secret=settings.session_secret,
            session_hours=settings.session_hours,
        )
        # A bad LAKELENS_TIMEZONE fails here, at start, in one line (InvalidArgumentError).
        zone = zone or display_zone()
        return cls(
            settings=settings,
            store=store,
            access=access,
            health=HealthChecker.from_settings(settings, store, clock=clock),
            clock=clock,
            body_timeout=_env_float("LAKELENS_BODY_TIMEOUT", BODY_TIMEOUT),
            zone=zone,
        )
