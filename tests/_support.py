"""Plumbing the test modules share (importable from every test directory: pyproject's pytest
`pythonpath`). With `--import-mode=importlib` one directory's conftest cannot import another's,
so tests that reuse another directory's fixtures or a bench load it by path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


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
    import subprocess

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
