"""`lakelens logs --json` loads only what it prints with: start-up is most of its time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from _support import cli_loads
from lakelens.events import Batch
from lakelens.store import Store


@pytest.mark.parametrize(
    "args",
    [
        ["logs", "--grep", "timeout", "--since", "7d", "--json"],
        ["logs", "--run-id", "run-1", "--json"],
    ],
)
def test_logs_json_does_not_import_rich(store_url: str, tmp_path: Path, args: list[str]) -> None:
    """rich is 20-50 ms of `logs` start-up, and JSON Lines never goes through it; nor does
    psycopg need importlib.metadata (10-14 ms) for its version strings."""
    store = Store(store_url)
    batch = Batch()
    batch.logs.append((1.0e9, 40, "Timeout after 30s", None, "run-1", "a", "j", None, None, None))
    store.write(batch)
    store.close()
    output = cli_loads(
        args, store_url, tmp_path, ["rich", "lakelens.analysis.assets", "importlib.metadata"]
    )
    lines = output.splitlines()
    assert "EXIT 0 False False False" in lines, output
    if "--run-id" in args:  # the record itself was printed
        assert '"Timeout after 30s"' in lines[0], output


def test_psycopg_imported_the_light_way_knows_its_version() -> None:
    pytest.importorskip("psycopg_binary", reason="the version check is psycopg-binary's")
    script = (
        "from lakelens.store.postgres import import_psycopg\n"
        "psycopg = import_psycopg()\n"
        "import psycopg_binary, sys\n"
        "print(psycopg.__version__, psycopg_binary.__version__, 'importlib.metadata' in sys.modules)\n"
        "from importlib import metadata\n"
        "print(metadata.version('psycopg'), metadata.version('psycopg-binary'), False)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    light, metadata = done.stdout.strip().splitlines()
    assert light == metadata, done.stdout + done.stderr
