"""PostgreSQL behind a half-open network: every wait is bounded and the pool recovers."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa

from lakelens.store.engine import PostgresTimeouts, answer_deadline, create_store_engine

pytestmark = pytest.mark.postgres


def _select_one(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT 1")).scalar_one())


def _fails_within(engine: sa.Engine, limit: float) -> float:
    began = time.monotonic()
    with pytest.raises(sa.exc.OperationalError):
        _select_one(engine)
    took = time.monotonic() - began
    assert took < limit, f"the query gave up after {took:.1f}s"
    return took


def test_a_half_open_connection_fails_within_the_deadline_then_the_pool_recovers(
    fault_proxy: Any, postgres_url: str
) -> None:
    timeouts = PostgresTimeouts(connect=2, statement=1, tcp=4)  # answers within 6 s
    engine = create_store_engine(fault_proxy.url(postgres_url), timeouts=timeouts)
    try:
        assert _select_one(engine) == 1
        fault_proxy.blackhole()
        _fails_within(engine, 10)  # the pooled connection: half-open
        _fails_within(engine, 10)  # a new connection: the startup is never answered
        fault_proxy.restore()
        began = time.monotonic()
        assert _select_one(engine) == 1
        assert time.monotonic() - began < 2
    finally:
        engine.dispose()


def test_a_reset_connection_is_replaced(fault_proxy: Any, postgres_url: str) -> None:
    engine = create_store_engine(fault_proxy.url(postgres_url))
    try:
        assert _select_one(engine) == 1
        fault_proxy.reset()
        began = time.monotonic()
        assert _select_one(engine) == 1  # pre-ping notices and reconnects
        assert time.monotonic() - began < 2
    finally:
        engine.dispose()


def test_the_answer_deadline_is_shorter_inside_its_block(
    fault_proxy: Any, postgres_url: str
) -> None:
    engine = create_store_engine(fault_proxy.url(postgres_url))  # default: 35 s
    try:
        assert _select_one(engine) == 1
        fault_proxy.blackhole()
        with answer_deadline(1.0):
            # 1 s for the pre-ping on the pooled connection, then 5 s to connect afresh.
            assert _fails_within(engine, 8) >= 1.0
    finally:
        engine.dispose()


def test_server_side_timeouts_are_set_on_every_connection(postgres_url: str) -> None:
    timeouts = PostgresTimeouts(statement=7, idle_in_transaction=9)
    engine = create_store_engine(postgres_url, timeouts=timeouts)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "7s"
            assert (
                conn.execute(sa.text("SHOW idle_in_transaction_session_timeout")).scalar() == "9s"
            )
            dsn = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
            assert dsn["keepalives_idle"] == "10" and dsn["tcp_user_timeout"] == "20000"
    finally:
        engine.dispose()


def test_a_migration_may_outlast_the_statement_timeout(postgres_url: str) -> None:
    """Migrations of a big store run unbounded; everything else keeps its timeouts."""
    from lakelens.store.engine import unbounded_answers

    timeouts = PostgresTimeouts(statement=1)  # answers within 6 s
    engine = create_store_engine(postgres_url, timeouts=timeouts)
    try:
        with pytest.raises(sa.exc.OperationalError), engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_sleep(1.5)"))
        with unbounded_answers(), engine.connect() as conn:
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
            conn.execute(sa.text("SELECT pg_sleep(1.5)"))
            conn.commit()
        with pytest.raises(sa.exc.OperationalError), engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_sleep(1.5)"))  # the next transaction is bounded again
    finally:
        engine.dispose()


def test_after_an_outage_an_idle_pooled_connection_costs_a_ping_not_a_statement(
    fault_proxy: Any, postgres_url: str
) -> None:
    """A connection idle in the pool through an outage is dead when PostgreSQL comes back: the
    pool's check of it gives up after the connect timeout and a new one is made, instead of
    waiting out a statement's deadline (35 s here) or the TCP timeout (20 s)."""
    timeouts = PostgresTimeouts(connect=2, statement=30, tcp=20)
    engine = create_store_engine(fault_proxy.url(postgres_url), timeouts=timeouts)
    try:
        assert _select_one(engine) == 1  # its connection goes back to the pool, idle
        fault_proxy.blackhole()
        time.sleep(0.5)
        fault_proxy.restore()  # new connections pass again; the idle one stays dead
        began = time.monotonic()
        assert _select_one(engine) == 1
        took = time.monotonic() - began
        assert 1.5 < took < 6, f"the first query after the outage took {took:.1f}s"
    finally:
        engine.dispose()
