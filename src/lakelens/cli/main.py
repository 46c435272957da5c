"""The `lakelens` Typer app. Command modules are imported lazily so `--help` stays fast."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from typer._click.core import Context

from lakelens._version import __version__
from lakelens.cli._common import RootTzOption
from lakelens.errors import LakelensError


class _Group(TyperGroup):
    """The error boundary: a LakelensError becomes one red line and exit code 1, never a traceback."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except LakelensError as exc:
            from lakelens.cli._output import fail

            fail(str(exc))


app = typer.Typer(
    cls=_Group,
    name="lakelens",
    help="Observability for data pipelines: metrics, logs, traces, lineage and alerts.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
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
    home: str | None = typer.Option(
        None,
        "--home",
        help="Store directory for every command that follows (as LAKELENS_HOME; a command's "
        "own --home wins).",
    ),
    tz: str | None = RootTzOption,
) -> None:
    """Observability for data pipelines: metrics, logs, traces, lineage and alerts."""
    if home is not None:
        import os

        # Every command reads its settings through load_settings, which reads LAKELENS_HOME.
        os.environ["LAKELENS_HOME"] = home


from lakelens.cli import alerts as _alerts  # noqa: E402
from lakelens.cli import assets as _assets  # noqa: E402
from lakelens.cli import completion as _completion  # noqa: E402
from lakelens.cli import db as _db  # noqa: E402
from lakelens.cli import demo as _demo  # noqa: E402
from lakelens.cli import export as _export  # noqa: E402
from lakelens.cli import health as _health  # noqa: E402
from lakelens.cli import importers as _importers  # noqa: E402
from lakelens.cli import incidents as _incidents  # noqa: E402
from lakelens.cli import lineage as _lineage  # noqa: E402
from lakelens.cli import logs as _logs  # noqa: E402
from lakelens.cli import metrics as _metrics  # noqa: E402
from lakelens.cli import monitor as _monitor  # noqa: E402
from lakelens.cli import profile as _profile  # noqa: E402
from lakelens.cli import runs as _runs  # noqa: E402
from lakelens.cli import serve as _serve  # noqa: E402
from lakelens.cli import token as _token  # noqa: E402
from lakelens.cli import trace as _trace  # noqa: E402
from lakelens.cli import why as _why  # noqa: E402

app.add_typer(_metrics.app, name="metrics")
app.add_typer(_alerts.app, name="alerts")
app.add_typer(_incidents.app, name="incidents")
app.add_typer(_importers.app, name="import")
app.add_typer(_export.app, name="export")
app.add_typer(_db.app, name="db")
app.add_typer(_lineage.app, name="lineage")
app.add_typer(_runs.app, name="runs")
app.add_typer(_token.app, name="token")
app.add_typer(_completion.app, name="completion")
app.add_typer(_monitor.app, name="monitor")
app.command("assets")(_assets.assets)
app.command("profile")(_profile.profile)
app.command("logs")(_logs.logs)
app.command("trace")(_trace.trace)
app.command("why")(_why.why)
app.command("demo")(_demo.demo)
app.command("serve")(_serve.serve)
app.command("health")(_health.health)


def main() -> None:
    """Console entry point."""
    if _completion.COMPLETE_VAR in os.environ:  # the shell asks for completions
        _completion.enable()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
