"""Shared CLI output helpers: consoles, the one-line error, JSON printing."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

__all__ = ["console", "err_console", "fail", "print_json"]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 1) -> None:
    """Print one red line to stderr and exit with `code`."""
    import typer
    from rich.markup import escape

    # The message may quote user input (asset names, paths): never read it as markup.
    err_console.print(f"[red]Error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    """Stable, plain JSON to stdout (no colour, no wrapping)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
