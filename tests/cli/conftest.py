"""A small store built through the SDK with a fake clock: known failures, spans, logs, lineage."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import lakelens
from lakelens.config import load_settings
from lakelens.store import Store
from lakelens.testing import FakeClock

HOUR = 3600.0


class ApiTimeout(Exception):
    pass


def build_pipeline_store(home: Path, database_url: str | None = None) -> dict[str, object]:
    """Three runs of a three-asset pipeline; the last run fails upstream (dlt) 10 minutes ago."""
    now = time.time()
    clock = FakeClock(now - 3 * HOUR)
    settings = load_settings(home=str(home), database_url=database_url, log_format="none")
    lakelens.configure(settings=settings, clock=clock, id_seed=7)
    log = lakelens.get_logger("pipe")
    source = lakelens.asset("api", kind="external")
    dlt = lakelens.asset("dlt_entries", deps=["api"], freshness="2h", owner="platform")
    stg = lakelens.asset(
        "stg_entries", deps=["dlt_entries"], kind="model", freshness="4h", owner="analytics"
    )
    dash = lakelens.asset("dashboard", deps=["stg_entries"], kind="dashboard", owner="bi")
    source.declare()
    dash.declare()
    run_ids = []
    for n, fail in enumerate([False, False, True]):
        if n == 2:
            clock.set(now - 600)
        try:
            with lakelens.run("pipeline", partition=f"p{n}") as run:
                run_ids.append(run.run_id)
                with dlt:
                    with lakelens.span("fetch_from_api", endpoint="/entries") as fetch:
                        clock.advance(0.040)
                        with lakelens.span("http.request"):
                            clock.advance(0.030)
                            if fail:
                                log.warning("Retry 1/3 after timeout")
                                log.error("Connection refused to api.example")
                                raise ApiTimeout("Connection timeout after 30s")
                        fetch.set("rows_fetched", 487)
                    log.info("Fetched 487 rows from API", rows=487)
                    lakelens.check(
                        "range_check",
                        passed=n != 1,
                        severity="error",
                        valid_rows=480,
                        total_rows=487,
                    )
                    lakelens.record(rows=487)
                with stg:
                    clock.advance(0.045)
                    lakelens.record(rows=487)
        except ApiTimeout:
            pass
        clock.advance(300)
    lakelens.flush()
    lakelens.configure(settings=load_settings(home=str(home / "unused"), log_format="none"))
    return {"run_ids": run_ids, "now": now}


@pytest.fixture
def pipeline_home(tmp_path: Path) -> Iterator[tuple[Path, dict[str, object]]]:
    home = tmp_path / "home"
    info = build_pipeline_store(home)
    yield home, info
    Store(settings=load_settings(home=str(home))).close()
