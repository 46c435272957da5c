"""DuckDB: the file opened read-only for the length of one cycle; tables and views from
`duckdb_tables()` / `duckdb_views()`, columns from `information_schema`, exact count(*).

DuckDB keeps no per-table modification time. A table changed when its row count or columns
differ from the last cycle's, and then it changed at the database file's time (the later of
the file and its write-ahead log; `modified_source` "file"). An UPDATE that changes neither
is only seen through a declared timestamp column (`--timestamp-column TABLE=COL`).

Sizes are estimates: DuckDB keeps no per-table byte count. A table's size is the storage its
checkpointed column segments occupy (`pragma_storage_info`): each segment up to the next one
in its block (the last one in a block to the block's end), plus its whole extra blocks. Data
still only in the write-ahead log is not counted until DuckDB checkpoints.

DuckDB lets one process write a file, and no other process open it while it does: a cycle
that finds the file held by a writer records that and tries again next time; a writer that
starts during a cycle (milliseconds to seconds) finds the file held by the monitor.
DuckDB has no statement timeout: a query past the limit is interrupted from a timer.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import TYPE_CHECKING, Any

from lakelens.monitors.base import Collector, Table, first_line
from lakelens.monitors.profiles import ProfileSQL
from lakelens.sdk._profile import QUANTILES
from lakelens.units import format_duration

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from lakelens.monitors.settings import MonitorConfig

__all__ = ["DuckDBCollector", "DuckDBProfileSQL"]

_TABLES_SQL = """
SELECT schema_name, table_name, 'table' AS kind, estimated_size
FROM duckdb_tables() WHERE database_name = current_database() AND NOT internal AND NOT temporary
UNION ALL
SELECT schema_name, view_name, 'view', NULL
FROM duckdb_views() WHERE database_name = current_database() AND NOT internal AND NOT temporary
ORDER BY 1, 2
"""
_COLUMNS_SQL = """
SELECT table_schema, table_name, column_name, data_type
FROM information_schema.columns WHERE table_catalog = current_database()
ORDER BY table_schema, table_name, ordinal_position
"""


# Tables per storage query: one pragma_storage_info() each, joined by UNION ALL.
_SIZE_CHUNK = 200


class StatementTimeoutError(Exception):
    """A query ran past the monitor's statement limit and was interrupted."""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class DuckDBProfileSQL(ProfileSQL):
    """Column profiles over every row (DuckDB scans columns fast): exact up to the sample
    threshold, then `approx_count_distinct` and `approx_quantile`; NaN and ±inf of FLOAT and
    DOUBLE columns counted apart."""

    approximates = True
    std = quantiles = histogram = True

    def distinct(self, value: str, approx: bool) -> str:
        return f"approx_count_distinct({value})" if approx else f"count(DISTINCT {value})"

    def length(self, value: str) -> str:
        return f"length(CAST({value} AS VARCHAR))"

    def quantile(self, value: str, approx: bool) -> str:
        points = ", ".join(repr(q) for q in QUANTILES.values())
        function = "approx_quantile" if approx else "quantile_cont"
        return f"{function}(CAST({value} AS DOUBLE), [{points}])"

    def finite(self, value: str, dtype: str) -> str | None:
        if dtype.upper() not in ("FLOAT", "DOUBLE", "REAL", "FLOAT4", "FLOAT8"):
            return None
        return f"isfinite({value})"

    def as_float(self, value: str) -> str:
        return f"CAST({value} AS DOUBLE)"

    def as_text(self, value: str) -> str:
        return f"CAST({value} AS VARCHAR)"


