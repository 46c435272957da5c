"""The assets table carries each asset's latest outcome, kept by the writer and by migration 0002."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from lakelens.events import Batch
from lakelens.model import Materialization
from lakelens.store import Store, schema
from lakelens.store.schema import HEAD_REVISION


def _mat(mid: str, asset: str, status: str, start: float) -> Materialization:
    return Materialization(mid, f"run-{mid}", asset, status, start_time=start, end_time=start + 5)  # type: ignore[arg-type]


def _state(store: Store, asset: str) -> dict:
    a = schema.assets
    with store.connect() as conn:
        row = conn.execute(sa.select(a).where(a.c.name == asset)).mappings().one()
    return {
        k: row[k]
        for k in (
            "last_status",
            "last_start_time",
            "last_run_id",
            "last_success_time",
            "last_failure_time",
            "failure_streak",
        )
    }


def test_writer_tracks_latest_outcome_and_failure_streak(store_url: str) -> None:
    store = Store(store_url)
    for mid, status, start in [
        ("a", "success", 100.0),
        ("b", "failure", 200.0),
        ("c", "failure", 300.0),
    ]:
        batch = Batch()
        batch.add(_mat(mid, "x", "started", start))
        batch.add(_mat(mid, "x", status, start))
        store.write(batch)
    assert _state(store, "x") == {
        "last_status": "failure",
        "last_start_time": 300.0,
        "last_run_id": "run-c",
        "last_success_time": 105.0,
        "last_failure_time": 305.0,
        "failure_streak": 2,
    }
    # Writing the same failure again (a retried batch) does not count it twice.
    again = Batch()
    again.add(_mat("c", "x", "failure", 300.0))
    store.write(again)
    assert _state(store, "x")["failure_streak"] == 2
    # A late event from the past changes the extremes, never the latest outcome.
    late = Batch()
    late.add(_mat("old", "x", "success", 150.0))
    store.write(late)
    state = _state(store, "x")
    assert (state["last_status"], state["last_success_time"], state["failure_streak"]) == (
        "failure",
        155.0,
        2,
    )
    # Success, failure and success in one batch: the last one wins, the streak resets.
    mixed = Batch()
    for mid, status, start in [
        ("d", "failure", 400.0),
        ("e", "success", 500.0),
        ("f", "failure", 600.0),
    ]:
        mixed.add(_mat(mid, "x", status, start))
    store.write(mixed)
    state = _state(store, "x")
    assert (state["last_status"], state["last_run_id"], state["failure_streak"]) == (
        "failure",
        "run-f",
        1,
    )
    assert state["last_success_time"] == 505.0
    store.close()


def test_upgrade_from_0001_backfills_the_state(
    empty_store_url: str, migrate_to: Callable[[Store, str], None]
) -> None:
    store = Store(empty_store_url, auto_upgrade=False)
    migrate_to(store, "0001")
    with store.engine.connect() as conn:
        conn.execute(
            sa.text("INSERT INTO assets (name, kind) VALUES ('x', 'asset'), ('idle', 'asset')")
        )
        for mid, status, start in [
            ("a", "success", 100.0),
            ("b", "failure", 200.0),
            ("c", "failure", 300.0),
            ("d", "started", 400.0),
        ]:
            conn.execute(
                sa.text(
                    "INSERT INTO materializations (id, run_id, asset, status, start_time, end_time) "
                    "VALUES (:id, :run, 'x', :status, :start, :end)"
                ),
                {
                    "id": mid,
                    "run": f"run-{mid}",
                    "status": status,
                    "start": start,
                    "end": start + 5,
                },
            )
        conn.commit()
    assert store.upgrade() == ("0001", HEAD_REVISION)
    assert _state(store, "x") == {
        "last_status": "failure",
        "last_start_time": 300.0,
        "last_run_id": "run-c",
        "last_success_time": 105.0,
        "last_failure_time": 305.0,
        "failure_streak": 2,
    }
    assert _state(store, "idle")["last_status"] is None
    store.close()
