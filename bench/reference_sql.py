"""The SQL a CLI command runs, captured once and replayed by the database's own client.

A command runs once in a child interpreter whose plain-SQL readers (store/sql.py) record
every statement with its parameters; the statements, with the parameters written in as
literals, then make a script for `sqlite3` or `psql`. Timing that script as a subprocess
gives what the database and its client alone need for the same answers: the reference that
bench/queries.py divides each command's wall-clock by.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["capture", "client_argv", "script"]

_BIND = re.compile(r"(?<![:\w]):(\w+)")  # as store/sql.py binds

CAPTURE_CHILD = """
import atexit, json, os, sys
from lakelens.store import sql
seen = []
for cls in (sql.SqliteReader, sql.PostgresReader):
    def run(self, text, params, _original=cls._run):
        seen.append([text, params])
        return _original(self, text, params)
    cls._run = run
def dump():
    with open(os.environ["LAKELENS_BENCH_CAPTURE"], "w") as out:
        json.dump(seen, out)
atexit.register(dump)
from lakelens.cli.main import main
sys.argv = ["lakelens", *sys.argv[1:]]
main()
"""


def capture(args: list[str], env: Mapping[str, str], cwd: Path) -> list[tuple[str, dict[str, Any]]]:
    """The (SQL, parameters) a `lakelens ARGS` run reads through the plain-SQL readers."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        target = Path(handle.name)
    try:
        done = subprocess.run(
            [sys.executable, "-c", CAPTURE_CHILD, *args],
            cwd=cwd,
            env={**env, "LAKELENS_BENCH_CAPTURE": str(target)},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise SystemExit(f"capturing `lakelens {' '.join(args)}` failed:\n{done.stderr}")
        return [(text, params) for text, params in json.loads(target.read_text())]
    finally:
        target.unlink(missing_ok=True)


def literal(value: Any, dialect: str) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        if dialect == "sqlite":
            return "1" if value else "0"
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def script(statements: list[tuple[str, dict[str, Any]]], dialect: str) -> str:
    """The statements as one script, each parameter written in as a literal."""
    out = []
    for text, params in statements:
        bound = _BIND.sub(lambda m, p=params: literal(p[m.group(1)], dialect), text)
        out.append(bound.strip().rstrip(";") + ";")
    return "\n".join(out) + "\n"


def client_argv(dialect: str, target: str, path: Path) -> list[str]:
    """`sqlite3 FILE` or `psql URL` reading the script at `path`, quietly."""
    if dialect == "sqlite":
        return ["sqlite3", "-batch", target, f".read {path}"]
    return ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", target, "-f", str(path)]


def environment(database_url: str | None) -> dict[str, str]:
    """The caller's environment without LAKELENS_* variables, plus the database URL if any."""
    skip = ("LAKELENS_", "LOG_CORRELATION")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    if database_url:
        env["LAKELENS_DATABASE_URL"] = database_url
    return env
