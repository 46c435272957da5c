"""Column profiles of warehouse tables: the columns a user opts in to (`profile_columns`),
summarized by queries that run in the warehouse, recorded in the shape `lakelens.profile()`
records (docs/profiles.md) with `source="monitor"`. Nothing is copied out but the results.

Per table (base.py decides when: at most every `profile_interval`, once it changed):

1. one aggregate query over the opted-in columns (COLUMNS_PER_QUERY at a time): the rows read,
   and per column its count, distinct values, min/max/mean/std and quantiles of numbers,
   lengths of strings, true/false of booleans, the earliest and latest time;
2. one distribution query: the TOP_VALUES most frequent values of each string column, the
   HISTOGRAM_BINS-bin histogram of each numeric column (its bounds from the first query), and
   on a sample how many values were seen once and twice (the distinct estimate's input).

What they read depends on the table's size against `profile_sample_above` (1,000,000 rows):

- at most that many rows, or a size nobody knows: every row; every statistic exact;
- more, on an engine that samples (ProfileSQL.samples: PostgreSQL tables, partitioned
  tables, materialized views): a `TABLESAMPLE SYSTEM` of about that many rows (whole pages,
  a fixed seed). Every statistic but the row count (the observation's) is then of the sample,
  top value counts too; distinct values are estimated from it as lakelens.profile() does
  (Chao1), marked `distinct_approx`;
- more, on an engine with approximate aggregates (ProfileSQL.approximates: DuckDB): every
  row, with approximate distinct values (marked) and quantiles;
- more, elsewhere (views, other dialects): every row, under the statement limit.

Every query runs on the collector's one read-only connection under its statement limit.
When the aggregate query fails (a column past the limit, a column dropped meanwhile), each
column is queried alone: a column that fails gets an `error` in its statistics, the others
are recorded. The queries after a failure stop at FALLBACK_BUDGET statement limits per table.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from lakelens.sdk._profile import (
    HISTOGRAM_BINS,
    MAX_COLUMNS,
    QUANTILES,
    TOP_VALUES,
    clean_number,
    column_key,
    estimate_distinct,
    finish_column,
    iso,
    top_text,
)

if TYPE_CHECKING:
    from lakelens.monitors.base import Collector, Table

__all__ = [
    "COLUMNS_PER_QUERY",
    "FALLBACK_BUDGET",
    "SAMPLED_KINDS",
    "ProfileSQL",
    "TableProfile",
    "kind_of",
    "profile_table",
]

# Columns per aggregate query (about ten expressions each; PostgreSQL takes 1,664 at most).
COLUMNS_PER_QUERY = 50
# After a failed query, the per-column queries of a table stop once this many statement
# limits have passed since its profile began: a table slow as a whole costs minutes, not hours.
FALLBACK_BUDGET = 3
# Relation kinds PostgreSQL can TABLESAMPLE (not views or foreign tables).
SAMPLED_KINDS = frozenset({"table", "partitioned", "materialized_view"})


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Warehouse type names (their first word, lower case) by the profile's type of the column.
_INTEGERS = _names(
    "tinyint smallint mediumint integer int int2 int4 int8 bigint hugeint utinyint usmallint "
    "uinteger ubigint uhugeint smallserial serial bigserial"
)
_FLOATS = _names("real float float4 float8 double numeric decimal number dec")
_STRINGS = _names(
    "text varchar char character nvarchar nchar string citext clob ntext tinytext mediumtext "
    "longtext bpchar enum"
)
_TIMES = _names(
    "date timestamp timestamptz datetime datetime2 smalldatetime datetimeoffset timestamp_s "
    "timestamp_ms timestamp_ns"
)


def _base(dtype: str) -> str:
    return re.split(r"[\s(]", dtype.strip().lower(), maxsplit=1)[0]


def kind_of(dtype: str) -> str:
    """The profile's type of a warehouse column type: integer, float, boolean, string, time
    or other (arrays, structs, JSON, intervals, times of day, …)."""
    text = dtype.strip().lower()
    if text.endswith("]") or text.startswith("_"):  # arrays (PostgreSQL names them _int4)
        return "other"
    base = _base(text)
    if base in _INTEGERS:
        return "integer"
    if base in _FLOATS:
        return "float"
    if base in ("boolean", "bool"):
        return "boolean"
    if base in _STRINGS:
        return "string"
    if base in _TIMES:
        return "time"
    return "other"


class ProfileSQL:
    """How an engine spells the profile's queries. This base is plain SQL for any dialect:
    counts, distinct values, min, max, mean, string lengths and top values."""

    # Relation kinds read through TABLESAMPLE SYSTEM above the sample threshold.
    samples: frozenset[str] = frozenset()
    # Approximate distinct values and quantiles over every row above the threshold.
    approximates = False
    # Standard deviation, quantiles and histograms (floor() and a cast to a float type).
    std = False
    quantiles = False
    histogram = False

    def __init__(self, quote: Callable[[str], str]) -> None:
        self.quote = quote

    def source(self, relation: str, percent: float | None) -> str:
        """The FROM clause: the relation, or a sample of `percent` of it."""
        return relation

    def distinct(self, value: str, approx: bool) -> str:
        return f"count(DISTINCT {value})"

    def length(self, value: str) -> str:
        return f"char_length({value})"

    def stddev(self, value: str) -> str:
        return f"stddev_samp({value})"

    def quantile(self, value: str, approx: bool) -> str:
        """All QUANTILES of `value` at once, as an array of floats."""
        raise NotImplementedError

    def finite(self, value: str, dtype: str) -> str | None:
        """A condition true for finite values of a float column (None: no NaN/infinity)."""
        return None

    def as_float(self, value: str) -> str:
        return f"CAST({value} AS double precision)"

    def as_text(self, value: str) -> str:
        return value

    def literal(self, number: float) -> str:
        return self.as_float(repr(float(number)))


@dataclass
class TableProfile:
    """What profiling a table found; the cycle records it as a Profile."""

    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    row_count: int | None = None
    # Rows of the sample the statistics came from (None: every row).
    sampled_rows: int | None = None
    # Nothing could be profiled: why.
    error: str | None = None

    @property
    def failed(self) -> dict[str, str]:
        """Column → why (part of) it could not be profiled."""
        return {
            name: str(stats["error"]) for name, stats in self.columns.items() if "error" in stats
        }


@dataclass
class _Column:
    index: int
    name: str
    dtype: str
    kind: str
    # Which statistics the aggregate query returns, in its column order.
    keys: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    rows: int | None = None
    top: list[tuple[str, int]] = field(default_factory=list)
    bins: dict[int, int] = field(default_factory=dict)
    singletons: int = 0
    doubletons: int = 0
    lows: tuple[float, float] | None = None
    errors: list[str] = field(default_factory=list)
    # The aggregate query failed for it: nothing of it but the error.
    lost: bool = False


@dataclass
class _Plan:
    collector: Collector
    sql: ProfileSQL
    table: Table
    relation: str
    percent: float | None
    approx: bool
    deadline: float

    @property
    def source(self) -> str:
        return self.sql.source(self.relation, self.percent)

    @property
    def sampled(self) -> bool:
        return self.percent is not None


def profile_table(
    collector: Collector,
    sql: ProfileSQL,
    table: Table,
    relation: str,
    columns: Sequence[str],
    *,
    rows: int | None,
    sample_above: int,
    clock: Callable[[], float] = time.monotonic,
) -> TableProfile:
    """Profile `columns` of `table` (names as the catalog lists them; '*' for all) with the
    queries described above; failures become notes, only a lost connection raises."""
    types = dict(table.columns or [])
    named = [c for c in dict.fromkeys(columns) if c != "*"]
    wanted = [*types, *(c for c in named if c not in types)] if "*" in columns else named
    result = TableProfile()
    plan_columns: list[_Column] = []
    for name in wanted[:MAX_COLUMNS]:
        if name not in types:
            result.columns[column_key(name)] = {
                "type": "other",
                "error": f"no column {name!r} in {table.qualified} (named in profile_columns)",
            }
            continue
        dtype = types[name]
        plan_columns.append(_Column(len(plan_columns), name, dtype, kind_of(dtype)))
    if not plan_columns:
        # Nothing to query: the notes become the profile's error (no columns, no statistics).
        notes = [stats["error"] for stats in result.columns.values()]
        return TableProfile(error="; ".join(notes) or None)
    big = rows is not None and rows > sample_above
    percent = None
    if big and table.kind in sql.samples:
        percent = min(100.0, 100.0 * sample_above / max(rows or 1, 1))
    plan = _Plan(
        collector,
        sql,
        table,
        relation,
        percent,
        approx=big and sql.approximates,
        deadline=clock() + FALLBACK_BUDGET * collector.config.statement_timeout,
    )
    read = _aggregate(plan, plan_columns, clock)
    if plan.sampled and read == 0 and not all(c.lost for c in plan_columns):
        # The estimate was stale: the table is empty (or nearly); read it whole.
        plan.percent = None
        for column in plan_columns:
            column.values, column.errors, column.lost, column.rows = {}, [], False, None
        read = _aggregate(plan, plan_columns, clock)
    live = [c for c in plan_columns if not c.lost]
    if live:
        _distribution(plan, live, clock)
    if plan.sampled:
        result.sampled_rows = read
        result.row_count = rows
    else:
        result.row_count = read
    for column in plan_columns:
        result.columns[column_key(column.name)] = _stats(plan, column, read, rows)
    if not live:
        first = plan_columns[0]
        result.error = f"every column failed; {first.name}: {first.errors[0]}"
        result.columns = {}
    return result


# -- the aggregate query ----------------------------------------------------------------------


def _expressions(plan: _Plan, column: _Column) -> list[tuple[str, str]]:
    sql = plan.sql
    q = sql.quote(column.name)
    found = [("count", f"count({q})")]
    if column.kind in ("integer", "float"):
        finite = sql.finite(q, column.dtype) if column.kind == "float" else None
        v = f"CASE WHEN {finite} THEN {q} END" if finite else q
        found.append(("distinct", sql.distinct(q, plan.approx)))
        if finite:
            found.append(("finite", f"count({v})"))
        found += [("min", f"min({v})"), ("max", f"max({v})"), ("mean", f"avg({v})")]
        if sql.std:
            found.append(("std", sql.stddev(v)))
        if sql.quantiles:
            found.append(("quantiles", sql.quantile(v, plan.approx)))
    elif column.kind == "string":
        length = sql.length(q)
        found += [
            ("distinct", sql.distinct(q, plan.approx)),
            ("min_length", f"min({length})"),
            ("max_length", f"max({length})"),
            ("mean_length", f"avg({length})"),
        ]
    elif column.kind == "boolean":
        found += [
            ("distinct", f"count(DISTINCT {q})"),
            ("true", f"count(CASE WHEN {q} THEN 1 END)"),
            ("false", f"count(CASE WHEN NOT {q} THEN 1 END)"),
        ]
    elif column.kind == "time":
        found += [("min", f"min({q})"), ("max", f"max({q})")]
    return found


def _aggregate(plan: _Plan, columns: list[_Column], clock: Callable[[], float]) -> int:
    """Run the aggregate queries; fill each column's values. Returns the rows read."""
    read = 0
    for start in range(0, len(columns), COLUMNS_PER_QUERY):
        chunk = columns[start : start + COLUMNS_PER_QUERY]
        try:
            read = _select(plan, chunk)
            continue
        except Exception as exc:
            if plan.collector.broken(exc):
                raise
            why = plan.collector.describe(exc)
        if len(chunk) == 1:
            _lose(chunk[0], why)
            continue
        for column in chunk:  # one at a time: which one is it?
            if clock() > plan.deadline:
                _lose(column, _over_budget(plan, why))
                continue
            try:
                read = _select(plan, [column])
            except Exception as exc:
                if plan.collector.broken(exc):
                    raise
                _lose(column, plan.collector.describe(exc))
    return read


