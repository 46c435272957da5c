"""Several PostgreSQL writers of materializations and checks for the same assets and hours: the
rollup lock is held only while shared rows are written, and they end as one writer would."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timezone
from typing import Any

from lakelens.events import Batch
from lakelens.model import CheckResult, LineageEdge, Materialization, Run
from lakelens.store import Store

T0 = 1_700_000_000.0 + 600.0  # ten minutes into an hour
ASSETS = [f"shop.t{k}" for k in range(4)]
WRITERS = 3
# Holders of the rollup lock (store/writes.py's key) in this database.
ROLLUP_LOCKS = (
    f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = {0x1A6E1E48} "
    "AND objsubid = 1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def _batches(k: int) -> list[tuple[str, Batch]]:
    """Writer k's transactions: a run materializing three of the four assets every writer
    writes, committed as started and finished in the writer's next transaction (an UPDATE that
    moves the row's duration bucket), with checks, lineage and logs, over the same three hours."""
    rng = random.Random(k)
    out: list[tuple[str, Batch]] = []
    started: list[Materialization] = []
    for i in range(40):
        batch = Batch()
        run, start = f"r{k}-{i}", T0 + rng.random() * 3 * 3600
        batch.runs.append(Run(run, "job", "started", _at(start)))
        for m in started:
            status = "success" if rng.random() < 0.8 else "failure"
            end = _at(start + rng.lognormvariate(0, 2))
            batch.materializations.append(
                Materialization(m.id, m.run_id, m.asset, status, end_time=end, rows=i)
            )
        started = []
        for asset in rng.sample(ASSETS, 3):
            started.append(Materialization(f"{k}-{i}-{asset}", run, asset, "started", _at(start)))
            batch.checks.append(
                CheckResult(f"c{k}-{i}-{asset}", asset, "not_null", i % 3 > 0, time=_at(start))
            )
            batch.edges.append(LineageEdge("raw.src", asset, "openlineage"))
            batch.logs.append((start, 20, "wrote", "test", run, asset, "job", None, None, None))
        batch.materializations.extend(started)
        out.append((f"b{k}-{i}", batch))
    return out


def _rollups(store: Store) -> dict[str, list[Any]]:
    with store.reader() as db:
        return {
            "asset_hours": db.rows("SELECT * FROM asset_hours ORDER BY hour, asset"),
            "hour_durations": db.rows("SELECT * FROM hour_durations ORDER BY hour, bucket"),
            "materializations": db.rows(
                "SELECT id, asset, status, start_time, end_time, duration, rows "
                "FROM materializations ORDER BY id"
            ),
            "assets": db.rows(
                "SELECT name, last_status, last_start_time, last_end_time FROM assets ORDER BY name"
            ),
        }


def test_concurrent_writers_end_with_the_rollups_of_one_writer(
    pg_url: str, empty_postgres_url: str
) -> None:
    """Three writers at once (each its own connection, as three servers are) store what one
    writer stores, rollups included, and no deadlock nor any other error reaches a writer."""
    work = [_batches(k) for k in range(WRITERS)]
    together = Store(pg_url)
    errors: list[str] = []

    def write(batches: list[tuple[str, Batch]]) -> None:
        for batch_id, batch in batches:
            try:
                together.write(batch, batch_id=batch_id)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}".splitlines()[0])

    alone = Store(empty_postgres_url)
    try:
        threads = [threading.Thread(target=write, args=(batches,)) for batches in work]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        for batches in work:
            for batch_id, batch in batches:
                assert alone.write(batch, batch_id=batch_id)
        expected = _rollups(alone)
        assert len(expected["materializations"]) == WRITERS * 40 * 3
        assert _rollups(together) == expected
        with together.reader() as db:
            # Nobody holds the rollup lock once the writers are done (it is a session lock).
            assert db.value(ROLLUP_LOCKS) == 0
    finally:
        together.close()
        alone.close()


def test_a_write_failing_under_the_rollup_lock_leaves_it_free(empty_postgres_url: str) -> None:
    """The rollup lock is a session lock, which a rollback keeps: a transaction failing after
    taking it closes its connection, so the next writer (another server) is not blocked."""
    import pytest
    import sqlalchemy as sa

    store, other = Store(empty_postgres_url), Store(empty_postgres_url)
    try:
        bad = Batch(materializations=[Materialization("m1", "r1", "a", "success", rows=2**70)])
        with pytest.raises(sa.exc.DBAPIError):
            store.write(bad)
        with other.reader() as db:
            assert db.value(ROLLUP_LOCKS) == 0
        good = Batch(materializations=[Materialization("m2", "r2", "a", "success", _at(T0))])
        assert other.write(good)
        assert store.write(Batch(checks=[CheckResult("c1", "a", "fresh", True, time=_at(T0))]))
    finally:
        store.close()
        other.close()


def test_writers_without_materializations_do_not_deadlock_with_those_under_the_lock(
    empty_postgres_url: str,
) -> None:
    """A batch of runs and assets only (an OpenLineage START without outputs) writes the same
    asset rows as one under the rollup lock, in its own order: it takes the lock for its shared
    rows too, so the two never wait for each other in a cycle (PostgreSQL's deadlock error)."""
    from lakelens.model import Asset

    names = [f"shop.d{k:02d}" for k in range(60)]
    errors: list[str] = []

    def write(store: Store, k: int) -> None:
        order = names if k % 2 else names[::-1]
        for i in range(25):
            batch = Batch(assets=[Asset(name) for name in order])
            batch.runs.append(Run(f"d{k}-{i}", "job", "started", _at(T0 + i)))
            if k % 2:  # this writer's batches take the rollup lock
                batch.materializations.append(
                    Materialization(f"d{k}-{i}", f"d{k}-{i}", order[0], "success", _at(T0 + i))
                )
            try:
                store.write(batch)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}".splitlines()[0])

    stores = [Store(empty_postgres_url) for _ in range(4)]
    try:
        threads = [threading.Thread(target=write, args=(s, k)) for k, s in enumerate(stores)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with stores[0].reader() as db:
            assert db.value("SELECT count(*) FROM runs") == 4 * 25
            assert db.value(ROLLUP_LOCKS) == 0
    finally:
        for store in stores:
            store.close()
