"""dbt artifacts, from real dbt runs (dbt-core + dbt-duckdb) and committed fixtures, imported."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from lakelens.analysis.column_lineage import COLUMN_LINEAGE_TAG as COLUMN_TAG
from lakelens.integrations.dbt import DbtArtifactsError, ImportResult, import_artifacts
from lakelens.store import Store, reads
from lakelens.store import schema as tables

FIXTURES = Path(__file__).parent / "fixtures" / "dbt"
FIXTURE_VERSIONS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())

# -- the project: one source table loaded by hand, a seed, three models, two exposures -------

# Loaded straight into the warehouse with duckdb: data dbt reads but does not build.
RAW_SQL = """
create schema if not exists raw;
create or replace table raw.orders as select * from (values
    (1, 1, 10.0, 'placed',   current_timestamp - interval 2 hour),
    (2, 2, 20.0, 'shipped',  current_timestamp - interval 3 hour),
    (3, 9,  5.0, 'returned', current_timestamp - interval 1 hour),
    (4, 3,  7.5, 'placed',   current_timestamp - interval 2 hour)
) t(order_id, customer_id, amount, status, loaded_at);
create or replace table raw.payments as
    select 1 as payment_id, 4 as order_id, current_timestamp - interval 3 hour as loaded_at;
"""

# Kept valid for dbt 1.6 through 1.12, which made the committed fixtures.
PROJECT_FILES = {
    "dbt_project.yml": """
name: shop
version: "1.0"
config-version: 2
profile: shop
model-paths: ["models"]
seed-paths: ["seeds"]
snapshot-paths: ["snapshots"]
models:
  shop:
    staging:
      +materialized: view
    marts:
      +materialized: table
""",
    "seeds/customers.csv": "customer_id,name,segment\n1,Ada,enterprise\n2,Grace,smb\n3,Linus,smb\n",
    "seeds/_seeds.yml": """
version: 2
seeds:
  - name: customers
    description: Customers, maintained by hand.
    config:
      meta: {owner: crm@example.com}
    columns:
      - name: customer_id
        data_type: integer
      - name: segment
        tests: [not_null]
""",
    "models/staging/_sources.yml": """
version: 2
sources:
  - name: raw
    schema: raw
    loaded_at_field: loaded_at
    freshness:
      warn_after: {count: 12, period: hour}
      error_after: {count: 1, period: day}
    tables:
      - name: orders
        meta: {owner: ingest@example.com}
        columns:
          - name: order_id
            data_type: integer
            tests: [not_null]
          - name: loaded_at
            data_type: timestamp
      - name: payments
        freshness:
          warn_after: {count: 30, period: minute}
""",
    "models/staging/stg_orders.sql": """
select order_id, customer_id, amount, status, loaded_at
{% if var('break_staging', false) %}, no_such_column{% endif %}
from {{ source('raw', 'orders') }}
""",
    "models/staging/_staging.yml": """
version: 2
models:
  - name: stg_orders
    description: Orders, cleaned.
    config:
      meta: {owner: analytics@example.com}
      tags: [orders, "team:analytics"]
    columns:
      - name: order_id
        data_type: integer
        tests: [unique, not_null]
      - name: amount
        data_type: double
""",
    "models/marts/fct_orders.sql": """
select o.order_id, o.amount, o.status, c.name as customer, c.segment
from {{ ref('stg_orders') }} o left join {{ ref('customers') }} c using (customer_id)
""",
    "models/marts/mart_revenue.sql": """
select segment, sum(amount) as revenue from {{ ref('fct_orders') }} group by segment
""",
    "models/marts/_marts.yml": """
version: 2
models:
  - name: fct_orders
    config:
      tags: [finance]
    columns:
      - name: order_id
        tests: [not_null]
      - name: status
        tests:
          - accepted_values:
              values: [placed, shipped]
              config:
                severity: warn
      - name: customer
        tests:
          - not_null:
              config:
                severity: error
  - name: mart_revenue
    config:
      meta: {owner: finance@example.com, layer: publishing}
    columns:
      - name: segment
        data_type: varchar
      - name: revenue
        data_type: double
        tests: [not_null]
exposures:
  - name: revenue_dashboard
    type: dashboard
    owner: {name: Finance, email: finance-lead@example.com}
    depends_on: [ref('mart_revenue')]
    url: https://bi.example.com/revenue
  - name: churn_notebook
    type: notebook
    owner: {name: Data Science}
    depends_on:
      - ref('fct_orders')
      - source('raw', 'payments')
