"""Logs partitioned by day on PostgreSQL: the upgrade converts a store with rows, the coming
days' partitions are made in time, prune drops whole days, and a role that cannot make
partitions falls back to one table and says so."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from lakelens.events import Batch
from lakelens.store import Store
from lakelens.store.partitioning import AHEAD_DAYS, DAY, state
from lakelens.store.revision import HEAD_REVISION

pytestmark = pytest.mark.postgres

NOW = time.time()


def _log(t: float, message: str) -> Batch:
    batch = Batch()
    batch.logs.append((t, 20, message, None, "run-1", "asset_a", "job", None, None, None))
    return batch


def _span(t: float) -> Batch:
    batch = Batch()
    row = ("a" * 32, "b" * 16, None, "run-1", "asset_a", "load", t, t + 1, "ok", None, None, None)
    batch.spans.append(row)
    return batch


def _where(conn: sa.Connection) -> dict[str, str]:
    """{message: the partition its row is in}."""
    rows = conn.exec_driver_sql("SELECT message, tableoid::regclass::text FROM logs")
    return dict(rows.all())  # type: ignore[arg-type]


def _partitions(conn: sa.Connection) -> set[str]:
    return set(
        conn.exec_driver_sql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'logs'::regclass"
        ).scalars()
    )


def _day(t: float) -> str:
    return time.strftime("logs_p%Y%m%d", time.gmtime(t))


def test_upgrade_partitions_a_store_with_logs_and_keeps_rows_ids_and_indexes(
    pg_url: str, migrate_to: Callable[[Store, str], None]
) -> None:
    store = Store(pg_url, auto_upgrade=False)
    migrate_to(store, "0014")
    reader = f"lakelens_reader_{uuid.uuid4().hex[:8]}"
    with store.engine.connect() as conn:
        # An index a later revision may have added (the log search index): kept as well.
        conn.exec_driver_sql("CREATE INDEX ix_logs_lower_message ON logs (lower(message))")
        # A role the deployment granted rights on logs keeps them.
        conn.exec_driver_sql(f"CREATE ROLE {reader} NOLOGIN")
        conn.exec_driver_sql(f"GRANT SELECT, INSERT ON logs TO {reader}")
        conn.commit()
    try:
        _upgrade_and_check(store, reader)
    finally:
        with store.engine.connect() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {reader}")
            conn.exec_driver_sql(f"DROP ROLE {reader}")
            conn.commit()
        store.close()


def _upgrade_and_check(store: Store, reader: str) -> None:
    ages = {"ancient": 900, "month": 31, "yesterday": 1, "now": 0, "future": -3}
    for message, age in ages.items():
        store.write(_log(NOW - age * DAY, message))
    store.write(_span(NOW - DAY))
    with store.engine.connect() as conn:
        before = conn.exec_driver_sql("SELECT id, time, message FROM logs ORDER BY id").all()

    assert store.upgrade() == ("0014", HEAD_REVISION)
    with store.engine.connect() as conn:
        after = conn.exec_driver_sql("SELECT id, time, message FROM logs ORDER BY id").all()
        where = _where(conn)
        indexes = set(
            conn.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'logs'"
            ).scalars()
        )
        assert state(conn).mode == "days"
        assert state(conn, "spans").mode == "days"
        rights = f"SELECT has_table_privilege('{reader}', 'logs', 'INSERT')"
        assert conn.exec_driver_sql(rights).scalar()
        spans = conn.exec_driver_sql("SELECT tableoid::regclass::text FROM spans").scalars()
        assert list(spans) == [_day(NOW - DAY).replace("logs", "spans")]
    assert after == before
    assert where["ancient"] == "logs_default"  # older than the days made at conversion
    for message in ("month", "yesterday", "now", "future"):
        assert where[message] == _day(NOW - ages[message] * DAY)
    assert {
        "logs_pkey",
        "ix_logs_run",
        "ix_logs_asset_time",
        "ix_logs_level_time",
        "ix_logs_time",
        "ix_logs_lower_message",
    } <= indexes
    # The id sequence goes on from where it was; a span sent again is still stored once.
    store.write(_log(NOW, "after"))
    store.write(_span(NOW - DAY))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM spans").scalar() == 1
        newest = conn.exec_driver_sql("SELECT max(id) FROM logs WHERE message = 'after'")
        assert newest.scalar() == before[-1][0] + 1


def test_downgrade_makes_one_table_again_and_upgrade_partitions_it_back(
    pg_url: str, migrate_to: Callable[..., None]
) -> None:
    store = Store(pg_url)
    store.write(_log(NOW, "kept"))
    store.write(_span(NOW))
    migrate_to(store, "0014", down=True)
    with store.engine.connect() as conn:
        assert state(conn).mode == state(conn, "spans").mode == "table"
        assert _where(conn) == {"kept": "logs"}
    assert store.upgrade() == ("0014", HEAD_REVISION)
    with store.engine.connect() as conn:
        assert _where(conn) == {"kept": _day(NOW)}
        assert conn.exec_driver_sql("SELECT count(*) FROM spans").scalar() == 1
    store.close()


def test_partitions_of_the_coming_days_are_made_before_their_logs_arrive(pg_url: str) -> None:
    store = Store(pg_url)
    later = NOW + 20 * DAY
    store.maintain_partitions(now=later)  # what the store does when that day is near
    with store.engine.connect() as conn:
        made = _partitions(conn)
    assert {_day(later + d * DAY) for d in range(AHEAD_DAYS + 1)} <= made
    store.write(_log(later + AHEAD_DAYS * DAY, "on time"))
    # A record for a day nobody made yet still lands (default partition) ...
    store.write(_log(NOW + 60 * DAY, "early"))
    with store.engine.connect() as conn:
        assert _where(conn) == {
            "on time": _day(later + AHEAD_DAYS * DAY),
            "early": "logs_default",
        }
    # ... and moves to its day once that day is made.
    store.maintain_partitions(now=NOW + 60 * DAY)
    with store.engine.connect() as conn:
        assert _where(conn)["early"] == _day(NOW + 60 * DAY)
        assert conn.exec_driver_sql("SELECT count(*) FROM logs_default").scalar() == 0
    store.close()


def test_prune_drops_whole_days_and_deletes_the_edges(pg_url: str) -> None:
    store = Store(pg_url)
    day_start = NOW // DAY * DAY
    cutoff_day = day_start - 30 * DAY
    messages = {
        "backfilled": NOW - 900 * DAY,  # default partition, older than the cutoff
        "dropped a": cutoff_day - 2 * DAY + 10,
        "dropped b": cutoff_day - 1 * DAY + 10,
        "edge, older": cutoff_day + 100,
        "edge, newer": cutoff_day + 5000,
        "recent": NOW,
    }
    for message, t in messages.items():
        if message != "backfilled":
            store.maintain_partitions(now=t)
        store.write(_log(t, message))
    with store.engine.connect() as conn:
        assert _where(conn)["dropped a"] == _day(messages["dropped a"])
        assert _where(conn)["backfilled"] == "logs_default"
    deleted = store.prune(now=cutoff_day + 1000 + 30 * DAY, older_than_days=30)
    assert deleted["logs"] == 4
    with store.engine.connect() as conn:
        left = _where(conn)
        partitions = _partitions(conn)
    assert set(left) == {"edge, newer", "recent"}
    assert _day(messages["dropped a"]) not in partitions
    assert _day(messages["dropped b"]) not in partitions
    assert _day(cutoff_day) in partitions  # the edge day stays: it still has newer rows
    store.close()


def test_a_role_that_cannot_make_partitions_still_works_and_says_so_once(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import psycopg

    owner = Store(pg_url)
    owner.engine  # noqa: B018 - creates the store and today's partitions
    owner.close()
    role = f"lakelens_writer_{uuid.uuid4().hex[:8]}"
    admin_url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        admin.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
        admin.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    try:
        writer = Store(pg_url.replace("postgres@", f"{role}@"))
        with caplog.at_level(logging.WARNING, logger="lakelens.store"):
            writer.write(_log(NOW + 30 * DAY, "far ahead"))  # no partition, none can be made
            writer.write(_log(NOW - 40 * DAY, "old"))
            writer.maintain_partitions()
        said = [r.getMessage() for r in caplog.records]
        notes = [m for m in said if "cannot create partitions of logs" in m]
        assert len(notes) == 1, said
        assert len([m for m in said if "cannot create partitions of spans" in m]) == 1, said
        assert "ALTER TABLE logs OWNER TO" in notes[0]

        from lakelens.server.health import check_store

        status, details = check_store(writer)
        assert status == "healthy"
        assert details["logs"] == details["spans"] == "rows in the default partition"
        assert "cannot create partitions of logs" in details["note"]
        assert "ALTER TABLE spans OWNER TO" in details["note"]

        assert writer.prune(30)["logs"] == 1  # rows deleted instead of days dropped
        with writer.engine.connect() as conn:
            assert set(_where(conn)) == {"far ahead"}
        writer.close()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


def test_prune_deletes_old_days_rows_when_ingest_never_lets_it_drop_them(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    from lakelens.store import partitioning

    monkeypatch.setattr(partitioning, "_DROP_ATTEMPTS", 2)
    store = Store(pg_url)
    old = NOW - 40 * DAY
    store.maintain_partitions(now=old)
    store.write(_log(old, "old"))
    store.write(_log(NOW, "new"))
    # A writer in the middle of a transaction holds a lock on logs the drop has to wait for.
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://")) as writer:
        writer.execute(
            "INSERT INTO logs (time, level, message) VALUES (%s, 20, 'in flight')", (NOW,)
        )
        deleted = store.prune(30)
        writer.rollback()
    assert deleted["logs"] == 1
    with store.engine.connect() as conn:
        assert set(_where(conn)) == {"new"}
        assert _day(old) in _partitions(conn)  # not dropped, emptied
    store.close()
