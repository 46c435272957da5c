"""`dbt-ol build` (openlineage-dbt) against a real `lakelens serve`: runs, models, checks, and
the incident a failing error-severity test opens (issue 12 item 4, issue 17)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from _support import load_module, serving
from lakelens.store import Store, reads

HERE = Path(__file__).resolve().parent


# One dbt project for both dbt sources: the one test_dbt.py imports from artifacts.
_project = load_module("lakelens_tests_dbt_project", HERE / "test_dbt.py")
_conftest = load_module("lakelens_tests_conftest", HERE.parent / "conftest.py")


def _dbt_ol() -> Path:
    """The `dbt-ol` script beside this interpreter (an unactivated venv), else on PATH."""
    beside = Path(sys.executable).parent / "dbt-ol"
    if beside.exists():
        return beside
    found = shutil.which("dbt-ol")
    if found is None:
        _conftest.missing_tool(
            "`dbt-ol` is not installed (pip install openlineage-dbt dbt-core dbt-duckdb)"
        )
    return Path(found)  # type: ignore[arg-type]


@pytest.fixture
def server(tmp_path: Path, store_url: str) -> Iterator[str]:
    """`lakelens serve --no-alerts` on the test's store: evaluation is left to the test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKELENS_", "OPENLINEAGE"))}
    env.update(LAKELENS_DATABASE_URL=store_url, LAKELENS_LOG_FORMAT="json")
    argv = [sys.executable, "-m", "lakelens", "serve", "--no-alerts"]
    argv += ["--home", str(tmp_path / "serve-home"), "--port"]
    with serving(lambda port: [*argv, str(port)], tmp_path / "serve.log", env=env) as (_, url):
        yield url


def _dbt_ol_build(tmp_path: Path, url: str) -> tuple[Path, str]:
    """The project built by `dbt-ol build`, which posts its events to `url`.

    Returns the warehouse file and dbt-ol's output; dbt exits 1 (one error-severity test fails).
    """
    dbt_ol = _dbt_ol()
    import duckdb

    project = _project.write_project(tmp_path)
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(_project.RAW_SQL)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKELENS_", "OPENLINEAGE"))}
    # The documented short form; dbt-ol runs `dbt` from PATH, which lives beside it.
    env.update(OPENLINEAGE_URL=url, PATH=f"{dbt_ol.parent}{os.pathsep}{env.get('PATH', '')}")
    done = subprocess.run(
        [str(dbt_ol), "build", "--project-dir", str(project), "--profiles-dir", str(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Emitted" in output and "OpenLineage events" in output, output
    return warehouse, output


def test_dbt_ol_build_records_runs_models_and_one_failed_check_that_opens_an_incident(
    tmp_path: Path, store_url: str, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing error-severity test under `dbt-ol build` is one failed check on the model it
    tests (dbt-ol sends it on START and FAIL), and `lakelens alerts run --once` opens one
    incident naming it."""
    from lakelens.alerts.triage import incidents
    from lakelens.cli.main import app

    warehouse, _ = _dbt_ol_build(tmp_path, server)
    # dbt-ol names a dataset by its relation in the warehouse file, not by the dbt model.
    prefix = f"duckdb://{warehouse}/warehouse"
    fct_orders, stg_orders = f"{prefix}.main.fct_orders", f"{prefix}.main.stg_orders"

    store = Store(store_url)
    try:
        with store.connect() as conn:
            runs = {r.job: r for r in reads.runs(conn)}
            mats = {(m.asset, m.status) for m in reads.materializations(conn)}
            assets = {a.name for a in reads.assets(conn)}
            checks = reads.check_results(conn)
        # One run for the dbt invocation, a child run per model and per model's tests.
        parent = runs["dbt/dbt-run-shop"]
        assert parent.status == "failure"
        assert runs["dbt/warehouse.main.shop.fct_orders.build.run"].status == "success"
        assert runs["dbt/warehouse.main.shop.fct_orders.build.test"].status == "failure"
        assert runs["dbt/warehouse.main.shop.stg_orders.build.test"].status == "success"
        children = [r for r in runs.values() if r is not parent]
        assert {r.parent_run_id for r in children} == {parent.run_id}
        # The models it built are assets with a successful materialization.
        assert {(stg_orders, "success"), (fct_orders, "success")} <= mats
        assert {f"{prefix}.raw.orders", stg_orders, fct_orders} <= assets

        # Each test is one result, though dbt-ol sends it on START and again on FAIL.
        named = [c for c in checks if c.name == "not_null_fct_orders_customer"]
        assert len(named) == 1, named
        (failing,) = named
        assert (failing.asset, failing.passed, failing.severity) == (fct_orders, False, "error")
        assert (failing.value, failing.threshold) == (1.0, 0.0)  # dbt's failures vs error_if
        assert failing.run_id == runs["dbt/warehouse.main.shop.fct_orders.build.test"].run_id
        assert len(checks) == len({(c.run_id, c.asset, c.name) for c in checks})
        on_fct = {c.name: (c.passed, c.severity) for c in checks if c.asset == fct_orders}
        assert on_fct == {
            "not_null_fct_orders_customer": (False, "error"),
            "not_null_fct_orders_order_id": (True, "error"),
            "accepted_values_fct_orders_status__placed__shipped": (False, "warning"),
        }

        monkeypatch.setenv("LAKELENS_DATABASE_URL", store_url)
        result = CliRunner().invoke(
            app, ["alerts", "run", "--once", "--json", "--home", str(tmp_path / "cli-home")]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["incidents_opened"] >= 1
        with store.connect() as conn:
            about = incidents(conn, asset=fct_orders)
    finally:
        store.close()
    findings = [
        f
        for i in about
        for f in i.findings
        if f["rule"] == "check_failed" and f["severity"] == "error"
    ]
    assert len(about) == 1, about
    assert len(findings) == 1, findings
    assert findings[0]["summary"].startswith(
        f"not_null_fct_orders_customer failed on {fct_orders}:"
    )
    assert about[0].root_asset == fct_orders
