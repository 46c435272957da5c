"""`lakelens.asset(...)`: declare an asset and record its materializations."""

from __future__ import annotations

import functools
import inspect
import resource
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from lakelens.errors import InvalidArgumentError, LakelensError
from lakelens.model import Asset, AssetUsage, LineageEdge, Materialization, from_epoch
from lakelens.sdk._errors import describe, status_for
from lakelens.sdk._runs import RunContext, RunState
from lakelens.sdk._runtime import FRAME, RT
from lakelens.sdk._spans import Span
from lakelens.units import format_duration, parse_duration, parse_percent, require_count

__all__ = ["AssetDefinition", "Materializing", "asset", "record"]

F = TypeVar("F", bound=Callable[..., Any])
ASSET_KINDS = (
    "asset",
    "table",
    "model",
    "source",
    "external",
    "dashboard",
    "view",
    "file",
    "topic",
)


class _PeakMemory:
    """Per-materialization peak RSS: Linux lets a process reset its high-water mark."""

    _lock = threading.Lock()
    _active = 0

    @classmethod
    def begin(cls) -> None:
        with cls._lock:
            cls._active += 1
            if cls._active == 1:
                try:
                    with open("/proc/self/clear_refs", "w") as handle:
                        handle.write("5")
                except OSError:
                    pass

    @classmethod
    def end(cls) -> int | None:
        with cls._lock:
            cls._active = max(0, cls._active - 1)
        try:
            with open("/proc/self/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        try:
            return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
        except (OSError, ValueError):
            return None


class Materializing:
    """One materialization in progress: the handle `with lakelens.asset(...) as m:` gives."""

    def __init__(self, definition: AssetDefinition) -> None:
        self.definition = definition
        self.name = definition.name
        self.id = RT.new_id()
        self.rows: int | None = None
        self.bytes: int | None = None
        self.inserts: int | None = None
        self.updates: int | None = None
        self.cpu_seconds: float | None = None
        self.peak_memory_bytes: int | None = None
        self.attributes: dict[str, Any] = {}
        self.run: RunState | None = None
        self._implicit_run: RunContext | None = None
        self._span: Span | None = None
        self._token: Any = None
        self._cpu_start = 0.0
        self.start = 0.0

    def record(self, **values: Any) -> None:
        """Set rows, bytes, inserts, updates (and cpu_seconds, peak_memory_bytes, attributes)."""
        _apply_record(self, values)

    def __enter__(self) -> Materializing:
        self.definition.declare()
        run, _mat, parent = FRAME.get()
        if run is None:
            run = RT.ambient_run()
        if run is None:
            self._implicit_run = RunContext(self.name, trigger="implicit")
            self._implicit_run.__enter__()
            run = self._implicit_run.state
        assert run is not None
        self.run = run
        self.start = RT.clock()
        self._cpu_start = time.process_time()
        _PeakMemory.begin()
        RT.writer.put(
            Materialization(
                id=self.id,
                run_id=run.run_id,
                asset=self.name,
                status="started",
                start_time=from_epoch(self.start),
                partition=run.partition,
            )
        )
        for dep in self.definition.deps:
            if dep not in run.reads:
                run.reads.add(dep)
                RT.writer.put(
                    AssetUsage(
                        asset=dep,
                        reader=run.job,
                        time=from_epoch(self.start),
                        run_id=run.run_id,
                        source="sdk",
                    )
                )
        self._token = FRAME.set((run, self, parent))
        # The materialization is the root span of its asset's work.
        self._span = Span(self.name, {"lakelens.asset": self.name})
        self._span.__enter__()
        from lakelens.sdk._logs import store_log

        store_log(20, f"{self.name} started", "lakelens", run, self, self._span, None)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        from lakelens.sdk._logs import store_log

        assert self.run is not None and self._span is not None
        end = RT.clock()
        cpu = (
            self.cpu_seconds
            if self.cpu_seconds is not None
            else time.process_time() - self._cpu_start
        )
        peak = _PeakMemory.end()
        if self.peak_memory_bytes is not None:
            peak = self.peak_memory_bytes
        status = status_for(exc_type)
        error: tuple[str | None, str | None, str | None] = (None, None, None)
        duration_ms = (end - self.start) * 1000
        if exc_type is not None and exc is not None:
            error = describe(exc_type, exc, tb)
            store_log(
                40,
                f"{self.name} failed: {error[1]}",
                "lakelens",
                self.run,
                self,
                self._span,
                {
                    "error_type": error[0],
                    "exception": error[2],
                    "duration_ms": round(duration_ms, 3),
                },
            )
            self.run.failed_assets.append(self.name)
        else:
            attrs: dict[str, Any] = {"duration_ms": round(duration_ms, 3)}
            if self.rows is not None:
                attrs["rows"] = self.rows
            store_log(
                20,
                f"{self.name} succeeded in {format_duration(end - self.start)}",
                "lakelens",
                self.run,
                self,
                self._span,
                attrs,
            )
        self._span.__exit__(exc_type, exc, tb)
        FRAME.reset(self._token)
        RT.writer.put(
            Materialization(
                id=self.id,
                run_id=self.run.run_id,
                asset=self.name,
                status=status,
                start_time=from_epoch(self.start),
                end_time=from_epoch(end),
                partition=self.run.partition,
                rows=self.rows,
                bytes=self.bytes,
                inserts=self.inserts,
                updates=self.updates,
                cpu_seconds=cpu,
                peak_memory_bytes=peak,
                error_type=error[0],
                error_message=error[1],
                error_traceback=error[2],
                attributes=self.attributes,
            )
        )
        if self._implicit_run is not None:
            self._implicit_run.__exit__(exc_type, exc, tb)


_COUNTS = ("rows", "bytes", "inserts", "updates", "peak_memory_bytes")


def _apply_record(mat: Materializing, values: dict[str, Any]) -> None:
    # Validate everything first so a bad value writes nothing.
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key in _COUNTS:
            checked[key] = require_count(value, name=key)
        elif key == "cpu_seconds":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InvalidArgumentError(
                    f"Invalid cpu_seconds={value!r}: expected a number of seconds >= 0."
                )
            checked[key] = float(value)
        else:
            checked[key] = value
    for key, value in checked.items():
        if key in _COUNTS or key == "cpu_seconds":
            setattr(mat, key, value)
        else:
            mat.attributes[key] = value


def record(**values: Any) -> None:
    """Record what the current materialization did: `lakelens.record(rows=487, bytes=…, inserts=…, updates=…)`.

    Other keyword arguments are kept as attributes of the materialization.
    """
    mat = FRAME.get()[1]
    if mat is None:
        raise LakelensError(
            "lakelens.record() needs a materialization in progress: call it inside "
            "`with lakelens.asset(...)` or a function decorated with @lakelens.asset."
        )
    _apply_record(mat, values)


class AssetDefinition:
    """An asset's definition; a decorator and a context manager that records materializations."""

    def __init__(
        self,
        name: str,
        *,
        deps: Iterable[str] = (),
        kind: str = "asset",
        freshness: object = None,
        owner: str | None = None,
        layer: str | None = None,
        group: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        critical: bool | None = None,
        expected_rows: int | None = None,
        availability: object = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgumentError(f"Invalid asset name {name!r}: expected a non-empty string.")
        if isinstance(deps, str):
            deps = [deps]
        dep_list = list(deps)
        for dep in dep_list:
            if not isinstance(dep, str) or not dep.strip():
                raise InvalidArgumentError(
                    f"Invalid deps entry {dep!r} for asset {name!r}: expected asset names."
                )
        if kind not in ASSET_KINDS:
            raise InvalidArgumentError(
                f"Invalid kind={kind!r} for asset {name!r}: use one of {', '.join(ASSET_KINDS)}."
            )
        if tags is not None and not isinstance(tags, dict):
            raise InvalidArgumentError(f"Invalid tags={tags!r}: expected a dict of strings.")
        self.name = name
        self.deps = dep_list
        self.model = Asset(
            name=name,
            kind=kind,
            owner=owner,
            layer=layer,
            group=group,
            description=description,
            freshness_seconds=None
            if freshness is None
            else parse_duration(freshness, name="freshness"),
            availability_target=None
            if availability is None
            else parse_percent(availability, name="availability"),
            expected_rows=require_count(expected_rows, name="expected_rows"),
            critical=None if critical is None else bool(critical),
            tags={str(k): str(v) for k, v in (tags or {}).items()},
        )
        self._declared_with: object = None
        self._active: list[Materializing] = []

    def declare(self) -> AssetDefinition:
        """Record the definition and its lineage without materializing (once per process)."""
        if self._declared_with is not RT.writer:
            self.model.updated_at = from_epoch(RT.clock())
            RT.writer.put(self.model)
            for dep in self.deps:
                RT.writer.put(
                    LineageEdge(
                        upstream=dep,
                        downstream=self.name,
                        source="sdk",
                        updated_at=self.model.updated_at,
                    )
                )
            self._declared_with = RT.writer
        return self

    def materialize(self) -> Materializing:
        """A fresh materialization context for this asset."""
        return Materializing(self)

    def __enter__(self) -> Materializing:
        mat = Materializing(self)
        self._active.append(mat)
        return mat.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._active.pop().__exit__(*exc)

    def __call__(self, fn: F) -> F:
        """Use as a decorator: every call of `fn` is one materialization."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with Materializing(self):
                    return await fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with Materializing(self):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def asset(
    name: str,
    *,
    deps: Iterable[str] = (),
    kind: str = "asset",
    freshness: object = None,
    owner: str | None = None,
    layer: str | None = None,
    group: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    critical: bool | None = None,
    expected_rows: int | None = None,
    availability: object = None,
) -> AssetDefinition:
    """Declare an asset; use it as a decorator or `with` block to record a materialization.

    `@lakelens.asset("dlt_glucose_entries", deps=["nightscout_api"], freshness="2h", owner="data-platform", layer="bronze")`

    `critical=True` marks the asset critical, `critical=False` unmarks it; left out, it stays
    as another source (dbt `meta.critical`, an earlier declaration) set it. Tags are merged
    into the asset's stored tags: the keys given are set, others kept.

    Inside a run the materialization belongs to it; outside, an implicit one-asset run is made.
    CPU seconds and peak memory are captured automatically; call `lakelens.record(rows=…)`.
    Invalid arguments raise InvalidArgumentError here, before anything is written.
    """
    return AssetDefinition(
        name,
        deps=deps,
        kind=kind,
        freshness=freshness,
        owner=owner,
        layer=layer,
        group=group,
        description=description,
        tags=tags,
        critical=critical,
        expected_rows=expected_rows,
        availability=availability,
    )
