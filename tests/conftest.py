"""Shared fixtures: stores on SQLite and on a real PostgreSQL, and an SDK pointed at them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from lakelens.store import Store

STRICT = os.environ.get("LAKELENS_TEST_STRICT") == "1"
POSTGRES_URL = os.environ.get(
    "LAKELENS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def missing_tool(reason: str) -> None:
    """Skip a test whose external tool is absent, or fail it under LAKELENS_TEST_STRICT=1 (CI)."""
    if STRICT:
        pytest.fail(
            f"{reason} (LAKELENS_TEST_STRICT=1 turns this skip into a failure)", pytrace=False
        )
    pytest.skip(reason)


@pytest.fixture(name="require_tool")
def _require_tool():  # type: ignore[no-untyped-def]
    """`require_tool("dot", "apt-get install graphviz")`: skip (fail under strict) when absent."""
    import shutil

    def require(command: str, install_hint: str) -> str:
        path = shutil.which(command)
        if path is None:
            missing_tool(f"`{command}` is not installed ({install_hint})")
        return path  # type: ignore[return-value]

    return require


def _postgres_reachable(url: str) -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'lakelens[postgres]')"
    try:
        with psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3
        ):
            return None
    except Exception as exc:
        return f"no PostgreSQL at {url}: {str(exc).strip().splitlines()[0]}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the test server for this session, dropped afterwards."""
    problem = _postgres_reachable(POSTGRES_URL)
    if problem:
        missing_tool(problem)
    import psycopg

    name = f"lakelens_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _db = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _empty_postgres(url: str) -> None:
    import sqlalchemy as sa

    from lakelens.store import Store
    from lakelens.store.schema import data_tables

    store = Store(url)
    with store.engine.begin() as conn:
        names = ", ".join(t.name for t in data_tables())
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY"))
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lakelens.db'}"
    url: str = request.getfixturevalue("empty_postgres_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A Store open on `store_url` (both stores), its tables in place; closed after the test."""
    from lakelens.store import Store

    opened = Store(store_url)
    opened.engine  # noqa: B018 - creates the tables before a test blocks or reads them
    yield opened
    opened.close()


@pytest.fixture
def empty_postgres_url(postgres_url: str) -> str:
    """`postgres_url` with every data table emptied (this worker's earlier tests wrote there)."""
    _empty_postgres(postgres_url)
    return postgres_url


@pytest.fixture
def empty_store_url(store_url: str) -> str:
    """Like `store_url`, but with no tables at all (for migration tests)."""
    if store_url.startswith("postgresql"):
        import sqlalchemy as sa

        from lakelens.store.engine import create_store_engine

        engine = create_store_engine(store_url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    return store_url


@pytest.fixture
def sdk(store_url: str, tmp_path: Path) -> Iterator[object]:
    """The SDK recording into `store_url`; yields the Store. Resets the SDK afterwards."""
    import lakelens
    from lakelens.config import load_settings
    from lakelens.store import Store

    settings = load_settings(home=str(tmp_path / "home"), database_url=store_url, log_format="none")
    store = Store(settings=settings)
    lakelens.configure(settings=settings, store=store)
    try:
        yield store
    finally:
        lakelens.flush()
        lakelens.configure(settings=load_settings(home=str(tmp_path / "after"), log_format="none"))
        store.close()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test inherits a run id, a config file or a store location from the outside."""
    for key in list(os.environ):
        if key.startswith("LAKELENS_") and key not in (
            "LAKELENS_TEST_STRICT",
            "LAKELENS_TEST_POSTGRES_URL",
        ):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("LOG_CORRELATION_ID", raising=False)
    monkeypatch.setenv("LAKELENS_HOME", str(tmp_path / "default-home"))


# -- a small pipeline recorded through the SDK (CLI and server tests) ---------------------------

ODD_ASSET = 'odd "quoted" \\ name'


class ApiTimeout(Exception):
    pass


def _record_pipeline(settings: Any, store: Any, *, extras: bool = False) -> dict[str, Any]:
    """Three runs of api → dlt_entries → stg_entries → dashboard; the last run fails in dlt
    10 minutes before `now`, so dlt_entries is past its 2h SLA, and a check failed once.
    With `extras`: custom metrics, a schema, bytes, and an asset whose name needs escaping."""
    import time

    import lakelens
    from lakelens.testing import FakeClock, recording

    now = time.time()
    clock = FakeClock(now - 3 * 3600.0)
    run_ids: list[str] = []
    with recording(settings=settings, store=store, clock=clock, id_seed=7):
        log = lakelens.get_logger("pipe")
        lakelens.asset("api", kind="external").declare()
        dlt = lakelens.asset("dlt_entries", deps=["api"], freshness="2h", owner="platform")
        stg = lakelens.asset(
            "stg_entries", deps=["dlt_entries"], kind="model", freshness="4h", owner="analytics"
        )
        lakelens.asset("dashboard", deps=["stg_entries"], kind="dashboard", owner="bi").declare()
        odd = lakelens.asset(ODD_ASSET, deps=["stg_entries"]) if extras else None
        for n, fail in enumerate([False, False, True]):
            if n == 2:
                clock.set(now - 600)
            try:
                with lakelens.run("pipeline", partition=f"p{n}") as run:
                    run_ids.append(run.run_id)
                    with dlt:
                        with lakelens.span("fetch_from_api", endpoint="/entries") as fetch:
                            clock.advance(0.040)
                            with lakelens.span("http.request"):
                                clock.advance(0.030)
                                if fail:
                                    log.warning("Retry 1/3 after timeout")
                                    log.error("Connection refused to api.example")
                                    raise ApiTimeout("Connection timeout after 30s")
                            fetch.set("rows_fetched", 487)
                        log.info("Fetched 487 rows from API", rows=487)
                        lakelens.check(
                            "range_check",
                            passed=n != 1,
                            severity="error",
                            valid_rows=480,
                            total_rows=487,
                        )
                        if extras:
                            lakelens.schema({"id": "int", "value": "float"})
                            lakelens.record(rows=487, bytes=48_700)
                            lakelens.metric("queue_size", 5 + n, queue="articles")
                            lakelens.metric("rows_loaded", 10, kind="counter", source="api")
                        else:
                            lakelens.record(rows=487)
                    with stg:
                        clock.advance(0.045)
                        lakelens.record(rows=487)
                    if odd is not None:
                        with odd:
                            clock.advance(0.010)
                            lakelens.record(rows=3)
            except ApiTimeout:
                pass
            clock.advance(300)
    return {"run_ids": run_ids, "now": now}


@pytest.fixture
def record_pipeline() -> Any:
    """`record_pipeline(settings, store, extras=False)` records the small pipeline; returns
    {"run_ids": [...], "now": epoch}."""
    return _record_pipeline
