"""Schema upgrades through Alembic, serialized across processes, skipped when already at head."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa

from lakelens.errors import StoreError
from lakelens.store.engine import is_sqlite, unbounded_answers
from lakelens.store.schema import HEAD_REVISION

__all__ = ["current_revision", "is_current", "upgrade"]

_MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same in every lakelens process.
_PG_LOCK_KEY = 0x1A6E1E45


def current_revision(engine: sa.Engine) -> str | None:
    """The revision recorded in the database, or None for an empty database."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def known_revisions() -> set[str]:
    """The revisions this lakelens has migrations for ("0001" … HEAD_REVISION)."""
    return {path.name.split("_", 1)[0] for path in (_MIGRATIONS / "versions").glob("[0-9]*.py")}


def _newer_store(revision: str) -> StoreError:
    return StoreError(
        f"This store is at schema revision {revision}, which this lakelens ({HEAD_REVISION} at "
        "most) does not know: a newer lakelens wrote it. Upgrade lakelens "
        "(`pip install -U lakelens`) or point it at another store."
    )


def is_current(engine: sa.Engine) -> bool:
    return current_revision(engine) == HEAD_REVISION


# Alembic keeps the running migration in module-level proxies (alembic.op, alembic.context):
# two threads of one process must never migrate at the same time, whatever the database.
_ALEMBIC_LOCK = threading.Lock()


def upgrade(engine: sa.Engine) -> tuple[str | None, str]:
    """Bring the schema to head; return (revision before, revision after)."""
    with _ALEMBIC_LOCK:
        return _upgrade(engine)


def _upgrade(engine: sa.Engine) -> tuple[str | None, str]:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with unbounded_answers(), engine.connect() as conn:
        # One process migrates at a time; the others wait, then find the schema current.
        if is_sqlite(engine):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            # A big store's migration (a backfill) may take longer than a statement may.
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        inspector = sa.inspect(conn)
        before = None
        if inspector.has_table("alembic_version"):
            before = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        if before is not None and before != HEAD_REVISION and before not in known_revisions():
            raise _newer_store(before)  # Alembic would answer with a traceback
        if before != HEAD_REVISION:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        elif not is_sqlite(engine):
            # pg_trgm may have been created since migration 0014 found it missing.
            from lakelens.store.log_search import ensure_postgres

            ensure_postgres(conn)
        conn.commit()
    return before, HEAD_REVISION
