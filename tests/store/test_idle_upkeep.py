"""`lakelens serve` runs the partition upkeep on the clock (`Store.keep_up`), with no write
coming: the coming days' partitions are made, the ended days' --grep indexes built and today's
hourly index moved while nothing is ingested (PostgreSQL). The clock is moved, not waited for."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from lakelens.events import Batch
from lakelens.store import Store
from lakelens.store.log_search import PG_INDEXES
from lakelens.store.log_search_days import index_name, today_boundary
from lakelens.store.partition_state import day_name, day_partitions
from lakelens.store.partitioning import AHEAD_DAYS

pytestmark = pytest.mark.postgres

DAY = 86400
HOUR = 3600
# A day well ahead of the real one: no migration or write made its partitions.
FIRST = int(time.time() // DAY) + 30
START = FIRST * DAY  # 00:00 UTC of that day


class Clock:
    """A wall clock that stands still until a test moves it."""

    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    """A store opened as `lakelens serve` opens it, on a clock at 12:00:30 of day FIRST."""
    store = Store(pg_url)
    store.background_indexes = True
    store.upkeep_clock = Clock(START + 12 * HOUR + 30)
    store.engine  # noqa: B018 - created and migrated, as serve does before it listens
    yield store
    store.stop_background_work()  # to the end: a build left running would outlive the database
    store.close()


@contextlib.contextmanager
def keeping_up(store: Store) -> Iterator[threading.Thread]:
    """`Store.keep_up` in a thread, as serve runs it, looking every 20 ms (not every minute);
    stopped and joined at the end."""
    stop = threading.Event()
    thread = threading.Thread(target=store.keep_up, args=(stop, 0.02), daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(10)


def _wait_until(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _kept_up(store: Store) -> None:
    """Wait for the upkeep at the clock's time to run and its index builds to end."""
    at = store.upkeep_clock()
    _wait_until(
        lambda: store.upkeep_at == at and not store._upkeep_lock.locked(), f"the upkeep at {at}"
    )
    builder = store._index_builder
    if builder is not None:
        builder.join(60)
        assert not builder.is_alive()


def _days(store: Store, table: str) -> set[int]:
    with store.reader() as db:
        return set(day_partitions(db, table))


def _boundary(store: Store) -> int | None:
    with store.reader() as db:
        return today_boundary(db, store.upkeep_clock())


def _indexes(store: Store, partition: str) -> set[str]:
    """The valid indexes of `partition`."""
    with store.reader() as db:
        return set(
            db.column(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = to_regclass(:partition) AND i.indisvalid",
                {"partition": partition},
            )
        )


def test_a_server_with_no_writes_makes_the_coming_days_and_moves_todays_index(
    store: Store,
) -> None:
    clock = store.upkeep_clock
    assert isinstance(clock, Clock)
    with keeping_up(store) as thread:
        _kept_up(store)  # at start: no write needed
        ahead = set(range(FIRST - 1, FIRST + AHEAD_DAYS + 1))
        assert ahead <= _days(store, "logs") and ahead <= _days(store, "spans")
        assert FIRST + AHEAD_DAYS + 1 not in _days(store, "logs")
        assert _boundary(store) == START + 12 * HOUR

        clock.at = START + 13 * HOUR + 90  # an hour passes, nothing written
        _kept_up(store)
        assert _boundary(store) == START + 13 * HOUR

        clock.at = START + DAY + HOUR + 90  # 01:01:30 the next day
        _kept_up(store)
        assert FIRST + AHEAD_DAYS + 1 in _days(store, "logs")
        assert FIRST + AHEAD_DAYS + 1 in _days(store, "spans")
        assert _boundary(store) == START + DAY + HOUR
        partition = day_name("logs", FIRST)  # the day that ended: its full pair, no partial one
        indexes = _indexes(store, partition)
        assert {index_name(partition, i) for i in PG_INDEXES} <= indexes
        assert not [i for i in indexes if "_trgm_h" in i], indexes
        assert thread.is_alive()
    assert not thread.is_alive()
    with store.reader() as db:
        assert db.value("SELECT count(*) FROM logs") == 0
    store.close()
    assert not [t.name for t in threading.enumerate() if t.name == "lakelens-log-search-index"]


def test_a_write_and_the_clock_share_one_schedule(store: Store) -> None:
    """The upkeep a server ran on the clock is not run again by a write in the same hour,
    and a write's upkeep is not run again by the clock."""
    clock = store.upkeep_clock
    assert isinstance(clock, Clock)
    clock.at = START + 12 * HOUR + 90  # past 12:01: the next upkeep is at 13:01
    batch = Batch()
    batch.logs.append((START + 12 * HOUR + 100, 20, "hello", None, "r", "a", "j", None, None, None))
    with keeping_up(store):
        _kept_up(store)
        ran = store.upkeep_at
        clock.at = START + 12 * HOUR + 1800
        store.write(batch)
        time.sleep(0.2)  # ten of keep_up's looks
        assert store.upkeep_at == ran
    clock.at = START + 13 * HOUR + 61
    store.write(batch)  # the write is first this hour
    assert store.upkeep_at == clock.at
    with keeping_up(store):
        time.sleep(0.2)
        assert store.upkeep_at == START + 13 * HOUR + 61


def test_a_failed_upkeep_logs_one_line_and_runs_again_the_next_hour(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    import psycopg

    clock = store.upkeep_clock
    assert isinstance(clock, Clock)
    name = store.url.rpartition("/")[2]
    admin_url = store.url.replace("postgresql+psycopg://", "postgresql://").rpartition("/")[0]
    with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as admin:
        # The database gone for a moment: no new connection, the pooled ones cut.
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        try:
            with (
                caplog.at_level(logging.WARNING, logger="lakelens.store"),
                keeping_up(store) as thread,
            ):
                _wait_until(lambda: store._partitions_due > clock.at, "the upkeep to be tried")
                time.sleep(0.2)  # ten more looks: not tried again within the hour
                assert thread.is_alive()
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1, said
    assert said[0].startswith("day partitions of logs and spans not made: ")
    assert "\n" not in said[0]
    assert store.upkeep_at is None
    assert FIRST + AHEAD_DAYS not in _days(store, "logs")

    clock.at = START + 13 * HOUR + 90  # the next hour, the database back
    with keeping_up(store):
        _kept_up(store)
    assert FIRST + AHEAD_DAYS in _days(store, "logs")
    assert _boundary(store) == START + 13 * HOUR


def test_one_upkeep_at_a_time(store: Store) -> None:
    """A write that finds the upkeep due while `keep_up` runs it goes on with its insert."""
    batch = Batch()
    batch.logs.append((START + 12 * HOUR + 100, 20, "hello", None, "r", "a", "j", None, None, None))
    with store._upkeep_lock:  # as held by the clock's upkeep
        assert store._upkeep_due()
        store.write(batch)
    assert store.upkeep_at is None
    assert store._upkeep_due()  # still the clock's to run
    with store.reader() as db:
        assert db.value("SELECT count(*) FROM logs") == 1
