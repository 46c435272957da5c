"""Engines for the store: SQLite in WAL mode by default, PostgreSQL through psycopg 3."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from lakelens.errors import StoreError
from lakelens.store.postgres import (
    PostgresTimeouts,
    answer_deadline,
    answers_within,
    connection_class,
    unbounded_answers,
)

__all__ = [
    "PostgresTimeouts",
    "answer_deadline",
    "create_store_engine",
    "dialect_insert",
    "is_sqlite",
    "unbounded_answers",
]

# Milliseconds a SQLite writer waits for the lock before giving up (and the writer retries).
SQLITE_BUSY_TIMEOUT_MS = 30_000
# The -wal file past which it is checkpointed and truncated (LAKELENS_SQLITE_WAL_LIMIT_MB).
WAL_LIMIT_BYTES = 64 * 1024 * 1024
# Seconds between two looks at the -wal file's size (a stat, when a connection is returned).
WAL_CHECK_SECONDS = 5.0
# Milliseconds the truncating checkpoint waits for readers; busy, it tries again later.
WAL_CHECKPOINT_WAIT_MS = 100


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


def create_store_engine(
    url: str,
    *,
    synchronous: str = "NORMAL",
    timeouts: PostgresTimeouts | None = None,
    wal_limit: int = WAL_LIMIT_BYTES,
    create_parent: bool = True,
) -> sa.Engine:
    """An Engine tuned for lakelens: WAL (kept under `wal_limit` bytes), busy timeout and
    autocommit reads on SQLite; connect, statement, idle-in-transaction and TCP timeouts on
    PostgreSQL."""
    parsed = _normalize_url(url)
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)
            if not create_parent and not path.parent.is_dir():
                raise StoreError(
                    f"The directory {path.parent} of the database URL does not exist; create "
                    "it, or fix LAKELENS_DATABASE_URL."
                )
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
        timeouts = timeouts or PostgresTimeouts()
        kwargs["pool_pre_ping"] = True  # a connection that broke while idle is replaced
        kwargs["pool_timeout"] = max(timeouts.connect * 2, 10.0)
        kwargs["connect_args"] = timeouts.connect_args(parsed.query)
    engine = sa.create_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _tune_sqlite(engine, synchronous, wal_limit)
        _name_damage(engine, parsed.database or ":memory:")
        if database and database != ":memory:" and not database.startswith("file:"):
            _bound_wal(engine, Path(f"{database}-wal"), wal_limit)
    else:
        _bound_waits(engine, connection_class(timeouts.answer if timeouts else None))
        _bound_pings(engine, max(2.0, timeouts.connect) if timeouts else PING_SECONDS)
    return engine


def _bound_waits(engine: sa.Engine, connection_class: Any) -> None:
    @sa.event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return connection_class.connect(*cargs, **cparams)


# How long the pool's check of a connection it hands out waits for PostgreSQL's answer.
PING_SECONDS = 5.0


def _bound_pings(engine: sa.Engine, seconds: float) -> None:
    """The pool's pre-ping waits `seconds` (the connect timeout: a live server answers a
    ping as soon as it would accept a connection), not a statement's whole deadline.

    After a network outage every connection that sat idle in the pool is dead, and each
    checkout's ping waited out the answer deadline (statement timeout + 5 s, or the TCP
    timeout) before the pool made a new one: a server's pages and /readyz stalled that long
    per idle connection once PostgreSQL was back. A ping past the deadline closes its
    connection, which the pool replaces. A shorter deadline of the caller's stays.
    """
    ping = engine.dialect.do_ping

    def bounded(dbapi_connection: Any) -> bool:
        with answers_within(seconds):
            return bool(ping(dbapi_connection))

    engine.dialect.do_ping = bounded  # type: ignore[method-assign]


def _tune_sqlite(engine: sa.Engine, synchronous: str, wal_limit: int) -> None:
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
        # When a checkpoint lets the WAL start over, SQLite cuts the file back to this size.
        cursor.execute(f"PRAGMA journal_size_limit={int(wal_limit)}")
        cursor.close()


def _name_damage(engine: sa.Engine, database: str) -> None:
    """A damaged file raises StoreDamagedError naming it (and what to do), not a driver error."""
    from lakelens.store.damage import damage_error

    @sa.event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> BaseException | None:
        return damage_error(database, context.original_exception)


def _bound_wal(engine: sa.Engine, wal: Path, limit: int) -> None:
    """Truncate the -wal file once it passes `limit`.

    A reader holding an old snapshot (a long query, an outside `sqlite3` shell) keeps every
    checkpoint from finishing, so the WAL grows; SQLite's own checkpoints never shrink the
    file afterwards (1.7 GB stayed 1.7 GB until `db prune`). At most every WAL_CHECK_SECONDS,
    a connection returned to the pool looks at the file's size and, past the limit, runs a
    TRUNCATE checkpoint that waits WAL_CHECKPOINT_WAIT_MS at most for readers to leave.
    """
    import os
    import time

    state = {"next": 0.0}
    lock = threading.Lock()

    @sa.event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is None or not lock.acquire(blocking=False):
            return
        try:
            now = time.monotonic()
            if now < state["next"]:
                return
            state["next"] = now + WAL_CHECK_SECONDS
            try:
                if os.stat(wal).st_size <= limit:
                    return
            except OSError:
                return
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout={WAL_CHECKPOINT_WAIT_MS}")
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except Exception:  # busy, or the file went away: the next look tries again
                pass
            finally:
                with contextlib.suppress(Exception):
                    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
                cursor.close()
        finally:
            lock.release()


@contextlib.contextmanager
def detached(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection of `engine` that is closed after use instead of going back to the pool.

    For the hourly upkeep (partitions, --grep index builds): the idle connection it would
    leave in a server's pool is the one the next request takes after a network outage, and
    its pre-ping then waits out the whole answer deadline on a dead socket (/readyz stayed
    503 for 10 s after PostgreSQL came back). A connection an hour is cheap.
    """
    with engine.connect() as conn:
        try:
            yield conn
        finally:
            conn.invalidate()  # closed, not pooled (detach() loses the pool's reset of it)
