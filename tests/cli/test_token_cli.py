"""`lakelens token create`: a token shown once, the lakelens.yaml entry that accepts it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from lakelens.cli.main import app
from lakelens.config import load_settings
from lakelens.server.security import Access
from lakelens.server.tokens import declared_tokens, hash_token

runner = CliRunner()


def _accepts(tmp_path: Path, snippet: str, token: str) -> Access:
    path = tmp_path / "lakelens.yaml"
    path.write_text(snippet, encoding="utf-8")
    access = Access(tokens=declared_tokens(load_settings(env={"LAKELENS_CONFIG": str(path)})))
    assert access.token(token) is not None
    assert access.token(token + "x") is None
    return access


def test_create_prints_the_token_once_and_the_entry_that_accepts_it(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["token", "create", "--scope", "ingest", "--scope", "read", "--name", "airflow"]
    )
    assert result.exit_code == 0, result.output
    tokens = re.findall(r"llk_[A-Za-z0-9_-]{43}", result.output)
    assert len(tokens) == 1 and result.output.count(tokens[0]) == 1
    token = tokens[0]
    assert "shown this once" in result.output
    snippet = result.output[result.output.index("server:") :]
    assert f"hash: {hash_token(token)}" in snippet and "scopes: [ingest, read]" in snippet
    access = _accepts(tmp_path, snippet, token)
    assert access.allows(f"Bearer {token}", scope="ingest")
    assert not access.allows(f"Bearer {token}", scope="admin")
    # Every token is new.
    again = runner.invoke(app, ["token", "create", "--scope", "ingest"])
    assert token not in again.output and "name: ingest" in again.output


def test_create_json(tmp_path: Path) -> None:
    result = runner.invoke(app, ["token", "create", "-s", "admin", "-s", "read", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["name"] == "read-admin" and data["scopes"] == ["read", "admin"]
    assert data["hash"] == hash_token(data["token"]) and data["hash"] in data["yaml"]
    assert data["token"] not in data["yaml"]
    _accepts(tmp_path, data["yaml"], data["token"])


def test_a_bad_scope_or_name_is_one_line_with_exit_code_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKELENS_")}
    for args, message in (
        (["--scope", "write"], "Error: Unknown --scope 'write': use ingest, read or admin."),
        ([], "Error: Give at least one --scope: use ingest, read or admin."),
        (
            ["--scope", "read", "--name", "two words"],
            "Error: Invalid token name 'two words': use up to 64 letters, digits, '.', '_', "
            "'@' or '-'.",
        ),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "lakelens", "token", "create", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.strip().splitlines() == [message]
        assert proc.stdout == "" and "llk_" not in proc.stderr