class DuckDBCollector(Collector):
    change_source = "file"

    def __init__(self, config: MonitorConfig, url: URL) -> None:
        super().__init__(config)
        import duckdb

        self.path = url.database or ""
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"no DuckDB file at {self.path}")
        try:
            self.conn: Any = duckdb.connect(self.path, read_only=True)
        except duckdb.Error as exc:
            from lakelens.monitors.settings import MonitorError

            text = first_line(exc)
            if "conflicting lock" in text.lower():
                raise MonitorError(
                    f"cannot open {config.shown_url}: the file is held by a writing process "
                    "(DuckDB lets no other process read it meanwhile); tried again next cycle. "
                    f"{text}"
                ) from None
            raise
        self.catalog = self._run("SELECT current_database()")[0][0]

    def _run(self, sql: str) -> list[Any]:
        fired = threading.Event()

        def interrupt() -> None:
            fired.set()
            self.conn.interrupt()

        timer = threading.Timer(self.config.statement_timeout, interrupt)
        timer.daemon = True
        timer.start()
        try:
            return list(self.conn.execute(sql).fetchall())
        except Exception:
            if fired.is_set():
                raise StatementTimeoutError(
                    f"timed out after {format_duration(self.config.statement_timeout)}; "
                    "the query was interrupted"
                ) from None
            raise
        finally:
            timer.cancel()

    def _file_time(self) -> float | None:
        times = []
        for path in (self.path, self.path + ".wal"):
            try:
                times.append(os.stat(path).st_mtime)
            except OSError:
                continue
        return max(times) if times else None

    def list_tables(self) -> list[Table]:
        changed_at = self._file_time()
        namespace = f"duckdb://{self.path}"
        tables: dict[tuple[str, str], Table] = {}
        for schema, name, kind, estimate in self._run(_TABLES_SQL):
            table = Table(
                schema=schema,
                name=name,
                kind=kind,
                asset=f"{namespace}/{self.catalog}.{schema}.{name}",
                countable=kind == "table",
                changed_hint=changed_at,
            )
            if estimate is not None:
                table.row_count, table.estimated = int(estimate), True
            tables[(schema, name)] = table
        for schema, name, column, data_type in self._run(_COLUMNS_SQL):
            found = tables.get((schema, name))
            if found is not None:
                if found.columns is None:
                    found.columns = []
                found.columns.append((column, str(data_type)))
        self._sizes([t for t in tables.values() if t.kind == "table"])
        return list(tables.values())

    def _sizes(self, tables: list[Table]) -> None:
        """Each table's estimated bytes (see the module's docstring); none when the storage
        cannot be read in time, as the sizes are a bonus the rest of the cycle does not need."""
        try:
            (block,) = self._run(
                "SELECT block_size FROM pragma_database_size() "
                "WHERE database_name = current_database()"
            )[0]
            segments = []
            for start in range(0, len(tables), _SIZE_CHUNK):
                segments += self._run(
                    " UNION ALL ".join(
                        f"SELECT {start + i}, block_id, block_offset, len(additional_block_ids) "
                        f"FROM pragma_storage_info({_literal(self.quoted(table))}) "
                        "WHERE persistent AND block_id >= 0"
                        for i, table in enumerate(tables[start : start + _SIZE_CHUNK])
                    )
                )
        except Exception:  # a timeout or an older DuckDB: sizes stay unknown this cycle
            return
        by_block: dict[int, list[tuple[int, int, int]]] = {}
        for index, block_id, offset, extra in segments:
            by_block.setdefault(int(block_id), []).append((int(offset), int(index), int(extra)))
        sizes = [0] * len(tables)
        for found in by_block.values():
            found.sort()
            ends = [offset for offset, _, _ in found[1:]] + [int(block)]
            for (offset, index, extra), end in zip(found, ends, strict=True):
                sizes[index] += max(0, end - offset) + extra * int(block)
        for table, size in zip(tables, sizes, strict=True):
            # Rows and no checkpointed storage: they are still in the write-ahead log.
            table.bytes = None if size == 0 and table.row_count else size

    def quoted(self, table: Table) -> str:
        return f"{_quote(table.schema)}.{_quote(table.name)}"

    def count(self, table: Table) -> int:
        return int(self._run(f"SELECT count(*) FROM {self.quoted(table)}")[0][0])

    def max_value(self, table: Table, column: str) -> Any:
        return self._run(f"SELECT max({_quote(column)}) FROM {self.quoted(table)}")[0][0]

    def profile_sql(self) -> ProfileSQL:
        return DuckDBProfileSQL(_quote)

    def fetch(self, sql: str) -> list[Any]:
        return self._run(sql)

    def marker(self, table: Table, row_count: int | None) -> str | None:
        if table.kind != "table" or row_count is None:
            return None
        from lakelens.ingest.openlineage_facets import schema_hash

        return f"{row_count}:{schema_hash(table.columns or [])}"

    def close(self) -> None:
        conn, self.conn = getattr(self, "conn", None), None
        if conn is not None:
            with contextlib.suppress(Exception):  # already gone
                conn.close()
