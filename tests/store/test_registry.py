"""Every asset name the store hears of becomes a row of the asset registry."""

from __future__ import annotations

from lakelens.events import Batch
from lakelens.model import Asset, LineageEdge, Materialization
from lakelens.store import Store, reads


def test_names_from_lineage_and_materializations_are_registered(store_url: str) -> None:
    store = Store(store_url)
    batch = Batch()
    batch.add(LineageEdge("nightscout_api", "dlt_entries"))
    batch.add(LineageEdge("dlt_entries", "stg_entries"))
    batch.add(Asset("stg_entries", kind="model", owner="analytics"))
    store.write(batch)

    def kinds() -> dict[str, str]:
        with store.connect() as conn:
            return {a.name: a.kind for a in reads.assets(conn)}

    assert kinds() == {"nightscout_api": "source", "dlt_entries": "asset", "stg_entries": "model"}

    later = Batch()
    later.add(Materialization("m1", "r1", "nightscout_api", "success"))
    later.add(Materialization("m2", "r1", "stg_entries", "success"))
    store.write(later)
    # Materialized, so no longer a bare source; an explicit definition is never overwritten.
    assert kinds() == {"nightscout_api": "asset", "dlt_entries": "asset", "stg_entries": "model"}
    with store.connect() as conn:
        assert reads.assets(conn)[-1].owner == "analytics"
    store.close()


def test_a_source_that_says_nothing_of_critical_or_a_tag_keeps_them(store_url: str) -> None:
    """Each writer of an asset row (SDK, dbt, OpenLineage, Dagster) sets what it says: None
    leaves `critical`, tags merge key by key, across batches and within one."""
    store = Store(store_url)

    def row() -> Asset:
        with store.connect() as conn:
            return next(a for a in reads.assets(conn) if a.name == "orders")

    first = Batch()
    first.add(Asset("orders", kind="table", critical=True, tags={"team": "shop", "tier": "gold"}))
    store.write(first)
    later = Batch()
    later.add(Asset("orders", tags={"openlineage.owners": "[]", "tier": "silver"}))
    # An importer's text (not cleaned by the SDK's writer) still merges as JSON on PostgreSQL.
    later.add(Asset("orders", owner="ana", tags={"dbt.materialized": "table", "note": "a\x00b"}))
    store.write(later)
    found = row()
    assert found.critical is True and found.owner == "ana"
    assert found.tags == {
        "team": "shop",
        "tier": "silver",
        "openlineage.owners": "[]",
        "dbt.materialized": "table",
        "note": "a\ufffdb",
    }
    unmark = Batch()
    unmark.add(Asset("orders", critical=False))
    store.write(unmark)
    assert row().critical is False and row().tags["team"] == "shop"
    store.close()


def test_an_inferred_kind_never_replaces_a_stated_one(store_url: str) -> None:
    """dbt says `model`, an OpenLineage event that reads the table says `source`, one that
    writes it says `asset`, the SDK's default is `asset`: the model stays a model. A stated
    kind still replaces another stated kind, and a written source becomes an asset."""
    store = Store(store_url)

    def kinds() -> dict[str, str]:
        with store.connect() as conn:
            return {a.name: a.kind for a in reads.assets(conn)}

    first = Batch()
    first.add(Asset("fct_orders", kind="model"))
    first.add(Asset("raw.orders", kind="source"))
    first.add(Asset("sales", kind="dashboard"))
    store.write(first)
    for kind in ("source", "asset"):
        later = Batch()
        later.add(Asset("fct_orders", kind=kind, description="from OpenLineage"))
        later.add(Asset("sales", kind=kind))
        store.write(later)
        assert kinds()["fct_orders"] == "model" and kinds()["sales"] == "dashboard"
    # Within one batch too, whatever the order.
    mixed = Batch()
    mixed.add(Asset("stg_orders", kind="model"))
    mixed.add(Asset("stg_orders", kind="source", owner="ana"))
    mixed.add(Asset("raw.orders", kind="asset"))
    mixed.add(Asset("raw.orders", kind="source"))
    store.write(mixed)
    found = kinds()
    assert found["stg_orders"] == "model" and found["raw.orders"] == "asset"
    restated = Batch()
    restated.add(Asset("fct_orders", kind="table"))
    store.write(restated)
    assert kinds()["fct_orders"] == "table"
    store.close()