""",
    "snapshots/customers_snapshot.sql": """
{% snapshot customers_snapshot %}
{{ config(target_schema='snapshots', unique_key='customer_id', strategy='check', check_cols='all') }}
select * from {{ ref('customers') }}
{% endsnapshot %}
""",
}

EDGES = {
    ("raw.orders", "stg_orders"),
    ("stg_orders", "fct_orders"),
    ("customers", "fct_orders"),
    ("customers", "customers_snapshot"),
    ("fct_orders", "mart_revenue"),
    ("mart_revenue", "revenue_dashboard"),
    ("fct_orders", "churn_notebook"),
    ("raw.payments", "churn_notebook"),
}
KINDS = {
    "raw.orders": "source",
    "raw.payments": "source",
    "customers": "table",
    "customers_snapshot": "table",
    "stg_orders": "model",
    "fct_orders": "model",
    "mart_revenue": "model",
    "revenue_dashboard": "dashboard",
    "churn_notebook": "external",
}


def write_project(root: Path) -> Path:
    """The project and its profile (a duckdb file in `root`); returns the project directory."""
    project = root / "shop"
    for relative, text in PROJECT_FILES.items():
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip("\n"))
    (project / "profiles.yml").write_text(
        "shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: '{root / 'warehouse.duckdb'}'\n      threads: 1\n"
    )
    return project


@dataclass
class DbtRuns:
    """Artifacts copied after each dbt command, by step name."""

    project: Path
    steps: dict[str, Path]
    seconds: float

    def results(self, step: str) -> dict[str, Any]:
        return json.loads((self.steps[step] / "run_results.json").read_text())

    def invocation(self, step: str) -> str:
        name = "sources.json" if step == "freshness" else "run_results.json"
        return json.loads((self.steps[step] / name).read_text())["metadata"]["invocation_id"]


STEPS = {
    "seed": ["seed"],
    "run": ["run"],
    "test": ["test"],
    "freshness": ["source", "freshness"],
    "broken_build": ["build", "--vars", "{break_staging: true}"],
    "docs": ["docs", "generate"],
}


@pytest.fixture(scope="module")
def dbt_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DbtRuns]:
    """Run the project once per module with dbt in-process: seed, run, test, freshness, build."""
    try:
        import duckdb
        from dbt.cli.main import dbtRunner
    except ImportError as exc:
        reason = f"dbt is not installed ({exc}): pip install dbt-core dbt-duckdb"
        if os.environ.get("LAKELENS_TEST_STRICT") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("dbt")
    project = write_project(root)
    with duckdb.connect(str(root / "warehouse.duckdb")) as conn:
        conn.execute(RAW_SQL)
    # dbt configures the root logger for its own output; give it back afterwards.
    root_logger = logging.getLogger()
    saved = (root_logger.level, list(root_logger.handlers))
    started = time.perf_counter()
    steps: dict[str, Path] = {}
    try:
        runner = dbtRunner()
        for step, args in STEPS.items():
            outcome = runner.invoke(
                [*args, "--project-dir", str(project), "--profiles-dir", str(project), "--quiet"]
            )
            assert outcome.exception is None, f"dbt {' '.join(args)}: {outcome.exception}"
            # `dbt test` fails on purpose (an error-severity test), the broken build too.
            assert outcome.success is (step not in ("test", "broken_build")), step
            steps[step] = root / "artifacts" / step
            shutil.copytree(project / "target", steps[step], ignore=_only_artifacts)
    finally:
        root_logger.setLevel(saved[0])
        root_logger.handlers[:] = saved[1]
    yield DbtRuns(project, steps, time.perf_counter() - started)


def _only_artifacts(directory: str, names: list[str]) -> list[str]:
    kept = ("manifest.json", "run_results.json", "sources.json", "catalog.json")
    return [n for n in names if n not in kept]


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).timestamp()


def _counts(store: Store) -> dict[str, int]:
    names = (
        "assets",
        "runs",
        "materializations",
        "check_results",
        "lineage_edges",
        "schema_snapshots",
    )
    with store.connect() as conn:
        return {
            name: conn.execute(
                sa.select(sa.func.count()).select_from(tables.metadata.tables[name])
            ).scalar_one()
            for name in names
        }


# -- real dbt -------------------------------------------------------------------------------


def test_dbt_commands_import_as_graph_runs_materializations_and_checks(
    dbt_runs: DbtRuns, store: Store
) -> None:
    results = [
        import_artifacts(dbt_runs.steps[s], store=store)
        for s in ("seed", "run", "test", "freshness")
    ]
    assert all(not r.already_imported for r in results)
    assert results[0].manifest_version >= 12
    with store.connect() as conn:
        assets = {a.name: a for a in reads.assets(conn)}
        edges = {(e.upstream, e.downstream) for e in reads.lineage_edges(conn) if e.source == "dbt"}
        runs = {r.run_id: r for r in reads.runs(conn)}
        mats = reads.materializations(conn)
        checks = reads.check_results(conn)
        stg_schema = reads.schema_snapshots(conn, asset="stg_orders")
        source_state = dict(
            conn.execute(
                sa.select(tables.assets.c.name, tables.assets.c.last_success_time).where(
                    tables.assets.c.kind == "source"
                )
            ).all()
        )

    # The graph: sources → models → exposures, with owners, layers and SLAs from the project.
    assert edges == EDGES
    assert {name: a.kind for name, a in assets.items()} == KINDS
    assert assets["stg_orders"].owner == "analytics@example.com"
    assert assets["stg_orders"].layer == "staging"
    assert assets["stg_orders"].tags["team"] == "analytics"
    assert assets["stg_orders"].tags["dbt.materialized"] == "view"
    assert assets["fct_orders"].layer == "marts"
    assert assets["fct_orders"].tags["finance"] == "true"
    assert assets["mart_revenue"].layer == "publishing"
    assert assets["revenue_dashboard"].owner == "finance-lead@example.com"
    assert assets["churn_notebook"].owner == "Data Science"
    assert assets["raw.orders"].owner == "ingest@example.com"
    assert assets["raw.orders"].freshness_seconds == 12 * 3600
    assert assets["raw.payments"].freshness_seconds == 30 * 60

    # One run per dbt invocation, named after the command.
    jobs = {s: runs[dbt_runs.invocation(s)] for s in ("seed", "run", "test", "freshness")}
    assert {s: (r.job, r.status) for s, r in jobs.items()} == {
        "seed": ("dbt seed", "success"),
        "run": ("dbt run", "success"),
        "test": ("dbt test", "failure"),
        "freshness": ("dbt source freshness", "success"),
    }
    assert "not_null_fct_orders_customer" in (jobs["test"].error_message or "")

    # A materialization per seed and model, timed by dbt's execute phase.
    executed = {
        r["unique_id"].split(".")[-1]: next(t for t in r["timing"] if t["name"] == "execute")
        for step in ("seed", "run")
        for r in dbt_runs.results(step)["results"]
    }
    assert {m.asset for m in mats} == {"customers", "stg_orders", "fct_orders", "mart_revenue"}
    for mat in mats:
        assert mat.status == "success"
        assert mat.start_time is not None and mat.end_time is not None
        assert mat.start_time.timestamp() == pytest.approx(
            _epoch(executed[mat.asset]["started_at"])
        )
        assert mat.end_time.timestamp() == pytest.approx(
            _epoch(executed[mat.asset]["completed_at"])
        )
    seed = next(m for m in mats if m.asset == "customers")
    assert seed.rows == 3  # the adapter's rows_affected
    assert seed.run_id == dbt_runs.invocation("seed")

    # Tests are checks on the node they test; severity follows the test's config.
    by_name = {c.name: c for c in checks}
    failing = by_name["not_null_fct_orders_customer"]
    assert (failing.asset, failing.passed, failing.severity, failing.value) == (
        "fct_orders",
        False,
        "error",
        1.0,
    )
    assert failing.run_id == dbt_runs.invocation("test")
    assert "configured to fail" in (failing.message or "")
    warned = by_name["accepted_values_fct_orders_status__placed__shipped"]
    assert (warned.asset, warned.passed, warned.severity) == ("fct_orders", False, "warning")
    assert by_name["unique_stg_orders_order_id"].passed is True
    assert by_name["source_not_null_raw_orders_order_id"].asset == "raw.orders"

    # Freshness: a check per source against its SLA, and the source's last load as its age.
    fresh = {c.asset: c for c in checks if c.name == "source_freshness"}
    assert (fresh["raw.orders"].passed, fresh["raw.orders"].threshold) == (True, 43200.0)
    assert (fresh["raw.payments"].passed, fresh["raw.payments"].severity) == (False, "warning")
    assert fresh["raw.payments"].value == pytest.approx(3 * 3600, abs=300)
    assert source_state["raw.payments"] == pytest.approx(time.time() - 3 * 3600, abs=300)

    # Documented columns become schema snapshots.
    assert [s.columns for s in stg_schema] == [[("order_id", "integer"), ("amount", "double")]]


def test_reimporting_the_same_artifacts_adds_nothing(dbt_runs: DbtRuns, store: Store) -> None:
    steps = [dbt_runs.steps[s] for s in STEPS]
    first = [import_artifacts(step, store=store) for step in steps]
    counts = _counts(store)
    again = [import_artifacts(step, store=store) for step in reversed(steps)]
    assert _counts(store) == counts
    assert all(r.already_imported for r in again)
    assert counts["runs"] == len(STEPS)
    assert first[0].new_run_ids == [dbt_runs.invocation("seed")]


def test_a_failing_model_is_a_failed_materialization_with_dbt_message(
    dbt_runs: DbtRuns, store: Store
) -> None:
    result = import_artifacts(dbt_runs.steps["broken_build"], store=store)
    run_id = dbt_runs.invocation("broken_build")
    with store.connect() as conn:
        (run,) = reads.runs(conn, run_id=run_id)
        mats = {m.asset: m for m in reads.materializations(conn, run_id=run_id)}
        checks = {c.name: c for c in reads.check_results(conn, run_id=run_id)}
    assert (run.job, run.status, run.error_type) == ("dbt build", "failure", "dbt.RuntimeError")
    broken = mats["stg_orders"]
    assert broken.status == "failure"
    assert broken.error_type == "dbt.RuntimeError"
    assert "no_such_column" in (broken.error_message or "")
    assert mats["fct_orders"].status == "skipped"
    assert mats["customers"].status == "success"
    # In one build the seed's row count is known, so its test reports valid/total rows.
    segment = checks["not_null_customers_segment"]
    assert (segment.passed, segment.valid_rows, segment.total_rows) == (True, 3, 3)
    # Tests of skipped models did not run: no result.
    assert "not_null_fct_orders_customer" not in checks
    assert result.materializations == len(mats)


def _cli() -> typer.Typer:
    """The commands under test behind the CLI's error boundary (as `lakelens` registers them)."""
    from lakelens.cli import importers, lineage, metrics
    from lakelens.cli.main import _Group

    app = typer.Typer(cls=_Group)
    app.add_typer(importers.app, name="import")
    app.add_typer(lineage.app, name="lineage")
    app.add_typer(metrics.app, name="metrics")
    return app