def _select(plan: _Plan, columns: list[_Column]) -> int:
    parts = ["count(*)"]
    for column in columns:
        expressions = _expressions(plan, column)
        column.keys = [key for key, _ in expressions]
        parts += [expression for _, expression in expressions]
    sql = f"SELECT {', '.join(parts)} FROM {plan.source}"
    (row,) = plan.collector.fetch(sql)
    position = 1
    for column in columns:
        column.values = dict(
            zip(column.keys, row[position : position + len(column.keys)], strict=True)
        )
        column.rows = int(row[0] or 0)
        column.lost = False
        position += len(column.keys)
    return int(row[0] or 0)


def _lose(column: _Column, why: str) -> None:
    column.lost = True
    column.errors.append(why)


def _over_budget(plan: _Plan, why: str) -> str:
    limit = FALLBACK_BUDGET * plan.collector.config.statement_timeout
    return f"not profiled: the table's queries failed ({why}) and ran past {limit:g}s"


# -- the distribution query: top values, histograms, values seen once and twice ----------------


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _parts(plan: _Plan, column: _Column) -> list[str]:
    """The distribution query's SELECTs for a column: rows of (index, what, value, count)."""
    sql, q, i, source = plan.sql, plan.sql.quote(column.name), column.index, plan.source
    parts = []
    if column.kind == "string":
        parts.append(
            f"SELECT {i} AS i, 'top' AS what, {sql.as_text(q)} AS v, count(*) AS n "
            f"FROM {source} WHERE {q} IS NOT NULL GROUP BY {q} "
            f"ORDER BY count(*) DESC, {q} LIMIT {TOP_VALUES}"
        )
    if column.kind in ("integer", "float") and sql.histogram:
        low, high = _number(column.values.get("min")), _number(column.values.get("max"))
        if low is not None and high is not None and high > low and math.isfinite(high - low):
            column.lows = (low, (high - low) / HISTOGRAM_BINS)
            finite = sql.finite(q, column.dtype) if column.kind == "float" else None
            bucket = (
                f"floor(({sql.as_float(q)} - {sql.literal(low)}) / {sql.literal(column.lows[1])})"
            )
            parts.append(
                f"SELECT {i} AS i, 'bin' AS what, {sql.as_text(bucket)} AS v, count(*) AS n "
                f"FROM {source} WHERE {q} IS NOT NULL"
                + (f" AND {finite}" if finite else "")
                + f" GROUP BY {bucket}"
            )
    if plan.sampled and column.kind in ("integer", "float", "string"):
        # How many values the sample holds once (v = '1') and twice ('2').
        parts.append(
            f"SELECT {i} AS i, 'seen' AS what, {sql.as_text('c')} AS v, count(*) AS n FROM "
            f"(SELECT count(*) AS c FROM {source} WHERE {q} IS NOT NULL GROUP BY {q}) g "
            "WHERE c <= 2 GROUP BY c"
        )
    return parts


