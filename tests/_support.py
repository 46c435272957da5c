"""Plumbing the test modules share (importable from every test directory: pyproject's pytest
`pythonpath`). With `--import-mode=importlib` one directory's conftest cannot import another's,
so tests that reuse another directory's fixtures or a bench load it by path."""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any


def load_module(name: str, path: Path) -> ModuleType:
    """The module at `path`, registered as `name` (dataclasses look their module up there);
    loaded once per process."""
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def cli_loads(args: list[str], store_url: str, home: Path, modules: list[str]) -> str:
    """Run `lakelens ARGS --home HOME` on the store at `store_url` in a fresh interpreter and
    return its last line, 'EXIT <code> <loaded?> ...' for each of `modules`, after its output
    (start-up tests: what a command imports is most of its time)."""
    import os

    script = (
        "import sys\n"
        "from lakelens.cli.main import main\n"
        f"sys.argv = ['lakelens', *{args!r}, '--home', {str(home)!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\nelse:\n    code = 0\n"
        f"print('EXIT', code, *(m in sys.modules for m in {modules!r}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKELENS_")}
    if not store_url.startswith("sqlite"):
        env["LAKELENS_DATABASE_URL"] = store_url
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    return done.stdout + done.stderr


def listens(pid: int, port: int) -> bool:
    """Whether process `pid` itself listens on TCP `port`. A server started on a port picked
    as free can lose it to another test's server started at the same moment: that one then
    answers the readiness probe, while ours exits with "Address already in use"."""
    import psutil

    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


def bound_socket(host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket bound to a free port of `host`, not listening. While it is open the port
    refuses connections and no other test's server can take it (binding port 0 skips it, and
    binding it fails); a server in this process can listen on it (`UvicornThread(app, sock)`)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.bind((host, 0))
    return sock


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port of 127.0.0.1 that refuses connections until the block ends. A port picked as free
    and closed again can be taken meanwhile by another test's server, which then answers."""
    with bound_socket() as sock:
        yield int(sock.getsockname()[1])


class UvicornThread:
    """An ASGI app under uvicorn in a thread of this process, listening on `sock` (by default a
    new `bound_socket()`): the port is never free between picking and listening, so no other
    test's server can take it. `with UvicornThread(app) as server:` or `.start()`/`.stop()`."""

    def __init__(self, app: Any, sock: socket.socket | None = None, **options: Any) -> None:
        import uvicorn

        self.sock = sock or bound_socket()
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        options = {"host": "127.0.0.1", "port": self.port, "log_level": "warning", **options}
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self, timeout: float = 15.0) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn exited at start (its error is above)"
            assert time.monotonic() < deadline, f"uvicorn did not start within {timeout}s"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (safe to call twice, or before `start()`)."""
        self.server.should_exit = True
        if self.thread.ident is not None:
            self.thread.join(15)
        self.sock.close()

    def __enter__(self) -> UvicornThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def serving(
    argv: Callable[[int], list[str]],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    probe: str = "/livez",
    timeout: float = 30.0,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Run the server `argv(port)` on a port of `host` picked as free, its output appended to
    `log`; yields (process, base URL) once GET `probe` answers 200 and the process itself
    listens on the port. Stopped (SIGTERM, then SIGKILL) at the end of the block.

    The answer may come from another test's server that took the port first: ours then exits
    with "address already in use" and is started again on another port."""
    for _attempt in range(3):
        with bound_socket(host) as sock:
            port = int(sock.getsockname()[1])
        url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        offset = log.stat().st_size if log.exists() else 0
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv(port), env=env, stdout=out, stderr=subprocess.STDOUT)
        ready = exited = False
        try:
            ready = _ready(proc, port, url + probe, timeout)
        finally:
            if not ready:
                exited = proc.poll() is not None
                _stop(proc)
        if ready:
            break
        output = log.read_bytes()[offset:].decode(errors="replace")
        if not exited:
            raise AssertionError(f"the server did not answer within {timeout}s:\n{output}")
        if "address already in use" not in output.lower():
            raise AssertionError(f"the server exited early ({proc.returncode}):\n{output}")
    else:
        raise AssertionError(f"the server found no free port:\n{log.read_text(errors='replace')}")
    try:
        yield proc, url
    finally:
        _stop(proc)


def _ready(proc: subprocess.Popen[bytes], port: int, url: str, timeout: float) -> bool:
    """Whether `url` answered 200 with `proc` listening on `port` before `timeout` (False
    at once when `proc` exits)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            answered = httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            answered = False
        if answered and listens(proc.pid, port):  # not another test's server
            return True
        time.sleep(0.1)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
