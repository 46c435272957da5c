"""Fault fixtures: a TCP proxy that can blackhole or reset PostgreSQL, a real server, and
the alert tests' real HTTP receiver (tests/alerts/conftest.py)."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from _support import load_module


@dataclass
class _Pair:
    client: socket.socket
    upstream: socket.socket | None = None
    frozen: bool = False
    threads: list[threading.Thread] = field(default_factory=list)


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of `target` that can misbehave.

    `blackhole()` keeps every socket open and forwards nothing, on the connections it has
    and on those opened meanwhile (a half-open network: the kernel still ACKs, so neither
    keepalives nor retransmission timeouts notice). Those connections stay dead; `restore()`
    lets new connections through. `reset()` closes every connection with an RST.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.blackholed = False
        self.pairs: list[_Pair] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            pair = _Pair(client, frozen=self.blackholed)
            with self._lock:
                self.pairs.append(pair)
            if pair.frozen:
                continue
            try:
                pair.upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            for src, dst in ((client, pair.upstream), (pair.upstream, client)):
                thread = threading.Thread(target=self._pump, args=(pair, src, dst), daemon=True)
                pair.threads.append(thread)
                thread.start()

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket) -> None:
        while not self._stop.is_set() and not pair.frozen:
            try:
                ready, _, _ = select.select([src], [], [], 0.2)
                if not ready:
                    continue
                data = src.recv(65536)
                if pair.frozen:
                    return  # swallowed: the other side never hears of it
                if not data:
                    break
                dst.sendall(data)
            except (OSError, ValueError):
                break
        if not pair.frozen:
            self._close(pair)

    def _close(self, pair: _Pair, *, rst: bool = False) -> None:
        for sock in (pair.client, pair.upstream):
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                if rst:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                sock.close()

    def blackhole(self) -> None:
        with self._lock:
            self.blackholed = True
            for pair in self.pairs:
                pair.frozen = True

    def restore(self) -> None:
        self.blackholed = False

    def reset(self) -> None:
        with self._lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            pair.frozen = True  # the pumps stop without closing again
            self._close(pair, rst=True)

    def close(self) -> None:
        self._stop.set()
        self._acceptor.join(5)
        self.listener.close()
        with self._lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            pair.frozen = True
            self._close(pair)

    def url(self, database_url: str) -> str:
        """`database_url` with its host and port replaced by the proxy's."""
        parts = urlsplit(database_url)
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user}@127.0.0.1:{self.port}" if user else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def fault_proxy(postgres_url: str) -> Iterator[FaultProxy]:
    """A FaultProxy in front of the test PostgreSQL server."""
    parts = urlsplit(postgres_url)
    proxy = FaultProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    yield proxy
    proxy.close()


_TESTS = Path(__file__).parents[1]
# One implementation of each: `lakelens serve` in a subprocess (tests/server/conftest.py) and
# the recording HTTP receiver (tests/alerts/conftest.py).
ServeProcess = load_module(
    "lakelens_tests_server_helpers", _TESTS / "server" / "conftest.py"
).ServeProcess
receivers = load_module("lakelens_tests_alerts_receivers", _TESTS / "alerts" / "conftest.py")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """`serve(LAKELENS_X="1", ...)` starts `lakelens serve` with those variables, alerts off;
    `serve(alerts=True, ...)` runs its evaluator and delivery worker too. All are killed after
    the test."""
    started: list[Any] = []

    def start(*, alerts: bool = False, **env: str) -> Any:
        server = ServeProcess(tmp_path / "home", env=env, args=() if alerts else ("--no-alerts",))
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.kill()


receiver = receivers.receiver


@pytest.fixture
def make_receiver() -> Iterator[Any]:
    """`make_receiver()` starts another Receiver; all stop after the test."""
    started: list[Any] = []

    def start() -> Any:
        server = receivers.Receiver()
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def served(store_url: str, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """(TestClient, Store): the app in-process on an empty store; server errors are answers."""
    from fastapi.testclient import TestClient

    from lakelens.config import load_settings
    from lakelens.server import create_app
    from lakelens.store import Store

    settings = load_settings(home=str(tmp_path / "home"), database_url=store_url, log_format="none")
    store = Store(settings=settings)
    with TestClient(create_app(settings, store), raise_server_exceptions=False) as client:
        yield client, store
    store.close()


class SharedStore:
    """An emptied PostgreSQL store that several `lakelens serve` share: the environment that
    makes a server alert through a webhook, who evaluates, and plain SQL to check results."""

    def __init__(self, url: str) -> None:
        from lakelens.store.engine import create_store_engine

        self.url = url
        self.engine = create_store_engine(url)

    def server_env(self, hook: str) -> dict[str, str]:
        """Variables for `serve(alerts=True, ...)`: this store, alerts to `hook`, evaluated
        every 2 s, told 2 s after the finding (the incidents' group wait)."""
        return {
            "LAKELENS_DATABASE_URL": self.url,
            "LAKELENS_ALERT_WEBHOOK_URL": hook,
            "LAKELENS_ALERT_EVALUATION_INTERVAL": "2s",
            "LAKELENS_ALERT_GROUP_WAIT": "2s",
        }

    def rows(self, sql: str, **params: Any) -> list[Any]:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))

    def evaluator(self) -> str | None:
        """The `host:pid` that last recorded the evaluator's heartbeat."""
        found = self.rows("SELECT owner FROM heartbeats WHERE component = 'evaluator'")
        return found[0][0] if found else None

    def leader(self, servers: list[Any], timeout: float = 20.0) -> Any:
        """The server among `servers` that evaluates, once one does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            owner = self.evaluator()
            for server in servers:
                if owner is not None and owner.endswith(f":{server.proc.pid}"):
                    return server
            time.sleep(0.1)
        raise AssertionError(f"no server evaluates alerts after {timeout}s (owner: {owner})")


@pytest.fixture
def shared_store(empty_postgres_url: str) -> Iterator[SharedStore]:
    """A SharedStore on the test PostgreSQL database, emptied first."""
    store = SharedStore(empty_postgres_url)
    yield store
    store.engine.dispose()
