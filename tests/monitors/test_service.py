"""Monitors on their schedule: due ones run once however many servers poll the store, and
`lakelens serve` runs them in the background with a `monitors` health component."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from _support import serving
from lakelens.monitors import MonitorConfig
from lakelens.monitors.service import MonitorService
from lakelens.monitors.state import add_monitor
from lakelens.testing import FakeClock

T0 = 1_800_000_000.0


def _warehouse(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE orders (id INTEGER); INSERT INTO orders VALUES (1);")
    conn.close()
    return path


def test_a_due_monitor_runs_once_across_servers_and_again_after_its_interval(
    make_store: Any, tmp_path: Path
) -> None:
    store = make_store()
    warehouse = _warehouse(tmp_path / "shop.db")
    add_monitor(
        store.engine, MonitorConfig.create(f"sqlite:///{warehouse}", interval="10m"), now=T0
    )
    clock = FakeClock(T0)
    services = [MonitorService(store, clock=clock) for _ in range(4)]
    start = threading.Barrier(len(services))
    ran: list[int] = []

    def poll(service: MonitorService) -> None:
        start.wait()
        ran.append(len(service.run_due()))

    threads = [threading.Thread(target=poll, args=(s,)) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(ran) == [0, 0, 0, 1]
    clock.advance(300)
    assert services[0].run_due() == []  # not due yet
    assert services[0].next_due() == 300.0
    clock.advance(300)
    assert [r.name for r in services[1].run_due()] == ["shop"]


def test_serve_runs_due_monitors_in_the_background(tmp_path: Path) -> None:
    from lakelens.config import load_settings
    from lakelens.store import Store

    home = tmp_path / "home"
    warehouse = _warehouse(tmp_path / "shop.db")
    store = Store(settings=load_settings({}, home=str(home), log_format="none"))
    add_monitor(store.engine, MonitorConfig.create(f"sqlite:///{warehouse}"), now=time.time())
    store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKELENS_")}
    log = tmp_path / "serve.log"
    argv = [sys.executable, "-m", "lakelens", "serve", "--home", str(home), "--port"]
    with serving(lambda port: [*argv, str(port)], log, env=env) as (proc, url):
        deadline = time.monotonic() + 60
        observed = 0
        while time.monotonic() < deadline and not observed:
            time.sleep(0.2)
            assert proc.poll() is None, log.read_text()
            with sqlite3.connect(home / "lakelens.db") as db:
                observed = db.execute("SELECT count(*) FROM table_observations").fetchone()[0]
        assert observed == 1, log.read_text()
        report = httpx.get(f"{url}/health", timeout=30).json()
        monitors = report["components"]["monitors"]
        assert monitors["status"] == "healthy" and monitors["details"]["monitors"] == 1
