"""Alert latency: a failing materialization committed → its notification at a webhook receiver.

Starts `lakelens serve` (which runs the alert evaluator and delivery worker) on 127.0.0.1
with a webhook destination pointing at a receiver in this process, then a writer process
records failures one at a time through the SDK into the same store. For each failure the
latency is (receiver got the body) − (the writer's flush() returned, i.e. committed).
The incidents' group_wait (default 10 s: findings of one cause are told as one message) is set
to 0 here, so the figure is lakelens' own part; with the default, add 10 s.

    .venv/bin/python bench/alert_latency.py            # 200 failures
    .venv/bin/python bench/alert_latency.py --quick    # 20 failures
    .venv/bin/python bench/alert_latency.py --json
    .venv/bin/python bench/alert_latency.py --quick --database-url postgresql://postgres@127.0.0.1/test

With --database-url (or LAKELENS_DATABASE_URL), a PostgreSQL server, the same is measured
again on a scratch database there, and PostgreSQL ÷ SQLite is printed for p50 and p99.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bigstore_pg import add_database_url, scratch_database

GOAL_P99 = 1.0
LAKELENS = str(Path(sys.executable).with_name("lakelens"))

WRITER = textwrap.dedent(
    """
    import json, sys, time, lakelens
    lakelens.configure(home=sys.argv[1], log_format="none")
    count = int(sys.argv[2])
    for i in range(count):
        # A new asset each time: a new fingerprint, so every failure notifies (a repeat of a
        # firing alert would rightly be deduplicated).
        asset = f"bench_asset_{i}"
        try:
            with lakelens.run("bench", run_id=f"fail-{i}"), lakelens.asset(asset):
                raise RuntimeError(f"bench failure {i}")
        except RuntimeError:
            pass
        lakelens.flush()
        print(json.dumps({"i": i, "asset": asset, "committed": time.time()}), flush=True)
        time.sleep(0.6)
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """Records when each trigger notification arrives, keyed by its run id."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                arrived = time.time()
                try:
                    data = json.loads(body)["data"]
                    if data.get("action") == "trigger" and data.get("run_id"):
                        with receiver.lock:
                            receiver.arrivals.setdefault(data["run_id"], arrived)
                except (ValueError, KeyError, TypeError):
                    pass
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def wait_http(url: str, timeout: float) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"lakelens serve did not answer at {url} within {timeout:.0f}s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    low = int(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def measure(count: int, database_url: str | None) -> dict[str, Any]:
    """Latencies of `count` failures through `lakelens serve` on a fresh store: a temporary
    SQLite home, or the database at `database_url`."""
    receiver = Receiver()
    with tempfile.TemporaryDirectory(prefix="lakelens-alert-bench-") as home:
        port = free_port()
        env = dict(
            os.environ,
            LAKELENS_HOME=home,
            LAKELENS_ALERT_WEBHOOK_URL=receiver.url,
            LAKELENS_ALERT_IN_PROCESS="0",  # measure the server's loop, not the pipeline's own
            # An incident is told group_wait (default 10 s) after it opens, on purpose, so that
            # findings of one cause arrive as one message; this measures lakelens' own part.
            LAKELENS_ALERT_GROUP_WAIT="0s",
            LAKELENS_LOG_FORMAT="none",
        )
        env.pop("LAKELENS_DATABASE_URL", None)
        if database_url:
            env["LAKELENS_DATABASE_URL"] = database_url
        subprocess.run(
            [LAKELENS, "db", "upgrade", "--home", home], check=True, env=env, capture_output=True
        )
        server = subprocess.Popen(
            [LAKELENS, "serve", "--port", str(port), "--home", home],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/livez", 30)
            writer = subprocess.run(
                [sys.executable, "-c", WRITER, home, str(count)],
                env=env,
                capture_output=True,
                text=True,
                timeout=count * 3 + 60,
                check=True,
            )
            committed = [json.loads(line) for line in writer.stdout.splitlines()]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(receiver.arrivals) < len(committed):
                time.sleep(0.1)
        finally:
            server.terminate()
            server.wait(timeout=30)
    receiver.server.shutdown()
    latencies = [
        receiver.arrivals[f"fail-{c['i']}"] - c["committed"]
        for c in committed
        if f"fail-{c['i']}" in receiver.arrivals
    ]
    missing = len(committed) - len(latencies)
    result = {
        "failures": len(committed),
        "delivered": len(latencies),
        "missing": missing,
        "p50_seconds": percentile(latencies, 0.5) if latencies else None,
        "p99_seconds": percentile(latencies, 0.99) if latencies else None,
        "max_seconds": max(latencies) if latencies else None,
        "mean_seconds": statistics.fmean(latencies) if latencies else None,
        "goal_p99_seconds": GOAL_P99,
    }
    result["verdict"] = (
        "PASS" if latencies and not missing and result["p99_seconds"] <= GOAL_P99 else "FAIL"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 failures instead of 200")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    add_database_url(parser, "measure on a scratch database there too")
    args = parser.parse_args(argv)
    count = 20 if args.quick else 200
    results = {"sqlite": measure(count, None)}
    if args.database_url:
        with scratch_database(args.database_url, "lakelens_alert_bench") as url:
            results["postgres"] = measure(count, url)
        for key in ("p50_seconds", "p99_seconds"):
            lite, pg = results["sqlite"][key], results["postgres"][key]
            results["postgres"][key.replace("seconds", "over_sqlite")] = (
                pg / lite if lite and pg is not None else None
            )
    if args.json:
        print(json.dumps(results if args.database_url else results["sqlite"], indent=2))
    else:
        for name, result in results.items():
            print(
                f"Alert latency on {'SQLite' if name == 'sqlite' else 'PostgreSQL'}, commit → "
                f"webhook body, {result['failures']} failures ({result['delivered']} delivered)"
            )
            if result["delivered"]:
                p50, p99 = result["p50_seconds"] * 1000, result["p99_seconds"] * 1000
                ratio50 = result.get("p50_over_sqlite")
                ratio99 = result.get("p99_over_sqlite")
                print(f"   p50 {p50:8.0f} ms" + (f"   {ratio50:.2f}x SQLite" if ratio50 else ""))
                print(
                    f"   p99 {p99:8.0f} ms   goal <= {GOAL_P99 * 1000:.0f} ms   {result['verdict']}"
                    + (f"   {ratio99:.2f}x SQLite" if ratio99 else "")
                )
                print(f"   max {result['max_seconds'] * 1000:8.0f} ms")
            if result["missing"]:
                print(f"   {result['missing']} failures never arrived: FAIL")
    return 0 if all(r["verdict"] == "PASS" for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
