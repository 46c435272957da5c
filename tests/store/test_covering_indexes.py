"""Revision 0017: the indexes the overview's period figures read hold the columns they need,
on SQLite and PostgreSQL; an upgrade keeps the rows and the answers, a downgrade undoes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from lakelens.analysis.asset_period import period_figures
from lakelens.store import Store, migrate

WIDE = {
    "ix_mat_asset_start": ["asset", "start_time", "status", "duration"],
    "ix_check_asset_name_time": ["asset", "name", "time", "passed"],
}
NARROW = {
    "ix_mat_asset_start": ["asset", "start_time"],
    "ix_check_asset_name_time": ["asset", "name", "time"],
}


def _columns(store: Store) -> dict[str, list[str]]:
    inspector = sa.inspect(store.engine)
    found = {}
    for table in ("materializations", "check_results"):
        for index in inspector.get_indexes(table):
            if index["name"] in WIDE:
                found[index["name"]] = list(index["column_names"])
    return found


def _write(store: Store, now: float) -> None:
    from lakelens.events import Batch
    from lakelens.model import CheckResult, Materialization

    batch = Batch()
    for i in range(6):
        start = now - 3600 * (i + 1)
        status = "failure" if i == 2 else "success"
        batch.add(
            Materialization(
                f"m{i}", f"r{i}", "orders", status, start_time=start, end_time=start + 10 + i
            )
        )  # type: ignore[arg-type]
        batch.add(
            CheckResult(f"c{i}", "orders", "not_null", i != 4, time=start + 20, run_id=f"r{i}")
        )  # type: ignore[arg-type]
    store.write(batch)


def test_an_upgrade_widens_the_indexes_and_keeps_the_figures(
    store_url: str, migrate_to: Callable[..., None]
) -> None:
    now = 1_800_000_000.0
    store = Store(store_url, auto_upgrade=False)
    store.upgrade()  # a new SQLite file, or the PostgreSQL test database other tests left at head
    migrate_to(store, "0016", down=True)
    assert _columns(store) == NARROW
    _write(store, now)
    with store.connect() as conn:
        before = period_figures(conn, ["orders"], since=now - 86400, until=now)
    assert store.upgrade() == ("0016", migrate.HEAD_REVISION)
    assert _columns(store) == WIDE
    with store.connect() as conn:
        after = period_figures(conn, ["orders"], since=now - 86400, until=now)
    assert after == before
    assert (after["orders"].runs, after["orders"].checks[0].passed) == (6, 5)
    migrate_to(store, "0016", down=True)
    assert _columns(store) == NARROW
    store.upgrade()
    store.close()


def test_sqlite_reads_the_period_from_the_indexes_alone(tmp_path: Any) -> None:
    store = Store(f"sqlite:///{tmp_path / 'lakelens.db'}")
    trend = (
        "SELECT asset, max(duration), sum(CASE WHEN status = 'failure' THEN 1 ELSE 0 END) "
        "FROM materializations WHERE asset IN ('a', 'b') AND start_time >= 0 GROUP BY asset"
    )
    checks = (
        "SELECT asset, name, count(*), sum(CASE WHEN passed THEN 1 ELSE 0 END) "
        "FROM check_results WHERE asset IN ('a', 'b') AND time >= 0 GROUP BY asset, name"
    )
    with store.connect() as conn:
        for sql, index in ((trend, "ix_mat_asset_start"), (checks, "ix_check_asset_name_time")):
            plan = " ".join(
                str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)
            )
            assert f"COVERING INDEX {index}" in plan, plan
    store.close()
