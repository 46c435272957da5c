"""The CLI skeleton: light start-up, version, db commands, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from lakelens import __version__
from lakelens.cli.main import app
from lakelens.store.schema import HEAD_REVISION

runner = CliRunner()
HEAVY = (
    "sqlalchemy",
    "alembic",
    "fastapi",
    "starlette",
    "opentelemetry",
    "dagster",
    "dbt",
    "dlt",
    "psycopg",
)


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["db", "--help"], ["demo", "--help"]])
def test_help_does_not_import_heavy_libraries(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from lakelens.cli.main import app\n"
        "try:\n"
        f"    app({args!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_import_lakelens_is_light() -> None:
    code = f"import sys, lakelens; print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"lakelens {__version__}"


def test_every_command_has_help_text() -> None:
    import typer.main

    group = typer.main.get_command(app)

    def walk(command, path):  # type: ignore[no-untyped-def]
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    commands = list(walk(group, []))
    assert len(commands) >= 5
    for path, command in commands:
        assert command.help and command.help.strip(), (
            f"`lakelens {' '.join(path)}` has no help text"
        )
        if not getattr(command, "commands", None) and path:
            assert "Example:" in command.help, f"`lakelens {' '.join(path)}` help has no example"


def test_db_upgrade_creates_then_reports_up_to_date(tmp_path) -> None:
    home = str(tmp_path / "home")
    first = runner.invoke(app, ["db", "upgrade", "--home", home])
    assert first.exit_code == 0, first.output
    assert "Upgraded store" in first.output and f"empty → {HEAD_REVISION}" in first.output
    again = runner.invoke(app, ["db", "upgrade", "--home", home, "--json"])
    assert again.exit_code == 0, again.output
    data = json.loads(again.output)
    assert (
        data["changed"] is False
        and data["after"] == HEAD_REVISION
        and data["location"].endswith("lakelens.db")
    )


def test_db_prune_reports_deleted_rows(tmp_path) -> None:
    import time

    from lakelens.events import Batch
    from lakelens.model import Run
    from lakelens.store import Store

    home = tmp_path / "home"
    store = Store(f"sqlite:///{(home / 'lakelens.db').resolve()}")
    batch = Batch()
    batch.add(Run("old", "job", start_time=time.time() - 40 * 86400))  # type: ignore[arg-type]
    batch.add(Run("new", "job", start_time=time.time()))  # type: ignore[arg-type]
    store.write(batch)
    store.close()
    result = runner.invoke(app, ["db", "prune", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["deleted"]["runs"] == 1 and data["older_than_days"] == 30
    text = runner.invoke(app, ["db", "prune", "--home", str(home), "--older-than-days", "0"])
    assert text.exit_code == 0 and "Deleted 1 rows older than 0 days" in text.output


def test_user_errors_are_one_red_line_without_traceback(tmp_path) -> None:
    env = {"LAKELENS_RETENTION_DAYS": "soon", "PATH": "", "LAKELENS_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "lakelens", "db", "prune"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "Error: Invalid LAKELENS_RETENTION_DAYS='soon': expected a whole number of days above 0."
    )
    assert "Traceback" not in proc.stderr


def test_unreachable_database_is_a_clear_error(tmp_path) -> None:
    env = {"LAKELENS_DATABASE_URL": "mysql://x@127.0.0.1/db", "LAKELENS_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "lakelens", "db", "upgrade"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert (
        "Unsupported database 'mysql'" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    )


def test_every_command_is_documented() -> None:
    """Each leaf command has a `lakelens …` heading in docs/cli.md (as sqlite-utils does)."""
    from pathlib import Path

    import typer.main

    docs = (Path(__file__).parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")

    def leaves(command, path):  # type: ignore[no-untyped-def]
        subs = getattr(command, "commands", None)
        if not subs:
            yield " ".join(path)
        for name, sub in (subs or {}).items():
            yield from leaves(sub, [*path, name])

    missing = [
        p for p in leaves(typer.main.get_command(app), []) if f"## `lakelens {p}`" not in docs
    ]
    assert missing == [], f"undocumented commands: {missing}"


def test_home_is_accepted_before_the_subcommand(pipeline_home, monkeypatch) -> None:
    monkeypatch.delenv("LAKELENS_HOME", raising=False)
    home, _ = pipeline_home
    before = CliRunner().invoke(app, ["--home", str(home), "metrics", "summary", "--json"])
    after = CliRunner().invoke(app, ["metrics", "summary", "--json", "--home", str(home)])
    assert before.exit_code == 0, before.output
    assert json.loads(before.output)["runs"] == json.loads(after.output)["runs"]
    assert json.loads(before.output)["runs"]["total"] > 0
