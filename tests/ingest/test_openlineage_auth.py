"""Every openlineage-python configuration docs/integrations/openlineage.md shows authenticates.

Each `sh` block of the page runs as it is written (the port and token filled in) in a
subprocess with a clean environment, with the real client, against a token-protected
`lakelens serve`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).parents[2] / "docs" / "integrations" / "openlineage.md"
TOKEN = "s3cret-ol-token"

_EMIT = """
import sys
from datetime import datetime, timezone

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

client = OpenLineageClient()
client.emit(
    RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=datetime.now(timezone.utc).isoformat(),
        run=Run(runId=sys.argv[1]),
        job=Job(namespace="docs", name="auth"),
        producer="https://example.com/lakelens-tests",
    )
)
client.close(timeout=20)
print(type(client.transport).__name__)
"""


def _documented() -> list[dict[str, str]]:
    """The environment of each `sh` block of the page."""
    blocks = re.findall(r"```sh\n(.*?)```", DOCS.read_text(), flags=re.S)
    found = []
    for block in blocks:
        pairs = re.findall(r"^export (\w+)=(\S+)", block, flags=re.M)
        assert pairs, f"a sh block without exports: {block!r}"
        found.append(dict(pairs))
    return found


def _emit(
    tmp_path: Path, variables: dict[str, str], port: int
) -> tuple[str, subprocess.CompletedProcess[str]]:
    """(run id, the process) after the real client sent one COMPLETE from a clean env; the
    process prints the transport's class."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    for key, value in variables.items():
        env[key] = value.replace("$LAKELENS_API_TOKEN", TOKEN).replace("8765", str(port))
    run_id = str(uuid.uuid4())
    done = subprocess.run(
        [sys.executable, "-c", _EMIT, run_id],
        env=env,
        cwd=tmp_path,  # no openlineage.yml from anywhere else
        capture_output=True,
        text=True,
        timeout=60,
    )
    return run_id, done


def _stored(server: Any, run_id: str) -> bool:
    runs = server.get("/api/v1/runs", job="docs/auth")["runs"]
    return run_id in {r["run_id"] for r in runs}


def test_the_page_shows_the_three_configurations() -> None:
    documented = _documented()
    assert [v.get("OPENLINEAGE__TRANSPORT__TYPE") for v in documented] == [
        None,
        "http",
        "async_http",
    ]
    # The client ignores auth keys beside OPENLINEAGE_URL: no block may suggest that.
    for variables in documented:
        assert not (
            "OPENLINEAGE_URL" in variables and "OPENLINEAGE__TRANSPORT__AUTH__TYPE" in variables
        )


@pytest.mark.parametrize("index", range(3), ids=["url_api_key", "http_transport", "async_http"])
def test_each_documented_configuration_authenticates(
    index: int, serve_ol: Any, tmp_path: Path
) -> None:
    server = serve_ol(token=TOKEN)
    run_id, done = _emit(tmp_path, _documented()[index], server.port)
    assert done.returncode == 0, done.stderr
    transport = done.stdout.strip()
    assert transport in ("HttpTransport", "AsyncHttpTransport")
    assert _stored(server, run_id), f"the {transport} request was not stored"


def test_auth_keys_beside_openlineage_url_are_ignored_by_the_client(
    serve_ol: Any, tmp_path: Path
) -> None:
    """What the page used to show: the client sends no key, the server answers 401."""
    server = serve_ol(token=TOKEN)
    old = {
        "OPENLINEAGE_URL": "http://127.0.0.1:8765",
        "OPENLINEAGE__TRANSPORT__AUTH__TYPE": "api_key",
        "OPENLINEAGE__TRANSPORT__AUTH__APIKEY": "$LAKELENS_API_TOKEN",
    }
    run_id, done = _emit(tmp_path, old, server.port)
    assert "401" in done.stderr
    assert not _stored(server, run_id)
