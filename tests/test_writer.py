"""The background writer: bounded memory, drop policy, retries while the store is unavailable."""

from __future__ import annotations

import threading

from lakelens.events import Batch
from lakelens.model import Run
from lakelens.sdk._writer import Writer
from lakelens.store import Store, reads


def _log(i: int, level: int) -> tuple:
    return (1000.0 + i, level, f"m{i}", None, None, None, None, None, None, None)


def test_full_queue_drops_debug_logs_first_and_never_runs(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'l.db'}")
    gate = threading.Event()

    def sink(batch: Batch) -> None:
        gate.wait(30)
        store.write(batch)

    writer = Writer(lambda: sink, queue_size=100, batch_size=1000, flush_interval=0.01)
    writer.put(Run("blocker", "job"))  # starts the thread, which then waits on the gate
    for i in range(150):
        writer.put_log(_log(i, 10 if i % 2 else 20))  # 75 debug, 75 info
    for n in range(50):
        writer.put(Run(f"run-{n}", "job"))
    for i in range(150, 200):
        writer.put_log(_log(i, 20))  # 50 more info
    gate.set()
    assert writer.flush(30)
    with store.connect() as conn:
        logs = reads.logs(conn)
        runs = reads.runs(conn)
    messages = [r.message for r in logs if r.logger is None]
    assert len(runs) == 51  # runs are never dropped
    # 200 logs offered to a 100-slot queue: the 75 debug logs went first, then the 25 oldest info logs.
    assert writer.dropped == {"debug_logs": 75, "logs": 25, "spans": 0, "metrics": 0}
    assert messages == [f"m{i}" for i in range(50, 150, 2)] + [f"m{i}" for i in range(150, 200)]
    warning = [r for r in logs if r.logger == "lakelens"]
    assert len(warning) == 1 and "dropped 100 events" in warning[0].message
    store.close()


def test_store_errors_are_retried_and_nothing_is_lost(tmp_path, capfd) -> None:
    store = Store(f"sqlite:///{tmp_path / 'l.db'}")
    failures = {"left": 3}

    def flaky(batch: Batch) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("store is down")
        store.write(batch)

    writer = Writer(lambda: flaky, flush_interval=0.01)
    for i in range(1000):
        writer.put_log(_log(i, 20))
    writer.put(Run("r1", "job", status="success"))
    assert writer.flush(30)
    with store.connect() as conn:
        assert len(reads.logs(conn)) == 1000
        assert [r.run_id for r in reads.runs(conn)] == ["r1"]
    err = capfd.readouterr().err
    assert err.count("cannot write to the store (ConnectionError: store is down); retrying.") == 1
    assert "writable again" in err
    store.close()


def test_flush_returns_under_continuous_load(tmp_path) -> None:
    """flush() waits for what was queued before it, not for a queue that never empties."""
    store = Store(f"sqlite:///{tmp_path / 'l.db'}")
    writer = Writer(lambda: store.write, batch_size=200, flush_interval=0.01)
    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            writer.put_log(_log(i, 20))
            i += 1

    thread = threading.Thread(target=produce)
    thread.start()
    try:
        for _ in range(5):
            assert writer.flush(20)
    finally:
        stop.set()
        thread.join()
    store.close()
