"""dlt with profile=True: each loaded table is read back from duckdb and profiled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

dlt = pytest.importorskip("dlt", reason="dlt is not installed (pip install 'lakelens[dlt]')")
pytest.importorskip("duckdb", reason="duckdb is not installed (pip install 'dlt[duckdb]')")

import lakelens.integrations.dlt as lakelens_dlt  # noqa: E402
from lakelens.store import schema  # noqa: E402
from lakelens.testing import recording  # noqa: E402


@pytest.fixture(autouse=True)
def _dlt_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt-data"))
    monkeypatch.setenv("DLT_PROJECT_DIR", str(tmp_path / "dlt-project"))
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")


def _orders(start: int) -> Any:
    @dlt.resource(name="orders", write_disposition="append")
    def orders() -> Iterator[list[dict[str, Any]]]:
        yield [
            {
                "id": i,
                "amount": None if i % 5 == 0 else i * 2.5,
                "status": "paid" if i % 2 else "new",
                "lines": [{"sku": f"s{i}"}],
            }
            for i in range(start, start + 10)
        ]

    return orders


def _profiles(store: Any) -> list[Any]:
    with store.connect() as conn:
        return conn.execute(sa.select(schema.profiles).order_by(schema.profiles.c.id)).all()


def test_profile_true_profiles_the_rows_this_run_loaded(tmp_path: Path) -> None:
    pipeline = dlt.pipeline(
        "shop",
        destination=dlt.destinations.duckdb(str(tmp_path / "shop.duckdb")),
        dataset_name="raw",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    with recording(tmp_path / "home") as store:
        lakelens_dlt.run(pipeline, _orders(0))  # not asked: no profile
        run_id = lakelens_dlt.run(pipeline, _orders(100), profile=True).loads_ids[0]
    found = {p.asset: p for p in _profiles(store)}
    assert set(found) == {"raw.orders", "raw.orders__lines"}
    orders = found["raw.orders"]
    assert (orders.row_count, orders.source, orders.sampled_rows) == (10, "dlt", None)
    assert orders.run_id == run_id
    columns = json.loads(orders.columns)["columns"]
    assert set(columns) == {"id", "amount", "status"}  # dlt's own columns left out
    # Only this run's rows (ids 100-109), not the first run's.
    assert (columns["id"]["min"], columns["id"]["max"]) == (100, 109)
    assert columns["amount"]["nulls"] == 2 and columns["status"]["distinct"] == 2
    # A child table has no load id: all of its rows.
    assert found["raw.orders__lines"].row_count == 20


def test_a_table_that_cannot_be_read_gets_a_profile_with_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = dlt.pipeline(
        "broken",
        destination=dlt.destinations.duckdb(str(tmp_path / "broken.duckdb")),
        dataset_name="raw",
        pipelines_dir=str(tmp_path / "pipelines"),
    )

    def no_client(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("warehouse unreachable")

    with recording(tmp_path / "home") as store:
        monkeypatch.setattr(type(pipeline), "sql_client", no_client)
        info = lakelens_dlt.run(pipeline, _orders(0), profile=True)
    assert info.has_failed_jobs is False  # the load itself went through
    errors = {p.asset: json.loads(p.columns)["error"] for p in _profiles(store)}
    assert errors["raw.orders"] == "ConnectionError: warehouse unreachable"
