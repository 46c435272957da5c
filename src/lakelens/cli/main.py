"""The `lakelens` Typer app. Command modules are imported lazily so `--help` stays fast."""

from __future__ import annotations

import sys

import typer

from lakelens._version import __version__

app = typer.Typer(
    name="lakelens",
    help="Observability for data pipelines: metrics, logs, traces, lineage and alerts.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lakelens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Observability for data pipelines: metrics, logs, traces, lineage and alerts."""


from lakelens.cli import db as _db  # noqa: E402
from lakelens.cli import demo as _demo  # noqa: E402

app.add_typer(_db.app, name="db")
app.command("demo")(_demo.demo)


def main() -> None:
    """Console entry point: LakelensError becomes one red line and exit code 1, never a traceback."""
    from lakelens.errors import LakelensError

    try:
        app()
    except LakelensError as exc:
        from lakelens.cli._output import err_console

        err_console.print(f"[red]Error:[/red] {exc}", soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
