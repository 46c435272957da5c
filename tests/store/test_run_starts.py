"""A materialization reported without a start takes its run's, as the run stands once the
transaction's own run rows are written (asked before the rows are written, store/writes.py)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from lakelens.events import Batch
from lakelens.ingest import OTLP_RUN_TAGS
from lakelens.model import Materialization, Run
from lakelens.store import Store, schema

T0 = 1_700_000_000.0


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, tz=timezone.utc)


def _write(store: Store, *events: Run | Materialization) -> None:
    batch = Batch()
    for event in events:
        batch.add(event)
    store.write(batch)


def _done(run_id: str, asset: str, end: float) -> Materialization:
    """An output first listed on COMPLETE: an end, no start."""
    return Materialization(
        f"{run_id}:{asset}", run_id, asset, "success", start_time=None, end_time=_at(end)
    )


def _stored(store: Store, run_id: str) -> dict[str, tuple[float | None, float | None]]:
    m, a = schema.materializations, schema.assets
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(m.c.asset, m.c.start_time, m.c.duration).where(m.c.run_id == run_id)
        ).all()
        states = dict(conn.execute(sa.select(a.c.name, a.c.last_start_time)).all())
    return {
        asset: (None if start is None else start - T0, duration) for asset, start, duration in rows
    } | {f"state:{name}": (None if s is None else s - T0, None) for name, s in states.items()}


def test_the_stored_start_of_its_run(store: Store) -> None:
    _write(store, Run("r1", "load", start_time=_at(0)))
    # The COMPLETE's own run row carries its time as a start: the earlier stored one wins.
    _write(
        store,
        Run("r1", "load", "success", start_time=_at(30), end_time=_at(30)),
        _done("r1", "t", 30),
    )
    assert _stored(store, "r1") == {"t": (0.0, 30.0), "state:t": (0.0, None)}


def test_a_start_in_the_same_transaction_earlier_than_the_stored_one(store: Store) -> None:
    _write(store, Run("r2", "load", start_time=_at(10)))
    _write(store, Run("r2", "load", start_time=_at(4)), _done("r2", "t", 30))
    assert _stored(store, "r2")["t"] == (4.0, 26.0)


def test_a_run_written_only_in_the_same_transaction(store: Store) -> None:
    _write(
        store,
        Run("r3", "load", start_time=_at(7)),
        Run("r3", "load", start_time=_at(5)),
        _done("r3", "t", 9),
    )
    assert _stored(store, "r3")["t"] == (5.0, 4.0)


def test_an_unknown_run_leaves_the_start_unknown(store: Store) -> None:
    _write(store, _done("r4", "t", 9))
    assert _stored(store, "r4") == {"t": (None, None), "state:t": (9.0, None)}


def test_runs_observed_through_otlp_in_the_same_transaction(store: Store) -> None:
    # A reported run's start is kept against a span's observation of it; a run only observed
    # takes the observation's earlier start. Both as their upserts leave them.
    _write(store, Run("r5", "load", start_time=_at(10)))
    _write(
        store,
        Run("r5", "load", start_time=_at(2), tags=dict(OTLP_RUN_TAGS)),
        Run("r6", "load", start_time=_at(3), tags=dict(OTLP_RUN_TAGS)),
        _done("r5", "t", 30),
        _done("r6", "u", 30),
    )
    assert _stored(store, "r5")["t"] == (10.0, 20.0)
    assert _stored(store, "r6")["u"] == (3.0, 27.0)


def test_many_runs_in_one_transaction(store: Store) -> None:
    runs = [Run(f"m{i}", "load", start_time=_at(i)) for i in range(1_200)]
    _write(store, *runs)
    _write(store, *(_done(f"m{i}", f"t{i % 7}", 2_000) for i in range(1_200)))
    for i in (0, 499, 500, 1_199):
        assert _stored(store, f"m{i}")[f"t{i % 7}"] == (float(i), 2_000.0 - i)


def test_a_complete_on_postgresql_waits_for_the_server_twice(
    empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The names' read (which brings the BEGIN's and the run's start's answers with it) and the
    pipeline's end (which brings the COMMIT's): no round trip for psycopg's BEGIN (it syncs in
    pipeline mode), none for the start alone, none for psycopg's commit."""
    from psycopg import _pipeline_base

    from lakelens.store.writes import write_batch

    store = Store(empty_postgres_url)
    try:
        _write(store, Run("r7", "load", start_time=_at(0)))
        syncs: list[str] = []
        commits: list[bytes] = []
        enqueue = _pipeline_base.BasePipeline._enqueue_sync
        monkeypatch.setattr(
            _pipeline_base.BasePipeline,
            "_enqueue_sync",
            lambda self: (syncs.append("sync"), enqueue(self))[1],
        )
        connection_base = type(store.engine.raw_connection().driver_connection).__mro__
        base = next(c for c in connection_base if "_exec_command" in vars(c))
        command = base._exec_command

        def exec_command(self: Any, cmd: Any, *args: Any, **kwargs: Any) -> Any:
            commits.append(bytes(cmd)) if bytes(cmd).strip().upper() == b"COMMIT" else None
            return command(self, cmd, *args, **kwargs)

        monkeypatch.setattr(base, "_exec_command", exec_command)
        batch = Batch()
        batch.add(Run("r7", "load", "success", start_time=_at(30), end_time=_at(30)))
        batch.add(_done("r7", "t", 30))
        assert write_batch(store.engine, batch)
        assert (syncs, commits) == (["sync"] * 2, [])
        assert _stored(store, "r7")["t"] == (0.0, 30.0)  # and it was committed, start and all
    finally:
        store.close()


