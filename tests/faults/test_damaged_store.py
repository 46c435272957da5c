"""A damaged or foreign SQLite file: every command says so in one line naming the file (no
traceback, non-zero exit), and `/health` finds damage no query has reached yet."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lakelens.config import load_settings
from lakelens.ingest.native import to_ingested
from lakelens.store import Store

NOW = 1_700_000_000.0
COMMANDS = [
    ["serve", "--port", "0", "--no-alerts"],
    ["health"],
    ["metrics", "summary"],
    ["logs"],
    ["alerts", "status"],
]


def _fill(home: Path, logs: int = 200) -> Path:
    """A real store under `home` with a run and `logs` log records; returns its file."""
    store = Store(settings=load_settings(home=str(home)))
    events: list[dict[str, Any]] = [
        {"type": "asset", "name": "raw.orders", "kind": "table"},
        {"type": "run", "run_id": "r1", "job": "nightly", "status": "success"},
        {"type": "materialization", "run_id": "r1", "asset": "raw.orders", "rows": 5},
    ]
    events += [
        {"type": "log", "run_id": "r1", "message": f"row batch {i} " + "x" * 300}
        for i in range(logs)
    ]
    store.write(to_ingested(events, now=NOW).batch)
    store.close()  # the last connection checkpoints the WAL into the file
    path = home / "lakelens.db"
    assert path.is_file() and not Path(f"{path}-wal").exists()
    return path


def _truncated(path: Path) -> None:
    with open(path, "r+b") as file:
        file.truncate(8192)


def _zeroed(path: Path) -> None:
    path.write_bytes(b"\0" * path.stat().st_size)


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(64 * 1024))


def _foreign(path: Path) -> None:
    path.unlink()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)")
    conn.commit()
    conn.close()


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncated,
    "zeroed": _zeroed,
    "garbage": _garbage,
    "foreign": _foreign,
}
SAYS = {
    "truncated": "is damaged (database disk image is malformed)",
    "zeroed": "is not a SQLite database",
    "garbage": "is not a SQLite database",
    "foreign": "is a SQLite database but not a lakelens store (it has the tables orders)",
}


@pytest.fixture(scope="module")
def damaged_homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    homes = {}
    for kind, damage in DAMAGE.items():
        home = tmp_path_factory.mktemp(kind)
        damage(_fill(home))
        homes[kind] = home
    return homes


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_or_foreign_file_is_one_line_naming_it(
    damaged_homes: dict[str, Path], kind: str, command: list[str]
) -> None:
    home = damaged_homes[kind]
    before = (home / "lakelens.db").read_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "lakelens", *command, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LAKELENS_LOG_FORMAT": "none", "COLUMNS": "1000"},
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    assert len(output.splitlines()) == 1, output
    assert str(home / "lakelens.db") in output, output
    assert SAYS[kind] in output, output
    # Nothing was added to the file: no lakelens tables in someone else's database.
    assert (home / "lakelens.db").read_bytes() == before


def _zero_pages(path: Path, start: float, end: float) -> None:
    """Zero the pages between the fractions `start` and `end` of the file (table data, far
    from the schema on the first pages)."""
    size = path.stat().st_size
    page = 4096
    first, last = int(size * start) // page * page, int(size * end) // page * page
    with open(path, "r+b") as file:
        file.seek(first)
        file.write(b"\0" * (last - first))


def test_health_and_readyz_report_damage_no_query_has_reached(tmp_path: Path) -> None:
    """The schema reads fine and `SELECT 1` works, but table pages are zeroed: the scheduled
    quick_check finds it, /health is unhealthy naming the file, /readyz is not ready."""
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    home = tmp_path / "home"
    path = _fill(home, logs=3000)
    _zero_pages(path, 0.4, 0.8)
    settings = load_settings(home=str(home), log_format="none")
    store = Store(settings=settings)
    with TestClient(create_app(settings, store), raise_server_exceptions=False) as client:
        health = client.get("/health")
        assert health.status_code == 503, health.text
        component = health.json()["components"]["store"]
        assert component["status"] == "unhealthy", component
        assert component["details"]["integrity"] != "ok"
        problem = component["details"]["problem"]
        assert f"The store {path} is damaged (quick_check:" in problem
        assert "restore it from a backup" in problem
        ready = client.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert "damaged" in ready.json()["reason"]
        # A query that reaches the zeroed pages is a store error, not a 500.
        search = client.get("/api/v1/logs", params={"q": "no such text"})
        assert search.status_code == 503, search.text
    store.close()


def test_a_sound_store_passes_the_integrity_check(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    home = tmp_path / "home"
    _fill(home)
    settings = load_settings(home=str(home), log_format="none")
    store = Store(settings=settings)
    with TestClient(create_app(settings, store)) as client:
        details = client.get("/health").json()["components"]["store"]["details"]
        assert details["integrity"] == "ok"
        assert client.get("/readyz").status_code == 200
    store.close()


def test_quick_check_runs_on_a_schedule_not_per_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakelens.server.health import IntegrityProbe
    from lakelens.store import damage

    path = _fill(tmp_path / "home")
    calls: list[Path] = []
    real = damage.quick_check
    monkeypatch.setattr(damage, "quick_check", lambda p: calls.append(p) or real(p))
    now = [0.0]
    probe = IntegrityProbe(path, 600.0, clock=lambda: now[0])
    for _ in range(5):
        assert probe.latest(wait=5.0) == (None, probe.checked_at)
    assert len(calls) == 1
    now[0] = 601.0
    probe.latest(wait=5.0)
    assert probe._running is not None
    probe._running.join(5)
    assert len(calls) == 2
