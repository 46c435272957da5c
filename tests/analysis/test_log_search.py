"""`logs --grep` through the trigram index finds exactly what the LIKE scan found."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lakelens.analysis import logs as logs_module
from lakelens.analysis.logs import COLUMNS, LogFilter, page, search
from lakelens.events import Batch
from lakelens.store import Store, log_search

T0 = 1_700_000_000.0
DAY = 86400.0

MESSAGES = [
    "Read timed out after 30s waiting for warehouse.internal",
    "Connection TIMEOUT after 30s",
    "connection timeout, retrying",
    "progress 50% done",
    "progress 50 percent done",
    "step_1 finished",
    "stepX1 finished",
    "a_b and axb",
    "path a/b/c and a//b",
    'said "quoted" words',
    "back\\slash in text",
    "école fermée",
    "ÉCOLE FERMÉE",
    "日本語のログ行",
    "Ünïcödé ÅÄÖ",
    "ti",
    "x",
    "fetched page 7 of stg_orders",
    "merged batch 12 into stg_orders; long enough to hold many trigrams in one row",
]
ATTRIBUTES: list[dict[str, Any] | None] = [
    {"error_type": "TimeoutError"},
    None,
    {"attempt": 3},
    {"rate": "50%"},
    {},
    {"key_name": "v"},
    {"keyXname": "v"},
    None,
    {"path": "s3://lake/a_b/"},
    {"q": 'a "quoted" value'},
    None,
    {"ville": "Île-de-France"},
    None,
    {"言語": "日本語"},
    None,
    None,
    {"x": "ti"},
    {"rows": 487},
    {"rows": 10_000},
]
PATTERNS = [
    "timeout",
    "TIMEOUT",
    "TimeoutError",
    "time",
    "out after 30",
    "50%",
    "%",
    "50%_",
    "_",
    "step_1",
    "key_name",
    "a_b",
    "a/b",
    "//",
    "/",
    '"quoted"',
    "\\slash",
    "école",
    "ÉCOLE",
    "fermée",
    "FERMÉE",
    "île",
    "日本語",
    "語の",
    "本",
    "ünïcödé",
    "ti",
    "t",
    "x",
    "error_type",
    '"rows": 487',
    "merged batch 12 into stg_orders; long enough to hold many trigrams",
    "merged batch 12 into stg_orders; long enough to hold many trigrams in two rows",
    "nothing like this anywhere",
]


def _logs(start: float, *, repeat: int = 1) -> list[tuple[Any, ...]]:
    rows = []
    for n in range(repeat):
        for i, (message, attributes) in enumerate(zip(MESSAGES, ATTRIBUTES, strict=True)):
            rows.append(
                (
                    start + n * len(MESSAGES) + i,
                    20,
                    message,
                    "test",
                    f"run-{n}",
                    "asset",
                    "job",
                    None,
                    None,
                    None if attributes is None else json.dumps(attributes, ensure_ascii=False),
                )
            )
    return rows


def _indexed(store: Store, pattern: str) -> list[int]:
    """Ids `logs --grep` finds (the index where there is one), newest first."""
    with store.reader() as db:
        if db.dialect == "postgresql":
            # A small table is cheaper to scan: make the planner take the index.
            db.value("SELECT set_config('enable_seqscan', 'off', false)")
        found = [r.id for r in search(db, LogFilter(grep=pattern), limit=10_000)]
        if db.dialect == "postgresql":
            db.value("SELECT set_config('enable_seqscan', 'on', false)")
    return found[::-1]


def _scanned(store: Store, pattern: str) -> list[int]:
    """Ids the LIKE scan finds (the filter without its index), newest first."""
    condition, params = LogFilter(grep=pattern).sql()
    with store.reader() as db:
        return list(
            db.column(f"SELECT id FROM logs WHERE {condition} ORDER BY time DESC, id DESC", params)
        )


def _assert_same(store: Store) -> dict[str, int]:
    found = {}
    for pattern in PATTERNS:
        scanned = _scanned(store, pattern)
        assert _indexed(store, pattern) == scanned, pattern
        found[pattern] = len(scanned)
    return found


def _index(store: Store) -> None:
    """Index every stored log now (on SQLite writers do it once enough logs wait; on
    PostgreSQL the partitions of ended days, and the default one that holds T0's logs, are
    indexed hourly in the background)."""
    if store.is_sqlite:
        log_search.index_pending(store.engine)
    else:
        store.index_ended_days()


def _position(store: Store) -> tuple[int, int]:
    """(last log id indexed, newest log id) on SQLite."""
    with store.reader() as db:
        row = db.row(f"SELECT up_to, (SELECT max(id) FROM logs) FROM {log_search.POSITION_TABLE}")
    assert row is not None
    return row[0], row[1]


def _sqlite_index_intact(store: Store) -> None:
    _index(store)
    if store.is_sqlite:
        with store.connect() as conn:
            # For an external-content table this compares the index with the logs table.
            conn.exec_driver_sql(
                f"INSERT INTO {log_search.SQLITE_TABLE}({log_search.SQLITE_TABLE}, rank) "
                "VALUES ('integrity-check', 1)"
            )


def test_indexed_grep_finds_what_the_scan_found(store: Store) -> None:
    store.write(Batch(logs=_logs(T0, repeat=2)))
    _index(store)
    # The newest logs wait for the next chunk: the search scans them.
    store.write(Batch(logs=_logs(T0 + DAY)))
    if store.is_sqlite:
        indexed, newest = _position(store)
        assert newest - indexed == len(MESSAGES)
    found = _assert_same(store)
    # The comparison is not vacuous: case, literal % and _, attributes, short patterns.
    assert found["TIMEOUT"] == found["timeout"] == 9
    assert found["TimeoutError"] == 3  # only in attributes
    assert found["50%"] == 3 and found["50%_"] == 0  # in the message and attributes of one row
    assert found["step_1"] == 3 and found["key_name"] == 3  # not stepX1 / keyXname
    assert found["a_b"] == 6 and found["//"] == 3 and found['"quoted"'] == 3
    assert found["ti"] > found["timeout"] and found["x"] > 0
    assert found["日本語"] == 3 and found["本"] == 3
    assert found["merged batch 12 into stg_orders; long enough to hold many trigrams"] == 3
    assert found["nothing like this anywhere"] == 0
    if store.is_sqlite:  # lower() and LIKE fold ASCII only: the index's wider folding is rechecked
        assert found["école"] == 3 and found["ÉCOLE"] == 3 and found["FERMÉE"] == 3
    _sqlite_index_intact(store)


def test_a_frequent_text_found_in_the_newest_rows_is_the_same(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short scan of the newest rows answers when it holds enough matches, else the index."""
    store.write(Batch(logs=_logs(T0, repeat=3)))
    _index(store)
    monkeypatch.setattr(logs_module, "_GREP_WINDOW", 25)
    for pattern in PATTERNS:
        scanned = _scanned(store, pattern)
        for limit in (1, 3):
            with store.reader() as db:
                found = [r.id for r in search(db, LogFilter(grep=pattern), limit=limit)]
            assert found[::-1] == scanned[:limit], (pattern, limit)
    with store.reader() as db:
        below = max(_scanned(store, "timeout"))
        records, more = page(db, LogFilter(grep="TIMEOUT"), before_id=below, limit=2)
    expected = sorted(i for i in _scanned(store, "timeout") if i < below)
    assert [r.id for r in records] == expected[-2:] and more


