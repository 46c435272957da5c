"""Health: built-in and user component checks, each cached and bounded by a timeout.

Used by `/health` and by `lakelens health`; free of FastAPI. A check is any callable taking
no arguments and returning a status ('healthy', 'degraded', 'unhealthy' and common
synonyms), a bool, a `(status, details)` pair, or a dict with a 'status' key. A check that
raises or runs past its timeout is reported as unhealthy with the reason; it never takes
the endpoint down, and a check still stuck from an earlier call is not started twice.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakelens.config import Settings
    from lakelens.store import Store

__all__ = [
    "ENTRY_POINT_GROUP",
    "STATUSES",
    "ComponentResult",
    "HealthChecker",
    "overall_status",
]

STATUSES = ("healthy", "degraded", "unhealthy")
ENTRY_POINT_GROUP = "lakelens.health_checks"
WARNING_PERCENT = 80.0
CRITICAL_PERCENT = 95.0
SLOW_STORE_MS = 1000.0
# Seconds between two `PRAGMA quick_check`s of a SQLite store (health: integrity_seconds).
INTEGRITY_SECONDS = 600.0
# Seconds a /health with no integrity result yet waits for the first quick_check.
FIRST_INTEGRITY_WAIT = 2.0
_SYNONYMS = {
    "healthy": "healthy",
    "ok": "healthy",
    "up": "healthy",
    "pass": "healthy",
    "passing": "healthy",
    "green": "healthy",
    "degraded": "degraded",
    "warning": "degraded",
    "warn": "degraded",
    "yellow": "degraded",
    "unhealthy": "unhealthy",
    "critical": "unhealthy",
    "down": "unhealthy",
    "fail": "unhealthy",
    "failing": "unhealthy",
    "error": "unhealthy",
    "red": "unhealthy",
}


@dataclass
class ComponentResult:
    """One component's state at `checked_at` (epoch seconds)."""

    name: str
    status: str
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    checked_at: float = 0.0
    duration_ms: float = 0.0
    critical: bool = True
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "critical": self.critical,
            "details": self.details,
            "error": self.error,
            "checked_at": self.checked_at,
            "duration_ms": round(self.duration_ms, 3),
            "cached": self.cached,
        }


@dataclass
class _Component:
    name: str
    check: Callable[[], Any]
    timeout: float
    ttl: float
    critical: bool
    last: ComponentResult | None = None
    last_at: float = 0.0
    running: Future[ComponentResult] | None = None
    started: float = 0.0


def _first_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _jsonable(details: Any) -> dict[str, Any]:
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        details = {"value": details}
    try:
        loaded = json.loads(json.dumps(dict(details), default=str))
    except (TypeError, ValueError):
        return {"value": str(details)[:1000]}
    return loaded if isinstance(loaded, dict) else {"value": loaded}


def normalize(value: Any) -> tuple[str, dict[str, Any], str | None]:
    """(status, details, error) from whatever a check returned."""
    details: Any = {}
    error: str | None = None
    if value is None or value is True:
        status: Any = "healthy"
    elif value is False:
        status = "unhealthy"
    elif isinstance(value, str):
        status = value
    elif isinstance(value, tuple) and len(value) == 2:
        status, details = value
    elif isinstance(value, Mapping):
        rest = dict(value)
        status = rest.pop("status", "healthy")
        error = rest.pop("error", None)
        details = rest.pop("details", rest)
    else:
        return "unhealthy", {}, f"the check returned {type(value).__name__}, not a status"
    canonical = _SYNONYMS.get(str(status).strip().lower()) if isinstance(status, str) else None
    if canonical is None:
        return "unhealthy", _jsonable(details), f"the check returned an unknown status {status!r}"
    return canonical, _jsonable(details), None if error is None else str(error)[:300]


def overall_status(results: Mapping[str, ComponentResult]) -> str:
    """The worst critical status; a non-critical unhealthy component only degrades."""
    worst = 0
    for result in results.values():
        rank = STATUSES.index(result.status)
        if not result.critical:
            rank = min(rank, 1)
        worst = max(worst, rank)
    return STATUSES[worst]