def _distribution(plan: _Plan, columns: list[_Column], clock: Callable[[], float]) -> None:
    wanted = {c.index: _parts(plan, c) for c in columns}
    every = [(i, part) for i, parts in wanted.items() for part in parts]
    if not every:
        return
    by_index = {c.index: c for c in columns}
    try:
        _read_parts(plan, [part for _, part in every], by_index)
        return
    except Exception as exc:
        if plan.collector.broken(exc):
            raise
        why = plan.collector.describe(exc)
    for column in columns:  # one column at a time: which one is it?
        parts = wanted[column.index]
        if not parts:
            continue
        column.top, column.bins = [], {}
        column.singletons = column.doubletons = 0
        if clock() > plan.deadline:
            column.errors.append(_over_budget(plan, why))
            column.lows = None
            continue
        try:
            _read_parts(plan, parts, by_index)
        except Exception as exc:
            if plan.collector.broken(exc):
                raise
            column.errors.append(f"top values and histogram: {plan.collector.describe(exc)}")
            column.lows = None


def _read_parts(plan: _Plan, parts: list[str], by_index: dict[int, _Column]) -> None:
    sql = " UNION ALL ".join(f"SELECT * FROM ({part}) AS p{n}" for n, part in enumerate(parts))
    for index, what, value, count in plan.collector.fetch(sql):
        column = by_index[int(index)]
        if what == "top":
            column.top.append((top_text(value), int(count)))
        elif what == "bin":
            slot = min(max(int(float(value)), 0), HISTOGRAM_BINS - 1)
            column.bins[slot] = column.bins.get(slot, 0) + int(count)
        elif what == "seen" and int(value) == 1:
            column.singletons = int(count)
        elif what == "seen" and int(value) == 2:
            column.doubletons = int(count)


