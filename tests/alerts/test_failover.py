"""Several servers on one PostgreSQL store: exactly one evaluates; when it dies another takes over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import sqlalchemy as sa

from lakelens.store import Store, schema

LOOP = textwrap.dedent(
    """
    import sys, threading
    from lakelens.alerts.config import AlertingConfig
    from lakelens.alerts.service import AlertingService
    from lakelens.store import Store
    store = Store(sys.argv[1])
    cfg = AlertingConfig(destinations={"hook": {"type": "webhook", "url": sys.argv[2]}}, evaluation_interval=2)
    print("ready", flush=True)
    AlertingService(store, cfg).run_forever(threading.Event())
    """
)

FAIL = textwrap.dedent(
    """
    import sys, lakelens
    lakelens.configure(database_url=sys.argv[1], log_format="none")
    try:
        with lakelens.run("job"), lakelens.asset(sys.argv[2]):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    lakelens.flush()
    """
)


def _evaluator_owner(store: Store) -> str | None:
    with store.connect() as conn:
        return conn.execute(
            sa.select(schema.heartbeats.c.owner).where(schema.heartbeats.c.component == "evaluator")
        ).scalar()


def test_one_evaluator_and_failover_without_duplicates(postgres_url, receiver) -> None:
    store = Store(postgres_url)
    with store.engine.begin() as conn:  # earlier tests' failing assets would alert too
        conn.execute(
            sa.text(f"TRUNCATE {', '.join(t.name for t in schema.metadata.sorted_tables)}")
        )
    env = dict(os.environ, LAKELENS_ALERT_IN_PROCESS="0")
    hook = receiver.url_for("/hook")
    servers = [
        subprocess.Popen(
            [sys.executable, "-c", LOOP, postgres_url, hook],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        for server in servers:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 20
        while _evaluator_owner(store) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        leader_owner = _evaluator_owner(store)
        assert leader_owner is not None
        leader = next(s for s in servers if leader_owner.endswith(f":{s.pid}"))
        follower = next(s for s in servers if s is not leader)
        subprocess.run(
            [sys.executable, "-c", FAIL, postgres_url, "first"], check=True, env=env, timeout=60
        )
        (first,) = receiver.wait_for(1, timeout=15)
        assert first.json()["data"]["asset"] == "first"
        time.sleep(3)  # both loops ran more cycles: still one notification
        assert len(receiver.requests) == 1 and _evaluator_owner(store) == leader_owner

        leader.send_signal(signal.SIGKILL)
        leader.wait(timeout=30)
        subprocess.run(
            [sys.executable, "-c", FAIL, postgres_url, "second"], check=True, env=env, timeout=60
        )
        requests = receiver.wait_for(2, timeout=20)
        assert [r.json()["data"]["asset"] for r in requests] == ["first", "second"]
        assert _evaluator_owner(store) == f"{_evaluator_owner(store).split(':')[0]}:{follower.pid}"
        time.sleep(3)
        assert len(receiver.requests) == 2  # nothing sent twice
    finally:
        for server in servers:
            if server.poll() is None:
                server.send_signal(signal.SIGKILL)
                server.wait(timeout=30)
        store.close()
