"""Alembic migrations create the schema, match the table definitions, and re-run as a no-op."""

from __future__ import annotations

import sqlalchemy as sa

from lakelens.store import Store, log_search, migrate
from lakelens.store.schema import HEAD_REVISION, metadata


def test_upgrade_empty_database_then_rerun_is_a_no_op(empty_store_url: str) -> None:
    store = Store(empty_store_url, auto_upgrade=False)
    assert migrate.current_revision(store.engine) is None
    assert store.upgrade() == (None, HEAD_REVISION)
    with store.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        before = {t: sorted(i["name"] for i in sa.inspect(conn).get_indexes(t)) for t in tables}
    assert {t.name for t in metadata.sorted_tables} <= tables
    assert store.upgrade() == (HEAD_REVISION, HEAD_REVISION)
    with store.connect() as conn:
        after = {t: sorted(i["name"] for i in sa.inspect(conn).get_indexes(t)) for t in tables}
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
    assert before == after
    store.close()


def test_migrations_match_the_table_definitions(store_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from lakelens.store.partitioning import is_partition_name

    def include_name(name: str | None, type_: str, parents: object) -> bool:
        """Day partitions of logs (PostgreSQL) are made at run time, not declared; the log
        search index is not a table schema.py can declare (an FTS5 virtual table on SQLite;
        on PostgreSQL, made only where pg_trgm can be)."""
        if log_search.is_index_object(name):
            return False
        return not (type_ == "table" and name and is_partition_name(name))

    store = Store(store_url)
    with store.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        diff = compare_metadata(context, metadata)
    store.close()
    assert diff == [], "schema.py and the migrations disagree; add a migration"


def test_head_revision_constant_matches_alembic() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrate._MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_first_use_creates_the_store_in_wal_mode(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'sub' / 'lakelens.db'}")
    with store.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert migrate.current_revision(store.engine) == HEAD_REVISION
    assert (tmp_path / "sub" / "lakelens.db").exists()
    store.close()


def test_indexes_serve_the_hot_queries(tmp_path) -> None:
    """The planner uses an index for "last N runs of X", "logs of run R" and "errors since T"."""
    store = Store(f"sqlite:///{tmp_path / 'lakelens.db'}")
    queries = {
        "SELECT * FROM materializations WHERE asset = 'x' ORDER BY start_time DESC LIMIT 20": "ix_mat_asset_start",
        "SELECT * FROM logs WHERE run_id = 'r' ORDER BY id": "ix_logs_run",
        "SELECT * FROM logs WHERE level >= 40 AND time >= 0": "ix_logs_",
        "SELECT * FROM materializations WHERE status = 'failure' AND start_time >= 0": "ix_mat_",
    }
    with store.connect() as conn:
        for sql, index in queries.items():
            plan = " ".join(
                str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)
            )
            assert index in plan, (sql, plan)
    store.close()


def test_the_directory_of_a_database_url_is_never_created(tmp_path) -> None:
    """LAKELENS_DATABASE_URL=sqlite:////nonexistent/dir/x.db created /nonexistent/dir as root."""
    import pytest

    from lakelens.config import load_settings
    from lakelens.errors import StoreError

    missing = tmp_path / "nonexistent" / "dir"
    settings = load_settings(database_url=f"sqlite:///{missing / 'x.db'}", log_format="none")
    with pytest.raises(StoreError, match="does not exist; create it, or fix LAKELENS_DATABASE_URL"):
        Store(settings=settings).engine  # noqa: B018
    assert not missing.parent.exists()
    # lakelens' own home directory is still made on first use.
    home = load_settings(home=str(tmp_path / "new-home"), log_format="none")
    Store(settings=home).engine.dispose()
    assert (tmp_path / "new-home" / "lakelens.db").exists()


def test_a_store_written_by_a_newer_lakelens_is_one_line(tmp_path, store_url: str) -> None:  # type: ignore[no-untyped-def]
    """A revision this lakelens has no migration for: one line saying to upgrade lakelens,
    never Alembic's traceback, and the store is left as it was."""
    import os
    import subprocess
    import sys

    def set_revision(revision: str) -> None:
        store = Store(store_url, auto_upgrade=False)
        with store.connect() as conn:
            conn.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{revision}'")
            conn.commit()
        store.close()

    Store(store_url).upgrade()
    set_revision("0999")
    try:
        env = {"LAKELENS_DATABASE_URL": store_url, "LAKELENS_HOME": str(tmp_path / "home")}
        proc = subprocess.run(
            [sys.executable, "-m", "lakelens", "runs", "--json"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "schema revision 0999" in lines[0], proc.stderr
        assert "Upgrade lakelens" in lines[0]
        store = Store(store_url, auto_upgrade=False)
        assert migrate.current_revision(store.engine) == "0999"
        store.close()
    finally:  # the session's PostgreSQL database serves the tests that follow
        set_revision(HEAD_REVISION)
