"""PostgreSQL: every table's size, estimate and change counters in one catalog query, every
column in one `information_schema` query, then count(*) for small tables and max() of declared
timestamp columns, one statement each.

The session is read-only (`default_transaction_read_only`), autocommit (a statement's locks
end with it), and every statement runs under `statement_timeout` and `lock_timeout`: the
monitor never waits behind a writer's lock, and what it takes (ACCESS SHARE, as any SELECT)
blocks no INSERT, UPDATE or DELETE. Sizes are not asked of a table that someone holds an
ACCESS EXCLUSIVE lock on (an ALTER or TRUNCATE in progress): it gets the estimate instead.

When did a table change? PostgreSQL keeps no such time. The monitor compares the table's
file node (moved by TRUNCATE, VACUUM FULL, a non-concurrent REFRESH) and its cumulative
insert/update/delete counters (`pg_stat_user_tables`) with the last cycle's: when they moved,
the table changed since then, and the cycle's time is its modification time
(`modified_source` "statistics"). A declared timestamp column gives the exact time instead.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lakelens.monitors.base import Collector, Table, first_line
from lakelens.monitors.profiles import SAMPLED_KINDS, ProfileSQL
from lakelens.sdk._profile import QUANTILES, SEED
from lakelens.units import format_duration

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from lakelens.monitors.settings import MonitorConfig

__all__ = [
    "CATALOG_SQL",
    "COLUMNS_SQL",
    "PARTITIONS_SQL",
    "PostgresCollector",
    "PostgresProfileSQL",
]

_SCHEMAS = "(CAST(:schemas AS text[]) IS NULL OR {column} = ANY(CAST(:schemas AS text[])))"
_SYSTEM = "{column} NOT IN ('pg_catalog', 'information_schema') AND {column} NOT LIKE 'pg\\_%'"

# One row per table, view, materialized view, foreign or partitioned table (partitions are
# read through their parent: PARTITIONS_SQL). `size` is NULL for a relation under an ACCESS
# EXCLUSIVE lock: pg_total_relation_size would wait for it.
_LOCKED = """
locked AS (
  SELECT DISTINCT relation FROM pg_locks
  WHERE locktype = 'relation' AND mode = 'AccessExclusiveLock'
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
)"""
CATALOG_SQL = f"""
WITH {_LOCKED}
SELECT
  n.nspname AS schema, c.relname AS name, c.relkind AS kind,
  c.reltuples AS reltuples, s.n_live_tup AS live,
  CASE WHEN s.relid IS NOT NULL THEN
    c.relfilenode::text || ':' || (s.n_tup_ins + s.n_tup_upd + s.n_tup_del)::text
  WHEN c.relkind = 'm' THEN c.relfilenode::text
  END AS marker,
  has_table_privilege(c.oid, 'SELECT') AS readable,
  lk.relation IS NOT NULL AS locked,
  CASE WHEN {{size}} AND c.relkind IN ('r', 'm') AND lk.relation IS NULL
    THEN pg_total_relation_size(c.oid) END AS size
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
LEFT JOIN locked lk ON lk.relation = c.oid
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
  AND {_SYSTEM.format(column="n.nspname")}
  AND {_SCHEMAS.format(column="n.nspname")}
ORDER BY 1, 2
"""

# Partitioned tables: their leaves' estimates, change markers and sizes, summed.
PARTITIONS_SQL = f"""
WITH {_LOCKED}
SELECT
  n.nspname AS schema, c.relname AS name,
  sum(greatest(leaf.reltuples, 0)) AS reltuples, sum(s.n_live_tup) AS live,
  sum(leaf.relfilenode::bigint)::text || ':'
    || coalesce(sum(s.n_tup_ins + s.n_tup_upd + s.n_tup_del), 0)::text AS marker,
  CASE WHEN {{size}} THEN
    sum(CASE WHEN lk.relation IS NULL THEN pg_total_relation_size(leaf.oid) END) END AS size
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pg_partition_tree(c.oid) t
JOIN pg_class leaf ON leaf.oid = t.relid
LEFT JOIN pg_stat_user_tables s ON s.relid = t.relid
LEFT JOIN locked lk ON lk.relation = t.relid
WHERE c.relkind = 'p' AND NOT c.relispartition AND t.isleaf
  AND {_SYSTEM.format(column="n.nspname")}
  AND {_SCHEMAS.format(column="n.nspname")}
