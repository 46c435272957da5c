"""lakelens.profile(): known answers on pandas, polars, pyarrow and rows; sampling; never failing;
stored locally (SQLite, PostgreSQL) and through a remote server."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import sqlalchemy as sa

import lakelens
from _support import UvicornThread
from lakelens.config import load_settings
from lakelens.ingest.native import loads, to_ingested
from lakelens.sdk._profile import SAMPLE_ROWS, compute, estimate_distinct
from lakelens.sdk._runtime import RT
from lakelens.store import Store, schema

# -- one small table, in every shape profile() accepts ----------------------------------------

AMOUNTS = [10.0, 20.0, None, 40.0, 50.0, 60.0, None, 80.0, 90.0, 100.0]
COUNTS = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
STATUS = ["paid", "new", "paid", None, "shipped", "paid", "new", "paid", None, "refunded"]
WHEN = [datetime(2024, 10, d, 12, 0, tzinfo=timezone.utc) for d in range(1, 11)]
WHEN[4] = None  # type: ignore[call-overload]
FLAGS = [True, False, True, True, None, False, True, True, True, False]
ROWS = [
    {"amount": a, "items": c, "status": s, "at": w, "ok": f}
    for a, c, s, w, f in zip(AMOUNTS, COUNTS, STATUS, WHEN, FLAGS, strict=True)
]


def _pandas() -> Any:
    return pd.DataFrame(
        {
            "amount": pd.array(AMOUNTS, dtype="Float64"),
            "items": COUNTS,
            "status": STATUS,
            "at": pd.to_datetime(WHEN, utc=True),
            "ok": pd.array(FLAGS, dtype="boolean"),
        }
    )


def _polars() -> Any:
    return pl.DataFrame(
        {"amount": AMOUNTS, "items": COUNTS, "status": STATUS, "at": WHEN, "ok": FLAGS}
    )


def _arrow() -> Any:
    return pa.table({"amount": AMOUNTS, "items": COUNTS, "status": STATUS, "at": WHEN, "ok": FLAGS})


SHAPES: dict[str, Callable[[], Any]] = {
    "pandas": _pandas,
    "polars": _polars,
    "pyarrow": _arrow,
    "rows": lambda: [dict(r) for r in ROWS],
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_profiles_match_known_answers(shape: str) -> None:
    found = compute(SHAPES[shape]())
    assert found.row_count == 10 and found.sampled_rows is None
    assert list(found.columns) == ["amount", "items", "status", "at", "ok"]
    amount = found.columns["amount"]
    present = [a for a in AMOUNTS if a is not None]
    assert amount["type"] == "float"
    assert (amount["count"], amount["nulls"], amount["null_rate"]) == (8, 2, 0.2)
    assert amount["distinct"] == 8 and "distinct_approx" not in amount
    assert (amount["min"], amount["max"]) == (10.0, 100.0)
    assert amount["mean"] == pytest.approx(statistics.mean(present))
    assert amount["std"] == pytest.approx(statistics.stdev(present))
    expected = np.quantile(present, [0.05, 0.25, 0.5, 0.75, 0.95])
    assert list(amount["quantiles"].values()) == pytest.approx(list(expected))
    assert amount["quantiles"]["p50"] == 55.0
    assert amount["histogram"]["bins"] == [10.0, 100.0]
    assert sum(amount["histogram"]["counts"]) == 8 and len(amount["histogram"]["counts"]) == 20
    assert amount["histogram"]["counts"] == np.histogram(present, 20, (10, 100))[0].tolist()

    items = found.columns["items"]
    assert items["type"] == "integer" and (items["min"], items["max"]) == (1, 9)
    assert isinstance(items["min"], int) and items["distinct"] == 7
    assert items["mean"] == pytest.approx(3.9) and items["std"] == pytest.approx(
        statistics.stdev(COUNTS)
    )
    assert items["quantiles"]["p25"] == pytest.approx(float(np.quantile(COUNTS, 0.25)))

    status = found.columns["status"]
    assert status["type"] == "string"
    assert (status["count"], status["nulls"], status["distinct"]) == (8, 2, 4)
    assert (status["min_length"], status["max_length"]) == (3, 8)
    assert status["mean_length"] == pytest.approx(sum(len(s) for s in STATUS if s) / 8)
    assert status["top"][:2] == [["paid", 4], ["new", 2]]

    at = found.columns["at"]
    assert at["type"] == "time" and (at["count"], at["nulls"]) == (9, 1)
    assert (at["min"], at["max"]) == ("2024-10-01T12:00:00Z", "2024-10-10T12:00:00Z")

    ok = found.columns["ok"]
    assert ok["type"] == "boolean" and (ok["true"], ok["false"], ok["nulls"]) == (6, 3, 1)


def test_columns_limits_the_profile_and_names_a_missing_one() -> None:
    assert list(compute(_pandas(), ["status", "amount"]).columns) == ["status", "amount"]
    with pytest.raises(KeyError, match="no column 'nope'"):
        compute(_polars(), ["nope"])


def test_pandas_categoricals_objects_and_nan_only_columns() -> None:
    df = pd.DataFrame(
        {
            "cat": pd.Categorical(["a", "b", "a", None], categories=["a", "b", "unused"]),
            "decimal": [1.5, 2.5, None, 4.0],
            "blob": [{"x": 1}, [1], None, {"y": 2}],
            "empty": [np.nan] * 4,
            "inf": [1.0, math.inf, 3.0, None],
        }
    )
    found = compute(df).columns
    assert found["cat"]["type"] == "string" and found["cat"]["distinct"] == 2
    assert found["cat"]["top"] == [["a", 2], ["b", 1]]
    assert found["blob"]["type"] == "other" and found["blob"]["nulls"] == 1
    assert found["empty"]["nulls"] == 4 and found["empty"]["distinct"] == 0
    assert found["inf"]["non_finite"] == 1 and found["inf"]["max"] == 3.0


def test_a_ten_million_row_frame_is_profiled_from_a_sample_with_exact_counts() -> None:
    """The cost is bounded by sampling: the statistics that need order or hashing come from
    SAMPLE_ROWS rows, and they stay within tolerance of the exact ones."""
    rng = np.random.default_rng(7)
    n = 10_000_000
    values = rng.normal(50.0, 10.0, n)
    values[rng.random(n) < 0.1] = np.nan
    codes = rng.integers(0, 2_000, n)
    df = pd.DataFrame({"x": values, "code": codes, "id": np.arange(n)})
    found = compute(df)
    assert found.row_count == n and found.sampled_rows == SAMPLE_ROWS
    x = found.columns["x"]
    present = values[~np.isnan(values)]
    # Exact over every row.
    assert x["nulls"] == int(np.isnan(values).sum()) and x["count"] == present.size
    assert x["mean"] == pytest.approx(present.mean(), rel=1e-9)
    assert x["std"] == pytest.approx(present.std(ddof=1), rel=1e-9)
    assert (x["min"], x["max"]) == pytest.approx((present.min(), present.max()))
    # From the sample, within tolerance of the exact answers.
    exact = np.quantile(present, [0.05, 0.25, 0.5, 0.75, 0.95])
    assert list(x["quantiles"].values()) == pytest.approx(list(exact), abs=0.1)
    assert sum(x["histogram"]["counts"]) == pytest.approx(0.9 * SAMPLE_ROWS, rel=0.01)
    assert x["distinct_approx"] is True
    assert x["distinct"] == pytest.approx(present.size, rel=0.02)
    code = found.columns["code"]
    assert code["distinct"] == 2_000 and code["distinct_approx"] is True
    assert found.columns["id"]["distinct"] == pytest.approx(n, rel=0.02)


def test_the_distinct_estimate_is_exact_at_both_ends_and_close_between() -> None:
    # Every sampled value different: the column's non-null count.
    assert estimate_distinct(1000, 1000, 0, 1000, 10_000) == 10_000
    # Every value seen many times: what the sample saw.
    assert estimate_distinct(50, 0, 0, 1000, 10_000) == 50
    # 500k values × 20 rows each, a 10% sample (binomial counts): about 500k.
    assert estimate_distinct(439_000, 135_000, 142_500, 1_000_000, 10_000_000) == pytest.approx(
        500_000, rel=0.02
    )


def test_polars_and_pyarrow_sample_the_same_way() -> None:
    n = SAMPLE_ROWS + 50_000
    table = pa.table({"v": np.arange(n, dtype=np.int64), "s": np.arange(n) % 7})
    arrow = compute(table)
    polars = compute(pl.from_arrow(table))
    assert arrow.sampled_rows == polars.sampled_rows == SAMPLE_ROWS
    assert arrow.columns["v"]["quantiles"] == polars.columns["v"]["quantiles"]
    assert arrow.columns["v"]["mean"] == (n - 1) / 2


def test_rows_above_the_cap_are_profiled_from_a_sample() -> None:
    rows = [{"n": i % 10} for i in range(150_000)]
    found = compute(rows)
    assert found.row_count == 150_000 and found.sampled_rows == 100_000
    assert found.columns["n"]["count"] == 100_000 and found.columns["n"]["distinct"] == 10


def test_import_lakelens_and_profiling_rows_import_no_frame_library() -> None:
    code = (
        "import sys, lakelens\n"
        "lakelens.configure(home=sys.argv[1], log_format='none')\n"
        "lakelens.profile([{'a': 1, 'b': 'x'}], asset='t')\n"
        "lakelens.flush()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pandas', 'polars', 'pyarrow', 'numpy')))\n"
    )
    with_tmp = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent / ".never-created")],
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": ":".join(sys.path), "LAKELENS_HOME": "/tmp"},
    )
    assert with_tmp.returncode == 0, with_tmp.stderr
    assert with_tmp.stdout.strip().splitlines()[-1] == "[]"


# -- in a pipeline: stored, attached, never failing -------------------------------------------


def _stored(store: Store) -> list[dict[str, Any]]:
    with store.connect() as conn:
        rows = conn.execute(sa.select(schema.profiles).order_by(schema.profiles.c.id)).all()
    return [{**r._mapping, "document": json.loads(r.columns)} for r in rows]


class Exploding:
    """Data whose reading raises, like a lazy source failing mid-way."""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        raise RuntimeError("the source went away")


def test_profile_in_an_asset_is_stored_with_its_run_and_sets_rows(sdk: Store) -> None:
    with lakelens.run("shop") as run, lakelens.asset("orders"):
        recorded = lakelens.profile(_pandas())
    with lakelens.run("shop"), lakelens.asset("customers"):
        lakelens.record(rows=99)
        lakelens.profile(ROWS)
    assert recorded is not None and recorded.row_count == 10
    assert lakelens.flush()
    stored = {p["asset"]: p for p in _stored(sdk)}
    orders = stored["orders"]
    assert (orders["run_id"], orders["row_count"], orders["source"]) == (run.run_id, 10, "sdk")
    assert orders["sampled_rows"] is None
    assert orders["document"]["columns"]["amount"]["mean"] == 56.25
    assert "error" not in orders["document"]
    with sdk.connect() as conn:
        rows = dict(
            conn.execute(
                sa.select(schema.materializations.c.asset, schema.materializations.c.rows)
            ).all()
        )
    # The profile's row count fills in rows; a recorded count wins.
    assert rows == {"orders": 10, "customers": 99}


def test_profiling_never_fails_the_pipeline_and_records_the_error(sdk: Store) -> None:
    with lakelens.run("shop") as run:
        with lakelens.asset("orders"):
            failed = lakelens.profile(Exploding())
            also = lakelens.profile(42)
            lakelens.record(rows=3)
        assert failed is not None and failed.error == "RuntimeError: the source went away"
        assert also is not None and also.error is not None and "cannot profile a int" in also.error
    assert lakelens.flush()
    stored = _stored(sdk)
    assert stored[0]["document"] == {
        "columns": {},
        "error": "RuntimeError: the source went away",
    }
    with sdk.connect() as conn:
        status = conn.execute(sa.select(schema.runs.c.status)).scalar_one()
        messages = list(
            conn.execute(
                sa.select(schema.logs.c.message).where(
                    schema.logs.c.level == 30, schema.logs.c.run_id == run.run_id
                )
            ).scalars()
        )
    assert status == "success"
    assert messages[0] == "lakelens could not profile orders: RuntimeError: the source went away"


def test_outside_an_asset_profile_needs_asset_and_never_raises(sdk: Store) -> None:
    assert lakelens.profile(ROWS) is None
    recorded = lakelens.profile(_arrow(), asset="warehouse.orders")
    assert recorded is not None and recorded.run_id is None
    assert lakelens.flush()
    stored = _stored(sdk)
    assert [(p["asset"], p["run_id"], p["row_count"]) for p in stored] == [
        ("warehouse.orders", None, 10)
    ]
    with sdk.connect() as conn:
        kinds = dict(conn.execute(sa.select(schema.assets.c.name, schema.assets.c.kind)).all())
    assert kinds == {"warehouse.orders": "asset"}


def test_prune_keeps_the_newest_profile_of_each_asset(sdk: Store) -> None:
    from lakelens.store.prune import prune

    now = time.time()
    for _ in range(3):
        lakelens.profile(ROWS, asset="orders")
    assert lakelens.flush()
    deleted = prune(sdk.engine, now + 3600)
    assert deleted["profiles"] == 2 and len(_stored(sdk)) == 1


# -- remote: through `lakelens serve` -----------------------------------------------------------


@pytest.fixture
def server(store_url: str, tmp_path: Path) -> Iterator[tuple[str, Store]]:
    """A real lakelens server on 127.0.0.1 (uvicorn in a thread) over a store on `store_url`."""
    from lakelens.server import create_app

    settings = load_settings(
        home=str(tmp_path / "server"), database_url=store_url, log_format="none"
    )
    store = Store(settings=settings)
    with UvicornThread(create_app(settings, store)) as running:
        yield running.url, store
    store.close()


@pytest.fixture
def remote(server: tuple[str, Store], tmp_path: Path) -> Iterator[Store]:
    """The SDK sending to the server (LAKELENS_URL); yields the server's store."""
    from lakelens.sdk._remote import RemoteSink, remote_sink_factory
    from lakelens.sdk._writer import Writer

    url, store = server
    settings = load_settings(home=str(tmp_path / "client"), url=url, log_format="none")
    lakelens.configure(settings=settings)
    RT._writer = Writer(remote_sink_factory(settings), flush_interval=0.05)
    yield store
    writer = RT._writer
    lakelens.configure(settings=load_settings(home=str(tmp_path / "after"), log_format="none"))
    sink = getattr(writer, "_sink", None)
    if isinstance(sink, RemoteSink):
        sink.close()