# -- the statistics, as lakelens.profile() records them ---------------------------------------


def _stats(plan: _Plan, column: _Column, read: int, rows: int | None) -> dict[str, Any]:
    head: dict[str, Any] = {"type": column.kind, "dtype": column.dtype}
    if column.lost:
        return {**head, "error": "; ".join(column.errors)}
    values = column.values
    scanned = column.rows if column.rows is not None else read
    count = int(values.get("count") or 0)
    stats: dict[str, Any] = dict(head)
    if column.kind in ("integer", "float"):
        finite = values.get("finite")
        if finite is not None and count - int(finite) > 0:
            stats["non_finite"] = count - int(finite)
        stats.update(_distinct(plan, column, count, scanned, rows))
        if values.get("min") is not None:
            convert = _integer if column.kind == "integer" else _float
            stats["min"], stats["max"] = convert(values["min"]), convert(values["max"])
            stats["mean"] = _float(values.get("mean"))
            if plan.sql.std:
                stats["std"] = _float(values.get("std"))
            quantiles = values.get("quantiles")
            if plan.sql.quantiles and quantiles is not None:
                stats["quantiles"] = {
                    name: _float(q) for name, q in zip(QUANTILES, list(quantiles), strict=False)
                }
            histogram = _histogram(column, finite if finite is not None else count)
            if histogram is not None:
                stats["histogram"] = histogram
    elif column.kind == "string":
        stats.update(_distinct(plan, column, count, scanned, rows))
        if values.get("min_length") is not None:
            stats["min_length"] = int(values["min_length"])
            stats["max_length"] = int(values["max_length"])
            stats["mean_length"] = _float(values.get("mean_length"))
        if not column.errors:
            top = sorted(column.top, key=lambda item: (-item[1], item[0]))[:TOP_VALUES]
            stats["top"] = [[value, n] for value, n in top]
    elif column.kind == "boolean":
        stats["distinct"] = int(values.get("distinct") or 0)
        stats["true"], stats["false"] = int(values.get("true") or 0), int(values.get("false") or 0)
    elif column.kind == "time" and values.get("min") is not None:
        stats["min"], stats["max"] = iso(values["min"]), iso(values["max"])
    if column.errors:
        stats["error"] = "; ".join(column.errors)
    return finish_column(stats, row_count=scanned, count=count, nulls=scanned - count)


