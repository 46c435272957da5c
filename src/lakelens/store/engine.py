"""Engines for the store: SQLite in WAL mode by default, PostgreSQL through psycopg 3."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from lakelens.errors import StoreError

if TYPE_CHECKING:
    from lakelens.config import Settings

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


@dataclass(frozen=True)
class PostgresTimeouts:
    """How long lakelens waits for PostgreSQL, in seconds (0 turns a timeout off).

    A half-open connection (the server or the network gone without a FIN or RST) answers
    nothing, and without these a query waits on it for the kernel's ~15 minutes.
    """

    connect: float = 5.0
    statement: float = 30.0
    idle_in_transaction: float = 60.0
    # A dead peer is noticed after this long: TCP keepalives and tcp_user_timeout.
    tcp: float = 20.0

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresTimeouts:
        return cls(
            connect=settings.db_connect_timeout,
            statement=settings.db_statement_timeout,
            idle_in_transaction=settings.db_idle_in_transaction_timeout,
            tcp=settings.db_tcp_timeout,
        )

    @property
    def answer(self) -> float | None:
        """Seconds the client waits for any answer before it closes the connection itself:
        the server's statement timeout plus a margin for the server to say so."""
        return self.statement + 5.0 if self.statement > 0 else None

    def connect_args(self, query: Any) -> dict[str, Any]:
        """libpq options for psycopg; those already in the URL's query string win."""
        args: dict[str, Any] = {}
        if self.connect > 0:
            args["connect_timeout"] = max(2, round(self.connect))  # libpq's minimum is 2
        if self.tcp > 0:
            idle = max(1, round(self.tcp / 2))
            args.update(
                keepalives=1,
                keepalives_idle=idle,
                keepalives_interval=max(1, round(idle / 3)),
                keepalives_count=3,
                tcp_user_timeout=round(self.tcp * 1000),
            )
        options = [
            f"-c {name}={round(seconds * 1000)}"
            for name, seconds in (
                ("statement_timeout", self.statement),
                ("idle_in_transaction_session_timeout", self.idle_in_transaction),
            )
            if seconds > 0
        ]
        if options:
            given = query.get("options")
            args["options"] = " ".join([*([str(given)] if given else []), *options])
        return {key: value for key, value in args.items() if key == "options" or key not in query}


# A shorter client-side wait for answers in this context (the ingest committer's writes).
_ANSWER_DEADLINE: ContextVar[float | None] = ContextVar("lakelens_answer_deadline", default=None)


@contextlib.contextmanager
def answer_deadline(seconds: float | None) -> Iterator[None]:
    """Within this block, PostgreSQL calls give up (and close their connection) after
    `seconds` without an answer, instead of the engine's statement timeout + margin."""
    token = _ANSWER_DEADLINE.set(seconds if seconds and seconds > 0 else None)
    try:
        yield
    finally:
        _ANSWER_DEADLINE.reset(token)


@contextlib.contextmanager
def unbounded_answers() -> Iterator[None]:
    """Within this block PostgreSQL calls wait as long as the server works (migrations of a
    big store): pair it with `SET LOCAL statement_timeout = 0` in the transaction."""
    token = _ANSWER_DEADLINE.set(0.0)
    try:
        yield
    finally:
        _ANSWER_DEADLINE.reset(token)


def _connection_class(default_deadline: float | None) -> Any:
    """A psycopg Connection whose every wait for the server is bounded.

    psycopg waits on the socket with no timeout; on a half-open connection that is forever
    (statement_timeout is enforced by a server that never sees the query). A wait past the
    deadline closes the connection, so SQLAlchemy sees a disconnect and discards the pool.
    """
    import psycopg
    from psycopg import errors

    class Connection(psycopg.Connection):
        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            if timeout is not None:  # the caller's own bound (notifies, cancel)
                return super().wait(gen, interval, timeout)
            chosen = _ANSWER_DEADLINE.get()
            deadline = None if chosen == 0.0 else (chosen or default_deadline)
            try:
                return super().wait(gen, interval, deadline)
            except errors._WaitTimeout:
                self.pgconn.finish()  # in an unknown state: never use it again
                raise psycopg.OperationalError(
                    f"PostgreSQL did not answer within {deadline:g}s; the connection was "
                    "closed (a network or server outage; see LAKELENS_DB_STATEMENT_TIMEOUT)."
                ) from None

    return Connection


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
        _bound_waits(engine, _connection_class(timeouts.answer if timeouts else None))
    return engine


def _bound_waits(engine: sa.Engine, connection_class: Any) -> None:
    @sa.event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return connection_class.connect(*cargs, **cparams)


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
