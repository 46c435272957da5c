"""A small store built through the SDK with a fake clock: known failures, spans, logs, lineage."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from lakelens.config import load_settings
from lakelens.store import Store


@pytest.fixture
def pipeline_home(
    tmp_path: Path, record_pipeline: Callable[..., dict[str, object]]
) -> Iterator[tuple[Path, dict[str, object]]]:
    """A SQLite home holding the small pipeline of tests/conftest.py (without the extras)."""
    home = tmp_path / "home"
    settings = load_settings(home=str(home), log_format="none")
    store = Store(settings=settings)
    info = record_pipeline(settings, store)
    store.close()
    yield home, info


# A winter and a summer moment, so a zone's two names (CET and CEST) both show.
WINTER = 1_736_933_400.0  # 2025-01-15 09:30:00 UTC: 10:30:00 CET, 04:30:00 EST
SUMMER = 1_751_371_205.0  # 2025-07-01 12:00:05 UTC: 14:00:05 CEST


class Story(NamedTuple):
    """What `story` recorded: the winter run (a 45 s load) and the failed summer run."""

    winter_run: str
    summer_run: str


@pytest.fixture
def story(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Story]:
    """`orders` loaded in 45 s one winter morning, failed one summer day ("disk full"), and a
    log line from today; alerting has run once, so an incident is open. On SQLite, then on
    PostgreSQL; the CLI (and its subprocesses) find it through LAKELENS_DATABASE_URL."""
    import time

    import lakelens
    from lakelens.testing import FakeClock, recording

    monkeypatch.setenv("LAKELENS_DATABASE_URL", store_url)
    monkeypatch.setenv("LAKELENS_ALERT_IN_PROCESS", "0")  # alerting runs below, once
    settings = load_settings(home=str(tmp_path / "home"), log_format="none")
    store = Store(settings=settings)
    clock = FakeClock(WINTER)
    with recording(settings=settings, store=store, clock=clock, id_seed=11):
        log = lakelens.get_logger("nightly")
        with lakelens.run("nightly") as winter, lakelens.asset("orders"):
            log.info("loading orders")
            with lakelens.span("copy_orders"):
                clock.advance(45.006)
            lakelens.record(rows=1200)
        clock.set(SUMMER)
        try:
            with lakelens.run("nightly") as summer, lakelens.asset("orders"):
                clock.advance(2)
                log.error("disk full on the warehouse")
                raise OSError("disk full")
        except OSError:
            pass
        clock.set(time.time() - 1)
        log.info("fresh today")
    from lakelens.alerts.service import AlertingService

    service = AlertingService(store)
    service.run_once(group_wait=0.0)
    service.close()
    store.close()
    yield Story(winter.run_id, summer.run_id)