class HealthChecker:
    """The components of `/health` and their cached results."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._components: dict[str, _Component] = {}
        self._lock = threading.Lock()
        # The SQLite file's scheduled quick_check (None: PostgreSQL, or turned off).
        self.integrity: IntegrityProbe | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, store: Store, *, clock: Callable[[], float] = time.time
    ) -> HealthChecker:
        """Store, disk, memory and freshness, then the checks of lakelens.yaml and entry points."""
        options = settings.raw.get("health") if isinstance(settings.raw, Mapping) else None
        options = options if isinstance(options, Mapping) else {}
        ttl = _positive(options.get("cache_seconds"), 30.0)
        timeout = _positive(options.get("timeout_seconds"), 5.0)
        checker = cls(clock=clock)
        integrity_every = options.get("integrity_seconds", INTEGRITY_SECONDS)
        checker.integrity = IntegrityProbe.for_store(store, _positive(integrity_every, 0.0))
        integrity = checker.integrity
        checker.register("store", lambda: check_store(store, integrity), ttl=ttl, timeout=timeout)
        checker.register("disk", lambda: check_disk(settings, store), ttl=ttl, timeout=timeout)
        checker.register("memory", check_memory, ttl=ttl, timeout=timeout)
        checker.register(
            "freshness", lambda: check_freshness(store, clock()), ttl=ttl, timeout=timeout
        )
        # The pipelines themselves: a server that is fine serving a failing platform is not
        # "healthy". `health: {pipelines_critical: false}` keeps it from failing health.
        checker.register(
            "pipelines",
            lambda: check_pipelines(store),
            ttl=ttl,
            timeout=timeout,
            critical=bool(options.get("pipelines_critical", True)),
        )
        # Warehouse monitors, once there are any (`lakelens serve` adds it when one appears).
        if has_monitors(settings, store):
            register_monitors(checker, store, options, ttl=ttl, timeout=timeout)
        for name, target in _entry_point_checks():
            if name not in checker._components:
                checker.register(name, target, ttl=ttl, timeout=timeout)
        checks = options.get("checks")
        if isinstance(checks, Mapping):
            for name, spec in checks.items():
                checker._register_spec(str(name), spec, ttl=ttl, timeout=timeout)
        return checker

    def register(
        self,
        name: str,
        check: Callable[[], Any],
        *,
        timeout: float = 5.0,
        ttl: float = 30.0,
        critical: bool = True,
    ) -> None:
        """Add (or replace) a component; `critical=False` lets it degrade but never fail health."""
        with self._lock:
            self._components[name] = _Component(name, check, timeout, ttl, critical)

    def _register_spec(self, name: str, spec: Any, *, ttl: float, timeout: float) -> None:
        options: Mapping[str, Any] = spec if isinstance(spec, Mapping) else {"check": spec}
        target = options.get("check") or options.get("target")
        self.register(
            name,
            _imported(str(target)) if target else _broken(f"no 'check' given for {name!r}"),
            timeout=_positive(options.get("timeout_seconds", options.get("timeout")), timeout),
            ttl=_positive(options.get("cache_seconds", options.get("ttl")), ttl),
            critical=bool(options.get("critical", True)),
        )

    def names(self) -> list[str]:
        with self._lock:
            return list(self._components)

    def __contains__(self, name: object) -> bool:
        return name in self._components

    # -- running checks ----------------------------------------------------------------------
    def _start(self, component: _Component) -> Future[ComponentResult] | ComponentResult:
        """A fresh cached result, or the future of a run (an earlier stuck one is reused)."""
        now = time.monotonic()
        with self._lock:
            if component.last is not None and now - component.last_at < component.ttl:
                cached = ComponentResult(**{**component.last.__dict__, "cached": True})
                return cached
            if component.running is None or component.running.done():
                future: Future[ComponentResult] = Future()
                component.running, component.started = future, now
                threading.Thread(
                    target=self._run,
                    args=(component, future),
                    name=f"lakelens-health-{component.name}",
                    daemon=True,
                ).start()
            return component.running

    def _run(self, component: _Component, future: Future[ComponentResult]) -> None:
        began = time.perf_counter()
        try:
            status, details, error = normalize(component.check())
        except BaseException as exc:  # a check must never take the endpoint down
            status, details, error = "unhealthy", {}, _first_line(exc)
            if not isinstance(exc, Exception):
                traceback.print_exc()
        future.set_result(
            ComponentResult(
                name=component.name,
                status=status,
                details=details,
                error=error,
                checked_at=self.clock(),
                duration_ms=(time.perf_counter() - began) * 1000,
                critical=component.critical,
            )
        )

    def _finish(
        self, component: _Component, pending: Future[ComponentResult] | ComponentResult
    ) -> ComponentResult:
        if isinstance(pending, ComponentResult):
            return pending
        remaining = component.timeout - (time.monotonic() - component.started)
        try:
            result = pending.result(timeout=max(0.0, remaining))
        except FutureTimeout:
            result = ComponentResult(
                name=component.name,
                status="unhealthy",
                error=f"timed out after {component.timeout:g}s",
                checked_at=self.clock(),
                duration_ms=(time.monotonic() - component.started) * 1000,
                critical=component.critical,
            )
        with self._lock:
            component.last, component.last_at = result, time.monotonic()
        return result

    def check(self, name: str) -> ComponentResult:
        """One component (KeyError when there is no such component)."""
        component = self._components[name]
        return self._finish(component, self._start(component))

    def check_all(self) -> dict[str, Any]:
        """Every component, run concurrently: the body of `/health`."""
        with self._lock:
            components = list(self._components.values())
        pending = [(c, self._start(c)) for c in components]
        results = {c.name: self._finish(c, p) for c, p in pending}
        from lakelens._version import __version__

        return {
            "status": overall_status(results),
            "version": __version__,
            "checked_at": self.clock(),
            "components": {name: r.to_dict() for name, r in results.items()},
        }


def _positive(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default


def _broken(reason: str) -> Callable[[], Any]:
    def check() -> Any:
        raise LookupError(reason)

    return check


def _imported(target: str) -> Callable[[], Any]:
    """The callable at 'package.module:function', imported on first use."""
    loaded: list[Callable[[], Any]] = []

    def check() -> Any:
        if not loaded:
            import importlib

            module_name, _, attribute = target.partition(":")
            if not module_name or not attribute:
                raise LookupError(f"{target!r} is not of the form 'package.module:function'")
            value: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                value = getattr(value, part)
            if not callable(value):
                raise LookupError(f"{target!r} is not callable")
            loaded.append(value)
        return loaded[0]()

    return check


def _entry_point_checks() -> list[tuple[str, Callable[[], Any]]]:
    from importlib.metadata import entry_points

    found: list[tuple[str, Callable[[], Any]]] = []
    for point in entry_points(group=ENTRY_POINT_GROUP):

        def check(point: Any = point) -> Any:
            return point.load()()

        found.append((point.name, check))
    return found


# -- built-in components ---------------------------------------------------------------------


def _threshold(percent: float) -> str:
    if percent >= CRITICAL_PERCENT:
        return "unhealthy"
    if percent >= WARNING_PERCENT:
        return "degraded"
    return "healthy"


def schema_state(store: Store) -> tuple[str | None, str | None]:
    """(revision in the database, newest revision this lakelens ships)."""
    from lakelens.store.revision import HEAD_REVISION

    try:
        with store.reader() as db:
            return db.value("SELECT version_num FROM alembic_version"), HEAD_REVISION
    except Exception:  # no alembic_version table (an empty database): ask Alembic's way
        from lakelens.store import migrate

        return migrate.current_revision(store.engine), HEAD_REVISION


class IntegrityProbe:
    """`PRAGMA quick_check` of the SQLite store file, in a thread of its own, at most once
    every `interval` seconds: `/health` and `/readyz` read the last result and never wait
    for a whole-file read (seconds on a big store), except once for the very first."""

    def __init__(
        self, path: Any, interval: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = path
        self.interval = interval
        self.clock = clock
        self.problem: str | None = None
        self.error: str | None = None  # why the last check could not run
        self.checked_at: float | None = None  # epoch seconds of the last finished check
        self._last_start = float("-inf")
        self._running: threading.Thread | None = None
        self._first = threading.Event()
        self._lock = threading.Lock()

    @classmethod
    def for_store(cls, store: Store, interval: float) -> IntegrityProbe | None:
        from lakelens.store.sql import sqlite_file

        path = sqlite_file(store.url)
        return cls(path, interval) if path is not None and interval > 0 else None

    def _run(self) -> None:
        from lakelens.store.damage import quick_check

        try:
            problem = quick_check(self.path) if self.path.exists() else None
        except Exception as exc:  # not damage (a lock, an I/O error): no news; next time
            problem = self.problem
            self.error = _first_line(exc)
        with self._lock:
            self.problem, self.checked_at = problem, time.time()
        self._first.set()

    def latest(self, wait: float = 0.0) -> tuple[str | None, float | None]:
        """(first problem found or None, when it was checked or None if never); starts a
        check when the last one is older than the interval."""
        with self._lock:
            due = self.clock() - self._last_start >= self.interval
            if due and (self._running is None or not self._running.is_alive()):
                self._last_start = self.clock()
                self._running = threading.Thread(
                    target=self._run, name="lakelens-integrity", daemon=True
                )
                self._running.start()
        if wait > 0:
            self._first.wait(wait)
        with self._lock:
            return self.problem, self.checked_at


def check_store(
    store: Store, integrity: IntegrityProbe | None = None
) -> tuple[str, dict[str, Any]]:
    from lakelens.store.log_search import describe

    began = time.perf_counter()
    with store.reader() as db:
        db.value("SELECT 1")
        latency = (time.perf_counter() - began) * 1000
        # Not a problem, a slower path: "scan (...)" says how to enable the index.
        log_search = describe(db, keep_days=store.settings.retention_days)
    current, head = schema_state(store)
    details: dict[str, Any] = {
        "backend": "sqlite" if store.is_sqlite else "postgresql",
        "location": store.location,
        "latency_ms": round(latency, 3),
        "revision": current,
        "head": head,
        "log_search": log_search,
    }
    if not store.is_sqlite and current == head:
        details.update(_partitioning(store))
    if store.upkeep_at is not None:  # epoch seconds of this process's last partition upkeep
        details["upkeep_at"] = store.upkeep_at
    if integrity is not None:
        problem, checked_at = integrity.latest(wait=FIRST_INTEGRITY_WAIT)
        details["integrity"] = "pending" if checked_at is None else (problem or "ok")
        details["integrity_checked_at"] = checked_at
        if problem is not None:
            from lakelens.store.damage import damaged

            details["problem"] = str(damaged(integrity.path, f"quick_check: {problem}"))
            return "unhealthy", details
    if current != head:
        details["problem"] = "migrations are not applied: run `lakelens db upgrade`"
        return "degraded", details
    return ("degraded" if latency > SLOW_STORE_MS else "healthy"), details


def _partitioning(store: Store) -> dict[str, Any]:
    """How logs and spans are kept on PostgreSQL: by day, or one table with a note on why and
    how to change it (the store keeps working either way, so the status does not change)."""
    from lakelens.store.partition_state import PARTITIONED, state

    with store.reader() as db:
        found = [state(db, table) for table in PARTITIONED]
    details: dict[str, Any] = {}
    for s in found:
        if s.mode == "days":
            details[s.table] = "partitioned by day"
        else:
            details[s.table] = "rows in the default partition" if s.partitioned else "one table"
    notes = [s.note for s in found if s.note]
    if notes:
        details["note"] = "; ".join(notes)
    return details


def _data_path(settings: Settings, store: Store) -> str:
    import os

    if store.is_sqlite:
        from lakelens.store.sql import sqlite_file

        database = sqlite_file(store.url)
        if database is not None:
            return os.path.dirname(os.path.abspath(database))
    home = os.path.abspath(settings.home)
    while not os.path.exists(home):
        home = os.path.dirname(home)
    return home


def check_disk(settings: Settings, store: Store) -> tuple[str, dict[str, Any]]:
    import psutil

    path = _data_path(settings, store)
    usage = psutil.disk_usage(path)
    return _threshold(usage.percent), {
        "path": path,
        "percent": usage.percent,
        "free_bytes": usage.free,
        "warning_percent": WARNING_PERCENT,
        "critical_percent": CRITICAL_PERCENT,
    }


def check_memory() -> tuple[str, dict[str, Any]]:
    import psutil

    memory = psutil.virtual_memory()
    return _threshold(memory.percent), {
        "percent": memory.percent,
        "available_bytes": memory.available,
        "warning_percent": WARNING_PERCENT,
        "critical_percent": CRITICAL_PERCENT,
    }


def check_freshness(store: Store, now: float) -> tuple[str, dict[str, Any]]:
    """Assets older than their freshness SLA (from the state kept on the assets table)."""
    with store.reader() as db:
        rows = db.rows(
            "SELECT name, freshness_seconds, last_success_time, critical FROM assets "
            "WHERE freshness_seconds IS NOT NULL AND last_success_time IS NOT NULL ORDER BY name"
        )
    breaching = [
        {
            "asset": name,
            "age_seconds": round(now - last, 3),
            "sla_seconds": sla,
            "critical": bool(critical),
        }
        for name, sla, last, critical in rows
        if now - last > sla
    ]
    breaching.sort(key=lambda b: (not b["critical"], -b["age_seconds"] / b["sla_seconds"]))
    status = "healthy"
    if breaching:
        status = "unhealthy" if any(b["critical"] for b in breaching) else "degraded"
    return status, {
        "assets_with_sla": len(rows),
        "breaching_count": len(breaching),
        "breaching": breaching[:20],
    }


def check_pipelines(store: Store) -> tuple[str, dict[str, Any]]:
    """Failing assets and open incidents: degraded when anything is failing, unhealthy when a
    critical asset is or a critical incident is open."""
    with store.reader() as db:
        failing = db.rows(
            "SELECT name, critical FROM assets WHERE last_status = 'failure' ORDER BY name"
        )
        incidents = db.rows(
            "SELECT severity, count(*) FROM incidents "
            "WHERE status IN ('open', 'acknowledged') GROUP BY severity"
        )
    open_by_severity = {str(severity): int(count) for severity, count in incidents}
    critical = [name for name, is_critical in failing if is_critical]
    status = "healthy"
    if failing or open_by_severity:
        status = "degraded"
    if critical or open_by_severity.get("critical"):
        status = "unhealthy"
    return status, {
        "failing_count": len(failing),
        "failing": [name for name, _ in failing[:20]],
        "critical_failing": critical[:20],
        "open_incidents": open_by_severity,
    }


# -- warehouse monitors ------------------------------------------------------------------------


def has_monitors(settings: Settings, store: Store) -> bool:
    """Whether lakelens.yaml declares monitors or the store has any (False if it cannot say)."""
    if isinstance(settings.raw, Mapping) and settings.raw.get("monitors"):
        return True
    if not store.exists():
        return False  # asking would create the store
    try:
        with store.reader() as db:
            return bool(db.value("SELECT count(*) FROM monitors"))
    except Exception:  # no store yet, or one from before monitors: none
        return False


def register_monitors(
    checker: HealthChecker,
    store: Store,
    options: Mapping[str, Any] | None = None,
    *,
    ttl: float = 30.0,
    timeout: float = 5.0,
) -> None:
    """Add the `monitors` component. Not critical unless `health: {monitors_critical: true}`:
    a warehouse lakelens cannot read degrades lakelens' health but does not fail it."""
    options = options or {}
    checker.register(
        "monitors",
        lambda: check_monitors(store, checker.clock()),
        ttl=ttl,
        timeout=timeout,
        critical=bool(options.get("monitors_critical", False)),
    )


def check_monitors(store: Store, now: float) -> tuple[str, dict[str, Any]]:
    """Unhealthy when a monitor read nothing last time (unreachable, credentials); degraded when
    it could not read some tables, or is overdue (no cycle for twice its interval)."""
    from lakelens.monitors.state import load_monitors

    with store.connect() as conn:
        monitors = load_monitors(conn)
    failing, overdue = [], []
    status = "healthy"
    for state in monitors:
        if state.last_error:
            failing.append({"monitor": state.name, "error": state.last_error})
            status = "unhealthy" if state.unreachable else max_status(status, "degraded")
        late = state.last_run is None or now - state.last_run > 2 * state.config.interval + 60
        if late and not state.last_error:
            overdue.append(state.name)
            status = max_status(status, "degraded")
    return status, {
        "monitors": len(monitors),
        "failing_count": len(failing),
        "failing": failing[:20],
        "overdue": overdue[:20],
    }


def max_status(a: str, b: str) -> str:
    return STATUSES[max(STATUSES.index(a), STATUSES.index(b))]
