"""Two `lakelens serve` on one PostgreSQL store: exactly one evaluates; when it dies the other takes over."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

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


def test_two_servers_one_evaluator_and_failover_without_duplicates(
    shared_store: Any, serve: Any, receiver: Any
) -> None:
    env = dict(os.environ, LAKELENS_ALERT_IN_PROCESS="0")
    variables = shared_store.server_env(receiver.url_for("/hook"))
    servers = [serve(alerts=True, **variables) for _ in range(2)]
    leader = shared_store.leader(servers)
    leader_owner = shared_store.evaluator()
    follower = next(s for s in servers if s is not leader)
    subprocess.run(
        [sys.executable, "-c", FAIL, shared_store.url, "first"], check=True, env=env, timeout=60
    )
    (first,) = receiver.wait_for(1, timeout=15)
    assert first.json()["data"]["asset"] == "first"
    time.sleep(3)  # both loops ran more cycles: still one notification
    assert len(receiver.requests) == 1 and shared_store.evaluator() == leader_owner

    leader.kill()  # SIGKILL
    subprocess.run(
        [sys.executable, "-c", FAIL, shared_store.url, "second"], check=True, env=env, timeout=60
    )
    requests = receiver.wait_for(2, timeout=20)
    assert [r.json()["data"]["asset"] for r in requests] == ["first", "second"]
    assert shared_store.leader([follower], timeout=1) is follower
    time.sleep(3)
    assert len(receiver.requests) == 2  # nothing sent twice
