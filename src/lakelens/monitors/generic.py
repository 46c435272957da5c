"""Any other SQLAlchemy dialect: tables, views and columns from the inspector, an exact
count(*) per table, and max() of declared timestamp columns.

Without engine statistics, a table changed when its row count did (`modified_source`
"row_count", at the cycle's time); declare a timestamp column for the exact time and to see
updates. Time limits: the session's own where the dialect has one (MySQL
`max_execution_time`, MariaDB `max_statement_time`), else the driver's cancel or interrupt
from a timer (SQLite, psycopg); a driver with neither runs queries unbounded. Read-only:
SQLite files are opened with mode=ro, MySQL/MariaDB sessions set READ ONLY; other dialects
run only SELECTs and the inspector's catalog reads.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lakelens.monitors.base import Collector, Table, first_line
from lakelens.monitors.profiles import ProfileSQL
from lakelens.units import format_duration

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from lakelens.monitors.settings import MonitorConfig

__all__ = ["GenericCollector", "GenericProfileSQL"]


class StatementTimeoutError(Exception):
    """A query ran past the monitor's statement limit and was cancelled."""


def _engine(url: URL, config: MonitorConfig) -> sa.Engine:
    from sqlalchemy.pool import NullPool

    if url.get_backend_name() == "sqlite":
        import sqlite3
        from urllib.parse import quote

        path = os.path.abspath(url.database or "")
        if not url.database or not os.path.exists(path):
            raise FileNotFoundError(f"no SQLite file at {path}")

        def creator() -> sqlite3.Connection:
            return sqlite3.connect(
                f"file:{quote(path)}?mode=ro", uri=True, timeout=config.lock_timeout
            )

        return sa.create_engine("sqlite://", creator=creator, poolclass=NullPool)
    return sa.create_engine(url, poolclass=NullPool)


class GenericProfileSQL(ProfileSQL):
    """Column profiles in SQL every dialect speaks: counts, distinct values, min, max, mean,
    string lengths and top values, over every row (no standard deviation, quantiles or
    histogram: SQLite has no functions for them)."""

    def __init__(self, quote: Any, dialect: str) -> None:
        super().__init__(quote)
        self.dialect = dialect

    def length(self, value: str) -> str:
        function = {"sqlite": "length", "mssql": "len"}.get(self.dialect, "char_length")
        return f"{function}({value})"


