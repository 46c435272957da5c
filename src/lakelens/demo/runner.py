"""`run_demo()`: record a simulated day of the glucose pipeline into a store, then summarize it."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lakelens
from lakelens.demo.glucose import JOB, GlucosePipeline
from lakelens.demo.simulation import SLOT_SECONDS, Lakehouse, NightscoutAPI, Simulation
from lakelens.errors import InvalidArgumentError, StoreError
from lakelens.testing import recording

if TYPE_CHECKING:
    from lakelens.analysis.summary import Summary
    from lakelens.store import Store

__all__ = ["DemoResult", "run_demo"]

RUNS_PER_HOUR = 12
DASHBOARD = "superset_glucose_dashboard"


@dataclass(frozen=True)
class DemoResult:
    """What `run_demo()` recorded and where: the store, the counts, and the summary of the window."""

    location: str
    seed: int
    runs: int
    failures: int
    errors: dict[str, int]
    since: float
    until: float
    elapsed_seconds: float
    events_written: int
    replaced_previous: bool
    ongoing_outage: bool
    summary: Summary

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_demo(
    home: str | Path | None = None,
    runs: int = 288,
    seed: int = 42,
    progress: Callable[[int, int], None] | None = None,
) -> DemoResult:
    """Record `runs` runs of the glucose pipeline, one every 5 minutes, ending now.

    Time is simulated (a FakeClock) and every choice is seeded, so it takes seconds and the
    same seed records the same events and ids. `home` works like LAKELENS_HOME (which, with
    LAKELENS_DATABASE_URL, applies when it is None). `progress(done, total)` is called after
    each run. The SDK's previous configuration is restored afterwards.
    """
    from lakelens.analysis.summary import summary
    from lakelens.config import load_settings
    from lakelens.store import Store

    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise InvalidArgumentError(f"Invalid runs={runs!r}: expected a whole number of runs >= 1.")
    settings = load_settings(
        home=None if home is None else str(home), log_format="none", log_level="INFO"
    )
    store = Store(settings=settings)
    try:
        replaced = _remove_previous_recording(store)
        wall = time.perf_counter()
        until = float(math.floor(time.time() / SLOT_SECONDS) * SLOT_SECONDS)
        since = until - runs * SLOT_SECONDS
        sim = Simulation(start=since, runs=runs, seed=seed)
        with recording(settings=settings, store=store, clock=sim.clock, id_seed=seed):
            errors = _record(sim, progress)
            if not lakelens.flush(timeout=120.0):
                raise StoreError(
                    f"Could not write the demo to {store.location}: "
                    f"{lakelens.stats()['last_error'] or 'the store is too slow'}."
                )
            written = lakelens.stats()["written"]
        _evaluate_alerts(store)
        return DemoResult(
            location=store.location,
            seed=seed,
            runs=runs,
            failures=sum(errors.values()),
            errors=dict(errors),
            since=since,
            until=until,
            elapsed_seconds=time.perf_counter() - wall,
            events_written=written,
            replaced_previous=replaced,
            ongoing_outage=bool(sim.ongoing_outage),
            summary=summary(store, since=since),
        )
    finally:
        store.close()


def _evaluate_alerts(store: Store) -> None:
    """Evaluate once, now that the day is recorded: the summary, `alerts firing` and
    `incidents` show the live state, and a configured destination hears about what is open
    now (never about moments in the recorded past: nothing evaluated while recording)."""
    from lakelens.alerts.service import AlertingService

    service = AlertingService(store)
    try:
        service.engine.evaluate(group_wait=0.0)  # the recording is complete
        if service.destinations:
            service.worker.run_once(deadline=time.monotonic() + 5.0)  # the rest waits in the outbox
    finally:
        service.close()


def _record(sim: Simulation, progress: Callable[[int, int], None] | None) -> Counter[str]:
    """Run the pipeline once per slot, as a scheduler would; a failed run does not stop the day."""
    pipeline = GlucosePipeline(NightscoutAPI(sim), Lakehouse(sim), sleep=sim.sleep)
    errors: Counter[str] = Counter()
    for index in range(sim.runs):
        slot = sim.start_run(index)
        partition = datetime.fromtimestamp(slot, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M")
        try:
            pipeline.run(partition, hourly=index % RUNS_PER_HOUR == 0)
        except OSError as exc:  # the API was unreachable: recorded as a failed run
            errors[str(exc)] += 1
        # The dashboard reports its views (about 450 a day, more in daytime), as the seeds'
        # "Superset Dashboard (Glucose Monitoring) → 450 views/day".
        daytime = 7 <= datetime.fromtimestamp(slot, tz=timezone.utc).hour < 21
        views = 2 + index % 2 if daytime else int(index % 3 == 0)
        if views:
            lakelens.usage(DASHBOARD, views=views)
        if progress is not None:
            progress(index + 1, sim.runs)
    return errors


def _remove_previous_recording(store: Store) -> bool:
    """Delete an earlier demo recording (its runs and everything tied to them) so the demo can run again.

    Only the demo's own job and assets are touched; other data in the store stays.
    """
    import sqlalchemy as sa

    from lakelens.store import schema
    from lakelens.store.engine import is_sqlite

    runs = schema.runs
    demo_runs = sa.select(runs.c.run_id).where(runs.c.job == JOB).scalar_subquery()
    with store.connect() as conn:
        if conn.execute(sa.select(runs.c.run_id).where(runs.c.job == JOB).limit(1)).first() is None:
            return False
        if is_sqlite(store.engine):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            from lakelens.store.writes import LOCK_ROLLUPS

            conn.exec_driver_sql(LOCK_ROLLUPS)  # delete triggers update the rollups
        for table in (
            schema.logs,
            schema.spans,
            schema.check_results,
            schema.metric_points,
            schema.schema_snapshots,
            schema.asset_usage,
        ):
            conn.execute(sa.delete(table).where(table.c.run_id.in_(demo_runs)))
        usage = schema.asset_usage
        conn.execute(  # the dashboard's views, which belong to no run
            sa.delete(usage).where(usage.c.asset == DASHBOARD, usage.c.kind == "view")
        )
        conn.execute(
            sa.delete(schema.materializations).where(
                schema.materializations.c.run_id.in_(demo_runs)
            )
        )
        conn.execute(sa.delete(runs).where(runs.c.job == JOB))
        conn.commit()
    return True
