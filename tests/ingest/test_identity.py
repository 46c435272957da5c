"""One asset, many names (ingest/identity.py): aliases from dbt, lakelens.yaml and OpenLineage
resolve to one asset on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lakelens.config import load_settings
from lakelens.errors import ConfigError
from lakelens.events import Batch
from lakelens.ingest.identity import candidates, declared_aliases, relation_aliases
from lakelens.model import Asset, CheckResult, LineageEdge, Materialization
from lakelens.store import Store, reads

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)
OL_NAME = "duckdb:///data/shop.duckdb/shop.main.fct_revenue"


def _settings(tmp_path: Path, store_url: str, yaml: str | None = None) -> object:
    env = {}
    if yaml is not None:
        (tmp_path / "lakelens.yaml").write_text(yaml)
        env["LAKELENS_CONFIG"] = str(tmp_path / "lakelens.yaml")
    return load_settings(env, home=str(tmp_path / "home"), database_url=store_url)


def _dbt_model(name: str, relation: str) -> Asset:
    return Asset(
        name,
        kind="model",
        tags={"dbt.relation": relation, "dbt.unique_id": f"model.shop.{name}"},
    )


def test_relation_and_candidate_keys() -> None:
    assert relation_aliases('"shop"."main"."fct_revenue"') == [
        "shop.main.fct_revenue",
        "main.fct_revenue",
    ]
    assert relation_aliases("`proj`.`ds`.`t`") == ["proj.ds.t", "ds.t"]
    assert relation_aliases('"a.b"."t"') == ["a.b.t"]
    assert candidates(OL_NAME) == [OL_NAME, "shop.main.fct_revenue", "main.fct_revenue"]
    # A bare table name is never tried: it is too often in two schemas.
    assert "fct_revenue" not in candidates(OL_NAME)
    assert candidates("raw.orders") == ["raw.orders"]


def test_openlineage_name_resolves_to_the_dbt_model_registered_first(store_url: str) -> None:
    store = Store(store_url)
    try:
        store.write(Batch(assets=[_dbt_model("fct_revenue", '"shop"."main"."fct_revenue"')]))
        store.write(
            Batch(
                materializations=[
                    Materialization(
                        "m1", "r1", OL_NAME, status="success", start_time=T0, end_time=T0
                    )
                ],
                checks=[CheckResult("c1", OL_NAME, "not_null", passed=False, run_id="r1", time=T0)],
                edges=[
                    LineageEdge("duckdb:///data/shop.duckdb/shop.main.stg", OL_NAME, "openlineage")
                ],
            )
        )
        with store.connect() as conn:
            assets = {a.name for a in reads.assets(conn)}
            mats = reads.materializations(conn)
            checks = reads.check_results(conn)
            edges = {(e.upstream, e.downstream) for e in reads.lineage_edges(conn)}
            aliases = dict(conn.exec_driver_sql("SELECT alias, source FROM asset_aliases").all())
    finally:
        store.close()
    assert OL_NAME not in assets
    assert [m.asset for m in mats] == ["fct_revenue"]
    assert [c.asset for c in checks] == ["fct_revenue"]
    assert ("duckdb:///data/shop.duckdb/shop.main.stg", "fct_revenue") in edges
    assert aliases == {
        "shop.main.fct_revenue": "dbt",
        "main.fct_revenue": "dbt",
        "model.shop.fct_revenue": "dbt",
        OL_NAME: "native",
    }


def test_an_asset_recorded_before_its_alias_is_merged_into_it(store_url: str) -> None:
    """dbt-ol events first, `import dbt` second: the OpenLineage asset's rows move over."""
    store = Store(store_url)
    try:
        store.write(
            Batch(
                materializations=[
                    Materialization(
                        "m1", "r1", OL_NAME, status="failure", start_time=T0, end_time=T0
                    )
                ],
                checks=[CheckResult("c1", OL_NAME, "not_null", passed=False, run_id="r1", time=T0)],
                edges=[LineageEdge(OL_NAME, "dashboard", "openlineage")],
            )
        )
        store.write(
            Batch(
                assets=[_dbt_model("fct_revenue", '"shop"."main"."fct_revenue"')],
                edges=[LineageEdge("stg", "fct_revenue", "dbt")],
            )
        )
        with store.connect() as conn:
            assets = {a.name: a for a in reads.assets(conn)}
            mats = reads.materializations(conn)
            edges = {(e.upstream, e.downstream) for e in reads.lineage_edges(conn)}
            hours = conn.exec_driver_sql(
                "SELECT asset, sum(materializations), sum(checks) FROM asset_hours GROUP BY asset"
            ).all()
            aliases = dict(conn.exec_driver_sql("SELECT alias, asset FROM asset_aliases").all())
    finally:
        store.close()
    assert OL_NAME not in assets
    assert assets["fct_revenue"].kind == "model"
    assert [m.asset for m in mats] == ["fct_revenue"]
    assert edges == {("stg", "fct_revenue"), ("fct_revenue", "dashboard")}
    # The hourly rollups' triggers followed the rows to their new name.
    assert [tuple(h) for h in hours] == [("fct_revenue", 1, 1)]
    assert aliases[OL_NAME] == "fct_revenue"


