"""Group commit: concurrent ingest requests share transactions, each is answered only after its
events are committed, and one request that cannot be stored never costs the others theirs."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from lakelens.config import load_settings
from lakelens.events import Batch
from lakelens.ingest import Ingested, native
from lakelens.model import Run
from lakelens.server import commit
from lakelens.server.commit import GroupCommitter
from lakelens.store import Store, schema

NOW = 1_700_000_000.0


@contextmanager
def writes_blocked(store_url: str) -> Iterator[None]:
    """Hold the store's write lock from another connection, as another process could."""
    if store_url.startswith("sqlite"):
        db = sqlite3.connect(sa.engine.make_url(store_url).database, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            db.execute("ROLLBACK")
            db.close()
        return
    import psycopg

    with psycopg.connect(store_url) as db:
        names = ", ".join(t.name for t in schema.metadata.sorted_tables)
        db.execute(f"LOCK TABLE {names} IN SHARE MODE")  # blocks inserts and updates
        try:
            yield
        finally:
            db.rollback()


def _logs(*messages: str) -> Ingested:
    return native.to_ingested([{"type": "log", "message": m} for m in messages], now=NOW)


def _messages(store: Store) -> Counter[str]:
    with store.connect() as conn:
        return Counter(conn.execute(sa.select(schema.logs.c.message)).scalars())


async def _commit(
    committer: GroupCommitter, ingested: Ingested, batch_id: str | None = None
) -> Any:
    return await committer.commit(ingested, source="native", batch_id=batch_id, now=NOW)


def test_requests_queued_behind_a_busy_writer_commit_together_after_it(
    store: Store, store_url: str
) -> None:
    committer = GroupCommitter(store)

    async def main() -> list[Any]:
        with writes_blocked(store_url):
            tasks = [
                asyncio.ensure_future(_commit(committer, _logs(f"m{i}", f"m{i}'")))
                for i in range(6)
            ]
            await asyncio.sleep(0.3)
            # Nothing can be committed, so nothing is answered.
            assert not any(task.done() for task in tasks)
            assert _messages(store) == Counter()
        return await asyncio.gather(*tasks)

    assert asyncio.run(main()) == [True] * 6
    expected = [f"m{i}" for i in range(6)] + [f"m{i}'" for i in range(6)]
    assert _messages(store) == Counter(expected)
    # The first request's transaction may have started alone; the rest waited and shared one.
    assert committer.requests == 6
    assert committer.groups <= 2


def test_a_writer_waiting_on_the_store_counts_as_busy_while_it_waits(
    store: Store, store_url: str
) -> None:
    committer = GroupCommitter(store)
    store.upkeep_when_due()  # PostgreSQL: the first write's partition upkeep, done beforehand

    async def main() -> None:
        with writes_blocked(store_url):
            task = asyncio.ensure_future(_commit(committer, _logs("m")))
            deadline = time.monotonic() + 30
            while committer.writing_since is None:  # the writer thread has begun its transaction
                assert time.monotonic() < deadline and not task.done()
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)
            assert not task.done()
            waited = committer.busy_so_far()
            await asyncio.sleep(0.2)
            assert committer.busy_seconds == 0.0  # nothing ended yet
            assert 0.25 < waited < committer.busy_so_far()  # and still it shows, growing
        assert await task is True
        assert committer.busy_so_far() == committer.busy_seconds >= 0.45

    asyncio.run(main())


def test_a_request_that_cannot_be_stored_fails_alone(store: Store, store_url: str) -> None:
    """Converters never let such a batch through; the committer must still not lose the others."""
    committer = GroupCommitter(store)
    bad = Ingested(Batch(runs=[Run("r-bad", None)]), accepted=1)  # type: ignore[arg-type]

    async def main() -> list[Any]:
        with writes_blocked(store_url):
            first = asyncio.ensure_future(_commit(committer, _logs("before")))
            await asyncio.sleep(0.2)  # the writer holds `first` and waits for the lock
            rest = [
                asyncio.ensure_future(_commit(committer, ingested))
                for ingested in (_logs("good 1"), bad, _logs("good 2"))
            ]
            await asyncio.sleep(0.1)
        return await asyncio.gather(first, *rest, return_exceptions=True)

    before, good_1, failed, good_2 = asyncio.run(main())
    assert (before, good_1, good_2) == (True, True, True)
    assert isinstance(failed, sa.exc.IntegrityError), failed
    assert _messages(store) == Counter(["before", "good 1", "good 2"])
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.runs)).scalar() == 0


