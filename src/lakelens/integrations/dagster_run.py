"""The lakelens SDK inside a Dagster op: `lakelens_run(context)` joins the Dagster run, so
SDK, dlt and dbt code in the op records under the Dagster run id and names the op's asset."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lakelens.sdk._runtime import ENV_CORRELATION_ID, ENV_JOB, ENV_RUN_ID, FRAME, RT, trace_id_for

if TYPE_CHECKING:
    import dagster as dg

    from lakelens.sdk._runs import RunState

__all__ = ["lakelens_run"]


class _AssetScope:
    """The asset code in `lakelens_run` works for: its logs, spans, checks and metrics name it.

    Dagster records the materialization itself, so this is no SDK materialization;
    `lakelens.record()` inside the block keeps the numbers here and stores nothing.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.attributes: dict[str, Any] = {}


def _asset_of(context: Any) -> str | None:
    """The one asset an op computes, or None (a plain op, or several assets at once)."""
    try:
        if not context.has_assets_def:
            return None
        keys = list(context.selected_asset_keys)
    except Exception:  # contexts of other Dagster versions: no asset rather than no run
        return None
    from lakelens.integrations.dagster import asset_name

    return asset_name(keys[0]) if len(keys) == 1 else None


@contextlib.contextmanager
def lakelens_run(
    context: dg.OpExecutionContext | dg.AssetExecutionContext,
    *,
    asset: str | None = None,
    flush_timeout: float = 10.0,
) -> Iterator[RunState]:
    """Make lakelens SDK code inside an op record under the Dagster run id.

        @dg.asset
        def orders(context: dg.AssetExecutionContext) -> None:
            with lakelens_run(context):
                pipeline.run(source)  # dlt, dbt or lakelens SDK code: same run id

    Child processes started inside the block inherit LAKELENS_RUN_ID (and dbt gets
    DBT_ENV_CUSTOM_ENV_LAKELENS_RUN_ID, so an imported dbt invocation names the Dagster run
    as its parent). The run's start, end and status stay Dagster's: the SDK joins the run
    instead of opening one. Logs, spans, checks and metrics in the block name the asset the op
    computes (`raw.orders`), or `asset` when given (needed for a multi-asset).
    Events the SDK queued are flushed at the end of the block (at most `flush_timeout` s).
    """
    from lakelens.sdk._logs import install_stdlib_capture
    from lakelens.sdk._runs import RunState

    run_id = context.run.run_id
    job = context.run.job_name or "dagster"
    partition = context.partition_key if context.has_partition_key else None
    # An id given by whoever started Dagster (LOG_CORRELATION_ID) is kept and passed on.
    correlation_id = os.environ.get(ENV_CORRELATION_ID) or run_id
    state = RunState(
        run_id, job, trace_id_for(run_id), partition, joined=True, correlation_id=correlation_id
    )
    exported = {
        ENV_RUN_ID: run_id,
        ENV_CORRELATION_ID: correlation_id,
        ENV_JOB: job,
        # dbt keeps DBT_ENV_CUSTOM_ENV_* in run_results.json; the dbt importer reads this one
        # as the parent run of the invocation.
        "DBT_ENV_CUSTOM_ENV_LAKELENS_RUN_ID": run_id,
    }
    saved = {key: os.environ.get(key) for key in exported}
    os.environ.update(exported)
    name = asset if asset is not None else _asset_of(context)
    scope = _AssetScope(name) if name else None
    token = FRAME.set((state, scope, None))  # type: ignore[arg-type]
    install_stdlib_capture()
    try:
        yield state
    finally:
        FRAME.reset(token)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        RT.flush(flush_timeout)
