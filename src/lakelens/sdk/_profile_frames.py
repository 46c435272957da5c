"""Profiles of pandas and polars DataFrames and pyarrow Tables, with each library's own
vectorized operations and numpy: no Python loop over rows. Imported only when `profile()` is
given one of their objects (numpy comes with each of them).

The rules (what is exact, what comes from the sample) are in sdk/_profile.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lakelens.sdk._profile import (
    DISTINCT_EXACT,
    HISTOGRAM_BINS,
    QUANTILES,
    SAMPLE_ROWS,
    SEED,
    TOP_VALUES,
    Computed,
    clean_number,
    column_key,
    estimate_distinct,
    finish_column,
    iso,
    select_columns,
    top_text,
)

__all__ = ["Positions", "compute"]

_Q = np.array(list(QUANTILES.values()))
# The most frequent values are picked among at most this many tied candidates.
_TIE_SORT_LIMIT = 10_000


def compute(module: str, data: Any, wanted: list[str] | None) -> Computed:
    """The profile of a pandas, polars or pyarrow object (`module` names the library)."""
    # Overflow on extreme values (std of ±1e308) gives null statistics, not warnings.
    with np.errstate(all="ignore"):
        if module == "pandas":
            return _pandas(data, wanted)
        if module == "polars":
            return _polars(data, wanted)
        return _arrow(data, wanted)


class Positions:
    """Which rows each statistic reads, drawn once per frame with a fixed seed.

    `sample`: sorted positions of a uniform sample of SAMPLE_ROWS rows, or None when the
    frame is profiled whole. `distinct`: sorted positions of DISTINCT_EXACT rows among those
    (the rows whose numbers are counted for the distinct estimate), or None when they are
    few enough to count exactly.
    """

    def __init__(self, rows: int) -> None:
        rng = np.random.default_rng(SEED)
        self.sample: np.ndarray | None = None
        if rows > SAMPLE_ROWS:
            self.sample = np.sort(rng.choice(rows, size=SAMPLE_ROWS, replace=False))
        base = rows if self.sample is None else SAMPLE_ROWS
        self.distinct: np.ndarray | None = None
        if base > DISTINCT_EXACT:
            picked = np.sort(rng.choice(base, size=DISTINCT_EXACT, replace=False))
            self.distinct = picked if self.sample is None else self.sample[picked]

    @property
    def sampled_rows(self) -> int | None:
        return None if self.sample is None else int(self.sample.size)


# -- the statistics, on numpy arrays ----------------------------------------------------------


def _numbers(
    full: np.ndarray, pool: np.ndarray | None, sub: np.ndarray | None, *, integer: bool
) -> dict[str, Any]:
    """Statistics of a column's non-null values: exact over `full`; quantiles and histogram
    over `pool` (the sample's values; None: `full`); distinct values counted in `full`, or
    estimated from `sub` (values at Positions.distinct) when it is given."""
    stats: dict[str, Any] = {}
    if not integer:
        finite = np.isfinite(full)
        if not finite.all():
            stats["non_finite"] = int(full.size - np.count_nonzero(finite))
            full = full[finite]
        pool = None if pool is None else pool[np.isfinite(pool)]
        sub = None if sub is None else sub[np.isfinite(sub)]
    if full.size == 0:
        stats["distinct"] = 0
        return stats
    low, high = full.min(), full.max()
    as_float = full if full.dtype == np.float64 else full.astype(np.float64)
    mean = float(as_float.mean())
    std = float(as_float.std(ddof=1)) if full.size > 1 else None
    if sub is None:
        stats.update(_distinct_sorted(np.sort(full), sampled=None, non_null=int(full.size)))
    else:
        stats.update(_distinct_sorted(np.sort(sub), sampled=int(sub.size), non_null=int(full.size)))
    stats["min"] = int(low) if integer else clean_number(float(low))
    stats["max"] = int(high) if integer else clean_number(float(high))
    stats["mean"] = clean_number(mean)
    stats["std"] = None if std is None else clean_number(std)
    values = full if pool is None else pool
    if values.size:
        quantiles = np.quantile(values, _Q)
        stats["quantiles"] = {
            name: clean_number(float(v)) for name, v in zip(QUANTILES, quantiles, strict=True)
        }
        histogram = _histogram(values, float(low), float(high))
        if histogram is not None:
            stats["histogram"] = histogram
    return stats


def _distinct_sorted(ordered: np.ndarray, *, sampled: int | None, non_null: int) -> dict[str, Any]:
    """Distinct values of sorted `ordered`: all of the column's (sampled None) or a sample."""
    if ordered.size == 0:
        return {"distinct": 0}
    starts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    distinct = int(starts.size + 1)
    if sampled is None:
        return {"distinct": distinct}
    runs = np.diff(np.concatenate(([0], starts, [ordered.size])))
    return _approx(distinct, runs, sampled, non_null)


def _approx(distinct: int, counts: np.ndarray, sampled: int, non_null: int) -> dict[str, Any]:
    if sampled >= non_null:
        return {"distinct": distinct}
    estimate = estimate_distinct(
        distinct,
        int(np.count_nonzero(counts == 1)),
        int(np.count_nonzero(counts == 2)),
        sampled,
        non_null,
    )
    return {"distinct": estimate, "distinct_approx": True}


def _histogram(values: np.ndarray, low: float, high: float) -> dict[str, Any] | None:
    """HISTOGRAM_BINS equal bins from the column's minimum to its maximum (the last closed)."""
    if not np.isfinite(high - low):  # values spanning more than a float can hold
        return None
    if high == low:
        counts = [0] * (HISTOGRAM_BINS - 1) + [int(values.size)]
    else:
        found, _edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(low, high))
        counts = [int(c) for c in found]
    return {"bins": [clean_number(low), clean_number(high)], "counts": counts}