def _fail_with(failure: str, cursor_at: int = 0) -> Any:
    def fail(*args: Any) -> None:
        cursor = args[cursor_at]
        if failure == "database error":
            cursor.execute("SELECT 1/0")
            cursor.fetchall()
        raise ZeroDivisionError

    return fail


@pytest.mark.parametrize(
    "ending",
    ["commit", "repeat", "database error", "raised", "database error under the lock"],
)
def test_a_pipelined_write_hands_its_connection_back_out_of_autocommit(
    empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    """write_batches runs its pipeline in autocommit (BEGIN queued, not synced) and must hand
    the connection back as psycopg opened it, however the transaction ended: rolled back, or
    closed when it held the rollup lock."""
    import lakelens.store.writes as writes

    store = Store(empty_postgres_url)
    try:
        _write(store, Run("r8", "load", start_time=_at(0)))
        if ending in ("database error", "raised"):  # before the rollup lock: rolled back
            monkeypatch.setattr(writes, "_append", _fail_with(ending, cursor_at=1))
        elif ending == "database error under the lock":  # closed instead
            monkeypatch.setattr(writes, "_update_asset_state", _fail_with("database error"))
        first = Batch()
        first.add(_done("r8", "t", 30))
        if ending == "repeat":
            assert writes.write_batch(store.engine, first, batch_id="b1")
        again = Batch()
        again.add(_done("r8", "u", 40))
        if ending.startswith("database error") or ending == "raised":
            with pytest.raises((sa.exc.DBAPIError, ZeroDivisionError)):
                writes.write_batch(store.engine, again, batch_id="b1")
        else:
            fresh = writes.write_batch(store.engine, again, batch_id="b1")
            assert fresh is (ending == "commit")
        with store.engine.connect() as conn:
            dbapi: Any = conn.connection.dbapi_connection
            assert (dbapi.autocommit, dbapi.info.transaction_status) == (False, 0)
            # A transaction on it is still one: a rollback undoes a write.
            conn.execute(sa.text("CREATE TABLE undone (x int)"))
            conn.rollback()
            assert conn.execute(sa.text("SELECT to_regclass('undone')")).scalar() is None
        assert ("u" in _stored(store, "r8")) is (ending == "commit")
    finally:
        store.close()