GROUP BY 1, 2
"""

COLUMNS_SQL = f"""
SELECT table_schema, table_name, column_name, data_type, udt_name,
       character_maximum_length, numeric_precision, numeric_scale
FROM information_schema.columns
WHERE {_SYSTEM.format(column="table_schema")} AND {_SCHEMAS.format(column="table_schema")}
ORDER BY table_schema, table_name, ordinal_position
"""

# SQLSTATEs said plainly.
_TIMEOUT, _LOCKED, _PRIVILEGE, _UNDEFINED = "57014", "55P03", "42501", "42P01"


def _type(data_type: str, udt: str, length: int | None, precision: Any, scale: Any) -> str:
    if data_type in ("USER-DEFINED", "ARRAY"):
        return udt
    if length:
        return f"{data_type}({length})"
    if data_type == "numeric" and precision is not None:
        return f"numeric({precision},{scale or 0})"
    return data_type


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


class PostgresProfileSQL(ProfileSQL):
    """Column profiles: exact over tables up to the sample threshold; above it, a
    `TABLESAMPLE SYSTEM` (pages, a fixed seed) of about that many rows; `percentile_cont`
    for quantiles; NaN and ±Infinity of real and double precision columns counted apart."""

    samples = SAMPLED_KINDS
    std = quantiles = histogram = True

    def source(self, relation: str, percent: float | None) -> str:
        if percent is None or percent >= 100:
            return relation
        return f"{relation} TABLESAMPLE SYSTEM ({percent:.6g}) REPEATABLE ({SEED})"

    def quantile(self, value: str, approx: bool) -> str:
        points = ", ".join(repr(q) for q in QUANTILES.values())
        return (
            f"percentile_cont(ARRAY[{points}]) WITHIN GROUP "
            f"(ORDER BY CAST({value} AS double precision))"
        )

    def finite(self, value: str, dtype: str) -> str | None:
        if dtype not in ("real", "double precision"):
            return None  # numeric's NaN is rare enough to leave in
        # NaN sorts above Infinity in PostgreSQL: one comparison each way keeps the finite.
        return f"{value} < 'Infinity' AND {value} > '-Infinity'"

    def as_text(self, value: str) -> str:
        return f"CAST({value} AS text)"


class PostgresCollector(Collector):
    """One read-only, autocommit connection with statement and lock time limits."""

    change_source = "statistics"

    def __init__(self, config: MonitorConfig, url: URL) -> None:
        super().__init__(config)
        from sqlalchemy.pool import NullPool

        self.host = url.host or "localhost"
        self.port = url.port or 5432
        connect_args: dict[str, Any] = {
            "connect_timeout": max(2, round(config.connect_timeout)),
            "application_name": f"lakelens monitor {config.name}"[:63],
        }
        self.engine = sa.create_engine(
            url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=connect_args
        )
        self.conn = self.engine.connect()
        try:
            for setting, value in (
                ("default_transaction_read_only", "on"),
                ("statement_timeout", f"{round(config.statement_timeout * 1000)}"),
                ("lock_timeout", f"{round(config.lock_timeout * 1000)}"),
                (
                    "idle_in_transaction_session_timeout",
                    f"{round(config.statement_timeout * 1000)}",
                ),
            ):
                self.conn.exec_driver_sql(f"SET {setting} = {value}")
            # Compiling catalog queries costs more than running them (1.4 s of 1.5 s).
            with contextlib.suppress(sa.exc.DBAPIError):
                self.conn.exec_driver_sql("SET jit = off")
            self.database = self.conn.exec_driver_sql("SELECT current_database()").scalar()
        except BaseException:
            self.close()
            raise
        self.quote = self.engine.dialect.identifier_preparer.quote

    def list_tables(self) -> list[Table]:
        schemas = list(self.config.schemas) or None
        rows = self._catalog(CATALOG_SQL, schemas)
        if any(row["kind"] == "p" for row in rows):
            parts = {(p["schema"], p["name"]): p for p in self._catalog(PARTITIONS_SQL, schemas)}
            rows = [
                {**row, **parts.get((row["schema"], row["name"]), {})}
                if row["kind"] == "p"
                else row
                for row in rows
            ]
        tables: dict[tuple[str, str], Table] = {}
        limit = self.config.exact_count_max_bytes
        namespace = f"postgres://{self.host}:{self.port}"
        for row in rows:
            kind = {"v": "view", "m": "materialized_view", "f": "foreign", "p": "partitioned"}
            table = Table(
                schema=row["schema"],
                name=row["name"],
                kind=kind.get(row["kind"], "table"),
                asset=f"{namespace}/{self.database}.{row['schema']}.{row['name']}",
                bytes=int(row["size"]) if row["size"] is not None else None,
                marker=row["marker"],
            )
            if row["reltuples"] is not None and row["reltuples"] >= 0:
                table.row_count, table.estimated = int(row["reltuples"]), True
            elif row["live"] is not None:
                table.row_count, table.estimated = int(row["live"]), True
            if not row["readable"]:
                table.problem = (
                    f"missing privilege: SELECT on {table.qualified} (grant it to the monitor's "
                    "user, or leave the table out with --tables)"
                )
            table.countable = (
                row["kind"] in ("r", "m", "p")
                and bool(row["readable"])
                and table.bytes is not None
                and table.bytes <= limit
            )
            tables[(table.schema, table.name)] = table
        for column in self.conn.execute(sa.text(COLUMNS_SQL), {"schemas": schemas}):
            found = tables.get((column[0], column[1]))
            if found is not None and found.problem is None:
                if found.columns is None:
                    found.columns = []
                found.columns.append((column[2], _type(*column[3:])))
        return list(tables.values())

    def _catalog(self, sql: str, schemas: list[str] | None) -> list[dict[str, Any]]:
        try:
            result = self.conn.execute(sa.text(sql.format(size="true")), {"schemas": schemas})
        except sa.exc.DBAPIError as exc:
            if _sqlstate(exc) != _LOCKED:
                raise
            # A relation was locked between the lock check and its size: no sizes this time.
            result = self.conn.execute(sa.text(sql.format(size="false")), {"schemas": schemas})
        return [dict(row) for row in result.mappings()]

    def quoted(self, table: Table) -> str:
        return f"{self.quote(table.schema)}.{self.quote(table.name)}"

    def count(self, table: Table) -> int:
        return int(
            self.conn.exec_driver_sql(f"SELECT count(*) FROM {self.quoted(table)}").scalar() or 0
        )

    def max_value(self, table: Table, column: str) -> Any:
        return self.conn.exec_driver_sql(
            f"SELECT max({self.quote(column)}) FROM {self.quoted(table)}"
        ).scalar()

    def profile_sql(self) -> ProfileSQL:
        return PostgresProfileSQL(self.quote)

    def fetch(self, sql: str) -> list[Any]:
        return list(self.conn.exec_driver_sql(sql).all())

    def changed(self, previous: str, current: str) -> bool:
        """The file node moved, or the counters grew (a statistics reset is no change)."""
        old_node, _, old_changes = previous.partition(":")
        node, _, changes = current.partition(":")
        if old_node != node:
            return True
        try:
            return int(changes or 0) > int(old_changes or 0)
        except ValueError:
            return previous != current

    def describe(self, exc: BaseException) -> str:
        code = _sqlstate(exc)
        if code == _TIMEOUT:
            return (
                f"timed out after {format_duration(self.config.statement_timeout)} "
                "(statement_timeout); the query was cancelled"
            )
        if code == _LOCKED:
            return (
                f"locked by another session; gave up after "
                f"{format_duration(self.config.lock_timeout)} (lock_timeout)"
            )
        if code == _PRIVILEGE:
            return f"missing privilege: {first_line(exc)}"
        if code == _UNDEFINED:
            return f"vanished while being read: {first_line(exc)}"
        return first_line(exc)

    def close(self) -> None:
        conn, self.conn = getattr(self, "conn", None), None  # type: ignore[assignment]
        if conn is not None:
            with contextlib.suppress(Exception):  # already gone
                conn.close()
        self.engine.dispose()
