"""`lakelens.profile()`: a column profile of the data an asset wrote.

    with lakelens.asset("orders"):
        df = build_orders()
        lakelens.profile(df)          # or lakelens.profile(df, columns=["amount", "status"])

It takes a pandas or polars DataFrame, a pyarrow Table (or RecordBatch) or a list of dicts,
and imports none of those libraries unless it is given one of their objects. Frames are
profiled with the library's own vectorized operations (sdk/_profile_frames.py); lists of
dicts in plain Python.

Cost is bounded by sampling, and what is exact is said here and in docs/profiles.md:

- A frame of more than `SAMPLE_ROWS` rows is profiled from a uniform sample of that many rows
  (a fixed seed: the same frame gives the same profile); `sampled_rows` records its size.
  Exact over every row even then: row count, per column count, nulls and null rate, the
  minimum, maximum, mean and standard deviation of numbers, the earliest and latest time,
  true/false counts. From the sample: quantiles, the histogram, distinct values, string
  lengths and top values.
- Distinct values: of strings, exact when every row was profiled; of numbers, exact up to
  `DISTINCT_EXACT` non-null values. Otherwise estimated from a uniform sample (the Chao1
  estimator for samples without replacement, between what the sample saw and the non-null
  count) and marked `distinct_approx`.
- A list of dicts is profiled from at most `LIST_SAMPLE_ROWS` rows (a uniform sample above
  that); then every statistic but the row count is of the sample.
- At most `MAX_COLUMNS` columns; a top value keeps `TOP_VALUE_CHARS` characters.

It never fails the pipeline: an error while profiling is logged once through lakelens' logger
and recorded as a profile whose `error` says what went wrong.
"""

from __future__ import annotations

import math
import numbers
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from lakelens.model import Profile, from_epoch
from lakelens.sdk._runtime import FRAME, RT

__all__ = [
    "DISTINCT_EXACT",
    "HISTOGRAM_BINS",
    "LIST_SAMPLE_ROWS",
    "MAX_COLUMNS",
    "QUANTILES",
    "SAMPLE_ROWS",
    "Computed",
    "compute",
    "estimate_distinct",
    "profile",
]

# A frame with more rows is profiled from a uniform sample of this many (see the docstring).
SAMPLE_ROWS = 1_000_000
# Distinct numbers are counted exactly among at most this many values; past it, estimated from
# a uniform sample of this many (strings are counted whole unless the frame was sampled).
DISTINCT_EXACT = 100_000
# A list of dicts is profiled from at most this many rows.
LIST_SAMPLE_ROWS = 100_000
MAX_COLUMNS = 500
MAX_COLUMN_NAME = 512
TOP_VALUES = 5
TOP_VALUE_CHARS = 100
HISTOGRAM_BINS = 20
QUANTILES = {"p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
SEED = 20_241_015
_LOGGER = "lakelens.profile"


@dataclass
class Computed:
    """What profiling found: the row count, the sample size (None: every row) and the columns."""

    row_count: int
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    sampled_rows: int | None = None


# -- the public call --------------------------------------------------------------------------


def profile(
    data: Any,
    columns: Sequence[str] | None = None,
    *,
    asset: str | None = None,
) -> Profile | None:
    """Record a column profile of `data` (pandas/polars DataFrame, pyarrow Table, list of dicts).

    Inside an asset materialization it belongs to that asset and run, and its row count
    becomes the materialization's rows unless `lakelens.record(rows=…)` set them; elsewhere
    pass `asset=`. `columns` limits it to those columns. Returns the recorded Profile, or None
    when there is no asset to attach it to (logged). Never raises: a profiling error is
    logged and recorded as a profile with `error` set.
    """
    run, mat, _span = FRAME.get()
    if run is None:
        run = RT.ambient_run()
    if asset is None and mat is not None:
        asset = mat.name
    if not isinstance(asset, str) or not asset:
        _log_problem(
            "lakelens.profile() needs an asset: call it inside an asset materialization "
            "or pass asset='name'; nothing was recorded."
        )
        return None
    try:
        found = compute(data, columns)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:1000]
        _log_problem(f"lakelens could not profile {asset}: {message}", asset=asset)
        recorded = Profile(
            asset=asset,
            time=from_epoch(RT.clock()),
            run_id=run.run_id if run is not None else None,
            error=message,
        )
        RT.writer.put(recorded)
        return recorded
    recorded = Profile(
        asset=asset,
        columns=found.columns,
        time=from_epoch(RT.clock()),
        run_id=run.run_id if run is not None else None,
        row_count=found.row_count,
        sampled_rows=found.sampled_rows,
    )
    RT.writer.put(recorded)
    if mat is not None and mat.name == asset and mat.rows is None:
        mat.rows = found.row_count
    return recorded


