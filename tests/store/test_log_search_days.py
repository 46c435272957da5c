"""On logs partitioned by day, the --grep indexes are on ended days only (PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from lakelens.analysis.logs import LogFilter, search
from lakelens.events import Batch
from lakelens.store import Store, log_search
from lakelens.store.log_search_days import _LOCK_KEY, build, coverage, index_name
from lakelens.store.partition_state import day_name
from lakelens.store.revision import HEAD_REVISION

pytestmark = pytest.mark.postgres

DAY = 86400
NOW = time.time()
TODAY = int(NOW // DAY)


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    """A store in a database of its own (partitions and indexes differ per test)."""
    store = Store(pg_url)
    store.background_indexes = True  # as `lakelens serve` does
    assert store.engine.dialect.name == "postgresql"  # created: the first write keeps its plan
    store.maintain_partitions(now=NOW - 3 * DAY)  # days from four days ago
    store.stop_background_work()  # the tests build when they say so
    yield store
    store.close()


def _write(store: Store) -> None:
    """Logs of three days ago, yesterday and today, 4 in 1,000 saying timeout."""
    batch = Batch()
    for days_ago in (3, 1, 0):
        for i in range(1000):
            message = f"job {i} step {i % 37} finished in {i % 13} s"
            if i % 330 == 0:
                message = f"job {i} failed: Timeout after 30s"
            attributes = '{"host": "timeout-box"}' if i == 5 else None
            row = (NOW - days_ago * DAY - i, 20, message, None, "r", "a", "j", None, None)
            batch.logs.append((*row, attributes))
    store.write(batch)
    store.stop_background_work()


def _trgm_indexes(store: Store) -> dict[str, tuple[str, bool]]:
    """{index name: (table, valid)} of every trigram index."""
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT c.relname, t.relname, i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
            "WHERE pg_get_indexdef(i.indexrelid) ~ 'gin_trgm_ops'"
        ).all()
    return {name: (table, valid) for name, table, valid in rows}


def _day(days_ago: int) -> str:
    return day_name("logs", TODAY - days_ago)


def test_ended_days_get_the_index_and_today_none(store: Store) -> None:
    _write(store)
    assert _trgm_indexes(store) == {}  # nothing on the table that takes the inserts
    assert store.index_ended_days(now=NOW) == 2 * 5  # 4, 3, 2 and 1 days ago, and default
    indexes = _trgm_indexes(store)
    tables = {table for table, valid in indexes.values() if valid}
    assert tables == {_day(4), _day(3), _day(2), _day(1), "logs_default"}
    assert all(valid for _, valid in indexes.values())
    assert _day(0) not in {table for table, _ in indexes.values()}  # today, then coming days
    assert store.index_ended_days(now=NOW) == 0  # all there
    # The next day: yesterday's partition was today's.
    assert store.index_ended_days(now=NOW + DAY) == 2
    assert index_name(_day(0), "ix_logs_message_trgm") in _trgm_indexes(store)


def test_an_invalid_leftover_index_is_rebuilt(store: Store) -> None:
    _write(store)
    store.index_ended_days(now=NOW)
    name = index_name(_day(1), "ix_logs_attributes_trgm")
    with store.engine.begin() as conn:  # what an aborted CREATE INDEX CONCURRENTLY leaves
        conn.exec_driver_sql(
            f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = '{name}'::regclass"
        )
    with store.reader() as db:
        assert coverage(db, now=NOW) == (4, 5)
        assert "(4 of 5 partitions)" in log_search.describe(db)
        assert "`lakelens db upgrade`" in log_search.describe(db)
    assert store.index_ended_days(now=NOW) == 1
    assert _trgm_indexes(store)[name] == (_day(1), True)
    with store.reader() as db:
        assert coverage(db, now=NOW) == (5, 5)
        assert log_search.describe(db) == (
            "pg_trgm index on ended days (5 of 5 partitions); today's logs scanned"
        )


def test_a_partition_another_process_builds_is_left_to_it(store: Store) -> None:
    _write(store)
    other_engine = store.engine.execution_options(isolation_level="AUTOCOMMIT")
    with other_engine.connect() as other:  # another process holds the build lock of a day
        other.execute(
            sa.text("SELECT pg_advisory_lock(:key, to_regclass(:table)::oid::int)"),
            {"key": _LOCK_KEY, "table": _day(1)},
        )
        assert build(store.engine, now=NOW) == 2 * 4
        assert _day(1) not in {table for table, _ in _trgm_indexes(store).values()}
        other.execute(
            sa.text("SELECT pg_advisory_unlock(:key, to_regclass(:table)::oid::int)"),
            {"key": _LOCK_KEY, "table": _day(1)},
        )
    assert build(store.engine, now=NOW) == 2


def test_a_search_of_old_days_uses_the_index_and_finds_what_the_scan_finds(
    store: Store,
) -> None:
    _write(store)
    store.index_ended_days(now=NOW)
    store.analyze()
    # No --since: on a few thousand rows the planner would rather read a whole day through
    # the time index; what matters is that the old days' indexes serve the LIKE.
    where = LogFilter(grep="timeout")
    condition, params = where.sql("postgresql")
    sql = f"SELECT id FROM logs WHERE {condition} ORDER BY time DESC, id DESC"
    with store.reader() as db:
        scanned = db.column(sql, params)
        # A few rows are cheaper to scan: make the planner show what it can use.
        for method in ("seqscan", "indexscan"):
            db.value(f"SELECT set_config('enable_{method}', 'off', false)")
        plan = " ".join(r[0] for r in db.rows(f"EXPLAIN {sql}", params))
        found = [r.id for r in search(db, where, limit=1000)][::-1]  # oldest first
    assert f"Bitmap Index Scan on {index_name(_day(1), 'ix_logs_message_trgm')}" in plan, plan
    assert f"Bitmap Index Scan on {index_name(_day(3), 'ix_logs_attributes_trgm')}" in plan, plan
    assert f"{_day(0)}_message_trgm" not in plan  # today's partition: scanned
    assert found == scanned and len(found) == 3 * 5  # 4 messages and 1 attribute a day


def test_an_upgrade_moves_the_index_off_the_table(
    store: Store, migrate_to: Callable[..., None]
) -> None:
    migrate_to(store, "0015", down=True)  # the index was on the table, for every partition
    assert any(table == "logs" for table, _ in _trgm_indexes(store).values())
    _write(store)
    assert store.upgrade() == ("0015", HEAD_REVISION)
    assert _trgm_indexes(store) == {}
    assert store.index_ended_days(now=NOW) == 2 * 5
    assert "logs" not in {table for table, _ in _trgm_indexes(store).values()}


def test_a_pipelines_process_never_builds_in_the_background(pg_url: str) -> None:
    """Only `lakelens serve` builds in the background: a pipeline's process would wait for
    a build at exit. The days stay unindexed until a server or `db upgrade` builds them."""
    store = Store(pg_url)
    store.maintain_partitions(now=NOW - 3 * DAY)
    _write(store)
    store.maintain_partitions(now=NOW)
    assert store._index_builder is None
    assert _trgm_indexes(store) == {}
    assert store.index_ended_days(now=NOW) == 2 * 5
    store.close()
