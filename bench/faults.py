"""Faults: ingest recovery after a half-open PostgreSQL, /livez under idle connections, no
acknowledged event lost across server kill -9s, no 5xx or memory growth under hostile input.

    .venv/bin/python bench/faults.py                  # idle, recovery, kills, fuzz (~3 min)
    .venv/bin/python bench/faults.py --only idle      # no PostgreSQL needed
    .venv/bin/python bench/faults.py --only kills --only fuzz
    .venv/bin/python bench/faults.py --only scrape    # /metrics with 5,000 assets (item 19)
    .venv/bin/python bench/faults.py --postgres postgresql://postgres@127.0.0.1:5432/test

Recovery: `lakelens serve --no-alerts` on a fresh PostgreSQL database reached through a TCP
proxy in this process; one client posts a one-log batch at a time. The proxy then forwards
nothing for 15 s while keeping every socket open (those connections stay dead, as after a
network partition), then lets new connections through. The figure is the time from then to
the next acknowledged batch. Idle: 1,000 connections to a server on SQLite, half of them
with half a request head; then 2,000 `/livez` and 200 ingest requests on one keep-alive
connection.

Kills: on SQLite and on a scratch PostgreSQL database, four clients post 20-log batches
back to back, each under its own `Idempotency-Key`, resending a batch under the same key
until it is acknowledged; the server is killed with SIGKILL at a random moment 10 times and
restarted. Every acknowledged log must then be stored exactly once. Fuzz: 30 s of hostile
requests (lone surrogates, NUL, nesting to 900 levels, 10**400, NaN/Infinity, 60 KB texts,
random bytes, 30 % gzipped) to the native, OpenLineage and OTLP endpoints while the
server's RSS is sampled every 100 ms. Scrape: `GET /metrics` over 5,000 assets (3
materializations and a check each), plain and gzipped.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

BLACKHOLE_SECONDS = 15
IDLE = 1000
KILLS = 10
KILL_BATCH = 20
DUPLICATE = -1  # answers that said a resent batch was stored already
FUZZ_SECONDS = 30
FUZZ_TEXT = 60_000
SCRAPE_ASSETS = 5000


class Proxy:
    """127.0.0.1 → target; `blackhole()` freezes every connection, old and new."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.frozen = False
        self.generation = 0  # connections of an older generation stay frozen
        self.stop = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            self.sockets.append(client)
            if self.frozen:
                continue
            upstream = socket.create_connection(self.target, timeout=5)
            self.sockets.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(a, b, self.generation), daemon=True
                ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, generation: int) -> None:
        while not self.stop.is_set():
            if self.generation != generation:
                return
            try:
                if select.select([src], [], [], 0.2)[0]:
                    data = src.recv(65536)
                    if not data or self.generation != generation:
                        return
                    dst.sendall(data)
            except (OSError, ValueError):
                return

    def blackhole(self) -> None:
        self.frozen = True
        self.generation += 1

    def restore(self) -> None:
        self.frozen = False

    def close(self) -> None:
        self.stop.set()
        for sock in [self.listener, *self.sockets]:
            with contextlib.suppress(OSError):
                sock.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(home: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [sys.executable, "-m", "lakelens", "serve", "--home", str(home), "--no-alerts"]
    proc = subprocess.Popen(
        [*command, "--port", str(port)],
        env={**os.environ, "LAKELENS_LOG_FORMAT": "none", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/livez", timeout=1).status_code == 200:
                return proc, url
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("lakelens serve did not start within 30 s")


def recovery(postgres: str) -> dict[str, float]:
    import psycopg

    name = f"lakelens_bench_faults_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(postgres)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user}@127.0.0.1:{proxy.port}" if user else f"127.0.0.1:{proxy.port}"
    via_proxy = urlunsplit(parts._replace(netloc=netloc, path=f"/{name}"))
    acked: list[float] = []
    stop = threading.Event()

    def post(url: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while not stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    if (
                        http.post(
                            "/api/v1/events", json=[{"type": "log", "message": "bench"}]
                        ).status_code
                        == 200
                    ):
                        acked.append(time.monotonic())
                        continue
                stop.wait(0.1)

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _serve(Path(tmp) / "home", LAKELENS_DATABASE_URL=via_proxy)
        client = threading.Thread(target=post, args=(url,), daemon=True)
        try:
            client.start()
            time.sleep(2)
            proxy.blackhole()
            time.sleep(BLACKHOLE_SECONDS)
            restored = time.monotonic()
            proxy.restore()
            deadline = restored + 120
            while time.monotonic() < deadline and not [t for t in acked if t > restored]:
                time.sleep(0.02)
            after = [t for t in acked if t > restored]
        finally:
            stop.set()
            proc.kill()
            proc.wait(10)
            proxy.close()
            client.join(5)
            with psycopg.connect(postgres, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {"recovery_s": round(after[0] - restored, 2) if after else float("inf")}


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2)


def idle_connections() -> dict[str, float]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 3 * IDLE:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * IDLE), hard))
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _serve(Path(tmp) / "home")
        port = int(url.rpartition(":")[2])
        idle = []
        try:
            for i in range(IDLE):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                if i % 2:
                    sock.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Le")
                idle.append(sock)
            livez, ingest = [], []
            with httpx.Client(base_url=url, timeout=10) as http:
                for i in range(2000):
                    began = time.perf_counter()
                    ok = http.get("/livez").status_code == 200
                    livez.append((time.perf_counter() - began) * 1000 if ok else float("inf"))
                    if i % 10 == 0:
                        began = time.perf_counter()
                        response = http.post(
                            "/api/v1/events", json=[{"type": "log", "message": "bench"}]
                        )
                        took = (time.perf_counter() - began) * 1000
                        ingest.append(took if response.status_code == 200 else float("inf"))
        finally:
            for sock in idle:
                sock.close()
            proc.kill()
            proc.wait(10)
    return {
        "livez_p50_ms": _p(livez, 0.5),
        "livez_p99_ms": _p(livez, 0.99),
        "ingest_p99_ms": _p(ingest, 0.99),
    }


def _store_url(home: Path, postgres: str | None) -> tuple[str, str | None]:
    """A fresh store: a SQLite file in `home`, or a scratch database on `postgres`."""
    if postgres is None:
        return f"sqlite:///{home / 'lakelens.db'}", None
    import psycopg

    name = f"lakelens_bench_faults_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(postgres)._replace(path=f"/{name}")), name


def _drop(postgres: str | None, name: str | None) -> None:
    if postgres is None or name is None:
        return
    import psycopg

    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def kills(postgres: str | None, *, seed: int = 13) -> dict[str, int]:
    """Clients post batches back to back; the server is killed with SIGKILL KILLS times."""
    import random

    import sqlalchemy as sa

    from lakelens.store import Store, schema

    rng = random.Random(seed)
    acked: set[str] = set()
    answers: Counter[int] = Counter()
    numbers = iter(range(10**9))
    lock = threading.Lock()
    stop = threading.Event()
    current = {"url": ""}

    def post(worker: int) -> None:
        http = httpx.Client(timeout=10)
        try:
            while not stop.is_set():
                with lock:
                    batch = f"kill-{worker}-{next(numbers):07d}"
                events = [
                    {"type": "log", "message": f"{batch}/{i}", "run_id": batch}
                    for i in range(KILL_BATCH)
                ]
                # Until acknowledged, the batch is sent again under the same id, as the SDK does.
                for _attempt in range(200):
                    if stop.is_set():
                        break
                    try:
                        response = http.post(
                            current["url"] + "/api/v1/events",
                            json=events,
                            headers={"Idempotency-Key": batch},
                        )
                    except httpx.HTTPError:
                        stop.wait(0.05)
                        continue
                    answers[response.status_code] += 1
                    if b'"duplicate":true' in response.content:
                        answers[DUPLICATE] += 1  # committed before the kill, not answered
                    if response.is_success:
                        with lock:
                            acked.add(batch)
                        break
                    stop.wait(0.05)
        finally:
            http.close()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        url, scratch = _store_url(home, postgres)
        env = {"LAKELENS_DATABASE_URL": url}
        proc, current["url"] = _serve(home, **env)
        clients = [threading.Thread(target=post, args=(n,), daemon=True) for n in range(4)]
        try:
            for client in clients:
                client.start()
            for _ in range(KILLS):
                time.sleep(rng.uniform(0.5, 3.0))
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                proc, current["url"] = _serve(home, **env)
            time.sleep(2)
        finally:
            stop.set()
            for client in clients:
                client.join(15)
            proc.kill()
            proc.wait(10)
        try:
            store = Store(url)
            with store.connect() as conn:
                stored = Counter(
                    dict(
                        conn.execute(
                            sa.select(schema.logs.c.message, sa.func.count())
                            .where(schema.logs.c.message.like("kill-%"))
                            .group_by(schema.logs.c.message)
                        ).all()
                    )
                )
            store.close()
        finally:
            _drop(postgres, scratch)
    expected = {f"{batch}/{i}" for batch in acked for i in range(KILL_BATCH)}
    return {
        "acknowledged": len(expected),
        "stored": sum(1 for message in expected if message in stored),
        "lost": sum(1 for message in expected if message not in stored),
        "duplicated": sum(n - 1 for n in stored.values() if n > 1),
        "5xx": sum(n for status, n in answers.items() if status >= 500),
        "resent_batches_found_stored": answers[DUPLICATE],
    }


def _hostile(rng: Any, depth: int = 0) -> Any:
    """A value of the kinds tests/faults sends: surrogates, NUL, huge numbers, NaN, depth."""
    pick = rng.randrange(12)
    if pick == 0:
        return rng.choice(["\ud800", "\udcff", "a\udfffb", "\x00", "x\x00y"])
    if pick == 1:
        return rng.choice([float("nan"), float("inf"), -float("inf"), 1e308])
    if pick == 2:
        return rng.choice([10**400, -(10**30), 2**63, 2**64])
    if pick == 3:
        return "t" * FUZZ_TEXT
    if pick == 4:
        return _deep(rng.randrange(20, 900))
    if pick == 5 and depth < 3:
        return [_hostile(rng, depth + 1) for _ in range(rng.randrange(4))]
    if pick == 6 and depth < 3:
        return {str(_hostile(rng, 3))[:40]: _hostile(rng, depth + 1) for _ in range(3)}
    return rng.choice([None, True, 0, -1, "", "ok", 1.5, [], {}])


def _deep(levels: int) -> Any:
    node: Any = "leaf"
    for _ in range(levels):
        node = {"d": node}
    return node


_NATIVE = [
    {"type": "run", "run_id": "r", "job": "j", "status": "success"},
    {"type": "materialization", "run_id": "r", "asset": "a", "rows": 1},
    {"type": "log", "message": "m", "level": "INFO"},
    {"type": "metric", "name": "m", "value": 1.0},
    {"type": "check", "asset": "a", "name": "c", "passed": True},
    {"type": "span", "trace_id": "t", "span_id": "s", "name": "n", "start_time": 1},
]


def _fuzz_request(rng: Any, n: int) -> tuple[str, bytes, dict[str, str]]:
    """One hostile request: (path, body, headers)."""
    kind = rng.randrange(3)
    if kind == 0:
        events = []
        for _ in range(rng.randrange(1, 6)):
            event = dict(rng.choice(_NATIVE))
            field = rng.choice([*event, "attributes", "error_message", "tags", "labels"])
            if field != "type":
                event[field] = _hostile(rng)
            events.append(event)
        path, payload = "/api/v1/events", events
    elif kind == 1:
        event: dict[str, Any] = {
            "eventType": "COMPLETE",
            "eventTime": "2024-10-15T06:00:00Z",
            "producer": "fuzz",
            "run": {"runId": f"00000000-0000-0000-0000-{n:012d}", "facets": {}},
            "job": {"namespace": "fuzz", "name": "job"},
            "inputs": [{"namespace": "db", "name": "in"}],
            "outputs": [{"namespace": "db", "name": "out", "facets": {}}],
        }
        where = rng.choice(["run", "job", "outputs", "eventTime", "producer", "inputs"])
        if where in ("run", "job"):
            event[where]["facets"] = {"x": _hostile(rng)}
        elif where == "outputs":
            event["outputs"][0]["facets"] = {"schema": _hostile(rng)}
        else:
            event[where] = _hostile(rng)
        path, payload = "/api/v1/lineage", event
    else:
        record = {"timeUnixNano": "1700000000000000000", "body": {"stringValue": "m"}}
        record[rng.choice(["body", "attributes", "timeUnixNano", "traceId"])] = _hostile(rng)
        what = rng.choice(["logs", "traces"])
        if what == "logs":
            payload = {"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}
        else:
            span = {"traceId": "0" * 32, "spanId": "1" * 16, "name": _hostile(rng)}
            payload = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
        path = f"/v1/{what}"
    headers = {"Content-Type": "application/json"}
    if rng.random() < 0.05:
        # Not JSON at all, in the OTLP endpoints' other type too.
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        if path.startswith("/v1/"):
            headers["Content-Type"] = "application/x-protobuf"
        return path, body, headers
    # json.dumps escapes lone surrogates and writes NaN / Infinity, as Python clients do.
    body = json.dumps(payload).encode()
    if rng.random() < 0.3:
        body = gzip.compress(body, compresslevel=1)
        headers["Content-Encoding"] = "gzip"
    return path, body, headers


def fuzz(*, seconds: float = FUZZ_SECONDS, seed: int = 13) -> dict[str, Any]:
    """Hostile requests for `seconds` while the server's RSS is sampled every 100 ms."""
    import random

    import psutil

    rng = random.Random(seed)
    statuses: Counter[int] = Counter()
    peak = 0
    stop = threading.Event()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _serve(Path(tmp) / "home")
        server = psutil.Process(proc.pid)
        start_rss = server.memory_info().rss

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                with contextlib.suppress(psutil.Error):
                    rss = server.memory_info().rss
                    rss += sum(c.memory_info().rss for c in server.children(recursive=True))
                    peak = max(peak, rss)
                stop.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        errors = 0
        try:
            with httpx.Client(base_url=url, timeout=30) as http:
                deadline = time.monotonic() + seconds
                n = 0
                while time.monotonic() < deadline and n < 1_000_000:
                    path, body, headers = _fuzz_request(rng, n)
                    n += 1
                    try:
                        statuses[http.post(path, content=body, headers=headers).status_code] += 1
                    except httpx.HTTPError:
                        errors += 1
                alive = http.get("/livez").status_code == 200
        finally:
            stop.set()
            sampler.join(5)
            proc.kill()
            proc.wait(10)
    return {
        "requests": n,
        "5xx": sum(count for status, count in statuses.items() if status >= 500),
        "transport_errors": errors,
        "statuses": dict(sorted(statuses.items())),
        "rss_start_mb": round(start_rss / 2**20, 1),
        "rss_peak_mb": round(peak / 2**20, 1),
        "alive_after": alive,
    }


def build_assets(url: str, assets: int = SCRAPE_ASSETS, *, now: float) -> None:
    """`assets` assets with a freshness SLA, 3 materializations (1 in 10 failing) and a check."""
    from lakelens.ingest import native
    from lakelens.store import Store

    store = Store(url)
    try:
        for first in range(0, assets, 500):
            events: list[dict[str, Any]] = []
            for a in range(first, min(assets, first + 500)):
                name = f"warehouse.model_{a:05d}"
                events.append({"type": "asset", "name": name, "freshness_seconds": 3600})
                for k in range(3):
                    run_id = f"run-{a}-{k}"
                    start = now - 86_400 + k * 3600 + a % 600
                    status = "failure" if k == 2 and a % 10 == 0 else "success"
                    events += [
                        {
                            "type": "run",
                            "run_id": run_id,
                            "job": "build",
                            "status": status,
                            "start_time": start,
                            "end_time": start + 30,
                        },
                        {
                            "type": "materialization",
                            "run_id": run_id,
                            "asset": name,
                            "status": status,
                            "start_time": start,
                            "end_time": start + 30,
                            "rows": 1000 + k,
                            "bytes": 10_000,
                            "cpu_seconds": 1.5,
                        },
                    ]
                events.append(
                    {
                        "type": "check",
                        "asset": name,
                        "name": "not_null",
                        "passed": a % 7 != 0,
                        "run_id": f"run-{a}-2",
                    }
                )
            store.write(native.to_ingested(events, now=now).batch)
    finally:
        store.close()


def scrape(*, assets: int = SCRAPE_ASSETS, repeat: int = 5) -> dict[str, Any]:
    """`GET /metrics` of a server over `assets` assets: body size and time (best of `repeat`)."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        url = f"sqlite:///{home / 'lakelens.db'}"
        build_assets(url, assets, now=time.time())
        proc, base = _serve(home, LAKELENS_DATABASE_URL=url)
        figures: dict[str, Any] = {"assets": assets}
        try:
            with httpx.Client(base_url=base, timeout=120) as http:
                for encoding in ("identity", "gzip"):
                    took = []
                    for _ in range(repeat):
                        began = time.perf_counter()
                        response = http.get("/metrics", headers={"Accept-Encoding": encoding})
                        took.append(time.perf_counter() - began)
                        response.raise_for_status()
                    figures[encoding] = {
                        "sent_bytes": response.num_bytes_downloaded,
                        "text_bytes": len(response.content),
                        "best_s": round(min(took), 2),
                        "median_s": round(sorted(took)[len(took) // 2], 2),
                    }
                figures["lines"] = response.text.count("\n")
                families: Counter[str] = Counter()
                for line in response.text.splitlines():
                    if not line.startswith("#"):
                        families[line.partition("{")[0].partition(" ")[0]] += len(line) + 1
                figures["largest_families_bytes"] = dict(families.most_common(6))
        finally:
            proc.kill()
            proc.wait(10)
    return figures


SECTIONS = ("idle", "recovery", "kills", "fuzz", "scrape")
LABELS = {
    "livez_p50_ms": f"/livez p50 with {IDLE} idle connections (ms)",
    "livez_p99_ms": f"/livez p99 with {IDLE} idle connections (ms)",
    "ingest_p99_ms": f"ingest p99 with {IDLE} idle connections (ms)",
    "recovery_s": f"ingest recovery after a {BLACKHOLE_SECONDS} s half-open outage (s)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--only", choices=SECTIONS, action="append")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    only = args.only or ["idle", "recovery", "kills", "fuzz"]
    results: dict[str, Any] = {}
    if "idle" in only:
        results.update(idle_connections())
    if "recovery" in only:
        results.update(recovery(args.postgres))
    if "kills" in only:
        results["kills"] = {
            "sqlite": kills(None),
            "postgresql": kills(args.postgres),
        }
    if "fuzz" in only:
        results["fuzz"] = fuzz()
    if "scrape" in only:
        results["scrape"] = scrape()
    if args.json:
        print(json.dumps(results))
        return
    for key, value in results.items():
        if isinstance(value, dict):
            print(f"{key}: {json.dumps(value)}")
        else:
            print(f"{LABELS[key]:<58} {value:>8}")


if __name__ == "__main__":
    main()