def test_a_profile_recorded_in_a_remote_pipeline_arrives_at_the_server(remote: Store) -> None:
    with lakelens.run("shop") as run, lakelens.asset("orders"):
        lakelens.profile(_polars())
        lakelens.profile(Exploding())
    assert lakelens.flush(30)
    sink = RT._writer._sink  # type: ignore[union-attr]
    assert sink.drain(30), sink.stats()
    stored = _stored(remote)
    assert [(p["asset"], p["run_id"], p["row_count"]) for p in stored] == [
        ("orders", run.run_id, 10),
        ("orders", run.run_id, None),
    ]
    assert stored[0]["document"]["columns"] == compute(_polars()).columns
    assert stored[1]["document"]["error"] == "RuntimeError: the source went away"
    assert sink.stats()["rejected_events"] == 0


def test_profile_events_from_outside_are_bounded() -> None:
    now = time.time()
    wide = {f"c{i}": {"type": "integer"} for i in range(501)}
    events = [
        {"type": "profile", "asset": "a", "columns": wide},
        {"type": "profile", "asset": "a", "columns": {"x": {"count": -1}}},
        {"type": "profile", "asset": "a", "columns": {"x": {"mean": "high"}}},
        {"type": "profile", "asset": "a", "columns": {"x": {"top": [["v", 1]] * 21}}},
        {"type": "profile", "asset": "a", "columns": {"x" * 513: {}}},
        {"type": "profile", "asset": "a", "row_count": 1e999, "columns": {}},
        {
            "type": "profile",
            "asset": "a",
            "row_count": 5,
            "source": "monitor",
            "columns": {
                "x": {
                    "type": "string",
                    "nulls": 1,
                    "null_rate": 0.2,
                    "top": [["y" * 1000, 4]],
                    "error": "top values: timed out " * 100,
                    "from_the_future": {"a": 1},
                }
            },
        },
    ]
    ingested = to_ingested(loads(json.dumps(events).replace("1e+999", "1e999")), now=now)
    reasons = [r.reason for r in ingested.rejected]
    assert ingested.accepted == 1 and len(reasons) == 6, reasons
    assert "more than the 500 a profile holds" in reasons[0]
    assert "columns.x.count" in reasons[1] and "columns.x.mean" in reasons[2]
    assert "at most 20" in reasons[3] and "1 to 512 characters" in reasons[4]
    assert "row_count" in reasons[5]
    kept = ingested.batch.profiles[0]
    assert kept.source == "monitor" and kept.row_count == 5
    column = kept.columns["x"]
    assert "from_the_future" not in column and len(column["top"][0][0]) == 100
    assert column["error"].startswith("top values: timed out") and len(column["error"]) == 1000


@pytest.mark.parametrize("shape", ["pandas", "pyarrow", "rows"])
def test_extreme_values_give_a_storable_profile(shape: str) -> None:
    """Values near ±1e308 overflow the standard deviation: null, not infinity (JSON has none);
    a uint64 past 2^53 is rounded, not refused."""
    rows = [{"x": 1e308, "u": 2**63 + 5}, {"x": -1e308, "u": 1}, {"x": 1e308, "u": 3}]
    data: Any = {
        "pandas": lambda: pd.DataFrame(
            {"x": [r["x"] for r in rows], "u": np.array([r["u"] for r in rows], dtype=np.uint64)}
        ),
        "pyarrow": lambda: pa.table(
            {"x": [r["x"] for r in rows], "u": pa.array([r["u"] for r in rows], pa.uint64())}
        ),
        "rows": lambda: rows,
    }[shape]()
    found = compute(data).columns
    json.dumps(found, allow_nan=False)
    assert found["x"]["std"] is None and found["x"]["max"] == 1e308
    assert found["u"]["type"] == "integer" and found["u"]["max"] == pytest.approx(2.0**63)