class GenericCollector(Collector):
    change_source = "row_count"

    def __init__(self, config: MonitorConfig, url: URL) -> None:
        super().__init__(config)
        self.url = url
        self.engine = _engine(url, config)
        self.conn = self.engine.connect()
        self._session_limits()
        self.inspector = sa.inspect(self.conn)
        self.preparer = self.engine.dialect.identifier_preparer

    def _session_limits(self) -> None:
        """Read-only and a statement limit where the dialect has session settings for them."""
        name = self.engine.dialect.name
        milliseconds = round(self.config.statement_timeout * 1000)
        statements: list[str] = []
        if name in ("mysql", "mariadb"):
            statements = [
                "SET SESSION TRANSACTION READ ONLY",
                f"SET SESSION max_execution_time = {milliseconds}",
                f"SET SESSION max_statement_time = {self.config.statement_timeout:g}",
                f"SET SESSION lock_wait_timeout = {max(1, round(self.config.lock_timeout))}",
            ]
        elif name == "mssql":
            statements = [f"SET LOCK_TIMEOUT {round(self.config.lock_timeout * 1000)}"]
        for statement in statements:
            try:
                self.conn.exec_driver_sql(statement)
            except sa.exc.DBAPIError:
                self.conn.rollback()  # not this flavour's setting (MySQL vs MariaDB)

    def _schemas(self) -> list[str | None]:
        return list(self.config.schemas) or [None]

    def _namespace(self, schema: str) -> tuple[str, str]:
        """(OpenLineage namespace, the dataset name's prefix) for tables of `schema`."""
        backend = self.url.get_backend_name()
        if backend == "sqlite":
            return f"sqlite://{os.path.abspath(self.url.database or '')}", ""
        host = f"{self.url.host or 'localhost'}" + (f":{self.url.port}" if self.url.port else "")
        database = self.url.database or ""
        prefix = f"{database}." if database and database != schema else ""
        return f"{backend}://{host}", prefix

    def list_tables(self) -> list[Table]:
        tables = []
        for wanted in self._schemas():
            schema = wanted or self.inspector.default_schema_name or "main"
            namespace, prefix = self._namespace(schema)
            names = [(n, "table") for n in self.inspector.get_table_names(schema=wanted)]
            names += [(n, "view") for n in self.inspector.get_view_names(schema=wanted)]
            for name, kind in sorted(names):
                if not self.config.wants(schema, name):
                    continue
                table = Table(
                    schema=schema,
                    name=name,
                    kind=kind,
                    asset=f"{namespace}/{prefix}{schema}.{name}",
                    countable=kind == "table",
                )
                try:
                    table.columns = [
                        (str(c["name"]), self._type(c["type"]))
                        for c in self.inspector.get_columns(name, schema=wanted)
                    ]
                except Exception as exc:
                    if self.broken(exc):
                        raise
                    table.problem = f"cannot read its columns: {first_line(exc)}"
                tables.append(table)
        return tables

    def _type(self, column_type: Any) -> str:
        try:
            return str(column_type.compile(dialect=self.engine.dialect)).lower()
        except Exception:
            return type(column_type).__name__.lower()

    def _relation(self, table: Table) -> Any:
        wanted = table.schema if self.config.schemas else None
        return sa.table(table.name, schema=wanted)

    def _limited(self, query: Any, *, every: bool = False) -> Any:
        """Run `query` under the statement limit: the driver's cancel/interrupt from a timer.
        Its first value, or with `every` all its rows."""
        raw = self.conn.connection.driver_connection
        stop = getattr(raw, "interrupt", None) or getattr(raw, "cancel", None)
        fired = threading.Event()

        def cancel() -> None:
            fired.set()
            if stop is not None:
                stop()

        timer = threading.Timer(self.config.statement_timeout, cancel)
        timer.daemon = True
        timer.start()
        try:
            if isinstance(query, str):
                result = self.conn.exec_driver_sql(query)
            else:
                result = self.conn.execute(query)
            return list(result.all()) if every else result.scalar()
        except sa.exc.DBAPIError:
            self.conn.rollback()
            if fired.is_set():
                raise StatementTimeoutError(
                    f"timed out after {format_duration(self.config.statement_timeout)}; "
                    "the query was cancelled"
                ) from None
            raise
        finally:
            timer.cancel()

    def count(self, table: Table) -> int:
        return int(
            self._limited(sa.select(sa.func.count()).select_from(self._relation(table))) or 0
        )

    def max_value(self, table: Table, column: str) -> Any:
        return self._limited(
            sa.select(sa.func.max(sa.column(column))).select_from(self._relation(table))
        )

    def quoted(self, table: Table) -> str:
        quote = self.preparer.quote
        if self.config.schemas:
            return f"{quote(table.schema)}.{quote(table.name)}"
        return quote(table.name)

    def profile_sql(self) -> ProfileSQL:
        return GenericProfileSQL(self.preparer.quote, self.engine.dialect.name)

    def fetch(self, sql: str) -> list[Any]:
        rows: list[Any] = self._limited(sql, every=True)
        return rows

    def describe(self, exc: BaseException) -> str:
        if isinstance(exc, StatementTimeoutError):
            return str(exc)
        return first_line(exc)

    def close(self) -> None:
        conn, self.conn = getattr(self, "conn", None), None  # type: ignore[assignment]
        if conn is not None:
            with contextlib.suppress(Exception):  # already gone
                conn.close()
        self.engine.dispose()
