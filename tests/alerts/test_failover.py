"""Two `lakelens serve` on one PostgreSQL store: exactly one evaluates; when it dies the other takes over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import sqlalchemy as sa

from lakelens.store import Store, schema

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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(postgres_url: str, hook: str, home: str) -> tuple[subprocess.Popen[str], str]:
    """A real `lakelens serve` on a free port, evaluating alerts every 2 s."""
    import httpx

    port = _free_port()
    env = dict(
        os.environ,
        LAKELENS_DATABASE_URL=postgres_url,
        LAKELENS_ALERT_WEBHOOK_URL=hook,
        LAKELENS_ALERT_EVALUATION_INTERVAL="2s",
        LAKELENS_ALERT_IN_PROCESS="0",
        LAKELENS_LOG_FORMAT="none",
    )
    lakelens_cli = os.path.join(os.path.dirname(sys.executable), "lakelens")
    proc = subprocess.Popen(
        [lakelens_cli, "serve", "--port", str(port), "--home", home],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("lakelens serve did not start")


def _evaluator_owner(store: Store) -> str | None:
    with store.connect() as conn:
        return conn.execute(
            sa.select(schema.heartbeats.c.owner).where(schema.heartbeats.c.component == "evaluator")
        ).scalar()


def test_two_servers_one_evaluator_and_failover_without_duplicates(
    postgres_url, receiver, tmp_path
) -> None:
    store = Store(postgres_url)
    with store.engine.begin() as conn:  # earlier tests' failing assets would alert too
        conn.execute(sa.text(f"TRUNCATE {', '.join(t.name for t in schema.data_tables())}"))
    env = dict(os.environ, LAKELENS_ALERT_IN_PROCESS="0")
    hook = receiver.url_for("/hook")
    servers = [_serve(postgres_url, hook, str(tmp_path / f"server{n}"))[0] for n in range(2)]
    try:
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
