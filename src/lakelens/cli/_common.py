"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Optional

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from lakelens.store import Store

HomeOption = typer.Option(
    None, "--home", help="Store directory (default: $LAKELENS_HOME or ./.lakelens)."
)
JsonOption = typer.Option(False, "--json", help="Print JSON (a stable shape) instead of a table.")
NoColorOption = typer.Option(
    False, "--no-color", help="Plain text without colours (also when not a terminal)."
)


def _use_zone(ctx: typer.Context, value: str | None) -> str | None:
    """Check the display zone before any work (a typo is a usage error: one line, exit 2) and
    make --tz the zone of every formatter in this process, as LAKELENS_TIMEZONE would."""
    if ctx.resilient_parsing:  # shell completion
        return value
    from lakelens.display import TIMEZONE_ENV, display_zone
    from lakelens.errors import InvalidArgumentError

    try:
        display_zone(value)  # without --tz: LAKELENS_TIMEZONE, checked here rather than mid-output
    except InvalidArgumentError as exc:
        from lakelens.cli._output import fail

        fail(str(exc), code=2)
    if value:
        previous = os.environ.get(TIMEZONE_ENV)
        os.environ[TIMEZONE_ENV] = value.strip()
        # Back as it was when the command ends: `app()` called twice in one process (tests,
        # scripts) does not carry one command's --tz into the next.
        ctx.call_on_close(lambda: _restore_env(TIMEZONE_ENV, previous))
    return value


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _use_root_zone(ctx: typer.Context, value: str | None) -> str | None:
    """`lakelens --tz ZONE COMMAND`: like a command's own --tz; a bad LAKELENS_TIMEZONE is left
    to the commands that show times, so it never stops `db upgrade`."""
    return _use_zone(ctx, value) if value is not None else None


_TZ_HELP = (
    "Show times in this zone: an IANA name (Europe/Paris), UTC or local (default: "
    "$LAKELENS_TIMEZONE, else UTC). --json stays UTC."
)
TzOption = typer.Option(None, "--tz", metavar="ZONE", callback=_use_zone, help=_TZ_HELP)
RootTzOption = typer.Option(
    None,
    "--tz",
    metavar="ZONE",
    callback=_use_root_zone,
    help="Time zone for every command that follows (as LAKELENS_TIMEZONE; default UTC).",
)
WatchOption = typer.Option(
    None,
    "--watch",
    metavar="N",
    help="Redraw every N seconds (1 or more; 30s and 2m work too) until Ctrl-C.",
)
RowsOption = typer.Option(
    50, "--limit", "-n", min=0, help="Show at most N assets in the table (0: all; --json has all)."
)


def more_line(shown: int, total: int, what: str) -> str | None:
    """'… and 283 more assets (--limit 0 shows all; --json lists them)', or None."""
    if total <= shown:
        return None
    return f"[dim]… and {total - shown:,} more {what} (--limit 0 shows all; --json lists them)[/]"


def open_store(home: Optional[str], *, create: bool = False) -> Store:  # noqa: UP045
    """The store named by --home, LAKELENS_DATABASE_URL or LAKELENS_HOME. Only commands that
    record (`create=True`) make a new one: a read of a typo'd --home says where it looked."""
    from lakelens.config import load_settings
    from lakelens.errors import StoreError
    from lakelens.store import Store

    store = Store(settings=load_settings(home=home))
    if not create and not store.exists():
        raise StoreError(
            f"No lakelens store at {store.location.removeprefix('sqlite:///')}: nothing has been "
            "recorded there. Run `lakelens demo` to try lakelens, or point --home (or "
            "LAKELENS_HOME / LAKELENS_DATABASE_URL) at your store."
        )
    return store


def make_console(no_color: bool) -> Console:
    from rich.console import Console

    console = Console(highlight=False, no_color=no_color or None)
    if not console.is_terminal:
        # Piped or captured: do not wrap long names at 80 columns.
        console = Console(highlight=False, no_color=True, width=200)
    return console


def now() -> float:
    return time.time()


def age(seconds: float | None) -> str:
    """'4m ago', '2.3h ago', or 'never'."""
    from lakelens.units import format_duration

    if seconds is None:
        return "never"
    return f"{format_duration(seconds)} ago"


STATUS_STYLE = {
    "success": ("✓", "green"),
    "failure": ("✗", "red"),
    "started": ("…", "yellow"),
    "canceled": ("⊘", "dim"),
    "skipped": ("–", "dim"),
}


def status_text(status: str | None) -> str:
    """Rich markup for a run status, e.g. '[green]✓ success[/]'."""
    if status is None:
        return "[dim]no runs[/]"
    mark, style = STATUS_STYLE.get(status, ("?", "white"))
    return f"[{style}]{mark} {status}[/]"
