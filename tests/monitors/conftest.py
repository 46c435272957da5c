"""Monitored warehouses for real: a PostgreSQL database made for the test, DuckDB and SQLite
files; the store under test runs on SQLite and PostgreSQL (`store_url`); the alert tests'
real HTTP receiver."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _support import load_module

WAREHOUSE_SERVER = os.environ.get(
    "LAKELENS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


receiver = load_module(
    "lakelens_tests_alerts_receivers", Path(__file__).parents[1] / "alerts" / "conftest.py"
).receiver


class PgWarehouse:
    """A database of its own on the test server: `sql()` runs statements as the superuser."""

    def __init__(self, name: str) -> None:
        base, _, _ = WAREHOUSE_SERVER.rpartition("/")
        self.name = name
        self.url = f"{base}/{name}"

    def sql(self, *statements: str, flush_stats: bool = True) -> list[Any]:
        """Run statements in one autocommit session; the last one's rows are returned.
        PostgreSQL publishes a session's table statistics when it goes idle (at most once a
        second); `flush_stats` makes it do so at once, as a pipeline's commit would soon."""
        import psycopg

        rows: list[Any] = []
        with psycopg.connect(self.url, autocommit=True) as conn:
            for statement in statements:
                cursor = conn.execute(statement)
                rows = cursor.fetchall() if cursor.description else []
            if flush_stats:
                conn.execute("SELECT pg_stat_force_next_flush()")
                conn.execute("SELECT 1")
        return rows


def _reachable() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'lakelens[postgres]')"
    try:
        with psycopg.connect(WAREHOUSE_SERVER, connect_timeout=3):
            return None
    except Exception as exc:
        return f"no PostgreSQL at {WAREHOUSE_SERVER}: {str(exc).strip().splitlines()[0]}"


@pytest.fixture
def pg_warehouse() -> Iterator[PgWarehouse]:
    """A fresh PostgreSQL database to monitor, dropped (and its roles) afterwards."""
    problem = _reachable()
    if problem:
        if os.environ.get("LAKELENS_TEST_STRICT") == "1":  # as tests/conftest.py missing_tool
            pytest.fail(f"{problem} (LAKELENS_TEST_STRICT=1)", pytrace=False)
        pytest.skip(problem)
    import psycopg

    name = f"lakelens_wh_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(WAREHOUSE_SERVER, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PgWarehouse(name)
    finally:
        with psycopg.connect(WAREHOUSE_SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for (role,) in admin.execute(
                "SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (f"{name}%",)
            ).fetchall():
                admin.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def make_store(store_url: str, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """`make_store(yaml=None, env=None)`: a Store on `store_url` (SQLite, then PostgreSQL)
    with its own home and lakelens.yaml; closed after the test."""
    from lakelens.config import load_settings
    from lakelens.store import Store

    made: list[Any] = []

    def make(yaml: str | None = None, env: dict[str, str] | None = None) -> Any:
        environ = dict(env or {})
        if yaml is not None:
            path = tmp_path / "lakelens.yaml"
            path.write_text(yaml)
            environ["LAKELENS_CONFIG"] = str(path)
        settings = load_settings(
            environ, home=str(tmp_path / "home"), database_url=store_url, log_format="none"
        )
        store = Store(settings=settings)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()
