"""`lakelens serve` for real: refusing unsafe binds, tokens, SIGTERM, kill -9, Prometheus, SSE,
slow clients."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from _support import serving
from lakelens.cli.main import app

TOKEN = "e2e-token-0123456789"


def test_non_loopback_bind_without_token_refuses_to_start(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--home", str(tmp_path)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Refusing to listen on 0.0.0.0 without LAKELENS_API_TOKEN" in lines[0]
    assert "--insecure" in lines[0]


def test_insecure_starts_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, free_port: Any
) -> None:
    import uvicorn

    started: list[Any] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: started.append(self))
    port = str(free_port())
    result = CliRunner().invoke(
        app, ["serve", "--host", "0.0.0.0", "--port", port, "--home", str(tmp_path), "--insecure"]
    )
    assert result.exit_code == 0, result.output
    assert "Warning:" in result.output and "--insecure" in result.output
    assert started


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--port", str(port), "--home", str(tmp_path)])
    assert result.exit_code == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in result.output


@pytest.mark.slow
def test_serve_with_a_token_then_sigterm_while_a_stream_is_open(serve: Any, tmp_path: Path) -> None:
    server = serve(tmp_path / "home", env={"LAKELENS_API_TOKEN": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    events = [{"type": "log", "message": f"line {i}", "level": "WARNING"} for i in range(5)]
    assert httpx.post(f"{server.url}/api/v1/events", json=events).status_code == 401
    posted = httpx.post(f"{server.url}/api/v1/events", json=events, headers=auth)
    assert posted.json() == {"accepted": 5, "rejected": []}
    logs = httpx.get(f"{server.url}/api/v1/logs", headers=auth).json()["records"]
    assert [r["message"] for r in logs] == [f"line {i}" for i in range(5)]

    got_first = threading.Event()

    def listen() -> None:
        try:
            with httpx.stream(
                "GET", f"{server.url}/api/v1/logs/stream?after=0", headers=auth, timeout=30
            ) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data:"):
                        got_first.set()
        except httpx.HTTPError:
            pass

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert got_first.wait(10)
    began = time.monotonic()
    # uvicorn re-raises SIGTERM once it has shut down gracefully (systemd counts that as clean).
    assert server.stop() in (0, -signal.SIGTERM)
    assert time.monotonic() - began < 10, "an open log stream held up the shutdown"
    listener.join(5)
    output = server.output()
    assert "Application shutdown complete" in output
    assert TOKEN not in output
    assert "GET /api/v1/logs" in output


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_batch(serve: Any, tmp_path: Path) -> None:
    """Clients send batches while the server is killed: every 2xx batch is in the store, whole."""
    home = tmp_path / "home"
    server = serve(home)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    per_batch = 200

    def client(worker: int) -> None:
        n = 0
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                batch_id = f"w{worker}-{n}"
                events = [
                    {"type": "log", "message": f"{batch_id}/{i}", "attributes": {"batch": batch_id}}
                    for i in range(per_batch)
                ]
                try:
                    response = http.post(
                        f"{server.url}/api/v1/events",
                        json=events,
                        headers={"Idempotency-Key": batch_id},
                    )
                except httpx.HTTPError:
                    return
                if 200 <= response.status_code < 300:
                    with lock:
                        acknowledged.append(batch_id)
                n += 1

    workers = [threading.Thread(target=client, args=(w,), daemon=True) for w in range(3)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)
    stop.set()
    for worker in workers:
        worker.join(15)
    assert len(acknowledged) >= 30

    with sqlite3.connect(home / "lakelens.db") as db:
        counts = dict(
            db.execute(
                "SELECT substr(message, 1, instr(message, '/') - 1), count(*) FROM logs GROUP BY 1"
            ).fetchall()
        )
        committed = {row[0] for row in db.execute("SELECT batch_id FROM ingest_batches")}
    missing = [b for b in acknowledged if counts.get(b) != per_batch]
    assert not missing, f"acknowledged batches lost or partial: {missing[:5]}"
    assert set(acknowledged) <= committed
    # Unacknowledged batches are all-or-nothing too.
    assert set(counts.values()) == {per_batch}


@pytest.mark.slow
def test_a_real_prometheus_scrapes_the_demo_assets(
    serve: Any, tmp_path: Path, require_tool: Any
) -> None:
    import sys

    prometheus = require_tool("prometheus", "apt-get install prometheus")
    home = tmp_path / "home"
    subprocess.run(
        [sys.executable, "-m", "lakelens", "demo", "--runs", "6", "--home", str(home)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = serve(home, env={"LAKELENS_API_TOKEN": TOKEN})
    (tmp_path / "token").write_text(TOKEN)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: lakelens\n"
        "    authorization:\n"
        f"      credentials_file: {tmp_path / 'token'}\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{server.port}']\n"
    )
    argv = [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}"]
    with serving(
        lambda port: [*argv, f"--web.listen-address=127.0.0.1:{port}"],
        tmp_path / "prometheus.log",
        probe="/-/ready",
    ) as (_, url):
        expected = {"dlt_glucose_entries", "stg_glucose_entries", "mrt_glucose_readings"}
        found: set[str] = set()
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and not expected <= found:
            time.sleep(0.5)
            try:
                answer = httpx.get(
                    f"{url}/api/v1/query",
                    params={"query": "asset_freshness_seconds"},
                    timeout=2,
                ).json()
            except (httpx.HTTPError, ValueError):
                continue
            found = {
                r["metric"].get("asset_name") for r in answer.get("data", {}).get("result", [])
            }
        targets = httpx.get(f"{url}/api/v1/targets", timeout=2).json()
        health = [t["health"] for t in targets["data"]["activeTargets"]]
        assert expected <= found, (
            found,
            targets,
            (tmp_path / "prometheus.log").read_text()[-2000:],
        )
        assert health == ["up"]


def test_log_stream_tails_new_records_and_resumes(pipeline: Any, thread_server: Any) -> None:
    from lakelens.server import create_app

    settings, store, _info = pipeline
    with thread_server(create_app(settings, store)) as server:
        received: list[dict[str, Any]] = []
        done = threading.Event()

        def listen(url: str, headers: dict[str, str], want: int) -> None:
            with httpx.stream("GET", url, headers=headers, timeout=20) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                current: dict[str, Any] = {}
                for line in stream.iter_lines():
                    if line.startswith("id: "):
                        current["id"] = int(line[4:])
                    elif line.startswith("data: "):
                        current["data"] = json.loads(line[6:])
                    elif line == "" and "data" in current:
                        received.append(current)
                        current = {}
                        if len(received) >= want:
                            done.set()
                            return

        url = f"{server.url}/api/v1/logs/stream?level=WARNING"
        listener = threading.Thread(target=listen, args=(url, {}, 2), daemon=True)
        listener.start()
        time.sleep(0.5)  # the stream starts at "now": only records committed after it count
        events = [
            {"type": "log", "message": "quiet", "level": "INFO"},
            {"type": "log", "message": "first alarm", "level": "WARNING"},
            {"type": "log", "message": "second alarm", "level": "ERROR"},
        ]
        assert httpx.post(f"{server.url}/api/v1/events", json=events).status_code == 200
        assert done.wait(10), received
        assert [r["data"]["message"] for r in received] == ["first alarm", "second alarm"]
        # A client reconnecting with Last-Event-ID gets what came after, nothing twice.
        httpx.post(
            f"{server.url}/api/v1/events",
            json=[{"type": "log", "message": "third", "level": "ERROR"}],
        )
        received.clear()
        done.clear()
        resume = {"Last-Event-ID": str(_last_id(store) - 1)}
        listener = threading.Thread(target=listen, args=(url, resume, 1), daemon=True)
        listener.start()
        assert done.wait(10)
        assert [r["data"]["message"] for r in received] == ["third"]


def _last_id(store: Any) -> int:
    from lakelens.analysis.logs import last_id

    with store.connect() as conn:
        return int(last_id(conn))


def test_slow_clients_do_not_block_others(
    tmp_path: Path, thread_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakelens.config import load_settings
    from lakelens.server import create_app

    monkeypatch.setenv("LAKELENS_BODY_TIMEOUT", "1")
    app_ = create_app(load_settings(home=str(tmp_path / "home"), log_format="none"))
    with thread_server(app_) as server:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]
        trickle = socket.create_connection(("127.0.0.1", server.port))
        trickle.sendall(
            b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n[{"
        )
        began = time.monotonic()
        for _ in range(5):
            assert httpx.get(f"{server.url}/livez", timeout=2).status_code == 200
        assert time.monotonic() - began < 2
        trickle.settimeout(5)
        answer = trickle.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        for sock in [*idle, trickle]:
            sock.close()
