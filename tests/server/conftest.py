"""Server fixtures: a store recorded through the SDK, the app in-process, and real servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import lakelens
from lakelens.config import Settings, load_settings
from lakelens.store import Store
from lakelens.testing import FakeClock, recording

HOUR = 3600.0
ODD_ASSET = 'odd "quoted" \\ name'


class ApiTimeout(Exception):
    pass


def build_pipeline(settings: Settings, store: Store) -> dict[str, Any]:
    """Three runs of api → dlt_entries → stg_entries → dashboard; the last run fails in dlt
    10 minutes before `now`, so dlt_entries is past its 2h SLA. Plus custom metrics, a check
    that failed once, a schema, and an asset whose name needs escaping."""
    now = time.time()
    clock = FakeClock(now - 3 * HOUR)
    run_ids: list[str] = []
    with recording(settings=settings, store=store, clock=clock, id_seed=7):
        log = lakelens.get_logger("pipe")
        lakelens.asset("api", kind="external").declare()
        dlt = lakelens.asset("dlt_entries", deps=["api"], freshness="2h", owner="platform")
        stg = lakelens.asset(
            "stg_entries", deps=["dlt_entries"], kind="model", freshness="4h", owner="analytics"
        )
        lakelens.asset("dashboard", deps=["stg_entries"], kind="dashboard", owner="bi").declare()
        odd = lakelens.asset(ODD_ASSET, deps=["stg_entries"])
        for n, fail in enumerate([False, False, True]):
            if n == 2:
                clock.set(now - 600)
            try:
                with lakelens.run("pipeline", partition=f"p{n}") as run:
                    run_ids.append(run.run_id)
                    with dlt:
                        with lakelens.span("fetch_from_api", endpoint="/entries") as fetch:
                            clock.advance(0.040)
                            with lakelens.span("http.request"):
                                clock.advance(0.030)
                                if fail:
                                    log.warning("Retry 1/3 after timeout")
                                    log.error("Connection refused to api.example")
                                    raise ApiTimeout("Connection timeout after 30s")
                            fetch.set("rows_fetched", 487)
                        log.info("Fetched 487 rows from API", rows=487)
                        lakelens.check(
                            "range_check",
                            passed=n != 1,
                            severity="error",
                            valid_rows=480,
                            total_rows=487,
                        )
                        lakelens.schema({"id": "int", "value": "float"})
                        lakelens.record(rows=487, bytes=48_700)
                        lakelens.metric("queue_size", 5 + n, queue="articles")
                        lakelens.metric("rows_loaded", 10, kind="counter", source="api")
                    with stg:
                        clock.advance(0.045)
                        lakelens.record(rows=487)
                    with odd:
                        clock.advance(0.010)
                        lakelens.record(rows=3)
            except ApiTimeout:
                pass
            clock.advance(300)
    return {"run_ids": run_ids, "now": now}


@pytest.fixture
def pipeline(store_url: str, tmp_path: Path) -> Iterator[tuple[Settings, Store, dict[str, Any]]]:
    """(settings, store, info) of the recorded pipeline, on SQLite and on PostgreSQL."""
    settings = load_settings(home=str(tmp_path / "home"), database_url=store_url, log_format="none")
    store = Store(settings=settings)
    info = build_pipeline(settings, store)
    yield settings, store, info
    store.close()


@pytest.fixture
def free_port() -> Callable[[], int]:
    """A function returning a free TCP port on 127.0.0.1."""
    return _free_port


@pytest.fixture
def odd_asset() -> str:
    return ODD_ASSET


@pytest.fixture
def thread_server() -> type[ThreadServer]:
    """`with thread_server(app) as server:` runs the app under uvicorn in this process."""
    return ThreadServer


@pytest.fixture
def client(pipeline: tuple[Settings, Store, dict[str, Any]]) -> Iterator[Any]:
    """A TestClient on the pipeline store; its clock stands still at the recording's `now`."""
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    settings, store, info = pipeline
    app = create_app(settings, store, clock=lambda: info["now"])
    with TestClient(app) as test_client:
        yield test_client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url + "/livez", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


class ServeProcess:
    """`lakelens serve` in a subprocess on 127.0.0.1 and a free port."""

    def __init__(self, home: Path, *, env: dict[str, str] | None = None, port: int | None = None):
        self.home = home
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "LAKELENS_LOG_FORMAT": "json", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home.parent / f"serve-{self.port}.log"

    def start(self, timeout: float = 30.0) -> ServeProcess:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lakelens",
                    "serve",
                    "--home",
                    str(self.home),
                    "--port",
                    str(self.port),
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"lakelens serve exited early:\n{self.output()}")
            if _answers(self.url):
                return self
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"lakelens serve did not answer within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("lakelens serve did not stop on SIGTERM") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Start `lakelens serve` subprocesses; every one is killed at the end of the test."""
    started: list[ServeProcess] = []

    def start(home: Path | None = None, **kwargs: Any) -> ServeProcess:
        server = ServeProcess(home or tmp_path / "server-home", **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.kill()


class ThreadServer:
    """uvicorn in a thread of this process (for streaming tests on a real socket)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        wait_until(lambda: self.server.started, 15, "uvicorn to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
