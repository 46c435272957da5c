"""`--watch N`: a command's view redrawn every N seconds until Ctrl-C, like watch(1)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["watch", "watch_interval"]

# Cursor home, then erase to the end of the screen: the next frame overwrites the last in
# place (no blank flash, and the scrollback above is left alone).
_REDRAW = "\x1b[H\x1b[J"


def watch_interval(value: str | None, *, json_output: bool) -> float | None:
    """Seconds between frames (None without --watch); a bad value is one line and exit 2."""
    if value is None:
        return None
    from lakelens.cli._output import fail
    from lakelens.errors import InvalidArgumentError
    from lakelens.units import parse_duration

    if json_output:
        fail(
            "--watch redraws a view for people and cannot be combined with --json; "
            "to poll JSON, run the command with --json in a loop.",
            code=2,
        )
    try:
        seconds = parse_duration(value, name="--watch")
    except InvalidArgumentError:
        seconds = 0.0
    if seconds < 1:
        fail(
            f"Invalid --watch {value!r}: give the seconds between redraws, 1 or more "
            "(--watch 5, --watch 1m).",
            code=2,
        )
    return seconds


def watch(draw: Callable[[Console], None], every: float, console: Console, *, title: str) -> None:
    """Call `draw` every `every` seconds until Ctrl-C, which ends the watch quietly (exit 0).

    On a terminal each frame replaces the last; piped, frames follow one another."""
    from rich.markup import escape

    from lakelens.display import format_moment
    from lakelens.units import format_duration

    every_text = f"{every:g}s" if every < 60 else format_duration(every)  # '1s', not '1.0s'
    try:
        while True:
            started, started_at = time.monotonic(), time.time()
            with console.capture() as frame:
                console.print(
                    f"[dim]Every {every_text}: {escape(title)} · "
                    f"{format_moment(started_at, now=started_at)} · Ctrl-C stops[/]"
                )
                draw(console)
            text = frame.get()
            if console.is_terminal:
                text = _REDRAW + text
            else:
                text += "\n"
            console.file.write(text)
            console.file.flush()
            time.sleep(max(0.0, every - (time.monotonic() - started)))
    except KeyboardInterrupt:
        # Ctrl-C is how a watch ends, not an error.
        return
