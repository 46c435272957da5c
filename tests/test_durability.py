"""Several writer processes at once, and a writer killed with SIGKILL after flush() returned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import sqlalchemy as sa

from lakelens.store import Store

WRITER = textwrap.dedent(
    """
    import sys, lakelens
    url, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lakelens.configure(database_url=url, log_format="none", batch_size=500)
    log = lakelens.get_logger("worker")
    with lakelens.run("load", run_id=f"run-{worker}"):
        for i in range(count):
            log.info("record", worker=worker, i=i)
    assert lakelens.flush(120), "flush timed out"
    print(lakelens.stats()["dropped"])
    """
)


@pytest.mark.slow
def test_four_processes_write_40000_logs_concurrently(store_url: str) -> None:
    Store(store_url).close()  # schema in place; first-use migration races are covered separately
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, store_url, str(n), "10000"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err.lower() and "cannot write" not in err, err
        assert out.strip() == "{'debug_logs': 0, 'logs': 0, 'spans': 0, 'metrics': 0}"
    store = Store(store_url)
    with store.connect() as conn:
        counts = dict(
            conn.execute(
                sa.text(
                    "SELECT run_id, count(*) FROM logs WHERE message = 'record' GROUP BY run_id"
                )
            ).all()
        )
    store.close()
    assert counts == {f"run-{n}": 10000 for n in range(4)}


def test_first_use_by_several_processes_migrates_once(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(n), "10"], stderr=subprocess.PIPE, text=True
        )
        for n in range(4)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    store = Store(url)
    with store.connect() as conn:
        assert (
            conn.exec_driver_sql("SELECT count(*) FROM logs WHERE message = 'record'").scalar()
            == 40
        )
    store.close()


KILLED = textwrap.dedent(
    """
    import sys, lakelens
    url = sys.argv[1]
    lakelens.configure(database_url=url, log_format="none")
    log = lakelens.get_logger("victim")
    run = lakelens.run("victim_job", run_id="victim-run")
    run.__enter__()
    with lakelens.asset("victim_asset"):
        lakelens.record(rows=42)
    for i in range(5000):
        log.info("before flush", i=i)
    assert lakelens.flush(60)
    print("flushed", flush=True)
    i = 0
    while True:  # keep the writer busy until the SIGKILL lands
        log.info("after flush", i=i)
        i += 1
    """
)


def test_everything_flushed_survives_kill_9(store_url: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, store_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "flushed", proc.stderr.read() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    store = Store(store_url)
    with store.connect() as conn:
        numbers = [
            row[0]
            for row in conn.execute(
                sa.text("SELECT attributes FROM logs WHERE message = 'before flush' ORDER BY id")
            ).all()
        ]
        mat = conn.execute(sa.text("SELECT status, rows FROM materializations")).one()
        run_status = conn.execute(
            sa.text("SELECT status FROM runs WHERE run_id = 'victim-run'")
        ).scalar()
        if store.is_sqlite:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    store.close()
    assert numbers == [f'{{"i":{i}}}' for i in range(5000)]
    assert tuple(mat) == ("success", 42)
    assert run_status == "started"  # the run never ended: it was killed


def test_queue_is_flushed_at_normal_exit(store_url: str) -> None:
    script = textwrap.dedent(
        """
        import sys, lakelens
        lakelens.configure(database_url=sys.argv[1], log_format="none")
        log = lakelens.get_logger("exiting")
        with lakelens.run("job", run_id="exit-run"):
            for i in range(3000):
                log.info("at exit", i=i)
        # no flush(): the atexit hook must write everything
        """
    )
    subprocess.run([sys.executable, "-c", script, store_url], check=True, timeout=120)
    store = Store(store_url)
    with store.connect() as conn:
        count = conn.execute(
            sa.text("SELECT count(*) FROM logs WHERE message = 'at exit'")
        ).scalar()
        status = conn.execute(sa.text("SELECT status FROM runs WHERE run_id = 'exit-run'")).scalar()
    store.close()
    assert (count, status) == (3000, "success")
