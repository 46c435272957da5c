"""Plain-SQL reads: one small interface over sqlite3, psycopg and a SQLAlchemy connection.

The analysis queries are written once, as SQL text that SQLite and PostgreSQL both accept,
with `:name` parameters. A command-line read of an up-to-date store goes straight to the
driver (the standard library's `sqlite3`, or psycopg), so the CLI does not pay for importing
SQLAlchemy (about 100-180 ms of every command's start-up, bench/queries.py); any caller that
already holds a SQLAlchemy connection (the server) runs the same text through SQLAlchemy.

Rules for the SQL text: `:name` binds only (no `::` casts, no colons inside literals); a
list or tuple parameter is expanded in place, so write `IN :ids`; booleans compare with
`= TRUE` / `= FALSE`, or go through `CASE WHEN col THEN …`.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakelens.errors import StoreError
from lakelens.store.revision import HEAD_REVISION

if TYPE_CHECKING:
    import psycopg
    import sqlalchemy as sa

    from lakelens.store._store import Store
    from lakelens.store.postgres import PostgresTimeouts

__all__ = ["Reader", "borrow", "reading", "sqlite_file"]

Params = Mapping[str, Any]
_BIND = re.compile(r"(?<![:\w]):(\w+)")
SQLITE_BUSY_TIMEOUT_S = 30.0


def _expand(sql: str, params: Params | None) -> tuple[str, dict[str, Any]]:
    """Expand list parameters (`IN :ids` → `IN (:ids_0, :ids_1)`; empty → `IN (NULL)`)."""
    if not params:
        return sql, {}
    flat: dict[str, Any] = {}
    lists: dict[str, Sequence[Any]] = {}
    for key, value in params.items():
        if isinstance(value, list | tuple | set | frozenset):
            lists[key] = list(value)
        else:
            flat[key] = value
    if not lists:
        return sql, flat

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in lists:
            return match.group(0)
        items = lists[key]
        if not items:
            return "(NULL)"
        names = [f"{key}__{i}" for i in range(len(items))]
        flat.update(zip(names, items, strict=True))
        return "(" + ", ".join(f":{n}" for n in names) + ")"

    return _BIND.sub(replace, sql), flat


class Reader:
    """A read connection: `rows`, `row`, `value`, `column` and `dicts` over SQL text."""

    dialect: str = ""

    def _run(self, sql: str, params: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        raise NotImplementedError

    def rows(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        return self._run(*_expand(sql, params))[1]

    def row(self, sql: str, params: Params | None = None) -> tuple[Any, ...] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def value(self, sql: str, params: Params | None = None) -> Any:
        """The first column of the first row (None when there is no row)."""
        found = self.row(sql, params)
        return None if found is None else found[0]

    def column(self, sql: str, params: Params | None = None) -> list[Any]:
        return [r[0] for r in self.rows(sql, params)]

    def dicts(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        names, found = self._run(*_expand(sql, params))
        return [dict(zip(names, r, strict=True)) for r in found]

    def close(self) -> None:
        """Release the connection (a no-op for a borrowed one)."""

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SqliteReader(Reader):
    """sqlite3 on the store's file: autocommit reads, which take no lock in WAL mode."""

    dialect = "sqlite"

    def __init__(self, connection: sqlite3.Connection, path: Path | None = None) -> None:
        self._conn = connection
        self.path = path

    @classmethod
    def open(cls, path: Path) -> SqliteReader | None:
        """A reader on `path` when the file holds a store at the current revision, else None."""
        if not path.is_file():
            return None
        try:
            conn = sqlite3.connect(str(path), timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error:
            return None
        try:
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            if revision is None or revision[0] != HEAD_REVISION:
                conn.close()
                return None
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA cache_size=-32000")
        except sqlite3.Error:
            conn.close()
            return None
        return cls(conn, path)

    def _run(self, sql: str, params: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        try:
            cursor = self._conn.execute(sql, params)
            names = [d[0] for d in cursor.description or ()]
            return names, cursor.fetchall()
        except sqlite3.DatabaseError as exc:
            from lakelens.store.damage import damage_error

            damaged = damage_error(self.path or "the store", exc)
            if damaged is None:
                raise
            raise damaged from None

    def close(self) -> None:
        self._conn.close()


class PostgresReader(Reader):
    """psycopg on PostgreSQL in autocommit, with the store's statement and answer timeouts."""

    dialect = "postgresql"

    def __init__(self, connection: psycopg.Connection[Any], location: str) -> None:
        self._conn = connection
        self.location = location

    @classmethod
    def open(cls, url: str, timeouts: PostgresTimeouts) -> PostgresReader | None:
        """A reader on `url` when it holds a store at the current revision, else None (the
        engine then creates or migrates it). A server that cannot be reached is a StoreError."""
        from lakelens.store.postgres import (
            connection_class,
            import_psycopg,
            libpq_url,
            masked_url,
        )

        try:
            psycopg = import_psycopg()
        except ImportError:  # the engine says which extra to install
            return None

        conninfo, query = libpq_url(url)
        location = masked_url(url)
        args = timeouts.connect_args(query)
        if "jit" not in query.get("options", ""):
            # A command's few short queries never repay JIT compilation: 25-60 ms each that
            # crosses jit_above_cost on a big store (bench/queries.py --database-url).
            given = args.get("options") or query.get("options", "")
            args["options"] = f"{given} -c jit=off".strip()
        try:
            conn = connection_class(timeouts.answer).connect(conninfo, autocommit=True, **args)
        except psycopg.Error as exc:
            raise _unreachable(location, exc) from None
        try:
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except psycopg.errors.UndefinedTable:
            revision = None
        except psycopg.OperationalError as exc:
            conn.close()
            raise _unreachable(location, exc) from None
        if revision is None or revision[0] != HEAD_REVISION:
            conn.close()
            return None
        return cls(conn, location)

    def _run(self, sql: str, params: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        import psycopg

        # psycopg binds %(name)s: a literal % doubles, then each :name becomes %(name)s.
        text = _BIND.sub(r"%(\1)s", sql.replace("%", "%%"))
        try:
            cursor = self._conn.execute(text, params)
            names = [d.name for d in cursor.description or ()]
            return names, cursor.fetchall()
        except psycopg.OperationalError as exc:
            raise _unreachable(self.location, exc) from None

    def close(self) -> None:
        self._conn.close()


def _unreachable(location: str, exc: Exception) -> StoreError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreError(
        f"Cannot read the store at {location}: {reason}. "
        "Check LAKELENS_DATABASE_URL and that PostgreSQL is running."
    )


class AlchemyReader(Reader):
    """The same SQL text through a SQLAlchemy connection (PostgreSQL, or the server's)."""

    def __init__(self, connection: sa.Connection, *, owned: bool = False) -> None:
        self._conn = connection
        self._owned = owned
        self.dialect = connection.dialect.name

    def _run(self, sql: str, params: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        import sqlalchemy as sa

        result = self._conn.execute(sa.text(sql), params)
        return list(result.keys()), [tuple(r) for r in result]

    def close(self) -> None:
        if self._owned:
            self._conn.close()


def sqlite_file(url: str) -> Path | None:
    """The file of a plain `sqlite:///path` URL; None for anything else (memory, options)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url:
        return None
    path = url[len(prefix) :]
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


def borrow(conn: Reader | sa.Connection) -> Reader:
    """A Reader over an open connection that stays the caller's to close."""
    return conn if isinstance(conn, Reader) else AlchemyReader(conn)


@contextmanager
def reading(source: Reader | Store | sa.Connection | sa.Engine) -> Iterator[Reader]:
    """A Reader for the block: a Reader as it is, a Store's, or one over a SQLAlchemy connection."""
    if isinstance(source, Reader):
        yield source
        return
    if hasattr(source, "exec_driver_sql"):  # an open SQLAlchemy Connection: borrowed
        yield AlchemyReader(source)  # type: ignore[arg-type]
        return
    if hasattr(source, "reader"):  # a Store
        with source.reader() as reader:
            yield reader
        return
    with source.connect() as conn:  # an Engine
        yield AlchemyReader(conn)
