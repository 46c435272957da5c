"""The plain-SQL read path: the same SQL text on sqlite3, psycopg and through SQLAlchemy."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from _support import cli_loads, closed_port
from lakelens.events import Batch
from lakelens.model import Asset
from lakelens.store import Store
from lakelens.store.postgres import PostgresTimeouts
from lakelens.store.sql import AlchemyReader, PostgresReader, SqliteReader, sqlite_file
from lakelens.store.sql import _expand as expand


def test_list_parameters_expand_in_place() -> None:
    sql, params = expand("SELECT 1 WHERE a IN :ids AND b = :b", {"ids": [3, 4], "b": "x"})
    assert sql == "SELECT 1 WHERE a IN (:ids__0, :ids__1) AND b = :b"
    assert params == {"ids__0": 3, "ids__1": 4, "b": "x"}
    assert expand("a IN :ids", {"ids": []})[0] == "a IN (NULL)"
    # A prefix of another parameter's name is not touched.
    assert (
        expand("a = :id AND b IN :ids", {"id": 1, "ids": (2,)})[0] == "a = :id AND b IN (:ids__0)"
    )


def test_sqlite_file_accepts_plain_paths_only(tmp_path: Path) -> None:
    assert sqlite_file(f"sqlite:///{tmp_path}/x.db") == tmp_path / "x.db"
    assert sqlite_file("sqlite:///relative/x.db") == Path("relative/x.db")
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("sqlite:///x.db?mode=ro") is None
    assert sqlite_file("postgresql://postgres@127.0.0.1/test") is None


def _seed(store: Store) -> None:
    batch = Batch()
    for name in ["a", "b", "c"]:
        batch.assets.append(Asset(name))
    store.write(batch)


def test_reader_gives_the_same_answers_on_both_databases(store_url: str) -> None:
    writer = Store(store_url)
    _seed(writer)
    writer.close()
    store = Store(store_url)  # a new process's view: no engine yet
    try:
        with store.reader() as db:
            if store_url.startswith("sqlite"):
                assert isinstance(db, SqliteReader)
            else:
                assert isinstance(db, PostgresReader) and db.dialect == "postgresql"
            assert db.column("SELECT name FROM assets ORDER BY name") == ["a", "b", "c"]
            assert db.column(
                "SELECT name FROM assets WHERE name IN :names ORDER BY name", {"names": ["c", "a"]}
            ) == ["a", "c"]
            assert db.column("SELECT name FROM assets WHERE name IN :n", {"n": []}) == []
            assert db.value("SELECT count(*) FROM assets WHERE name > :x", {"x": "a"}) == 2
            assert db.value("SELECT name FROM assets WHERE name = 'zzz'") is None
            assert db.row("SELECT name FROM assets WHERE name = 'zzz'") is None
            assert db.dicts("SELECT name, kind FROM assets WHERE name = :n", {"n": "b"}) == [
                {"name": "b", "kind": "asset"}
            ]
            # A literal % is not a placeholder, with parameters or without.
            assert db.value("SELECT 'a%b'") == "a%b"
            assert db.value("SELECT 'a%%s' || :x", {"x": "%s"}) == "a%%s%s"
            assert db.column(
                "SELECT name FROM assets WHERE name LIKE '%' || :x || '%' ORDER BY name",
                {"x": "b"},
            ) == ["b"]
    finally:
        store.close()


def test_the_direct_reader_answers_as_the_engine_does(store_url: str) -> None:
    """Every column type the analysis reads comes back the same through either path."""
    writer = Store(store_url)
    _seed(writer)
    sql = (
        "SELECT name, kind, owner, updated_at, expected_rows, freshness_seconds, "
        "CASE WHEN name = 'a' THEN TRUE ELSE FALSE END AS flag, count(*) OVER () AS n, "
        "1.5 * 2 AS product FROM assets WHERE name IN :names ORDER BY name"
    )
    params = {"names": ["a", "c"]}
    try:
        with writer.connect() as conn:
            through_engine = AlchemyReader(conn).dicts(sql, params)
    finally:
        writer.close()
    store = Store(store_url)
    try:
        with store.reader() as db:
            assert not isinstance(db, AlchemyReader)
            assert db.dicts(sql, params) == through_engine
            assert len(through_engine) == 2
    finally:
        store.close()


def test_postgres_reads_carry_the_stores_timeouts(postgres_url: str) -> None:
    from lakelens.config import load_settings

    Store(postgres_url).close()  # creates the schema
    settings = load_settings(db_statement_timeout=7, db_idle_in_transaction_timeout=9)
    store = Store(postgres_url, settings=settings)
    with store.reader() as db:
        assert isinstance(db, PostgresReader)
        assert db.value("SELECT current_setting('statement_timeout')") == "7s"
        assert db.value("SELECT current_setting('idle_in_transaction_session_timeout')") == "9s"
        assert db.value("SELECT current_setting('jit')") == "off"
        with pytest.raises(Exception, match="statement timeout"):
            Store(postgres_url, settings=load_settings(db_statement_timeout=1)).reader().value(
                "SELECT pg_sleep(3)"
            )
    store.close()


def test_a_postgres_store_without_the_current_schema_is_migrated_before_it_is_read(
    postgres_url: str,
) -> None:
    import psycopg

    base, _, name = postgres_url.rpartition("/")
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}_fresh"')
    try:
        _migrated_on_first_read(f"{base}/{name}_fresh", PostgresTimeouts())
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}_fresh" WITH (FORCE)')


def _migrated_on_first_read(postgres_url: str, timeouts: PostgresTimeouts) -> None:
    import psycopg

    assert PostgresReader.open(postgres_url, timeouts) is None  # an empty database
    store = Store(postgres_url)
    try:
        with store.reader() as db:  # through the engine, which made the schema
            assert isinstance(db, AlchemyReader)
            assert db.value("SELECT count(*) FROM assets") == 0
    finally:
        store.close()
    with Store(postgres_url).reader() as db:
        assert isinstance(db, PostgresReader)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'older'")
    assert PostgresReader.open(postgres_url, timeouts) is None


CLI = "from lakelens.cli.main import main; main()"


def test_an_unreachable_postgres_is_one_line_with_the_password_hidden(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKELENS_")}
    with closed_port() as port:
        url = f"postgresql://lakelens:s3cret@127.0.0.1:{port}/lakelens"
        done = subprocess.run(
            [sys.executable, "-c", CLI, "runs", "--home", str(tmp_path)],
            capture_output=True,
            text=True,
            env=env | {"LAKELENS_DATABASE_URL": url},
            check=False,
        )
    assert done.returncode == 1
    assert "Cannot read the store at postgresql://lakelens:***@127.0.0.1" in done.stderr
    assert "s3cret" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_a_file_without_the_current_schema_is_migrated_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "lakelens.db"
    with sqlite3.connect(path) as conn:  # a SQLite database with no tables yet
        conn.execute("PRAGMA user_version = 1")
    assert path.stat().st_size > 0
    assert SqliteReader.open(path) is None  # not read directly without alembic_version
    store = Store(f"sqlite:///{path}")
    try:
        with store.reader() as db:
            assert isinstance(db, AlchemyReader)  # through the engine, which migrated it
            assert db.value("SELECT count(*) FROM assets") == 0
    finally:
        store.close()
    with Store(f"sqlite:///{path}").reader() as db:
        assert isinstance(db, SqliteReader)


def test_a_file_with_other_tables_is_refused_not_migrated(tmp_path: Path) -> None:
    """Someone else's database is never given lakelens tables (it used to be migrated)."""
    from lakelens.store.damage import StoreDamagedError

    path = tmp_path / "lakelens.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE unrelated (x)")
    store = Store(f"sqlite:///{path}")
    with pytest.raises(StoreDamagedError, match="not a lakelens store"):
        store.reader()
    store.close()
    with sqlite3.connect(path) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert tables == [("unrelated",)]


def test_a_missing_store_is_created_on_first_read(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'new' / 'lakelens.db'}")
    try:
        with store.reader() as db:
            assert db.value("SELECT count(*) FROM assets") == 0
    finally:
        store.close()


@pytest.mark.parametrize(
    "args",
    [
        ["metrics", "summary"],
        ["metrics", "asset", "a"],
        ["logs", "--level", "ERROR", "--since", "1h"],
        ["lineage", "impact", "a"],
        ["lineage", "show", "a"],
        ["why", "a"],
        ["trace", "--asset", "a", "--last"],  # a has no runs: a one-line error, exit 1
        ["health"],
    ],
)
def test_cli_reads_do_not_import_sqlalchemy(
    store_url: str, tmp_path: Path, args: list[str]
) -> None:
    """SQLAlchemy costs 100-180 ms of start-up (bench/queries.py); reads must not load it,
    on SQLite (sqlite3) or PostgreSQL (psycopg)."""
    store = Store(store_url)
    _seed(store)
    store.close()
    output = cli_loads(args, store_url, tmp_path, ["sqlalchemy", "pydantic"])
    code = 1 if args[0] == "trace" else 0
    assert f"EXIT {code} False False" in output.splitlines(), output
