"""`dbt-ol build` events and `lakelens import dbt` of the same project make one graph, in either
order (issue 17 item 6): dbt-ol's `duckdb:///…/warehouse.main.fct_orders` is dbt's `fct_orders`."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from typer.testing import CliRunner

from _support import load_module
from lakelens.integrations.dbt import import_artifacts
from lakelens.store import Store, reads

HERE = Path(__file__).resolve().parent


_dbt_ol = load_module("lakelens_tests_dbt_ol", HERE / "test_dbt_ol.py")
server = _dbt_ol.server  # `lakelens serve --no-alerts` on the test's store


def _graph(store: Store) -> tuple[set[str], set[tuple[str, str, str]], list, dict[str, str]]:
    with store.connect() as conn:
        assets = {a.name for a in reads.assets(conn)}
        edges = {(e.upstream, e.downstream, e.source) for e in reads.lineage_edges(conn)}
        checks = reads.check_results(conn)
        runs = {r.run_id: r.job for r in reads.runs(conn)}
        aliases = dict(conn.exec_driver_sql("SELECT alias, asset FROM asset_aliases").all())
    failing = [
        (c.asset, runs.get(c.run_id or "", ""))
        for c in checks
        if c.name == "not_null_fct_orders_customer"
    ]
    return assets, edges, failing, aliases


def _assert_one_graph(store: Store, warehouse: Path) -> None:
    prefix = f"duckdb://{warehouse}/warehouse"
    assets, edges, failing, aliases = _graph(store)
    # No second asset under dbt-ol's names: every dataset it sent is a node of the project.
    assert not [a for a in assets if a.startswith("duckdb://")], sorted(assets)
    assert {"raw.orders", "stg_orders", "fct_orders", "customers", "mart_revenue"} <= assets
    # fct_orders has its dbt upstreams, and dbt-ol's run wrote its check on the same asset.
    assert {("stg_orders", "fct_orders", "dbt"), ("customers", "fct_orders", "dbt")} <= edges
    assert ("fct_orders", "dbt/warehouse.main.shop.fct_orders.build.test") in failing
    assert {
        f"{prefix}.main.fct_orders": "fct_orders",
        "warehouse.main.fct_orders": "fct_orders",
        "main.fct_orders": "fct_orders",
        "model.shop.fct_orders": "fct_orders",
        f"{prefix}.raw.orders": "raw.orders",
    }.items() <= aliases.items()


def _lookups(
    server_url: str, store_url: str, warehouse: Path, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API and the CLI find fct_orders under dbt-ol's name and list its aliases; `source`
    says how dbt-ol's name became one ("merged": it had its own asset until then)."""
    from lakelens.cli.main import app

    ol_name = f"duckdb://{warehouse}/warehouse.main.fct_orders"
    answer = httpx.get(f"{server_url}/api/v1/assets/{quote(ol_name, safe='')}", timeout=10)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["name"] == "fct_orders"
    assert {"stg_orders", "customers"} <= set(data["upstream_assets"])
    assert {"alias": ol_name, "source": source} in data["aliases"]

    monkeypatch.setenv("LAKELENS_DATABASE_URL", store_url)
    impact = CliRunner().invoke(app, ["lineage", "impact", "warehouse.main.stg_orders"])
    assert impact.exit_code == 0, impact.output
    assert "fct_orders" in impact.output and "mart_revenue" in impact.output


def test_dbt_ol_events_then_import_dbt_merge_into_one_graph(
    tmp_path: Path, store_url: str, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dbt-ol first: its assets are stored under OpenLineage names, then moved to the dbt
    nodes when `import dbt` registers their relations."""
    warehouse, _ = _dbt_ol._dbt_ol_build(tmp_path, server)
    store = Store(store_url)
    try:
        with store.connect() as conn:
            before = {a.name for a in reads.assets(conn)}
        assert f"duckdb://{warehouse}/warehouse.main.fct_orders" in before
        import_artifacts(tmp_path / "shop" / "target", store=store)
        _assert_one_graph(store, warehouse)
    finally:
        store.close()
    _lookups(server, store_url, warehouse, "merged", monkeypatch)


def test_import_dbt_then_dbt_ol_events_resolve_on_arrival(
    tmp_path: Path, store_url: str, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`import dbt` of a parsed project first: dbt-ol's events land on the dbt nodes."""
    project = _dbt_ol._project.write_project(tmp_path)
    dbt = _dbt_ol._dbt_ol().parent / "dbt"
    parsed = subprocess.run(
        [str(dbt), "parse", "--project-dir", str(project), "--profiles-dir", str(project)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    store = Store(store_url)
    try:
        import_artifacts(project / "target", store=store)
        warehouse, _ = _dbt_ol._dbt_ol_build(tmp_path, server)
        _assert_one_graph(store, warehouse)
        with store.connect() as conn:
            mats = {(m.asset, m.status) for m in reads.materializations(conn)}
        assert ("fct_orders", "success") in mats
    finally:
        store.close()
    _lookups(server, store_url, warehouse, "openlineage", monkeypatch)
