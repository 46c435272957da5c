"""The WAL does not keep its peak size: once a reader that held an old snapshot leaves, the
-wal file is checkpointed and truncated (it stayed at 1.7 GB until `db prune`)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from lakelens.config import load_settings
from lakelens.ingest.native import to_ingested
from lakelens.store import Store

LIMIT_MB = 0.25
LIMIT = int(LIMIT_MB * 1024 * 1024)


def _batch(i: int) -> object:
    events = [
        {"type": "log", "run_id": f"r{i}", "message": f"{i}/{j} " + "x" * 2000} for j in range(50)
    ]
    return to_ingested(events, now=1_700_000_000.0 + i).batch


def test_the_wal_is_truncated_after_an_outside_reader_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakelens.store import engine

    monkeypatch.setenv("LAKELENS_SQLITE_WAL_LIMIT_MB", str(LIMIT_MB))
    monkeypatch.setattr(engine, "WAL_CHECK_SECONDS", 0.0, raising=False)
    store = Store(settings=load_settings(home=str(tmp_path)))
    store.write(_batch(0))
    path = tmp_path / "lakelens.db"
    wal = Path(f"{path}-wal")

    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM logs").fetchone()  # holds this snapshot
    slowest = 0.0
    for i in range(1, 21):  # about 2 MB of logs
        began = time.monotonic()
        store.write(_batch(i))
        slowest = max(slowest, time.monotonic() - began)
    held = wal.stat().st_size
    assert held > 4 * LIMIT  # the reader kept every checkpoint from finishing
    assert slowest < 2.0  # a busy checkpoint gives up quickly; writes never wait on it
    reader.execute("COMMIT")
    reader.close()

    store.write(_batch(21))
    assert wal.stat().st_size <= LIMIT, f"WAL {wal.stat().st_size:,} bytes (peak {held:,})"
    with store.reader() as db:
        assert db.value("SELECT count(*) FROM logs") == 22 * 50
    store.close()
