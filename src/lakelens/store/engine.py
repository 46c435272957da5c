"""Engines for the store: SQLite in WAL mode by default, PostgreSQL through psycopg 3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from lakelens.errors import StoreError

__all__ = ["create_store_engine", "dialect_insert", "is_sqlite"]

# Milliseconds a SQLite writer waits for the lock before giving up (and the writer retries).
SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_sqlite(engine: sa.Engine) -> bool:
    return engine.dialect.name == "sqlite"


def dialect_insert(engine: sa.Engine) -> Any:
    """The dialect's `insert` construct, which has on_conflict_do_update / do_nothing."""
    if is_sqlite(engine):
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    return insert


def _normalize_url(url: str) -> sa.URL:
    try:
        parsed = make_url(url)
    except Exception:
        raise StoreError(
            f"Cannot parse the database URL {_mask(url)!r}; use sqlite:///path/lakelens.db "
            "or postgresql://user@host:5432/db."
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise StoreError(
                "PostgreSQL support needs the extra: pip install 'lakelens[postgres]'"
            ) from None
    elif backend != "sqlite":
        raise StoreError(
            f"Unsupported database {backend!r} in LAKELENS_DATABASE_URL; lakelens stores events "
            "in SQLite (sqlite:///path) or PostgreSQL (postgresql://…)."
        )
    return parsed


def _mask(url: str) -> str:
    """The URL with any password replaced, for error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def create_store_engine(url: str, *, synchronous: str = "NORMAL") -> sa.Engine:
    """An Engine tuned for lakelens: WAL, busy timeout and autocommit reads on SQLite."""
    parsed = _normalize_url(url)
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"Cannot create the store directory {path.parent}: {exc.strerror}; "
                    "set LAKELENS_HOME to a writable directory."
                ) from None
        kwargs["connect_args"] = {
            "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
            "check_same_thread": False,
        }
    else:
        kwargs["pool_pre_ping"] = True
    engine = sa.create_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _tune_sqlite(engine, synchronous)
    return engine


def _tune_sqlite(engine: sa.Engine, synchronous: str) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level: reads take no lock; writers issue BEGIN IMMEDIATE
        # themselves (store/writes.py) so two writers queue on the busy timeout instead of
        # failing with "database is locked" on a read-to-write lock upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.execute("PRAGMA cache_size=-32000")
        cursor.close()