def test_yaml_aliases_apply_to_new_and_recorded_names(tmp_path: Path, store_url: str) -> None:
    before = Store(store_url)
    try:
        before.write(
            Batch(materializations=[Materialization("m0", "r0", "legacy_orders", start_time=T0)])
        )
    finally:
        before.close()
    settings = _settings(
        tmp_path,
        store_url,
        "assets:\n  aliases:\n    orders: [legacy_orders, 'postgres://db:5432/shop.public.orders']\n",
    )
    store = Store(settings=settings)  # type: ignore[arg-type]
    try:
        store.write(
            Batch(
                materializations=[
                    Materialization(
                        "m1", "r1", "postgres://db:5432/shop.public.orders", start_time=T0
                    )
                ]
            )
        )
        with store.connect() as conn:
            names = {a.name for a in reads.assets(conn)}
            mats = {m.asset for m in reads.materializations(conn)}
    finally:
        store.close()
    assert names == {"orders"} and mats == {"orders"}


def test_conflicting_yaml_aliases_are_one_error_naming_both(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    yaml = "assets:\n  aliases:\n    orders: [legacy]\n    sales_orders: [legacy]\n"
    settings = _settings(tmp_path, store_url, yaml)
    with pytest.raises(ConfigError, match=r"'legacy' .* both 'orders' and 'sales_orders'"):
        declared_aliases(settings)  # type: ignore[arg-type]

    from lakelens.cli.main import app

    Store(store_url).engine.dispose()  # an existing store: the mistake is the yaml's
    monkeypatch.setenv("LAKELENS_CONFIG", str(tmp_path / "lakelens.yaml"))
    monkeypatch.setenv("LAKELENS_DATABASE_URL", store_url)
    result = CliRunner().invoke(app, ["metrics", "asset", "legacy"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "'orders'" in lines[0] and "'sales_orders'" in lines[0], result.output


def test_cli_finds_an_asset_by_any_alias_and_lists_them(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakelens.cli.main import app

    store = Store(store_url)
    try:
        store.write(
            Batch(
                assets=[_dbt_model("fct_revenue", '"shop"."main"."fct_revenue"')],
                edges=[LineageEdge("stg", "fct_revenue", "dbt")],
                materializations=[
                    Materialization(
                        "m1", "r1", OL_NAME, status="success", start_time=T0, end_time=T0
                    )
                ],
            )
        )
    finally:
        store.close()
    monkeypatch.setenv("LAKELENS_DATABASE_URL", store_url)
    runner = CliRunner()
    shown = runner.invoke(app, ["metrics", "asset", "main.fct_revenue"])
    assert shown.exit_code == 0, shown.output
    assert "Metrics for fct_revenue" in shown.output
    assert "Also known as:" in shown.output and "model.shop.fct_revenue (dbt)" in shown.output
    as_json = runner.invoke(app, ["metrics", "asset", OL_NAME, "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["name"] == "fct_revenue"
    assert {"alias": OL_NAME, "source": "native"} in data["aliases"]
    lineage = runner.invoke(app, ["lineage", "show", "shop.main.fct_revenue"])
    assert lineage.exit_code == 0, lineage.output
    assert "stg" in lineage.output


def test_a_dagster_key_path_is_an_alias_of_its_dotted_asset() -> None:
    from lakelens.ingest.identity import derived_aliases

    asset = Asset("raw.orders", tags={"dagster.asset_key": "raw/orders"})
    assert derived_aliases(asset) == {"raw/orders": "dagster"}