def test_index_follows_prune(store: Store) -> None:
    store.write(Batch(logs=_logs(T0 - 40 * DAY, repeat=2) + _logs(T0, repeat=1)))
    _index(store)
    assert len(_indexed(store, "timeout")) == 9
    deleted = store.prune(30, now=T0 + DAY)
    assert deleted["logs"] == 2 * len(MESSAGES)
    found = _assert_same(store)
    assert found["timeout"] == 3 and found["TimeoutError"] == 1
    _sqlite_index_intact(store)
    # New logs after a prune are found too (the triggers kept the index in step).
    store.write(Batch(logs=_logs(T0 + 2 * DAY)))
    assert _assert_same(store)["timeout"] == 6
    _sqlite_index_intact(store)


def test_grep_uses_the_index(store: Store) -> None:
    rows = _logs(T0, repeat=100)
    rows += [
        (T0 + 10_000 + i, 40, f"job {i} hit a deadline", "t", None, None, None, None, None, None)
        for i in range(3)
    ]
    store.write(Batch(logs=rows))
    _index(store)
    store.analyze()
    with store.reader() as db:
        # On PostgreSQL, new rows wait in the GIN index's pending list until a vacuum; the
        # planner then prices the time index lower on so small a table.
        where = LogFilter(grep="deadline", since=T0 - DAY if db.dialect == "sqlite" else None)
        condition, params = where.sql(db.dialect)
        sql = f"SELECT {COLUMNS} FROM logs WHERE {condition} ORDER BY time DESC, id DESC LIMIT 100"
        if db.dialect == "sqlite":
            plan = " ".join(str(r[-1]) for r in db.rows(f"EXPLAIN QUERY PLAN {sql}", params))
            assert f"SCAN {log_search.SQLITE_TABLE} VIRTUAL TABLE INDEX" in plan, plan
        else:
            # On a small table a scan (or the time index) is cheaper: what matters is that the
            # trigram indexes fit the query.
            for method in ("seqscan", "indexscan"):
                db.value(f"SELECT set_config('enable_{method}', 'off', false)")
            plan = " ".join(r[0] for r in db.rows(f"EXPLAIN {sql}", params))
            # The logs of T0 are in logs_default, which is indexed like the days that ended.
            assert "Index Cond: (lower(message) ~~ '%deadline%'::text)" in plan, plan
            assert "Index Cond: (lower(attributes) ~~ '%deadline%'::text)" in plan, plan
        assert len(search(db, where)) == 3
    # Two characters: no trigram to look up, the scan answers.
    assert "MATCH" not in LogFilter(grep="de").sql("sqlite")[0]
    assert "MATCH" in LogFilter(grep="dea").sql("sqlite")[0]


