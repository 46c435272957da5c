"""Today's partition gets hourly partial --grep indexes (`time < <start of the hour>`); a
search reads today's rows before the boundary through them and scans the rest: the same rows
as one scan (PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from lakelens.analysis.logs import LogFilter
from lakelens.events import Batch
from lakelens.store import Store, log_search
from lakelens.store.log_search_days import (
    _LOCK_KEY,
    below,
    build,
    build_today,
    hour_index_name,
    today_boundary,
)
from lakelens.store.partition_state import day_name

pytestmark = pytest.mark.postgres

DAY = 86400
HOUR = 3600
NOW = time.time()
START = NOW // DAY * DAY  # today, 00:00 UTC
NOON = START + 12 * HOUR  # rows lie on both sides of 12:00 and 13:00, whatever the hour now
TODAY = day_name("logs", int(NOW // DAY))
MESSAGES = ["job failed: Timeout after 30s", "ÉCHEC: TIMEOUT après 30 s", "fine", "read time out"]


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    """Logs of yesterday and of today from 10:20 to 13:40 UTC, ended days indexed."""
    store = Store(pg_url)
    store.maintain_partitions(now=NOW - 3 * DAY)
    batch = Batch()
    for i in range(400):
        message = MESSAGES[i % len(MESSAGES)]
        attributes = '{"error": "ReadTimeoutError"}' if i % 50 == 7 else None
        for at in (NOON - DAY - i * 30, NOON + 6000 - i * 30):
            batch.logs.append((at, 20, message, None, "r", "a", "j", None, None, attributes))
    store.write(batch)
    store.index_ended_days(now=NOW)
    store.analyze()
    yield store
    store.close()


def _hourly(store: Store) -> dict[str, bool]:
    """{name: valid} of the partial trigram indexes on today's partition."""
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT c.relname, i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            f"WHERE i.indrelid = '{TODAY}'::regclass AND i.indpred IS NOT NULL"
        ).all()
    return dict(rows)


def _names(hour: int) -> set[str]:
    return {
        hour_index_name(TODAY, index, hour)
        for index in ("ix_logs_message_trgm", "ix_logs_attributes_trgm")
    }


@pytest.fixture
def same_as_scan(grep_as_scan: Callable[..., list[int]]) -> Callable[[Store, str, int], list[int]]:
    """The ids `search` gives for `--grep P --since 7d`, checked against one scan."""
    return lambda store, grep, limit: grep_as_scan(store, grep, limit, since=NOW - 7 * DAY)


def test_today_gets_a_partial_pair_up_to_the_hour(store: Store) -> None:
    assert _hourly(store) == {}  # the ended days' build leaves today alone
    assert build_today(store.engine, now=START + 30) == 0  # the day's first hour: nothing yet
    assert build_today(store.engine, now=NOON + 60) == 2
    assert _hourly(store) == dict.fromkeys(_names(12), True)
    with store.engine.connect() as conn:
        predicates = conn.exec_driver_sql(
            "SELECT pg_get_expr(indpred, indrelid) FROM pg_index "
            f"WHERE indrelid = '{TODAY}'::regclass AND indpred IS NOT NULL"
        ).scalars()
        assert set(predicates) == {f'("time" < ({int(NOON)})::double precision)'}
    with store.reader() as db:
        assert today_boundary(db, NOW) == NOON
        assert "today's logs to 12:00 UTC by an hourly partial index" in log_search.describe(db)
    assert build_today(store.engine, now=NOON + 900) == 0  # there


def test_a_new_hour_replaces_the_older_pair(store: Store) -> None:
    build_today(store.engine, now=NOON + 60)
    assert build_today(store.engine, now=NOON + HOUR + 60) == 2
    assert _hourly(store) == dict.fromkeys(_names(13), True)
    with store.reader() as db:
        assert today_boundary(db, NOW) == NOON + HOUR


@pytest.mark.parametrize("grep", ["TIMEOUT", "échec", "readtimeout", "t o", "zzz"])
@pytest.mark.parametrize("limit", [1, 250, 1000])
def test_a_search_across_the_boundary_finds_what_one_scan_finds(
    store: Store, grep: str, limit: int, same_as_scan: Callable[[Store, str, int], list[int]]
) -> None:
    scan = same_as_scan(store, grep, limit)  # no partial index: today scanned
    build_today(store.engine, now=NOON + 60)
    assert same_as_scan(store, grep, limit) == scan
    build_today(store.engine, now=NOON + HOUR + 60)  # the boundary moves
    assert same_as_scan(store, grep, limit) == scan
    if grep == "TIMEOUT" and limit == 1000:  # both sides of both boundaries hold matches
        assert len(scan) == 2 * (200 + 4)  # and 4 by their attributes only


