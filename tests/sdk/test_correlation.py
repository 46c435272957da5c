"""A correlation id from outside (LOG_CORRELATION_ID, e.g. a Prefect flow run id) is kept,
searchable and passed on unchanged; real child processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from typer.testing import CliRunner

import lakelens
from lakelens.cli.main import app
from lakelens.store import reads

FLOW_RUN = "prefect-flow-run-42"

# An ECS task started by a Prefect flow: LOG_CORRELATION_ID is the flow run id (as in the seeds).
TASK = textwrap.dedent(
    """
    import os, subprocess, sys, lakelens
    lakelens.configure(database_url=sys.argv[1], log_format="none")
    with lakelens.run(sys.argv[2]):
        lakelens.get_logger("task").info(f"{sys.argv[2]} inside the run")
        print("in-run", os.environ["LOG_CORRELATION_ID"])
        grandchild = "import os; print('grandchild', os.environ['LOG_CORRELATION_ID'])"
        sys.stdout.flush()
        subprocess.run([sys.executable, "-c", grandchild], check=True)
    print("after", os.environ["LOG_CORRELATION_ID"])
    lakelens.flush()
    """
)


def _task(url: str, job: str, env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", TASK, url, job],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_a_foreign_correlation_id_is_kept_searchable_and_passed_on(sdk, tmp_path) -> None:
    env = {**os.environ, "LOG_CORRELATION_ID": FLOW_RUN}
    for job in ("ingestion", "glue"):
        lines = _task(sdk.url, job, env)
        # Not overwritten inside the block, passed on unchanged to children, restored after.
        assert lines == [f"in-run {FLOW_RUN}", f"grandchild {FLOW_RUN}", f"after {FLOW_RUN}"]
    with sdk.connect() as conn:
        runs = reads.runs(conn)
    assert sorted(r.job for r in runs) == ["glue", "ingestion"]
    assert {r.correlation_id for r in runs} == {FLOW_RUN}
    assert FLOW_RUN not in {r.run_id for r in runs}  # the run ids stay lakelens' own

    runner = CliRunner()
    env_args = {"LAKELENS_DATABASE_URL": sdk.url}
    for option in ("--correlation-id", "--run-id"):
        result = runner.invoke(app, ["logs", option, FLOW_RUN], env=env_args)
        assert result.exit_code == 0, result.output
        assert "ingestion inside the run" in result.output
        assert "glue inside the run" in result.output
    other = runner.invoke(app, ["logs", "--correlation-id", "another-flow"], env=env_args)
    assert other.exit_code == 0 and "inside the run" not in other.output

    # The run page shows the correlation id and links the other run of the flow.
    from fastapi.testclient import TestClient

    from lakelens.config import load_settings
    from lakelens.server import create_app

    settings = load_settings(home=str(tmp_path / "web"), database_url=sdk.url)
    first, second = sorted(runs, key=lambda r: r.job)
    with TestClient(create_app(settings, sdk)) as client:
        page = client.get(f"/runs/{first.run_id}")
    assert page.status_code == 200, page.text
    assert f'data-value="{FLOW_RUN}"' in page.text
    assert f'href="/runs/{second.run_id}"' in page.text


def test_without_an_outside_id_the_run_id_is_the_correlation_id(sdk) -> None:
    with lakelens.run("outer") as outer:
        assert os.environ["LOG_CORRELATION_ID"] == outer.run_id
        with lakelens.run("inner") as inner:
            # A nested run keeps the outer run's correlation id.
            assert os.environ["LOG_CORRELATION_ID"] == outer.run_id
    assert "LOG_CORRELATION_ID" not in os.environ
    lakelens.flush()
    with sdk.connect() as conn:
        runs = {r.run_id: r for r in reads.runs(conn)}
    assert runs[outer.run_id].correlation_id == outer.run_id
    assert runs[inner.run_id].correlation_id == outer.run_id