def test_writers_index_once_enough_logs_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite only: PostgreSQL's GIN index takes every row as it comes."""
    store = Store(f"sqlite:///{tmp_path / 'lakelens.db'}")
    monkeypatch.setattr(log_search, "LAG", 30)
    monkeypatch.setattr(log_search, "CHUNK", 25)
    store.write(Batch(logs=_logs(T0)))  # 19 waiting: fewer than LAG
    assert _position(store) == (0, 19)
    store.write(Batch(logs=_logs(T0 + 100)))  # 38 waiting: a chunk of 25 is indexed
    assert _position(store) == (25, 38)
    assert _assert_same(store)["timeout"] == 6
    store.close()


def test_a_reused_log_id_is_indexed(store: Store) -> None:
    """SQLite hands the id of a deleted newest log out again: the index must not skip it."""
    store.write(Batch(logs=_logs(T0)))
    _index(store)
    with store.connect() as conn:
        conn.execute(sa.text("DELETE FROM logs WHERE time >= :t"), {"t": T0 + 10})
        conn.commit()
    store.write(
        Batch(
            logs=[(T0 + 50, 40, "a new deadline passed", "t", None, None, None, None, None, None)]
        )
    )
    if store.is_sqlite:
        indexed, newest = _position(store)
        assert newest <= indexed  # the new log took an id the index had passed
    assert len(_indexed(store, "DEADLINE")) == 1
    found = _assert_same(store)
    assert found["timeout"] == 3
    _sqlite_index_intact(store)


@pytest.fixture
def postgres_without_trgm(postgres_url: str) -> Iterator[tuple[str, str]]:
    """(url as a role that may not create extensions, superuser url) of a fresh database."""
    import psycopg

    base, _, _ = postgres_url.rpartition("/")
    suffix = uuid.uuid4().hex[:8]
    name, role = f"lakelens_notrgm_{suffix}", f"lakelens_plain_{suffix}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
    admin_url = f"{base}/{name}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        # CREATE on the schema for the tables; not on the database, which a trusted
        # extension such as pg_trgm would need.
        admin.execute(f'GRANT CREATE ON SCHEMA public TO "{role}"')
    scheme, _, rest = base.partition("://")
    host = rest.rpartition("@")[2]
    try:
        yield f"{scheme}://{role}@{host}/{name}", admin_url
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.mark.postgres
def test_postgres_without_pg_trgm_scans_and_says_how_to_enable(
    postgres_without_trgm: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lakelens.cli.main import app
    from lakelens.server.health import check_store

    url, admin_url = postgres_without_trgm
    with caplog.at_level(logging.WARNING, logger="lakelens.store"):
        store = Store(url)
        store.write(Batch(logs=_logs(T0)))
    warnings = [r.getMessage() for r in caplog.records if "pg_trgm" in r.getMessage()]
    assert len(warnings) == 1 and "permission denied" in warnings[0], warnings
    assert "CREATE EXTENSION pg_trgm" in warnings[0]

    status, details = check_store(store)
    assert status == "healthy"
    assert details["log_search"].startswith("scan (pg_trgm is not installed)")
    assert "CREATE EXTENSION pg_trgm" in details["log_search"]
    assert "lakelens db upgrade" in details["log_search"]
    monkeypatch.setenv("LAKELENS_DATABASE_URL", url)
    shown = CliRunner().invoke(app, ["health", "--no-color"])
    assert "log search: scan (pg_trgm is not installed)" in " ".join(shown.output.split())
    assert _assert_same(store)["timeout"] == 3
    grep = CliRunner().invoke(app, ["logs", "--grep", "TIMEOUT", "--json"])
    assert grep.exit_code == 0, grep.output
    assert len(grep.output.splitlines()) == 3

    # Enabled later: a superuser creates the extension, `lakelens db upgrade` builds the index.
    engine = sa.create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE EXTENSION pg_trgm")
    engine.dispose()
    upgraded = CliRunner().invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert "log search index(es) on days that ended" in upgraded.output
    with store.reader() as db:
        described = log_search.describe(db)
    assert described.startswith("pg_trgm index on ended days ("), described
    done, _, total = described.partition("(")[2].partition(" partitions")[0].partition(" of ")
    assert done == total and int(total) >= 1, described
    assert _assert_same(store)["timeout"] == 3
    store.close()