def _log_problem(message: str, asset: str | None = None) -> None:
    """One warning through lakelens' logger (stored with the run, printed per LAKELENS_LOG_FORMAT)."""
    try:
        from lakelens.sdk._logs import get_logger

        get_logger(_LOGGER).warning(message, **({"profiled_asset": asset} if asset else {}))
    except Exception:  # the logger itself failing must not fail the pipeline either
        pass


# -- what kind of data it is ------------------------------------------------------------------


def compute(data: Any, columns: Sequence[str] | None = None) -> Computed:
    """Profile `data` (see the module docstring); raises on data it cannot read."""
    wanted = _wanted(columns)
    module = type(data).__module__.partition(".")[0]
    if module in ("pandas", "polars", "pyarrow"):
        from lakelens.sdk import _profile_frames

        return _profile_frames.compute(module, data, wanted)
    if isinstance(data, Mapping):
        raise TypeError(
            "expected rows (a list of dicts), not one dict: pass [row] or a list of rows"
        )
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise TypeError(
            f"cannot profile a {type(data).__name__}: pass a pandas or polars DataFrame, a "
            "pyarrow Table or a list of dicts"
        )
    return _rows(data, wanted)


def _wanted(columns: Sequence[str] | None) -> list[str] | None:
    if columns is None:
        return None
    if isinstance(columns, str):
        return [columns]
    return [str(c) for c in columns]


def select_columns(names: Sequence[str], wanted: list[str] | None) -> list[str]:
    """The columns to profile: the wanted ones that exist (all when None), at most MAX_COLUMNS."""
    if wanted is not None:
        present = set(names)
        missing = [w for w in wanted if w not in present]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:5])
            raise KeyError(f"no column {shown} in the data (it has {len(names)} columns)")
        names = list(dict.fromkeys(wanted))
    return list(names[:MAX_COLUMNS])


def column_key(name: Any) -> str:
    """A column's name as stored: text, at most MAX_COLUMN_NAME characters."""
    text = name if isinstance(name, str) else str(name)
    return text if len(text) <= MAX_COLUMN_NAME else text[: MAX_COLUMN_NAME - 1] + "…"


# -- shared arithmetic (plain Python; the frame module has its numpy twins) -------------------


def finish_column(
    stats: dict[str, Any], *, row_count: int, count: int, nulls: int
) -> dict[str, Any]:
    """Counts first, then the kind's statistics; null_rate of the rows profiled."""
    head: dict[str, Any] = {"type": stats.pop("type"), "dtype": stats.pop("dtype", None)}
    if head["dtype"] is None:
        del head["dtype"]
    head["count"] = count
    head["nulls"] = nulls
    head["null_rate"] = round(nulls / row_count, 6) if row_count else None
    head.update(stats)
    return head


def estimate_distinct(
    distinct: int, singletons: int, doubletons: int, sampled: int, non_null: int
) -> int:
    """Distinct values of a column from a uniform sample without replacement of `sampled` of
    its `non_null` values: the Chao1 estimator for such samples (Chao & Lin, 2012), at least
    what the sample saw and at most `non_null`. A column whose sampled values were all
    different comes out at `non_null`; one whose values all repeat, at what the sample saw."""
    if sampled >= non_null or sampled == 0:
        return distinct
    share = sampled / non_null
    denominator = 2 * doubletons * sampled / max(sampled - 1, 1) + singletons * share / (1 - share)
    extra = singletons * singletons / denominator if denominator else 0.0
    return int(min(max(round(distinct + extra), distinct), non_null))


def quantile_of_sorted(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's and pandas' default)."""
    position = q * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return float(values[low] + (values[high] - values[low]) * (position - low))


def clean_number(value: float) -> float | int | None:
    """A float rounded to 12 significant digits (ints stay ints); None for one that overflowed
    (a standard deviation of values near 1e308): JSON has no infinity."""
    if isinstance(value, int):
        return value
    if not math.isfinite(value):
        return None
    return float(f"{value:.12g}")


def iso(moment: Any) -> str:
    """ISO 8601 text of a datetime (UTC, with Z) or a date."""
    if isinstance(moment, datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
        return moment.isoformat() + "Z"
    if isinstance(moment, date):
        return moment.isoformat()
    return str(moment)


def top_text(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= TOP_VALUE_CHARS else text[: TOP_VALUE_CHARS - 1] + "…"


# -- lists of dicts ---------------------------------------------------------------------------


def _rows(data: Iterable[Any], wanted: list[str] | None) -> Computed:
    rows = data if isinstance(data, Sequence) else list(data)
    total = len(rows)
    sampled: int | None = None
    if total > LIST_SAMPLE_ROWS:
        picks = sorted(random.Random(SEED).sample(range(total), LIST_SAMPLE_ROWS))
        rows = [rows[i] for i in picks]
        sampled = LIST_SAMPLE_ROWS
    names: dict[str, None] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"row {index} is a {type(row).__name__}, not a dict")
        if len(names) < MAX_COLUMNS * 4:
            names.update(dict.fromkeys(row))
    result = Computed(row_count=total, sampled_rows=sampled)
    profiled = len(rows)
    for name in select_columns(list(names), wanted):
        values = [row.get(name) for row in rows]
        present = [v for v in values if v is not None and not _is_nan(v)]
        stats = _python_column(present, approx=False)
        result.columns[column_key(name)] = finish_column(
            stats, row_count=profiled, count=len(present), nulls=profiled - len(present)
        )
    return result


def _is_nan(value: Any) -> bool:
    """NaN, and pandas' NaT (what `to_dict("records")` gives for a missing time)."""
    return (type(value) is float and value != value) or type(value).__name__ == "NaTType"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, numbers.Integral):
        return "integer"
    if isinstance(value, (numbers.Real, Decimal)):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (datetime, date)):
        return "time"
    return "other"


