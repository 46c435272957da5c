"""Processes started inside a run record into it: a child that only uses `logging`, and a
`multiprocessing` spawn child; lakelens' own log records (Alembic migrations) are not the
pipeline's. Real child processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import lakelens
from lakelens.store import reads

# A program a pipeline starts: it joins the run, logs through `logging`, and opens a fresh
# lakelens store in its main thread (Alembic logs each migration at INFO).
LOGGING_CHILD = textwrap.dedent(
    """
    import logging, sys
    import lakelens
    from lakelens.store import Store

    logging.basicConfig(level=logging.INFO)
    with lakelens.run("joined"):
        fresh = Store(sys.argv[1])
        fresh.upgrade()
        fresh.close()
        log = logging.getLogger("etl.child")
        log.info("child loaded %d rows", 42)
        log.debug("below the level")
        log.warning("2 rows skipped")
    """
)

# A program that imports lakelens and then only uses the standard library's `logging`, with
# its own basicConfig (a handler lakelens installed on the root logger would disable it).
STDLIB_ONLY_CHILD = textwrap.dedent(
    """
    import logging
    import lakelens

    logging.basicConfig(level=logging.INFO, format="CHILD %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("etl.stdlib_child")
    log.info("child loaded %d rows", 42)
    log.debug("below the level")
    logging.warning("3 rows without customer")
    logging.getLogger("lakelens.sdk").warning("lakelens internals are not the pipeline's")
    """
)

SPAWNING = textwrap.dedent(
    """
    import logging, multiprocessing, sys
    import lakelens

    def work():
        lakelens.get_logger("etl.worker").info("structlog line from the worker")
        logging.getLogger("etl.worker").warning("spawned worker saw %d bad rows", 3)

    if __name__ == "__main__":
        lakelens.configure(log_format="none")
        with lakelens.run("mp_job") as run:
            worker = multiprocessing.get_context("spawn").Process(target=work)
            worker.start()
            worker.join()
            assert worker.exitcode == 0
        print(run.run_id)
        assert lakelens.flush()
    """
)


def test_a_child_records_its_logging_lines_but_not_lakelens_migrations(sdk, tmp_path: Path) -> None:
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    with lakelens.run("parent_job") as run:
        env = {**os.environ, "LAKELENS_DATABASE_URL": sdk.url, "LAKELENS_LOG_FORMAT": "none"}
        done = subprocess.run(
            [sys.executable, "-c", LOGGING_CHILD, fresh],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr.count("Running upgrade") >= 7  # Alembic did log its migrations
    assert lakelens.flush()
    with sdk.connect() as conn:
        records = reads.logs(conn)
    mine = [(r.logger, r.message, r.run_id, r.job) for r in records if r.logger == "etl.child"]
    assert mine == [
        ("etl.child", "child loaded 42 rows", run.run_id, "parent_job"),
        ("etl.child", "2 rows skipped", run.run_id, "parent_job"),
    ]
    internal = [r.message for r in records if (r.logger or "").startswith(("alembic", "sqla"))]
    assert internal == []


def test_a_multiprocessing_spawn_child_records_into_the_run(sdk, tmp_path: Path) -> None:
    script = tmp_path / "pipeline.py"
    script.write_text(SPAWNING)
    env = {**os.environ, "LAKELENS_DATABASE_URL": sdk.url}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[-1]
    with sdk.connect() as conn:
        records = [r for r in reads.logs(conn) if r.logger == "etl.worker"]
        runs = reads.runs(conn)
    assert [r.run_id for r in runs] == [run_id] and runs[0].status == "success"
    assert sorted((r.message, r.run_id, r.job) for r in records) == [
        ("spawned worker saw 3 bad rows", run_id, "mp_job"),
        ("structlog line from the worker", run_id, "mp_job"),
    ]


def test_a_child_that_only_uses_logging_records_into_the_parent_run_and_keeps_its_basicconfig(
    sdk, tmp_path: Path
) -> None:
    with lakelens.run("parent_job") as run:
        env = {**os.environ, "LAKELENS_DATABASE_URL": sdk.url, "LAKELENS_LOG_FORMAT": "none"}
        done = subprocess.run(
            [sys.executable, "-c", STDLIB_ONLY_CHILD],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    # Its own logging configuration still prints, in its own format.
    assert "CHILD INFO etl.stdlib_child: child loaded 42 rows" in done.stderr
    assert "CHILD WARNING root: 3 rows without customer" in done.stderr
    assert "below the level" not in done.stderr
    assert lakelens.flush()
    with sdk.connect() as conn:
        records = [r for r in reads.logs(conn) if r.run_id == run.run_id]
    stored = sorted((r.logger, r.message, r.job) for r in records if r.logger != "lakelens")
    assert stored == [
        ("etl.stdlib_child", "child loaded 42 rows", "parent_job"),
        ("root", "3 rows without customer", "parent_job"),
    ]
    assert not [r for r in records if "internals" in r.message]


def test_logging_basicconfig_still_works_inside_a_run(sdk, tmp_path: Path) -> None:
    """The capture is no root handler: a program configuring `logging` inside a run still can."""
    import logging

    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    try:
        with lakelens.run("configures_late") as run:
            logging.basicConfig(level=logging.INFO, format="%(message)s")
            configured = root.handlers[:]
            logging.getLogger("etl.late").warning("configured inside the run")
    finally:
        for handler in root.handlers:
            if handler not in saved:
                handler.close()
        root.handlers = saved
    assert len(configured) == 1 and isinstance(configured[0], logging.StreamHandler)
    assert lakelens.flush()
    with sdk.connect() as conn:
        messages = [r.message for r in reads.logs(conn) if r.run_id == run.run_id]
    assert "configured inside the run" in messages
