"""The server's group committer runs the partition upkeep when it is due (PostgreSQL): it
writes without `Store.write`, which is where the upkeep ran."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.postgres


def test_http_ingest_runs_the_upkeep_without_store_write(empty_postgres_url: str) -> None:
    """The group committer writes without `Store.write`, which is where the upkeep ran: an app
    that only ingests over HTTP made no day partitions after those `db upgrade` made."""
    from fastapi.testclient import TestClient

    from lakelens.server.app import create_app
    from lakelens.store import Store

    store = Store(empty_postgres_url)
    store.engine  # noqa: B018 - created and migrated, as serve does before it listens
    before = time.time()
    try:
        with TestClient(create_app(store=store, run_alerts=False)) as client:
            answer = client.post("/api/v1/events", json=[{"type": "log", "message": "x"}])
            assert answer.status_code == 200, answer.text
        assert store.upkeep_at is not None and before <= store.upkeep_at <= time.time()
        # Not again within the hour: the next upkeep is due a minute into the next clock hour.
        assert store._partitions_due > time.time()
    finally:
        store.stop_background_work()
        store.close()
