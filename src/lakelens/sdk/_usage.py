"""`lakelens.usage()`: report who reads an asset, and how often, from outside a pipeline.

Reads by the pipeline itself need no call: an asset's `deps` are read once per run.
"""

from __future__ import annotations

from datetime import datetime

from lakelens.errors import InvalidArgumentError
from lakelens.model import AssetUsage, from_epoch, to_epoch
from lakelens.sdk._runtime import FRAME, RT
from lakelens.units import require_count

__all__ = ["usage"]

# As the store's `asset` and `reader` columns, and the native events' bound on one report.
_MAX_NAME = 512
_MAX_USES = 10**12


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(f"Invalid {what}={value!r}: expected a non-empty string.")
    if len(value) > _MAX_NAME:
        raise InvalidArgumentError(f"Invalid {what}: longer than {_MAX_NAME} characters.")
    return value


def usage(
    asset: str,
    *,
    views: int | None = None,
    reads: int | None = None,
    reader: str | None = None,
    time: datetime | float | None = None,
) -> AssetUsage:
    """Record views of a dashboard or reads by a job:
    `lakelens.usage("mrt_glucose_readings", views=450, reader="Superset: Glucose Monitoring")`.

    Views without a `reader` are the asset's own: a dashboard asset (a dbt exposure) reporting
    how often it was viewed, which counts as use of the assets it reads. Reads need a reader,
    or a run in progress: then the run's job reads the asset, once per run.
    """
    asset = _name(asset, "asset")
    if (views is None) == (reads is None):
        raise InvalidArgumentError(
            f"lakelens.usage({asset!r}) needs views=N (a dashboard's views) or reads=N "
            "(a job's reads), one of the two."
        )
    kind, amount = ("view", views) if views is not None else ("read", reads)
    count = require_count(amount, name=f"{kind}s")
    if not count or count > _MAX_USES:
        raise InvalidArgumentError(f"Invalid {kind}s={amount!r}: expected 1 to {_MAX_USES:,}.")
    run_id = None
    if reader is None:
        if kind == "view":
            reader = asset
        else:
            run = FRAME.get()[0] or RT.ambient_run()
            if run is None:
                raise InvalidArgumentError(
                    f"lakelens.usage({asset!r}, reads=…) needs reader='job name' outside a run."
                )
            reader, run_id = run.job, run.run_id
    reader = _name(reader, "reader")
    if time is not None and (
        isinstance(time, bool) or not isinstance(time, (datetime, int, float))
    ):
        raise InvalidArgumentError(f"Invalid time={time!r}: expected a datetime or epoch seconds.")
    moment = RT.clock() if time is None else to_epoch(time)
    event = AssetUsage(
        asset=asset,
        reader=reader,
        kind=kind,
        count=count,
        time=from_epoch(moment),
        run_id=run_id,
        source="sdk",
    )
    RT.writer.put(event)
    return event