def test_cli_import_then_lineage_impact_and_metrics_asset(
    dbt_runs: DbtRuns, tmp_path: Path
) -> None:
    app, runner, home = _cli(), CliRunner(), str(tmp_path / "home")
    for step in ("seed", "run", "test"):
        result = runner.invoke(app, ["import", "dbt", str(dbt_runs.steps[step]), "--home", home])
        assert result.exit_code == 0, result.output
    assert "Imported dbt artifacts" in result.output
    assert "1 failing, 1 warning" in result.output
    result = runner.invoke(
        app, ["import", "dbt", str(dbt_runs.steps["run"]), "--home", home, "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["already_imported"] is True
    assert data["run_ids"] == [dbt_runs.invocation("run")]

    impact = runner.invoke(app, ["lineage", "impact", "raw.orders", "--home", home, "--json"])
    assert impact.exit_code == 0, impact.output
    found = json.loads(impact.output)
    assert [d["name"] for d in found["direct"]] == ["stg_orders"]
    assert {t["name"] for t in found["transitive"]} >= {"fct_orders", "mart_revenue"}
    assert set(found["external"]) == {"revenue_dashboard", "churn_notebook"}
    assert "finance-lead@example.com" in found["owners"]

    shown = runner.invoke(app, ["metrics", "asset", "customers", "--home", home])
    assert shown.exit_code == 0, shown.output
    assert "owner crm@example.com" in shown.output
    assert dbt_runs.invocation("seed")[:8] in shown.output
    asset = runner.invoke(app, ["metrics", "asset", "fct_orders", "--home", home, "--json"])
    assert asset.exit_code == 0, asset.output
    (run,) = json.loads(asset.output)["runs"]
    assert run["run_id"] == dbt_runs.invocation("run")
    assert run["status"] == "success" and run["duration_seconds"] > 0


# -- committed artifacts of older dbt versions ----------------------------------------------


def test_fixtures_cover_several_manifest_schemas() -> None:
    versions = {
        json.loads((FIXTURES / v / "manifest.json").read_text())["metadata"]["dbt_schema_version"]
        for v in FIXTURE_VERSIONS
    }
    assert len(versions) >= 2, versions
    for version in FIXTURE_VERSIONS:
        for name in ("manifest.json", "run_results.json", "sources.json"):
            assert (FIXTURES / version / name).stat().st_size < 200_000


@pytest.mark.parametrize("version", FIXTURE_VERSIONS)
def test_artifacts_of_each_dbt_version_import_the_same(version: str, store: Store) -> None:
    result = import_artifacts(FIXTURES / version, store=store)
    build = json.loads((FIXTURES / version / "run_results.json").read_text())["metadata"]
    assert isinstance(result, ImportResult)
    assert result.dbt_version == version
    assert (result.assets, result.edges, result.runs) == (9, 8, 2)
    assert (result.checks, result.failed_checks, result.warned_checks) == (7, 1, 1)
    assert (result.freshness, result.stale_sources) == (2, 1)
    with store.connect() as conn:
        assets = {a.name: a for a in reads.assets(conn)}
        edges = {(e.upstream, e.downstream) for e in reads.lineage_edges(conn)}
        (run,) = reads.runs(conn, run_id=build["invocation_id"])
        mats = {m.asset: m for m in reads.materializations(conn)}
        checks = {(c.asset, c.name): c for c in reads.check_results(conn)}
        schemas = {s.asset for s in reads.schema_snapshots(conn)}
    assert edges == EDGES
    assert {name: a.kind for name, a in assets.items()} == KINDS
    assert assets["raw.payments"].freshness_seconds == 1800
    assert (assets["mart_revenue"].owner, assets["mart_revenue"].layer) == (
        "finance@example.com",
        "publishing",
    )
    assert (run.job, run.status) == ("dbt build", "failure")
    assert {a: m.status for a, m in mats.items()} == {
        "customers": "success",
        "customers_snapshot": "success",
        "stg_orders": "success",
        "fct_orders": "success",
        "mart_revenue": "skipped",  # its upstream test failed
    }
    assert mats["customers"].rows == 3
    assert all(m.duration_seconds for a, m in mats.items() if m.status == "success")
    failing = checks[("fct_orders", "not_null_fct_orders_customer")]
    assert (failing.passed, failing.severity, failing.value) == (False, "error", 1.0)
    assert (
        checks[("fct_orders", "accepted_values_fct_orders_status__placed__shipped")].severity
        == "warning"
    )
    seed_test = checks[("customers", "not_null_customers_segment")]
    assert (seed_test.valid_rows, seed_test.total_rows) == (3, 3)
    assert checks[("raw.payments", "source_freshness")].passed is False
    assert schemas == {"raw.orders", "customers", "stg_orders", "fct_orders", "mart_revenue"}

    counts = _counts(store)
    assert import_artifacts(FIXTURES / version, store=store).already_imported
    assert _counts(store) == counts


def _fixture_copy(tmp_path: Path, version: str = FIXTURE_VERSIONS[-1]) -> Path:
    target = tmp_path / "target"
    shutil.copytree(FIXTURES / version, target)
    return target


def _edit(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_name_clashes_keep_the_root_project_name_and_prefix_the_package(
    tmp_path: Path, store: Store
) -> None:
    target = _fixture_copy(tmp_path)

    def add_package_nodes(manifest: dict[str, Any]) -> None:
        model = manifest["nodes"]["model.shop.stg_orders"]
        manifest["nodes"]["model.other.stg_orders"] = {
            **model,
            "unique_id": "model.other.stg_orders",
            "package_name": "other",
            "depends_on": {"nodes": [], "macros": []},
        }
        for version in (1, 2):
            manifest["nodes"][f"model.shop.dim_orders.v{version}"] = {
                **model,
                "name": "dim_orders",
                "unique_id": f"model.shop.dim_orders.v{version}",
                "version": version,
                "depends_on": {"nodes": ["model.other.stg_orders"], "macros": []},
            }

    _edit(target / "manifest.json", add_package_nodes)
    import_artifacts(target, store=store)
    with store.connect() as conn:
        names = {a.tags["dbt.unique_id"]: a.name for a in reads.assets(conn)}
        edges = {(e.upstream, e.downstream) for e in reads.lineage_edges(conn)}
    assert names["model.shop.stg_orders"] == "stg_orders"
    assert names["model.other.stg_orders"] == "other.stg_orders"
    assert names["model.shop.dim_orders.v2"] == "dim_orders.v2"
    assert ("other.stg_orders", "dim_orders.v1") in edges


def test_an_error_severity_freshness_and_a_runtime_error(tmp_path: Path, store: Store) -> None:
    target = _fixture_copy(tmp_path)

    def stale_and_broken(sources: dict[str, Any]) -> None:
        first, second = sources["results"]
        first["status"] = "error"
        sources["results"][1] = {
            "unique_id": second["unique_id"],
            "status": "runtime error",
            "error": "Catalog Error: Table with name payments does not exist!",
            "timing": [],
            "thread_id": "Thread-1",
            "execution_time": 0.01,
            "adapter_response": {},
            "message": None,
            "failures": None,
        }

    _edit(target / "sources.json", stale_and_broken)
    (target / "run_results.json").unlink()
    result = import_artifacts(target, store=store)
    with store.connect() as conn:
        (run,) = reads.runs(conn)
        checks = {c.asset: c for c in reads.check_results(conn)}
    assert result.runs == 1 and result.materializations == 0
    assert (run.job, run.status) == ("dbt source freshness", "failure")
    assert (checks["raw.orders"].passed, checks["raw.orders"].severity) == (False, "error")
    payments = checks["raw.payments"]
    assert (payments.passed, payments.severity, payments.value) == (False, "error", None)
    assert "does not exist" in (payments.message or "")


def test_manifest_only_imports_the_graph(tmp_path: Path, store: Store) -> None:
    target = _fixture_copy(tmp_path)
    (target / "run_results.json").unlink()
    (target / "sources.json").unlink()
    result = import_artifacts(target.parent, store=store)  # the project directory works too
    assert (result.assets, result.edges, result.runs, result.checks) == (9, 8, 0, 0)
    assert result.already_imported is False


def test_an_import_keeps_critical_and_tags_it_does_not_set(tmp_path: Path, store: Store) -> None:
    """A model without `meta.critical` leaves the SDK's critical; dbt's tags join the SDK's."""
    from lakelens.events import Batch
    from lakelens.model import Asset

    declared = Batch()
    declared.add(Asset("fct_orders", critical=True, tags={"oncall": "payments", "finance": "no"}))
    store.write(declared)
    import_artifacts(_fixture_copy(tmp_path), store=store)
    with store.connect() as conn:
        found = next(a for a in reads.assets(conn) if a.name == "fct_orders")
    assert found.critical is True and found.kind == "model"
    assert found.tags["oncall"] == "payments"
    assert found.tags["finance"] == "true"  # dbt's own key, updated
    assert found.tags["dbt.materialized"] == "table"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda t: None, "does not exist"),
        (lambda t: t.mkdir(), "No manifest.json in"),
        (lambda t: (t.mkdir(), (t / "manifest.json").write_text("{nope")), "is not valid JSON"),
        (
            lambda t: (t.mkdir(), (t / "manifest.json").write_text('{"metadata": {}}')),
            "is not a dbt manifest artifact",
        ),
        (
            lambda t: (
                t.mkdir(),
                (t / "manifest.json").write_text(
                    json.dumps(
                        {
                            "metadata": {
                                "dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v9.json",
                                "dbt_version": "1.5.0",
                            }
                        }
                    )
                ),
            ),
            "schema v9 (dbt 1.5.0); lakelens reads v10 and later",
        ),
    ],
    ids=["missing", "empty", "bad-json", "not-dbt", "too-old"],
)
def test_unreadable_targets_are_one_clear_error(tmp_path: Path, setup: Any, message: str) -> None:
    target = tmp_path / "target"
    setup(target)
    with pytest.raises(DbtArtifactsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_artifacts(target, store=Store(f"sqlite:///{tmp_path / 'x.db'}"))
    result = CliRunner().invoke(
        _cli(), ["import", "dbt", str(target), "--home", str(tmp_path / "home")]
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output


def test_run_results_of_another_artifact_kind_are_refused(tmp_path: Path) -> None:
    target = _fixture_copy(tmp_path)
    shutil.copy(target / "sources.json", target / "run_results.json")
    with pytest.raises(
        DbtArtifactsError, match=r"run_results\.json is not a dbt run results artifact"
    ):
        import_artifacts(target, store=Store(f"sqlite:///{tmp_path / 'x.db'}"))


def test_parent_run_unit_tests_and_compile_runs(tmp_path: Path, store: Store) -> None:
    """DBT_ENV_CUSTOM_ENV_LAKELENS_RUN_ID links the run; unit tests check their model;
    `dbt compile` results build nothing."""
    target = _fixture_copy(tmp_path)
    (target / "sources.json").unlink()

    def add_unit_test(manifest: dict[str, Any]) -> None:
        manifest["unit_tests"] = {
            "unit_test.shop.fct_orders.joins_customers": {
                "name": "joins_customers",
                "resource_type": "unit_test",
                "depends_on": {"nodes": ["model.shop.fct_orders"], "macros": []},
                "config": {},
            }
        }

    def compile_with_parent(results: dict[str, Any]) -> None:
        results["metadata"]["env"] = {"LAKELENS_RUN_ID": "orchestrator-run-1"}
        results["args"]["which"] = "compile"
        results["results"].append(
            {
                "unique_id": "unit_test.shop.fct_orders.joins_customers",
                "status": "fail",
                "message": "actual differs from expected",
                "failures": 1,
                "timing": [],
            }
        )

    _edit(target / "manifest.json", add_unit_test)
    _edit(target / "run_results.json", compile_with_parent)
    result = import_artifacts(target, store=store)
    with store.connect() as conn:
        (run,) = reads.runs(conn)
        checks = {c.name: c for c in reads.check_results(conn)}
    assert (run.job, run.parent_run_id) == ("dbt compile", "orchestrator-run-1")
    assert result.materializations == 0
    unit = checks["joins_customers"]
    assert (unit.asset, unit.passed, unit.severity) == ("fct_orders", False, "error")
    assert unit.attributes["dbt.test_type"] == "unit"


def test_dbt_log_lines_join_the_orchestrated_run(dbt_runs: DbtRuns, tmp_path: Path) -> None:
    """dbt run in-process inside a lakelens run: `lakelens logs --run-id` tells the whole story."""
    from dbt.cli.main import dbtRunner

    import lakelens
    from lakelens.cli.main import app
    from lakelens.config import load_settings
    from lakelens.integrations.dbt import log_callback

    lakelens.configure(settings=load_settings(home=str(tmp_path), log_format="none"))
    root_logger = logging.getLogger()
    saved = (root_logger.level, list(root_logger.handlers))
    try:
        with lakelens.run("orchestrated", run_id="orchestrated-1"):
            lakelens.get_logger("orchestrator").info("starting dbt")
            outcome = dbtRunner(callbacks=[log_callback]).invoke(
                [
                    "run",
                    "--project-dir",
                    str(dbt_runs.project),
                    "--profiles-dir",
                    str(dbt_runs.project),
                ]
            )
            lakelens.get_logger("orchestrator").info("dbt finished")
        assert outcome.success
        lakelens.flush()
    finally:
        root_logger.setLevel(saved[0])
        root_logger.handlers[:] = saved[1]
        lakelens.configure(settings=load_settings(home=str(tmp_path / "x"), log_format="none"))
    result = CliRunner().invoke(
        app, ["logs", "--run-id", "orchestrated-1", "--json", "-n", "500", "--home", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    loggers = [r["logger"] for r in records]
    assert loggers[0] == "orchestrator" and loggers[-1] == "orchestrator" and "dbt" in loggers
    dbt_lines = [r for r in records if r["logger"] == "dbt"]
    assert all(r["run_id"] == "orchestrated-1" and r["job"] == "orchestrated" for r in dbt_lines)
    assert any("Completed successfully" in r["message"] for r in dbt_lines)
    assert any(r["asset"] == "stg_orders" for r in dbt_lines)  # node lines carry their model


def test_a_failing_error_test_from_dbt_opens_one_incident(dbt_runs: DbtRuns, store: Store) -> None:
    """`dbt test` after `dbt run`: the check is another invocation's, and still alerts."""
    from lakelens.alerts.config import AlertingConfig
    from lakelens.alerts.engine import AlertEngine
    from lakelens.alerts.incidents import Policy
    from lakelens.alerts.triage import incidents

    for step in ("seed", "run", "test"):
        import_artifacts(dbt_runs.steps[step], store=store)
    config = AlertingConfig(incident_policy=Policy(group_wait=0))
    opened = AlertEngine(store, config).evaluate().opened
    with store.connect() as conn:
        found = [i for i in incidents(conn) if i.id in opened]
    checks = [
        f
        for i in found
        for f in i.findings
        if f["rule"] == "check_failed" and f["severity"] == "error"
    ]
    assert [f["summary"].split(":")[0] for f in checks] == [
        "not_null_fct_orders_customer failed on fct_orders"
    ]


# -- column lineage from compiled SQL -------------------------------------------------------

# Read off the models' SQL in PROJECT_FILES: {(upstream, model): {column: [upstream columns]}}.
STAGING_COLUMNS = {
    ("raw.orders", "stg_orders"): {
        c: [c] for c in ("order_id", "customer_id", "amount", "status", "loaded_at")
    },
}
MART_COLUMNS = {
    ("stg_orders", "fct_orders"): {
        "order_id": ["order_id"],
        "amount": ["amount"],
        "status": ["status"],
    },
    ("customers", "fct_orders"): {"customer": ["name"], "segment": ["segment"]},
    ("fct_orders", "mart_revenue"): {"segment": ["segment"], "revenue": ["amount"]},
}
# `select * from customers`: only catalog.json (dbt docs generate) knows the seed's columns.
SNAPSHOT_COLUMNS = {
    ("customers", "customers_snapshot"): {c: [c] for c in ("customer_id", "name", "segment")},
}


def _column_mappings(store: Store) -> dict[tuple[str, str], dict[str, list[str]]]:
    with store.connect() as conn:
        from lakelens.analysis.lineage import load_graph

        return load_graph(conn).columns


def test_column_lineage_of_dbt_run_models_from_their_compiled_sql(
    dbt_runs: DbtRuns, store: Store
) -> None:
    result = import_artifacts(dbt_runs.steps["run"], store=store)
    assert _column_mappings(store) == STAGING_COLUMNS | MART_COLUMNS
    assert result.column_edges == 4 and result.unresolved_columns == {}
    with store.connect() as conn:
        tags = dict(conn.execute(sa.select(tables.assets.c.name, tables.assets.c.tags)).all())
    assert json.loads(tags["fct_orders"])["lakelens.column_lineage"] == "resolved"


def test_select_star_resolves_through_catalog_and_is_unresolved_without_it(
    dbt_runs: DbtRuns, store: Store, tmp_path: Path
) -> None:
    without = tmp_path / "no_catalog"
    shutil.copytree(dbt_runs.steps["docs"], without)
    (without / "catalog.json").unlink()
    result = import_artifacts(without, store=store)
    reason = result.unresolved_columns["customers_snapshot"]
    assert "select * over relations whose columns are unknown (customers)" in reason
    assert "dbt docs generate" in reason
    assert ("customers", "customers_snapshot") not in _column_mappings(store)

    result = import_artifacts(dbt_runs.steps["docs"], store=store)
    assert result.unresolved_columns == {}
    mappings = _column_mappings(store)
    assert (
        mappings[("customers", "customers_snapshot")]
        == SNAPSHOT_COLUMNS[("customers", "customers_snapshot")]
    )
    for edge, columns in MART_COLUMNS.items():
        assert mappings[edge] == columns


def test_sql_the_parser_cannot_read_is_recorded_unresolved_not_a_failure(
    tmp_path: Path, store: Store
) -> None:
    target = _fixture_copy(tmp_path)

    def garble(manifest: dict[str, Any]) -> None:
        manifest["nodes"]["model.shop.fct_orders"]["compiled_code"] = "select ((( from where"

    _edit(target / "manifest.json", garble)
    result = import_artifacts(target, store=store)
    assert result.unresolved_columns["fct_orders"].startswith("sqlglot: ")
    assert result.assets == len(KINDS)
    with store.connect() as conn:
        tags = json.loads(
            conn.execute(
                sa.select(tables.assets.c.tags).where(tables.assets.c.name == "fct_orders")
            ).scalar_one()
        )
    assert tags["lakelens.column_lineage"] == "unresolved"
    assert tags["lakelens.column_lineage_reason"] == result.unresolved_columns["fct_orders"]
    # The model that parsed still has its columns.
    assert _column_mappings(store)[("raw.orders", "stg_orders")]["amount"] == ["amount"]


def test_column_lineage_can_be_left_out(tmp_path: Path, store: Store) -> None:
    result = import_artifacts(_fixture_copy(tmp_path), store=store, column_lineage=False)
    assert result.column_edges == 0 and _column_mappings(store) == {}


def test_cli_column_lineage_flag_and_jobs(dbt_runs: DbtRuns, tmp_path: Path) -> None:
    app, runner = _cli(), CliRunner()
    for flags, expected in ((["--no-column-lineage"], 0), (["--jobs", "2"], 4)):
        home = str(tmp_path / flags[0].strip("-"))
        result = runner.invoke(
            app, ["import", "dbt", str(dbt_runs.steps["run"]), "--home", home, "--json", *flags]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["column_edges"] == expected
    bad = runner.invoke(app, ["import", "dbt", str(dbt_runs.steps["run"]), "--jobs", "-1"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_cli_column_impact_and_columns_after_dbt_import(dbt_runs: DbtRuns, tmp_path: Path) -> None:
    """The seeds' scenario: rename a column and see every downstream column that reads it."""
    app, runner, home = _cli(), CliRunner(), str(tmp_path / "home")
    result = runner.invoke(app, ["import", "dbt", str(dbt_runs.steps["run"]), "--home", home])
    assert result.exit_code == 0, result.output
    impact = runner.invoke(
        app, ["lineage", "impact", "raw.orders", "--column", "amount", "--home", home, "--json"]
    )
    assert impact.exit_code == 0, impact.output
    found = json.loads(impact.output)
    assert found["columns"] == [
        {"asset": "stg_orders", "column": "amount", "depth": 1},
        {"asset": "fct_orders", "column": "amount", "depth": 2},
        {"asset": "mart_revenue", "column": "revenue", "depth": 3},
    ]
    # Exposures have no column mapping: they may depend on it.
    assert {u["name"] for u in found["unmapped"]} == {"churn_notebook", "revenue_dashboard"}
    # `status` goes no further than fct_orders: mart_revenue does not select it.
    status = runner.invoke(
        app, ["lineage", "impact", "stg_orders", "-c", "status", "--home", home, "--json"]
    )
    assert [c["asset"] for c in json.loads(status.output)["columns"]] == ["fct_orders"]


def test_reimporting_unchanged_models_reuses_their_column_lineage(
    dbt_runs: DbtRuns, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model whose compiled SQL and parents' columns are unchanged is not parsed again."""
    from lakelens.integrations import dbt_columns

    # The second import also knows the sources' columns from the schema snapshots the first
    # one stored: a changed input, so the models reading them are derived again once.
    import_artifacts(dbt_runs.steps["run"], store=store)
    import_artifacts(dbt_runs.steps["run"], store=store)
    first = _column_mappings(store)
    derived: list[str] = []
    real = dbt_columns._lineage

    def counting(task: Any) -> Any:
        derived.append(task.uid)
        return real(task)

    monkeypatch.setattr(dbt_columns, "_lineage", counting)
    said: list[str] = []
    import_artifacts(dbt_runs.steps["run"], store=store, progress=said.append)
    assert derived == []
    assert "Column lineage of 3 unchanged models re-used" in said
    assert _column_mappings(store) == first

    changed = tmp_path / "changed"
    shutil.copytree(dbt_runs.steps["run"], changed)

    def rename(manifest: dict[str, Any]) -> None:
        node = manifest["nodes"]["model.shop.mart_revenue"]
        node["compiled_code"] = node["compiled_code"].replace("as revenue", "as total")

    _edit(changed / "manifest.json", rename)
    import_artifacts(changed, store=store)
    assert derived == ["model.shop.mart_revenue"]
    assert "total" in _column_mappings(store)[("fct_orders", "mart_revenue")]


def _column_tags(store: Store) -> dict[str, dict[str, str]]:
    """Each asset's column-lineage tags (status, reason, fingerprint)."""
    with store.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, tags FROM assets")).all()
    found = {}
    for name, tags in rows:
        kept = {k: v for k, v in json.loads(tags or "{}").items() if k.startswith(COLUMN_TAG)}
        if kept:
            found[name] = kept
    return found


def test_column_lineage_stays_resolved_on_every_later_import(
    dbt_runs: DbtRuns, store: Store
) -> None:
    """The schema snapshot a first import stores from a seed's documented columns (which name
    only some of them) is no complete column list: a second import must not qualify with it."""
    import_artifacts(dbt_runs.steps["seed"], store=store)
    for _ in range(3):
        result = import_artifacts(dbt_runs.steps["run"], store=store)
        assert result.unresolved_columns == {}
        assert _column_mappings(store) == STAGING_COLUMNS | MART_COLUMNS
    assert {t[COLUMN_TAG] for t in _column_tags(store).values()} == {"resolved"}


def test_importing_a_test_step_keeps_the_derived_column_lineage(
    dbt_runs: DbtRuns, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dbt test` writes a manifest without the models' compiled SQL: importing it says nothing
    new about their columns, so what the run step derived (and its fingerprints) stays."""
    from lakelens.integrations import dbt_columns

    import_artifacts(dbt_runs.steps["run"], store=store)
    import_artifacts(dbt_runs.steps["run"], store=store)
    before, mappings = _column_tags(store), _column_mappings(store)
    import_artifacts(dbt_runs.steps["test"], store=store)
    assert _column_tags(store) == before
    assert _column_mappings(store) == mappings
    derived: list[str] = []
    real = dbt_columns._lineage

    def counting(task: Any) -> Any:
        derived.append(task.uid)
        return real(task)

    monkeypatch.setattr(dbt_columns, "_lineage", counting)
    import_artifacts(dbt_runs.steps["run"], store=store)
    assert derived == []


def test_documented_column_descriptions_reach_the_asset_page(tmp_path: Path, store: Store) -> None:
    """A column's YAML description is kept with the asset (bounded) and shown beside its type
    in the asset page's schema, escaped."""
    from fastapi.testclient import TestClient

    from lakelens.config import load_settings
    from lakelens.server import create_app

    target = _fixture_copy(tmp_path)

    def describe(manifest: dict[str, Any]) -> None:
        columns = manifest["nodes"]["model.shop.mart_revenue"]["columns"]
        columns["revenue"]["description"] = "Sum of <b>paid</b> order amounts, in EUR."

    _edit(target / "manifest.json", describe)
    import_artifacts(target, store=store)
    with store.connect() as conn:
        tags = json.loads(
            conn.execute(
                sa.text("SELECT tags FROM assets WHERE name = 'mart_revenue'")
            ).scalar_one()
        )
    assert json.loads(tags["dbt.column_descriptions"]) == {
        "revenue": "Sum of <b>paid</b> order amounts, in EUR."
    }
    with TestClient(create_app(load_settings(), store)) as client:
        page = client.get("/assets/mart_revenue")
    assert page.status_code == 200
    assert "Sum of &lt;b&gt;paid&lt;/b&gt; order amounts, in EUR." in page.text
