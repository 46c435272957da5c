"""lakelens: observability for data pipelines.

import lakelens

@lakelens.asset("dlt_glucose_entries", deps=["nightscout_api"], freshness="2h")
def load():
    with lakelens.span("fetch_from_api") as s:
        rows = fetch()
        s.set("rows_fetched", len(rows))
    lakelens.record(rows=len(rows))

with lakelens.run("daily_glucose_pipeline", partition="2024-10-15"):
    load()
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lakelens._version import __version__
from lakelens.errors import ConfigError, InvalidArgumentError, LakelensError, StoreError

if TYPE_CHECKING:
    from lakelens.config import Settings
    from lakelens.sdk import (
        AssetDefinition,
        RunContext,
        Span,
        asset,
        check,
        get_logger,
        metric,
        profile,
        record,
        run,
        schema,
        span,
        usage,
    )
    from lakelens.store import Store

# The SDK loads on first use, so that the CLI (which imports this package) starts quickly.
_SDK_NAMES = frozenset(
    (
        "AssetDefinition",
        "RunContext",
        "Span",
        "asset",
        "check",
        "get_logger",
        "metric",
        "profile",
        "record",
        "run",
        "schema",
        "span",
        "usage",
    )
)


def __getattr__(name: str) -> Any:
    if name in _SDK_NAMES:
        import lakelens.sdk

        value = getattr(lakelens.sdk, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lakelens' has no attribute {name!r}")


__all__ = [
    "AssetDefinition",
    "ConfigError",
    "InvalidArgumentError",
    "LakelensError",
    "RunContext",
    "Span",
    "StoreError",
    "__version__",
    "asset",
    "check",
    "configure",
    "flush",
    "get_logger",
    "metric",
    "profile",
    "record",
    "run",
    "schema",
    "span",
    "stats",
    "usage",
]


def configure(
    *,
    home: str | None = None,
    database_url: str | None = None,
    log_format: str | None = None,
    log_level: str | None = None,
    settings: Settings | None = None,
    store: Store | None = None,
    clock: Callable[[], float] | None = None,
    id_seed: int | None = None,
    **options: Any,
) -> None:
    """Point the SDK somewhere else or change how it logs; flushes what was queued first.

    Without a call, settings come from LAKELENS_* variables and lakelens.yaml. `clock` (a
    function returning epoch seconds) and `id_seed` make recordings reproducible (the demo uses them).
    """
    overrides = {
        key: value
        for key, value in dict(
            home=home,
            database_url=database_url,
            log_format=log_format,
            log_level=log_level,
            **options,
        ).items()
        if value is not None
    }
    from lakelens.sdk._runtime import RT

    RT.configure(settings=settings, store=store, clock=clock, id_seed=id_seed, **overrides)


def flush(timeout: float | None = 30.0) -> bool:
    """Block until every event recorded so far is committed to the store; False on timeout."""
    from lakelens.sdk._runtime import RT

    return RT.flush(timeout)


def stats() -> dict[str, Any]:
    """Counters of the background writer: events written, pending, dropped (by kind)."""
    from lakelens.sdk._runtime import RT

    writer = RT._writer
    if writer is None:
        return {"written": 0, "pending": 0, "dropped": {}, "last_error": None}
    return {
        "written": writer.written,
        "pending": writer.pending(),
        "dropped": dict(writer.dropped),
        "last_error": writer.last_error,
    }


# A process started inside a run (a `lakelens.run` exports LAKELENS_RUN_ID to its children)
# stores its `logging` records in that run once it imports lakelens, without a call.
if os.environ.get("LAKELENS_RUN_ID"):
    from lakelens.sdk._logs import capture_child_logging

    capture_child_logging()
