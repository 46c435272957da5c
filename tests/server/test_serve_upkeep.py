"""`lakelens serve` on PostgreSQL runs its partition upkeep with no write coming (a quiet night,
a replica that only serves reads), says when in /health, and stops cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from lakelens.store.log_search import PG_INDEXES
from lakelens.store.log_search_days import index_name
from lakelens.store.partition_state import day_name

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DAY = 86400


def _valid_indexes(url: str, partition: str) -> set[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = to_regclass(%s) AND i.indisvalid",
            (partition,),
        ).fetchall()
    return {name for (name,) in rows}


def test_an_idle_server_indexes_the_ended_day_and_stops_cleanly(
    serve: Any, empty_postgres_url: str, tmp_path: Path
) -> None:
    import psycopg

    url = empty_postgres_url
    began = time.time()
    yesterday = day_name("logs", int(began // DAY) - 1)
    wanted = {index_name(yesterday, index) for index in PG_INDEXES}
    with psycopg.connect(url, autocommit=True) as conn:  # as if nothing had built them yet
        for name in wanted:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
    server = serve(
        tmp_path / "home",
        env={"LAKELENS_DATABASE_URL": url},
        args=("--no-alerts", "--no-monitors"),
    )
    deadline = time.monotonic() + 60
    while not wanted <= _valid_indexes(url, yesterday):  # built by the upkeep, no write
        assert time.monotonic() < deadline, f"no index on {yesterday}:\n{server.output()}"
        time.sleep(0.1)
    store = httpx.get(f"{server.url}/health", timeout=30).json()["components"]["store"]
    assert began <= store["details"]["upkeep_at"] <= time.time()
    told = subprocess.run(
        [str(Path(sys.executable).with_name("lakelens")), "health", "--url", server.url],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        timeout=60,
    )
    assert "partition upkeep less than a minute ago" in told.stdout, told.stdout + told.stderr
    assert server.stop() == 0
    assert "Traceback" not in server.output()
