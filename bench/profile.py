"""What `lakelens.profile()` costs on a pandas frame, beside `DataFrame.describe()` on the same frame.

    .venv/bin/python bench/profile.py            # 1M rows x 20 columns, then 10M rows (a few minutes)
    .venv/bin/python bench/profile.py --quick    # 200k rows, 3 repetitions
    .venv/bin/python bench/profile.py --json

The frame mixes 8 float columns (5% nulls), 4 integer columns, 5 string columns (500
values, 3% nulls) and 3 datetime columns. `describe(include="all")` and the profiler's
computation (`lakelens.sdk._profile.compute`, everything `lakelens.profile()` does but
queueing the event) take turns, so a noisy neighbour slows both; each figure is the median.
The goal (issue 15): the profile of 1M rows x 20 columns in at most 2x the time of describe.

The 10M-row frame shows sampling at work: above `SAMPLE_ROWS` the order statistics come from
a sample of that many rows, so the profile grows far less than the frame.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from lakelens.sdk._profile import SAMPLE_ROWS, compute

GOAL = 2.0


def frame(rows: int, seed: int = 1) -> pd.DataFrame:
    """The benchmark frame: 20 columns of mixed types, with nulls."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for i in range(8):
        values = rng.normal(100.0, 15.0, rows)
        values[rng.random(rows) < 0.05] = np.nan
        columns[f"float_{i}"] = values
    for i in range(4):
        columns[f"int_{i}"] = rng.integers(0, 1_000 * (i + 1), rows)
    labels = np.array([f"value_{k}" for k in range(500)], dtype=object)
    for i in range(5):
        text = pd.Series(rng.choice(labels, rows))
        text[rng.random(rows) < 0.03] = None
        columns[f"text_{i}"] = text
    for i in range(3):
        seconds = 1.7e9 + rng.integers(0, 86_400 * 365, rows)
        columns[f"time_{i}"] = pd.to_datetime(seconds, unit="s")
    return pd.DataFrame(columns)


def timed(call: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def side_by_side(df: pd.DataFrame, reps: int) -> dict[str, Any]:
    """Median seconds of describe and of the profile, measured in turns."""
    timed(lambda: df.describe(include="all"))  # warm both paths once
    timed(lambda: compute(df))
    describe: list[float] = []
    profile: list[float] = []
    for _ in range(reps):
        describe.append(timed(lambda: df.describe(include="all")))
        profile.append(timed(lambda: compute(df)))
    d, p = statistics.median(describe), statistics.median(profile)
    return {
        "rows": len(df),
        "columns": df.shape[1],
        "describe_s": round(d, 3),
        "profile_s": round(p, 3),
        "ratio": round(p / d, 2),
        "describe_all_s": [round(x, 3) for x in describe],
        "profile_all_s": [round(x, 3) for x in profile],
    }


def machine() -> dict[str, Any]:
    model = "?"
    try:
        with open("/proc/cpuinfo") as handle:
            model = next(
                line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200k rows, 3 repetitions")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": machine(), "sample_rows": SAMPLE_ROWS, "goal": GOAL}
    sizes = [(200_000, 3)] if args.quick else [(1_000_000, 7), (10_000_000, 3)]
    results["runs"] = []
    for rows, reps in sizes:
        df = frame(rows)
        result = side_by_side(df, reps)
        result["sampled_rows"] = compute(df).sampled_rows
        results["runs"].append(result)
        del df
        if not args.json:
            print(
                f"{rows:>12,} rows x 20: describe {result['describe_s']:.3f} s, "
                f"profile {result['profile_s']:.3f} s, ratio {result['ratio']:.2f} "
                f"(goal <= {GOAL}); sampled rows: {result['sampled_rows']}"
            )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"machine: {json.dumps(results['machine'])}")


if __name__ == "__main__":
    main()
