"""A real Dagster run whose materialization metadata carries a row count and a column schema
becomes a lakelens profile (record_run)."""

# No `from __future__ import annotations`: Dagster reads the context annotations.
import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from lakelens.store import Store, schema

try:
    import dagster as dg
except ImportError:
    if os.environ.get("LAKELENS_TEST_STRICT") == "1":
        raise
    pytest.skip(
        "Dagster is not installed (pip install 'lakelens[dagster]')", allow_module_level=True
    )

from lakelens.integrations.dagster import record_run


@dg.asset(key_prefix="shop")
def invoices(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": 1234,
            "dagster/column_schema": dg.TableSchema(
                columns=[
                    dg.TableColumn(
                        "id", "BIGINT", constraints=dg.TableColumnConstraints(nullable=False)
                    ),
                    dg.TableColumn("total", "DECIMAL(10,2)"),
                    dg.TableColumn("customer", "varchar"),
                    dg.TableColumn("issued_at", "timestamp"),
                ]
            ),
        }
    )


@dg.asset
def no_metadata(context: dg.AssetExecutionContext) -> None:
    return None


def test_row_count_and_column_schema_become_a_profile(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    try:
        result = dg.materialize([invoices, no_metadata], instance=instance)
        store = Store(f"sqlite:///{tmp_path / 'lakelens.db'}")
        record_run(instance, result.run_id, store=store)
        again = record_run(instance, result.run_id, store=store)
        with store.connect() as conn:
            rows = conn.execute(sa.select(schema.profiles)).all()
        store.close()
    finally:
        instance.dispose()
    assert not again.written
    assert len(rows) == 1  # once, though recorded twice; none for the asset without metadata
    profile = rows[0]
    assert (profile.asset, profile.run_id, profile.row_count, profile.source) == (
        "shop.invoices",
        result.run_id,
        1234,
        "dagster",
    )
    columns = json.loads(profile.columns)["columns"]
    assert columns == {
        "id": {"type": "integer", "dtype": "BIGINT", "nulls": 0, "null_rate": 0.0},
        "total": {"type": "float", "dtype": "DECIMAL(10,2)"},
        "customer": {"type": "string", "dtype": "varchar"},
        "issued_at": {"type": "time", "dtype": "timestamp"},
    }
