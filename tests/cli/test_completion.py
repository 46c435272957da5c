"""`lakelens completion`: the scripts, their installation, and a real bash completing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lakelens.cli.main import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        ("bash", "complete -o default -F _lakelens_completion lakelens"),
        ("zsh", "compdef _lakelens_completion lakelens"),
        ("fish", "complete --command lakelens --no-files"),
    ],
)
def test_show_prints_the_script_of_the_named_shell(shell: str, expected: str) -> None:
    result = runner.invoke(app, ["completion", "show", shell])
    assert result.exit_code == 0, result.output
    assert expected in result.output
    assert f"_LAKELENS_COMPLETE=complete_{shell}" in result.output


def test_an_unsupported_shell_is_one_line() -> None:
    result = runner.invoke(app, ["completion", "show", "tcsh"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: Unsupported shell 'tcsh': completion works in bash, zsh, fish and powershell."
    )


def test_install_writes_the_script_and_sources_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".bashrc").write_text("alias ll='ls -l'\n")
    for _ in range(2):  # installing again changes nothing
        result = runner.invoke(app, ["completion", "install", "bash"])
        assert result.exit_code == 0, result.output
    script = tmp_path / ".bash_completions" / "lakelens.sh"
    assert "Installed bash completion in" in result.output and "lakelens.sh" in result.output
    assert "_LAKELENS_COMPLETE=complete_bash" in script.read_text()
    bashrc = (tmp_path / ".bashrc").read_text()
    assert bashrc.startswith("alias ll='ls -l'\n") and bashrc.count(f"source '{script}'") == 1
    fish = runner.invoke(app, ["completion", "install", "fish"])
    assert fish.exit_code == 0, fish.output
    assert (tmp_path / ".config" / "fish" / "completions" / "lakelens.fish").is_file()


def test_bash_completes_commands_and_options_through_the_script(tmp_path: Path) -> None:
    """The installed script asks `lakelens` itself (with _LAKELENS_COMPLETE set) for words."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    entry = bin_dir / "lakelens"  # what `pip install` puts on PATH: the console entry point
    entry.write_text(
        f"#!{sys.executable}\nimport sys\nfrom lakelens.cli.main import main\nsys.exit(main())\n"
    )
    entry.chmod(0o755)
    script = runner.invoke(app, ["completion", "show", "bash"]).output
    (tmp_path / "lakelens.sh").write_text(script)

    def complete(*words: str) -> list[str]:
        line = " ".join(words)
        proc = subprocess.run(
            [
                "bash",
                "-c",
                f"source {tmp_path / 'lakelens.sh'}; COMP_WORDS=({line}); "
                f"COMP_CWORD={len(words) - 1}; _lakelens_completion lakelens; "
                'printf "%s\\n" "${COMPREPLY[@]}"',
            ],
            env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
            capture_output=True,
            text=True,
            check=True,
        )
        return proc.stdout.split()

    assert complete("lakelens", "met") == ["metrics"]
    assert complete("lakelens", "metrics", "summary", "--wa") == ["--watch"]
    assert "--tz" in complete("lakelens", "logs", "--t")
