"""One real `dbt build` (dbt-core + dbt-duckdb) with lakelens' log_callback, then imported:
what `lakelens logs` and `metrics asset` show after the first build."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from _support import load_module

# The project test_dbt.py runs, plus a unit test.
_project = sys.modules.get("lakelens_tests_dbt_project") or load_module(
    "lakelens_tests_dbt_project", Path(__file__).resolve().parent / "test_dbt.py"
)

UNIT_TEST = """
unit_tests:
  - name: fct_orders_names_the_customer
    model: fct_orders
    given:
      - input: ref('stg_orders')
        rows:
          - {order_id: 1, customer_id: 2, amount: 2, status: placed}
      - input: ref('customers')
        rows:
          - {customer_id: 2, name: Grace, segment: smb}
    expect:
      rows:
        - {order_id: 1, amount: 2, status: placed, customer: Grace, segment: smb}
"""


@dataclass
class Built:
    home: str
    build: Path  # artifacts of the first `dbt build`
    freshness: Path  # artifacts of `dbt source freshness` after it


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """A fresh project's first `dbt build`, inside a lakelens run logging dbt's lines, then
    its artifacts imported."""
    duckdb = pytest.importorskip("duckdb")
    dbt_main = pytest.importorskip("dbt.cli.main")
    import lakelens
    from lakelens.config import load_settings
    from lakelens.integrations.dbt import log_callback

    root = tmp_path_factory.mktemp("dbt_build")
    project = _project.write_project(root)
    (project / "models" / "marts" / "_unit_tests.yml").write_text(UNIT_TEST)
    with duckdb.connect(str(root / "warehouse.duckdb")) as conn:
        conn.execute(_project.RAW_SQL)
    home = str(root / "home")
    lakelens.configure(settings=load_settings(home=home, log_format="none"))
    root_logger = logging.getLogger()
    saved = (root_logger.level, list(root_logger.handlers))
    steps: dict[str, Path] = {}
    try:
        with lakelens.run("orchestrated", run_id="build-1"):
            for step, args in {"build": ["build"], "freshness": ["source", "freshness"]}.items():
                outcome = dbt_main.dbtRunner(callbacks=[log_callback]).invoke(
                    [*args, "--project-dir", str(project), "--profiles-dir", str(project)]
                )
                assert outcome.exception is None, outcome.exception
                steps[step] = root / "artifacts" / step
                shutil.copytree(project / "target", steps[step])
        lakelens.flush()
    finally:
        root_logger.setLevel(saved[0])
        root_logger.handlers[:] = saved[1]
        lakelens.configure(settings=load_settings(home=str(root / "other"), log_format="none"))
    _invoke("import", "dbt", str(steps["build"]), "--home", home)
    yield Built(home, steps["build"], steps["freshness"])


def _invoke(*args: str) -> Any:
    from lakelens.cli.main import app

    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def _logs(built: Built, *args: str) -> list[dict[str, Any]]:
    out = _invoke(
        "logs", "--run-id", "build-1", "--json", "-n", "5000", "--home", built.home, *args
    )
    return [json.loads(line) for line in out.output.splitlines()]


def test_a_failing_tests_lines_carry_the_tested_model_as_asset(built: Built) -> None:
    errors = _logs(built, "--asset", "fct_orders", "--level", "ERROR")
    assert errors, "the failing not_null test's error lines are fct_orders' lines"
    assert {r["attributes"].get("dbt.test") for r in errors} == {"not_null_fct_orders_customer"}
    every = _logs(built)
    assets = {r["asset"] for r in every if r["logger"] == "dbt"}
    assert "not_null_fct_orders_customer" not in assets
    assert {"fct_orders", "stg_orders", "raw.orders"} <= assets
    unit = [r for r in every if r["attributes"].get("dbt.test") == "fct_orders_names_the_customer"]
    assert unit and {r["asset"] for r in unit} == {"fct_orders"}


def test_stored_dbt_messages_carry_no_ansi_colour_codes(built: Built) -> None:
    messages = [r["message"] for r in _logs(built)]
    assert any(m.startswith("Completed with 1 error") for m in messages)
    assert not [m for m in messages if "\x1b" in m]


def test_a_unit_test_shows_after_the_first_build(built: Built) -> None:
    """`dbt build` runs a model's unit tests before building it, ahead of its materialization."""
    data = json.loads(
        _invoke("metrics", "asset", "fct_orders", "--json", "--home", built.home).output
    )
    assert len(data["runs"]) == 1
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["fct_orders_names_the_customer"]["last_passed"] is True
    assert "not_null_fct_orders_customer" in checks


def test_a_source_with_checks_and_no_runs_lists_its_checks(built: Built) -> None:
    _invoke("import", "dbt", str(built.freshness), "--home", built.home)
    out = _invoke("metrics", "asset", "raw.orders", "--home", built.home).output
    assert "No materializations recorded for this asset yet." in out
    assert "No runs recorded" not in out
    assert "source_not_null_raw_orders_order_id" in out and "freshness" in out
    data = json.loads(
        _invoke("metrics", "asset", "raw.orders", "--json", "--home", built.home).output
    )
    assert data["runs"] == [] and len(data["checks"]) == 2