def _distinct(
    plan: _Plan, column: _Column, count: int, scanned: int, rows: int | None
) -> dict[str, Any]:
    seen = int(column.values.get("distinct") or 0)
    if plan.sampled and scanned and rows:
        non_null = max(count, round(count * rows / scanned))
        estimate = estimate_distinct(seen, column.singletons, column.doubletons, count, non_null)
        return {"distinct": estimate, "distinct_approx": True}
    if plan.approx:
        # approx_count_distinct may overshoot a little: never more than the values counted.
        return {"distinct": min(seen, count), "distinct_approx": True}
    return {"distinct": seen}


def _histogram(column: _Column, finite: int) -> dict[str, Any] | None:
    low, high = _number(column.values.get("min")), _number(column.values.get("max"))
    if low is None or high is None or not math.isfinite(high - low):
        return None
    if high == low:  # one value: every count in the last bin, as lakelens.profile() does
        counts = [0] * HISTOGRAM_BINS
        counts[-1] = finite
    elif column.lows is None:
        return None
    else:
        counts = [column.bins.get(slot, 0) for slot in range(HISTOGRAM_BINS)]
    return {"bins": [clean_number(low), clean_number(high)], "counts": counts}


def _integer(value: Any) -> int | float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    number = _float(value)
    return int(number) if number is not None and float(number).is_integer() else number


def _float(value: Any) -> float | int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return clean_number(float(value))
    except (TypeError, ValueError):
        return None
