"""`lakelens completion`: tab completion of commands, options and values in your shell.

A command rather than typer's `--install-completion`: the shell can be named (detection fails
in containers and CI), and nothing is added to the start-up of other commands. The scripts
and the answers to the shell are typer's own.
"""

from __future__ import annotations

import typer

__all__ = ["COMPLETE_VAR", "app", "enable"]

PROG = "lakelens"
# The variable the completion scripts set when they ask `lakelens` for completions.
COMPLETE_VAR = "_LAKELENS_COMPLETE"
SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")

app = typer.Typer(
    help="Shell completion: print or install the script that completes lakelens commands.",
    no_args_is_help=True,
)

ShellArgument = typer.Argument(
    None,
    metavar="[SHELL]",
    help="bash, zsh, fish or powershell (default: the shell this runs in).",
    show_default=False,
)


def _shell(name: str | None) -> str:
    from lakelens.errors import InvalidArgumentError

    if name is None:
        import shellingham

        try:
            name = str(shellingham.detect_shell()[0])
        except shellingham.ShellDetectionFailure:
            raise InvalidArgumentError(
                "Cannot tell which shell this is; name it: "
                "lakelens completion install bash|zsh|fish|powershell"
            ) from None
    shell = name.strip().lower()
    if shell not in SHELLS:
        raise InvalidArgumentError(
            f"Unsupported shell {name!r}: completion works in bash, zsh, fish and powershell."
        )
    return shell


@app.command()
def show(shell: str | None = ShellArgument) -> None:
    """Print the completion script, to source it yourself or keep it with your dotfiles.

    Example: lakelens completion show zsh > ~/.zfunc/_lakelens
    """
    from typer.completion import get_completion_script

    typer.echo(
        get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=_shell(shell))
    )


@app.command()
def install(shell: str | None = ShellArgument) -> None:
    """Install completion for your shell: bash in ~/.bash_completions (sourced from ~/.bashrc),
    zsh in ~/.zfunc (with compinit in ~/.zshrc), fish in ~/.config/fish/completions. It works
    in shells started afterwards.

    Example: lakelens completion install bash
    """
    from typer.completion import install as install_script

    from lakelens.cli._output import console

    name, path = install_script(shell=_shell(shell), prog_name=PROG, complete_var=COMPLETE_VAR)
    console.print(f"Installed {name} completion in {path}; it works in new shells.", soft_wrap=True)


def enable() -> None:
    """Answer a shell asking for completions (COMPLETE_VAR set) with typer's completion classes,
    which its scripts expect; `add_completion=False` leaves them unregistered."""
    from typer.completion import completion_init

    completion_init()
