"""Alert delivery across a scripted outage: lost alerts, duplicates, time to deliver after recovery.

A webhook receiver on 127.0.0.1 (the alert tests' `Receiver`) answers 500, then 429 with
`Retry-After: 1`, then hangs past the client timeout, then refuses connections, then
recovers. A delivery worker runs in a subprocess (`DeliveryWorker.run_forever`) and is
killed with SIGKILL while connections are refused, then restarted. Alerts are queued all
through the outage. Counted at the receiver by notification id (the idempotency key):

- lost: alerts the receiver never accepted (a 200);
- duplicates: extra 200s for an id already accepted;
- after recovery: (accepted) - (the receiver came back), p50 / p99 / max.

Backoff is shortened (0.2 s doubling to 1 s) so the outage takes seconds, not hours.

    .venv/bin/python bench/delivery_faults.py                 # SQLite, 80 alerts
    .venv/bin/python bench/delivery_faults.py --quick         # 30 alerts
    .venv/bin/python bench/delivery_faults.py --database-url postgresql://postgres@127.0.0.1/test
    .venv/bin/python bench/delivery_faults.py --json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent(
    """
    import signal, sys, threading
    from lakelens.alerts.destinations import create_destination
    from lakelens.alerts.outbox import DeliveryWorker
    from lakelens.store import Store

    store = Store(sys.argv[1])
    hook = create_destination("hook", {"type": "webhook", "url": sys.argv[2], "timeout": 0.5})
    worker = DeliveryWorker(store, {"hook": hook}, base_delay=0.2, max_delay=1.0, lease=2.0)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    worker.run_forever(stop, interval=0.1)
    """
)


@dataclass(frozen=True)
class Outage:
    """Seconds each phase lasts; the worker is killed `kill_after` into the refused phase
    and restarted `restart_after` later."""

    errors: float = 1.5  # 500
    rate_limited: float = 2.0  # 429, Retry-After: 1
    hanging: float = 2.0  # answers after 2 s; the client gives up after 0.5 s
    refused: float = 5.0  # nothing listens
    kill_after: float = 1.5
    restart_after: float = 1.0


def load_receiver_class() -> Any:
    """The real HTTP receiver of the alert tests (tests/alerts/conftest.py)."""
    path = ROOT / "tests" / "alerts" / "conftest.py"
    spec = importlib.util.spec_from_file_location("lakelens_tests_alerts_receivers", path)
    assert spec is not None and spec.loader is not None
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module.Receiver


def _answer(
    receiver: Any, status: int, headers: dict[str, str] | None = None, delay: float = 0.0
) -> None:
    """Answer every request from now on with `status`, after `delay` seconds."""
    receiver.default = replace(receiver.default, status=status, headers=headers or {}, delay=delay)


def _start_worker(store_url: str, hook_url: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, store_url, hook_url],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, LAKELENS_LOG_FORMAT="none"),
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _queue(store: Any, count: int, spread: float) -> list[str]:
    """Queue `count` alerts evenly over `spread` seconds (as an evaluator would); their ids."""
    from lakelens.alerts.destinations.base import AlertMessage
    from lakelens.alerts.engine import queue_notification

    ids = []
    for i in range(count):
        now = time.time()
        message = AlertMessage(
            notification_id=uuid.uuid4().hex,
            fingerprint=f"asset_failed:bench_{i}",
            action="trigger",
            rule="asset_failed",
            severity="error",
            title="Asset Materialization Failed",
            summary=f"bench_{i} failed",
            time=now,
            first_seen=now,
        )
        with store.connect() as conn:
            queue_notification(conn, message, "hook", now)
            conn.commit()
        ids.append(message.notification_id)
        time.sleep(spread / count)
    return ids


def run_outage(
    store_url: str, receiver: Any, *, alerts: int = 40, outage: Outage = Outage()
) -> dict[str, Any]:
    """Drive the outage against `receiver` with a worker subprocess on `store_url`; the figures."""
    import sqlalchemy as sa

    from lakelens.store import Store, schema

    store = Store(store_url)
    hook_url = receiver.url_for("/hook")
    _answer(receiver, 500)
    workers = [_start_worker(store_url, hook_url)]
    spread = outage.errors + outage.rate_limited + outage.hanging + outage.refused
    ids: list[str] = []
    producer = threading.Thread(target=lambda: ids.extend(_queue(store, alerts, spread)))
    started = time.time()
    producer.start()
    try:
        time.sleep(outage.errors)
        _answer(receiver, 429, {"Retry-After": "1"})
        time.sleep(outage.rate_limited)
        _answer(receiver, 503, delay=2.0)
        time.sleep(outage.hanging)
        receiver.stop()
        time.sleep(outage.kill_after)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=10)
        time.sleep(outage.restart_after)
        workers.append(_start_worker(store_url, hook_url))
        time.sleep(max(0.0, outage.refused - outage.kill_after - outage.restart_after))
        producer.join(timeout=30)
        _answer(receiver, 200)
        recovered = time.time()
        receiver.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            accepted = {r.headers.get("webhook-id") for r in receiver.requests}
            if set(ids) <= accepted:
                break
            time.sleep(0.05)
        time.sleep(1.0)  # time for a duplicate to show up
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
    first_ok: dict[str, float] = {}
    duplicates = 0
    for request in receiver.requests:
        if request.received_at < recovered:
            continue  # answered 500, 429 or 503 (after the hang)
        key = request.headers.get("webhook-id", "")
        if key in first_ok:
            duplicates += 1
        else:
            first_ok[key] = request.received_at
    n = schema.notifications
    with store.connect() as conn:
        statuses = dict(
            conn.execute(sa.select(n.c.status, sa.func.count()).group_by(n.c.status)).all()
        )
        max_attempts = conn.execute(sa.select(sa.func.max(n.c.attempts))).scalar()
    store.close()
    latencies = sorted(first_ok[i] - recovered for i in ids if i in first_ok)
    return {
        "alerts": len(ids),
        "lost": sum(1 for i in ids if i not in first_ok),
        "duplicates": duplicates,
        "statuses": statuses,
        "max_attempts": max_attempts,
        "requests": len(receiver.requests),
        "outage_seconds": round(recovered - started, 2),
        "after_recovery_p50": _quantile(latencies, 0.50),
        "after_recovery_p99": _quantile(latencies, 0.99),
        "after_recovery_max": latencies[-1] if latencies else None,
    }


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 alerts instead of 80")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--database-url", help="a PostgreSQL URL (default: a temporary SQLite)")
    args = parser.parse_args(argv)
    receiver = load_receiver_class()()
    receiver.start()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'lakelens.db'}"
        try:
            result = run_outage(url, receiver, alerts=30 if args.quick else 80)
        finally:
            receiver.stop()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"alerts {result['alerts']}, outage {result['outage_seconds']} s")
        print(f"   lost        {result['lost']}")
        print(f"   duplicates  {result['duplicates']}")
        for name in ("p50", "p99", "max"):
            value = result[f"after_recovery_{name}"]
            shown = "-" if value is None else f"{value * 1000:.0f} ms"
            print(f"   after recovery {name:<3} {shown}")
        print(f"   outbox {result['statuses']}, most attempts {result['max_attempts']}")
    return 0 if result["lost"] == 0 and result["duplicates"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
