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