def _strings(
    values: Any,
    counts: np.ndarray,
    lengths: np.ndarray,
    *,
    non_null: int,
    text: Callable[[int], Any],
) -> dict[str, Any]:
    """Statistics of a string column from its value counts: `values[i]` was seen `counts[i]`
    times and has `lengths[i]` characters; `text(i)` is the value as Python text. Counted in
    a sample (fewer values than `non_null`), the distinct count is an estimate."""
    keep = counts > 0  # a categorical's unused categories
    if not keep.all():
        index = np.flatnonzero(keep)
        counts, lengths = counts[index], lengths[index]
        order_of = index
    else:
        order_of = None
    if counts.size == 0:
        return {"distinct": 0}
    total = int(counts.sum())
    stats = _approx(int(counts.size), counts, total, non_null)
    stats["min_length"] = int(lengths.min())
    stats["max_length"] = int(lengths.max())
    stats["mean_length"] = clean_number(float((lengths * counts).sum()) / total)
    picks = _top(counts)
    stats["top"] = [
        [top_text(text(int(i if order_of is None else order_of[i]))), int(counts[i])] for i in picks
    ]
    stats["top"].sort(key=lambda item: (-item[1], item[0]))
    return stats


def _top(counts: np.ndarray) -> list[int]:
    """Positions of the TOP_VALUES largest counts, ties in a stable order."""
    if counts.size <= TOP_VALUES:
        return list(np.argsort(-counts, kind="stable"))
    threshold = np.partition(counts, counts.size - TOP_VALUES)[counts.size - TOP_VALUES]
    candidates = np.flatnonzero(counts >= threshold)
    if candidates.size > _TIE_SORT_LIMIT:
        candidates = candidates[:_TIE_SORT_LIMIT]
    ranked = candidates[np.argsort(-counts[candidates], kind="stable")]
    return [int(i) for i in ranked[:TOP_VALUES]]


def _booleans(trues: int, count: int) -> dict[str, Any]:
    return {
        "distinct": int(trues > 0) + int(count - trues > 0),
        "true": trues,
        "false": count - trues,
    }


def _times(low: Any, high: Any) -> dict[str, Any]:
    if low is None or high is None:
        return {}
    return {"min": iso(low), "max": iso(high)}


# -- pandas -----------------------------------------------------------------------------------


def _pandas(df: Any, wanted: list[str] | None) -> Computed:
    import pandas as pd

    if isinstance(df, pd.Series):
        df = df.to_frame()
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"cannot profile a pandas {type(df).__name__}: pass a DataFrame")
    rows = len(df)
    at = Positions(rows)
    result = Computed(row_count=rows, sampled_rows=at.sampled_rows)
    names = [str(c) for c in df.columns]
    by_name = {name: i for i, name in reversed(list(enumerate(names)))}
    for name in select_columns(names, wanted):
        series = df.iloc[:, by_name[name]]
        nulls = int(series.isna().sum())
        count = rows - nulls
        stats = _pandas_column(pd, series, at, count)
        result.columns[column_key(name)] = finish_column(
            stats, row_count=rows, count=count, nulls=nulls
        )
    return result