def test_the_writer_keeps_its_connection_between_transactions_for_a_second(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool checks a connection it hands out (a round trip on PostgreSQL): the writer
    takes one for the transactions of the next HOLD_SECONDS, then a fresh one."""
    assert commit.HOLD_SECONDS == 1.0
    store.upkeep_when_due()  # PostgreSQL's hourly partition upkeep: done, not counted below
    checkouts: list[float] = []
    sa.event.listen(store.engine, "checkout", lambda *_: checkouts.append(time.monotonic()))
    committer = GroupCommitter(store)

    async def main() -> None:
        # A long hold for the quick ones (a loaded machine can take seconds over five
        # commits), then none: the next commit finds its connection held too long.
        monkeypatch.setattr(commit, "HOLD_SECONDS", 60.0)
        for i in range(5):
            assert await _commit(committer, _logs(f"quick {i}"))
        monkeypatch.setattr(commit, "HOLD_SECONDS", 0.0)
        await asyncio.sleep(0.05)
        assert await _commit(committer, _logs("later"))

    asyncio.run(main())
    assert committer.groups == 6
    assert len(checkouts) == 2, checkouts
    assert _messages(store) == Counter([f"quick {i}" for i in range(5)] + ["later"])


def test_batch_ids_are_honoured_within_a_group(store: Store, store_url: str) -> None:
    committer = GroupCommitter(store)

    async def main() -> list[Any]:
        assert await _commit(committer, _logs("old"), "k-old") is True
        with writes_blocked(store_url):
            tasks = [
                asyncio.ensure_future(_commit(committer, ingested, batch_id))
                for ingested, batch_id in (
                    (_logs("a"), "k-new"),
                    (_logs("b"), "k-new"),  # the same id later in the same group
                    (_logs("c"), "k-old"),  # an id committed before
                    (_logs("d", "d'"), None),
                )
            ]
            await asyncio.sleep(0.2)
        return await asyncio.gather(*tasks)

    assert asyncio.run(main()) == [True, False, False, True]
    assert _messages(store) == Counter(["old", "a", "d", "d'"])
    with store.connect() as conn:
        table = schema.ingest_batches
        claims = dict(conn.execute(sa.select(table.c.batch_id, table.c.accepted)).all())
    assert claims == {"k-old": 1, "k-new": 1}


def test_a_group_ends_as_if_its_requests_were_committed_one_by_one(
    store: Store, store_url: str
) -> None:
    """Runs, materializations and edges of several requests are merged into one write each."""
    committer = GroupCommitter(store)
    start = {
        "type": "run",
        "run_id": "r1",
        "job": "j",
        "status": "started",
        "start_time": NOW - 60,
    }
    mat = {"type": "materialization", "run_id": "r1", "asset": "t", "id": "m1"}
    edge = {"type": "lineage", "upstream": "s", "downstream": "t"}
    requests = [
        [
            start,
            {**mat, "status": "started", "start_time": NOW - 60},
            {**edge, "columns": {"x": ["y"]}},
        ],
        [{**mat, "status": "success", "end_time": NOW, "rows": 5}, edge],
        [{"type": "run", "run_id": "r1", "job": "j", "status": "success", "end_time": NOW}],
        [{"type": "run", "run_id": "r1", "job": "j", "status": "started"}],  # late, stale
    ]

    async def main() -> list[Any]:
        with writes_blocked(store_url):
            tasks = [
                asyncio.ensure_future(_commit(committer, native.to_ingested(events, now=NOW)))
                for events in requests
            ]
            await asyncio.sleep(0.2)
        return await asyncio.gather(*tasks)

    assert asyncio.run(main()) == [True] * 4
    with store.connect() as conn:
        run = conn.execute(sa.select(schema.runs)).mappings().one()
        mat_row = conn.execute(sa.select(schema.materializations)).mappings().one()
        edge_row = conn.execute(sa.select(schema.lineage_edges)).mappings().one()
        asset = (
            conn.execute(sa.select(schema.assets).where(schema.assets.c.name == "t"))
            .mappings()
            .one()
        )
    assert (run["status"], run["start_time"], run["end_time"]) == ("success", NOW - 60, NOW)
    assert (mat_row["status"], mat_row["rows"], mat_row["duration"]) == ("success", 5, 60.0)
    assert edge_row["columns"] == '{"x":["y"]}'
    assert (asset["last_status"], asset["last_success_time"]) == ("success", NOW)


def test_a_start_and_complete_in_one_request_keep_the_duration(store: Store) -> None:
    """An OpenLineage array with both events of a run (one transaction): the duration is set."""
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    def event(kind: str, time: str) -> dict[str, Any]:
        return {
            "eventType": kind,
            "eventTime": time,
            "run": {"runId": "3f5e83fa-3480-44ff-99c5-ff943904e5e8"},
            "job": {"namespace": "airflow", "name": "load_orders"},
            "inputs": [{"namespace": "pg", "name": "raw_orders"}],
            "outputs": [{"namespace": "pg", "name": "orders"}],
            "producer": "https://example.com/producer",
        }

    body = [event("START", "2023-11-14T22:00:00Z"), event("COMPLETE", "2023-11-14T22:01:30Z")]
    with TestClient(create_app(store.settings, store)) as client:
        response = client.post("/api/v1/lineage", json=body)
    assert response.json() == {"accepted": 2, "rejected": []}
    with store.connect() as conn:
        durations = conn.execute(sa.select(schema.materializations.c.duration)).scalars().all()
    assert durations == [90.0]


def test_concurrent_http_requests_are_stored_once_and_readable_when_answered(
    store_url: str, tmp_path: Path, thread_server: Any
) -> None:
    """Eight clients on a real server: every answer means the request's events are committed."""
    from lakelens.server import create_app

    settings = load_settings(home=str(tmp_path / "home"), database_url=store_url, log_format="none")
    store = Store(settings=settings)
    reader = Store(store_url)
    problems: list[str] = []

    def client(worker: int, url: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as http, reader.connect() as conn:
            for n in range(10):
                run_id = f"run-{worker}-{n}"
                for kind, status in (("START", "started"), ("COMPLETE", "success")):
                    event = {
                        "eventType": kind,
                        "eventTime": f"2023-11-14T22:{n:02d}:{'00' if kind == 'START' else '30'}Z",
                        "run": {"runId": run_id},
                        "job": {"namespace": "bench", "name": f"job_{worker}"},
                        "inputs": [{"namespace": "w", "name": f"raw_{worker}"}],
                        "outputs": [{"namespace": "w", "name": f"stg_{worker}"}],
                        "producer": "https://example.com/test",
                    }
                    response = http.post("/api/v1/lineage", json=event)
                    if response.status_code != 200:
                        problems.append(f"{run_id} {kind}: {response.status_code} {response.text}")
                        continue
                    stored = conn.execute(
                        sa.select(schema.runs.c.status).where(schema.runs.c.run_id == run_id)
                    ).scalar()
                    conn.rollback()  # a fresh snapshot for the next read (PostgreSQL)
                    if stored != status:
                        problems.append(f"{run_id} answered after {kind} but stored {stored}")
                logs = [{"type": "log", "message": f"{run_id}/{i}"} for i in range(20)]
                response = http.post("/api/v1/events", json=logs)
                if response.json() != {"accepted": 20, "rejected": []}:
                    problems.append(f"{run_id} logs: {response.text}")

    try:
        with thread_server(create_app(settings, store)) as server:
            workers = [threading.Thread(target=client, args=(w, server.url)) for w in range(8)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(120)
        assert not problems, problems[:5]
        with reader.connect() as conn:
            statuses = Counter(conn.execute(sa.select(schema.runs.c.status)).scalars())
            durations = set(conn.execute(sa.select(schema.materializations.c.duration)).scalars())
            messages = Counter(conn.execute(sa.select(schema.logs.c.message)).scalars())
        assert statuses == {"success": 80}
        assert durations == {30.0}
        assert len(messages) == 80 * 20 and set(messages.values()) == {1}
    finally:
        reader.close()
        store.close()


def test_sqlite_requests_queued_in_one_turn_of_the_loop_wake_an_idle_writer_once(
    tmp_path: Path,
) -> None:
    """The SQLite writer, waiting idle, is woken after the loop has queued what it read in that
    turn, not by the first of them: the five requests share one transaction, even when the
    loop pauses between them (a writer woken by the first would have taken it alone)."""
    store = Store(f"sqlite:///{tmp_path / 'lakelens.db'}")
    committer = GroupCommitter(store)

    async def request(i: int) -> Any:
        if i:
            time.sleep(0.05)  # the loop busy between two requests of one turn
        return await _commit(committer, _logs(f"m{i}"))

    async def main() -> list[Any]:
        assert await _commit(committer, _logs("first"))  # the writer starts, then waits idle
        await asyncio.sleep(0.2)
        before = committer.groups
        answers = await asyncio.gather(*(request(i) for i in range(5)))
        assert committer.groups == before + 1, committer.groups - before
        return answers

    try:
        assert asyncio.run(main()) == [True] * 5
        assert _messages(store) == Counter(["first"] + [f"m{i}" for i in range(5)])
    finally:
        store.close()


def test_a_writer_held_up_in_the_partition_upkeep_counts_as_busy_and_stalled(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group waits for the hourly upkeep the writer runs before its transaction: that
    time shows on /metrics (busy) and /readyz (stalled) as the transaction's would."""
    upkeep = store.upkeep_when_due
    release = threading.Event()
    monkeypatch.setattr(store, "upkeep_when_due", lambda: (release.wait(30), upkeep())[1])
    committer = GroupCommitter(store)

    async def main() -> None:
        task = asyncio.ensure_future(_commit(committer, _logs("after the upkeep")))
        await asyncio.sleep(0.4)
        assert not task.done()
        assert committer.stalled_for() > 0.3
        assert committer.busy_so_far() > 0.3
        release.set()
        assert await task is True
        assert committer.stalled_for() == 0.0
        assert committer.busy_seconds >= 0.4

    asyncio.run(main())
    assert _messages(store) == Counter(["after the upkeep"])
