"""Fixtures of the store tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from lakelens.store import Store


def _migrate_to(store: Store, revision: str, *, down: bool = False) -> None:
    from alembic import command
    from alembic.config import Config

    from lakelens.store import migrate

    config = Config()
    config.set_main_option("script_location", str(migrate._MIGRATIONS))
    store.stop_background_work()  # as Store.upgrade does
    with store.engine.connect() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)
        conn.commit()


@pytest.fixture
def migrate_to() -> Callable[..., None]:
    """Bring a store (opened with auto_upgrade=False) to another revision, to test upgrades
    (and with `down=True`, downgrades)."""
    return _migrate_to


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    """An empty PostgreSQL database of its own (roles and partitions differ per test)."""
    import psycopg

    base, _, _ = postgres_url.rpartition("/")
    name = f"lakelens_part_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{base}/{name}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _grep_as_scan(store: Store, grep: str, limit: int, since: float) -> list[int]:
    """The ids `search` gives for `--grep` since `since`, asserted equal to one scan's."""
    from lakelens.analysis.logs import LogFilter, search

    where = LogFilter(grep=grep, since=since)
    condition, params = where.sql("postgresql")
    with store.reader() as db:
        scanned = db.column(
            f"SELECT id FROM logs WHERE {condition} ORDER BY time DESC, id DESC LIMIT {limit}",
            params,
        )
        found = [r.id for r in search(db, where, limit=limit)][::-1]
    assert found == scanned
    return found


@pytest.fixture
def grep_as_scan() -> Callable[..., list[int]]:
    """Check a `--grep` search against one scan of the same filter (PostgreSQL's search
    reads today and the ended days apart); returns the ids, newest first."""
    return _grep_as_scan