def test_the_search_reads_before_the_boundary_through_the_partial_index(store: Store) -> None:
    with store.engine.begin() as conn:  # enough rows that reading them by time costs more
        conn.exec_driver_sql(
            f"INSERT INTO logs (time, level, message) SELECT {int(START + HOUR)} + g * 0.5, "
            "20, 'job ' || g || ' fine' FROM generate_series(1, 20000) AS g"
        )
    store.analyze()
    build_today(store.engine, now=NOON + 60)
    where = LogFilter(grep="readtimeout", since=START, until=NOON)  # a few of its rows
    condition, params = where.sql("postgresql")
    sql = f"SELECT id FROM logs WHERE {condition} AND {below(int(NOON))} ORDER BY time DESC"
    with store.reader() as db:
        for method in ("seqscan", "indexscan"):  # a few rows: make the planner show it
            db.value(f"SELECT set_config('enable_{method}', 'off', false)")
        plan = " ".join(r[0] for r in db.rows(f"EXPLAIN {sql}", params))
    assert f"Bitmap Index Scan on {hour_index_name(TODAY, 'ix_logs_message_trgm', 12)}" in plan
    assert f"Bitmap Index Scan on {hour_index_name(TODAY, 'ix_logs_attributes_trgm', 12)}" in plan


def test_an_invalid_partial_index_is_ignored_then_replaced(
    store: Store, same_as_scan: Callable[[Store, str, int], list[int]]
) -> None:
    scan = same_as_scan(store, "timeout", 1000)
    build_today(store.engine, now=NOON + 60)
    newer = hour_index_name(TODAY, "ix_logs_message_trgm", 13)
    with store.engine.begin() as conn:  # what an aborted build of the next hour leaves
        conn.exec_driver_sql(
            f"CREATE INDEX {newer} ON {TODAY} USING gin (lower(message) gin_trgm_ops) "
            f"WHERE {below(int(NOON + HOUR))}"
        )
        conn.exec_driver_sql(
            f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = '{newer}'::regclass"
        )
    with store.reader() as db:
        assert today_boundary(db, NOW) == NOON  # the complete valid pair
    assert same_as_scan(store, "timeout", 1000) == scan
    # The older pair invalid too: no boundary, today scanned whole.
    older = hour_index_name(TODAY, "ix_logs_attributes_trgm", 12)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = '{older}'::regclass"
        )
    with store.reader() as db:
        assert today_boundary(db, NOW) is None
    assert same_as_scan(store, "timeout", 1000) == scan
    assert build_today(store.engine, now=NOON + HOUR + 60) == 2  # the invalid one rebuilt
    assert _hourly(store) == dict.fromkeys(_names(13), True)  # and the invalid ones dropped
    assert same_as_scan(store, "timeout", 1000) == scan


def test_the_ended_day_drops_its_partial_pair(
    store: Store, same_as_scan: Callable[[Store, str, int], list[int]]
) -> None:
    build_today(store.engine, now=NOON + 60)
    # The next day: the full pair of the day that ended is built, its partial pair dropped.
    assert build(store.engine, now=NOW + DAY) == 2
    assert _hourly(store) == {}
    assert same_as_scan(store, "timeout", 1000)


def test_a_partition_another_process_builds_is_left_to_it(store: Store) -> None:
    other_engine = store.engine.execution_options(isolation_level="AUTOCOMMIT")
    with other_engine.connect() as other:
        other.execute(
            sa.text("SELECT pg_advisory_lock(:key, to_regclass(:table)::oid::int)"),
            {"key": _LOCK_KEY, "table": TODAY},
        )
        assert build_today(store.engine, now=NOON + 60) == 0
        other.execute(
            sa.text("SELECT pg_advisory_unlock(:key, to_regclass(:table)::oid::int)"),
            {"key": _LOCK_KEY, "table": TODAY},
        )
    assert build_today(store.engine, now=NOON + 60) == 2


def test_a_server_builds_the_hour_in_the_background(store: Store) -> None:
    """`lakelens serve`'s hourly upkeep builds the ended days, then today's partial pair."""
    store.background_indexes = True
    store.maintain_partitions(now=NOON + 60)
    builder = store._index_builder
    assert builder is not None
    builder.join(120)
    assert _hourly(store) == dict.fromkeys(_names(12), True)