def _python_column(values: list[Any], *, approx: bool) -> dict[str, Any]:
    kinds = Counter(_kind(v) for v in values)
    if not kinds:
        return {"type": "other"}
    kind = kinds.most_common(1)[0][0]
    if kind == "integer" and "float" in kinds:
        kind = "float"  # ints among floats are numbers too
    numeric = ("integer", "float")
    if kind in numeric:
        chosen = [v for v in values if _kind(v) in numeric]
    else:
        chosen = [v for v in values if _kind(v) == kind]
    stats: dict[str, Any] = {"type": kind}
    if len(chosen) < len(values):
        stats["mixed"] = len(values) - len(chosen)
    if kind == "boolean":
        trues = sum(1 for v in chosen if v)
        stats.update(distinct=len(set(chosen)), true=trues, false=len(chosen) - trues)
    elif kind in numeric:
        if kind == "integer":
            stats.update(_python_numbers([int(v) for v in chosen]))
        else:
            stats.update(_python_numbers([float(v) for v in chosen]))
    elif kind == "string":
        stats.update(_python_strings(chosen))
    elif kind == "time":
        moments = [_utc(v) for v in chosen]
        stats.update(min=iso(min(moments)), max=iso(max(moments)))
    else:
        try:
            stats["distinct"] = len(set(chosen))
        except TypeError:  # unhashable values (lists, dicts): by their text
            stats["distinct"] = len({repr(v) for v in chosen})
    return stats


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    if isinstance(value, datetime):
        return value
    # A date compares with datetimes once it is one (midnight UTC).
    return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)


def _python_numbers(values: list[float] | list[int]) -> dict[str, Any]:
    finite = sorted(v for v in values if math.isfinite(v))
    stats: dict[str, Any] = {}
    if len(finite) < len(values):
        stats["non_finite"] = len(values) - len(finite)
    stats["distinct"] = len(set(finite)) + len(set(v for v in values if not math.isfinite(v)))
    if not finite:
        return stats
    n = len(finite)
    mean = math.fsum(finite) / n  # ints stay ints for min and max
    stats["min"] = clean_number(finite[0])
    stats["max"] = clean_number(finite[-1])
    stats["mean"] = clean_number(mean)
    stats["std"] = _std(finite, mean) if n > 1 else None
    stats["quantiles"] = {
        name: clean_number(quantile_of_sorted(finite, q)) for name, q in QUANTILES.items()
    }
    if math.isfinite(float(finite[-1]) - float(finite[0])):
        stats["histogram"] = _python_histogram(finite)
    return stats


def _std(values: Sequence[float], mean: float) -> float | int | None:
    try:
        return clean_number(
            math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
        )
    except OverflowError:  # values near ±1e308
        return None


def _python_histogram(ordered: list[float] | list[int]) -> dict[str, Any]:
    low, high = float(ordered[0]), float(ordered[-1])
    counts = [0] * HISTOGRAM_BINS
    width = (high - low) / HISTOGRAM_BINS
    for v in ordered:
        index = (
            HISTOGRAM_BINS - 1 if width == 0 else min(int((v - low) / width), HISTOGRAM_BINS - 1)
        )
        counts[index] += 1
    return {"bins": [clean_number(low), clean_number(high)], "counts": counts}


def _python_strings(values: list[str]) -> dict[str, Any]:
    counts = Counter(values)
    lengths = [len(v) for v in values]
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_VALUES]
    return {
        "distinct": len(counts),
        "min_length": min(lengths),
        "max_length": max(lengths),
        "mean_length": clean_number(sum(lengths) / len(lengths)),
        "top": [[top_text(value), n] for value, n in top],
    }
