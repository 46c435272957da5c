"""The plain-SQL read path: the same SQL text on sqlite3 and through SQLAlchemy."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lakelens.events import Batch
from lakelens.model import Asset
from lakelens.store import Store
from lakelens.store.sql import AlchemyReader, SqliteReader, sqlite_file
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
                assert isinstance(db, AlchemyReader) and db.dialect == "postgresql"
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
    finally:
        store.close()


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
def test_cli_reads_of_a_sqlite_store_do_not_import_sqlalchemy(
    tmp_path: Path, args: list[str]
) -> None:
    """SQLAlchemy costs 100-180 ms of start-up (bench/queries.py); reads must not load it."""
    store = Store(f"sqlite:///{tmp_path / 'lakelens.db'}")
    _seed(store)
    store.close()
    script = (
        "import sys\n"
        "from lakelens.cli.main import main\n"
        f"sys.argv = ['lakelens', *{args!r}, '--home', {str(tmp_path)!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\nelse:\n    code = 0\n"
        "print('EXIT', code, 'sqlalchemy' in sys.modules, 'pydantic' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKELENS_")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    last = done.stdout.strip().splitlines()[-1]
    code = 1 if args[0] == "trace" else 0
    assert last == f"EXIT {code} False False", done.stdout + done.stderr
