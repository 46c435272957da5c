"""Faults: how fast ingest recovers after a half-open PostgreSQL, and how /livez answers while
a thousand idle connections are open.

    .venv/bin/python bench/faults.py                 # both sections (about 1 minute)
    .venv/bin/python bench/faults.py --only idle     # no PostgreSQL needed
    .venv/bin/python bench/faults.py --postgres postgresql://postgres@127.0.0.1:5432/test

Recovery: `lakelens serve --no-alerts` on a fresh PostgreSQL database reached through a TCP
proxy in this process; one client posts a one-log batch at a time. The proxy then forwards
nothing for 15 s while keeping every socket open (those connections stay dead, as after a
network partition), then lets new connections through. The figure is the time from then to
the next acknowledged batch. Idle: 1,000 connections to a server on SQLite, half of them
with half a request head; then 2,000 `/livez` and 200 ingest requests on one keep-alive
connection.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

BLACKHOLE_SECONDS = 15
IDLE = 1000


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--only", choices=["recovery", "idle"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, float] = {}
    if args.only in (None, "idle"):
        results.update(idle_connections())
    if args.only in (None, "recovery"):
        results.update(recovery(args.postgres))
    if args.json:
        print(json.dumps(results))
        return
    labels = {
        "livez_p50_ms": f"/livez p50 with {IDLE} idle connections (ms)",
        "livez_p99_ms": f"/livez p99 with {IDLE} idle connections (ms)",
        "ingest_p99_ms": f"ingest p99 with {IDLE} idle connections (ms)",
        "recovery_s": f"ingest recovery after a {BLACKHOLE_SECONDS} s half-open outage (s)",
    }
    for key, value in results.items():
        print(f"{labels[key]:<58} {value:>8}")


if __name__ == "__main__":
    main()
