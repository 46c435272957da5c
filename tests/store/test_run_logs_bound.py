"""A run's logs are read within its recorded span (plus a day each way) on PostgreSQL, so that
only the run's day partitions are probed; the answers are the same as unbounded."""

from __future__ import annotations

import time

import pytest

from lakelens.analysis.logs import RUN_LOG_MARGIN_SECONDS, LogFilter, search, within_run
from lakelens.events import Batch
from lakelens.model import Run
from lakelens.store import Store

DAY = 86400.0
NOW = time.time()
START = NOW - 3 * DAY  # an ended run: three days ago, one hour long
END = START + 3600
MARGIN = RUN_LOG_MARGIN_SECONDS


def _log(at: float, message: str, run_id: str | None) -> tuple[object, ...]:
    return (at, 20, message, None, run_id, "asset_a", "job", None, None, None)


def _write(store: Store) -> None:
    batch = Batch()
    batch.add(Run("ended", "job", status="success", start_time=START, end_time=END))  # type: ignore[arg-type]
    batch.add(Run("running", "job", status="started", start_time=NOW - DAY))  # type: ignore[arg-type]
    batch.logs += [
        _log(START + 60, "inside", "ended"),
        _log(START - MARGIN + 60, "written before the start event", "ended"),
        _log(END + MARGIN - 60, "written after the end event", "ended"),
        _log(START + 120, "another run", "other"),
        _log(NOW - DAY + 5, "first step", "running"),
        _log(NOW + 2 * DAY, "a clock two days ahead", "running"),
    ]
    store.write(batch)


def test_run_logs_within_a_day_of_the_span_are_all_found(store_url: str) -> None:
    store = Store(store_url)
    _write(store)
    with store.reader() as db:
        ended = [r.message for r in search(db, LogFilter(run_id="ended"))]
        running = [r.message for r in search(db, LogFilter(run_id="running"))]
        since = [r.message for r in search(db, LogFilter(run_id="ended", since=START))]
    store.close()
    assert ended == ["written before the start event", "inside", "written after the end event"]
    assert running == ["first step", "a clock two days ahead"]  # no end: no upper bound
    assert since == ["inside", "written after the end event"]  # the caller's bound still holds


@pytest.mark.postgres
def test_postgres_bounds_the_read_by_the_run_span(empty_postgres_url: str) -> None:
    store = Store(empty_postgres_url)
    _write(store)
    with store.reader() as db:
        ended = within_run(db, LogFilter(run_id="ended"))
        running = within_run(db, LogFilter(run_id="running", until=NOW))
        unknown = within_run(db, LogFilter(run_id="only-in-spans"))
        narrower = within_run(db, LogFilter(run_id="ended", since=START, until=START + 10))
    store.close()
    assert (ended.since, ended.until) == (START - MARGIN, END + MARGIN)
    assert (running.since, running.until) == (NOW - DAY - MARGIN, NOW)
    assert (unknown.since, unknown.until) == (None, None)
    assert (narrower.since, narrower.until) == (START, START + 10)


def test_sqlite_reads_are_not_bounded(tmp_path: object) -> None:
    store = Store(f"sqlite:///{tmp_path}/lakelens.db")
    _write(store)
    with store.reader() as db:
        where = within_run(db, LogFilter(run_id="ended"))
    store.close()
    assert (where.since, where.until) == (None, None)


@pytest.mark.postgres
def test_a_run_the_caller_has_read_gives_the_same_bound(empty_postgres_url: str) -> None:
    """The run page passes the run it read: the bound is the one read from the store."""
    from lakelens.model import from_epoch

    store = Store(empty_postgres_url)
    _write(store)
    run = Run("ended", "job", start_time=from_epoch(START), end_time=from_epoch(END))
    with store.reader() as db:
        read = within_run(db, LogFilter(run_id="ended"))
        given = within_run(db, LogFilter(run_id="ended"), run)
        logs = [r.message for r in search(db, LogFilter(run_id="ended"), run=run)]
    store.close()
    assert given.since == pytest.approx(read.since) and given.until == pytest.approx(read.until)
    assert logs == ["written before the start event", "inside", "written after the end event"]