def _pandas_column(pd: Any, series: Any, at: Positions, count: int) -> dict[str, Any]:
    types = pd.api.types
    dtype = series.dtype
    stats: dict[str, Any] = {"dtype": str(dtype)}
    if types.is_bool_dtype(dtype):
        stats["type"] = "boolean"
        stats.update(_booleans(int(series.sum()), count))
    elif types.is_integer_dtype(dtype) or types.is_float_dtype(dtype):
        integer = types.is_integer_dtype(dtype) and count == len(series) and dtype.kind != "u"
        stats["type"] = "integer" if types.is_integer_dtype(dtype) else "float"
        if integer:
            values = series.to_numpy(dtype=np.int64)
        else:
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        stats.update(_numbers(*_picked(values, at, nulls=count < len(series)), integer=integer))
    elif types.is_datetime64_any_dtype(dtype):
        stats["type"] = "time"
        if count:
            stats.update(_times(series.min().to_pydatetime(), series.max().to_pydatetime()))
    elif isinstance(dtype, pd.CategoricalDtype) or types.is_string_dtype(dtype):
        stats.update(_pandas_text(pd, series, at, count))
    else:
        stats["type"] = "other"
    return stats


def _picked(
    values: np.ndarray, at: Positions, *, nulls: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(every non-null value, the sample's, the distinct sample's) of a column's values, NaN
    marking nulls (an integer column has none)."""

    def present(array: np.ndarray) -> np.ndarray:
        return array[~np.isnan(array)] if nulls else array

    pool = None if at.sample is None else present(values[at.sample])
    sub = None if at.distinct is None else present(values[at.distinct])
    return present(values), pool, sub


def _pandas_text(pd: Any, series: Any, at: Positions, count: int) -> dict[str, Any]:
    """Strings (str, string, object holding text) and categoricals; other object columns by
    what they hold."""
    sample = series if at.sample is None else series.iloc[at.sample]
    kind = "string"
    if series.dtype == object:
        kind = pd.api.types.infer_dtype(sample, skipna=True)
    if kind in ("decimal", "integer", "floating", "mixed-integer-float"):
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return {"type": "float", **_numbers(*_picked(values, at, nulls=True), integer=False)}
    if kind in ("datetime", "datetime64", "date"):
        present = series.dropna()
        return {"type": "time", **_times(_py(present.min()), _py(present.max()))}
    if kind == "boolean":
        return {"type": "boolean", **_booleans(int(series.dropna().astype(bool).sum()), count)}
    if kind not in ("string", "empty", "categorical"):
        return {"type": "other"}
    counted = sample.value_counts(dropna=True, sort=False)
    values = counted.index
    lengths = np.asarray(values.astype(str).str.len(), dtype=np.int64)
    return {
        "type": "string",
        **_strings(
            values,
            counted.to_numpy(dtype=np.int64),
            lengths,
            non_null=count,
            text=lambda i: values[i],
        ),
    }


def _py(value: Any) -> Any:
    convert = getattr(value, "to_pydatetime", None)
    return convert() if convert is not None else value


# -- polars -----------------------------------------------------------------------------------


def _polars(df: Any, wanted: list[str] | None) -> Computed:
    import polars as pl

    if isinstance(df, pl.Series):
        df = df.to_frame()
    if isinstance(df, pl.LazyFrame):
        raise TypeError("cannot profile a polars LazyFrame: collect() it first")
    if not isinstance(df, pl.DataFrame):
        raise TypeError(f"cannot profile a polars {type(df).__name__}: pass a DataFrame")
    rows = df.height
    at = Positions(rows)
    result = Computed(row_count=rows, sampled_rows=at.sampled_rows)
    for name in select_columns(df.columns, wanted):
        series = df.get_column(name)
        nulls = int(series.null_count())
        count = rows - nulls
        stats = _polars_column(pl, series, at, count)
        result.columns[column_key(name)] = finish_column(
            stats, row_count=rows, count=count, nulls=nulls
        )
    return result


def _polars_column(pl: Any, series: Any, at: Positions, count: int) -> dict[str, Any]:
    dtype = series.dtype
    stats: dict[str, Any] = {"dtype": str(dtype)}

    def rows_at(positions: np.ndarray | None) -> Any:
        return None if positions is None else series.gather(positions)

    if dtype == pl.Boolean:
        stats["type"] = "boolean"
        stats.update(_booleans(int(series.sum() or 0), count))
    elif dtype.is_integer() or dtype.is_float() or dtype.is_decimal():
        integer = dtype.is_integer() and dtype != pl.UInt64
        stats["type"] = "integer" if dtype.is_integer() else "float"
        target = np.int64 if integer else np.float64

        def values(part: Any) -> np.ndarray | None:
            if part is None:
                return None
            return np.asarray(
                part.drop_nulls().cast(pl.Float64 if not integer else pl.Int64).to_numpy(),
                dtype=target,
            )

        full = values(series)
        assert full is not None
        stats.update(
            _numbers(
                full, values(rows_at(at.sample)), values(rows_at(at.distinct)), integer=integer
            )
        )
    elif dtype.is_temporal() and dtype != pl.Duration:
        stats["type"] = "time"
        if count:
            stats.update(_times(series.min(), series.max()))
    elif dtype in (pl.String, pl.Categorical, pl.Enum):
        sample = series if at.sample is None else rows_at(at.sample)
        counted = sample.drop_nulls().cast(pl.String).value_counts()
        values_ = counted.get_column(counted.columns[0])
        stats["type"] = "string"
        stats.update(
            _strings(
                values_,
                counted.get_column(counted.columns[1]).to_numpy().astype(np.int64),
                values_.str.len_chars().to_numpy().astype(np.int64),
                non_null=count,
                text=lambda i: values_[i],
            )
        )
    else:
        stats["type"] = "other"
    return stats


# -- pyarrow ----------------------------------------------------------------------------------


def _arrow(table: Any, wanted: list[str] | None) -> Computed:
    import pyarrow as pa

    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if not isinstance(table, pa.Table):
        raise TypeError(f"cannot profile a pyarrow {type(table).__name__}: pass a Table")
    rows = table.num_rows
    at = Positions(rows)
    result = Computed(row_count=rows, sampled_rows=at.sampled_rows)
    positions = {n: i for i, n in reversed(list(enumerate(table.column_names)))}
    for name in select_columns(table.column_names, wanted):
        column = table.column(positions[name])
        nulls = int(column.null_count)
        count = rows - nulls
        stats = _arrow_column(column, at, count)
        result.columns[column_key(name)] = finish_column(
            stats, row_count=rows, count=count, nulls=nulls
        )
    return result


def _arrow_column(column: Any, at: Positions, count: int) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    stats: dict[str, Any] = {"dtype": str(kind)}
    if pa.types.is_dictionary(kind):
        column = pc.cast(column, kind.value_type)
        kind = kind.value_type
    types = pa.types

    def rows_at(positions: np.ndarray | None) -> Any:
        return None if positions is None else column.take(pa.array(positions))

    if types.is_boolean(kind):
        stats["type"] = "boolean"
        stats.update(_booleans(int(pc.sum(column).as_py() or 0), count))
    elif types.is_integer(kind) or types.is_floating(kind) or types.is_decimal(kind):
        integer = types.is_integer(kind) and kind != pa.uint64()
        stats["type"] = "integer" if types.is_integer(kind) else "float"
        target = pa.int64() if integer else pa.float64()

        def values(part: Any) -> np.ndarray | None:
            if part is None:
                return None
            present = pc.drop_null(part)
            if present.type != target:
                # Unsafe: a uint64 past 2^53 or a wide decimal is rounded, not refused.
                present = pc.cast(present, target, safe=False)
            return np.asarray(present.to_numpy())

        full = values(column)
        assert full is not None
        stats.update(
            _numbers(
                full, values(rows_at(at.sample)), values(rows_at(at.distinct)), integer=integer
            )
        )
    elif types.is_timestamp(kind) or types.is_date(kind) or types.is_time(kind):
        stats["type"] = "time"
        if count:
            extremes = pc.min_max(column).as_py()
            stats.update(_times(extremes["min"], extremes["max"]))
    elif types.is_string(kind) or types.is_large_string(kind) or _is_string_view(kind):
        sample = column if at.sample is None else rows_at(at.sample)
        counted = pc.value_counts(pc.drop_null(sample))
        values_ = counted.field("values")
        stats["type"] = "string"
        stats.update(
            _strings(
                values_,
                np.asarray(counted.field("counts").to_numpy(), dtype=np.int64),
                np.asarray(pc.utf8_length(values_).to_numpy(), dtype=np.int64),
                non_null=count,
                text=lambda i: values_[i].as_py(),
            )
        )
    else:
        stats["type"] = "other"
    return stats


def _is_string_view(kind: Any) -> bool:
    import pyarrow as pa

    check = getattr(pa.types, "is_string_view", None)
    return bool(check is not None and check(kind))
