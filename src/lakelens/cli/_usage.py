"""Downstream usage as the CLI shows it (`metrics asset`, `lineage impact`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from lakelens.analysis.usage import AtStake, Usage

__all__ = ["render_at_stake", "render_usage"]

# Readers listed; the rest are counted (all of them with --json).
SHOWN = 10


def render_usage(usage: Usage, console: Console) -> None:
    """The "Downstream usage" block: the summary, then one line per reader, busiest first."""
    from rich.markup import escape

    from lakelens.analysis.usage import rate_text
    from lakelens.display import format_moment

    console.print(f"\n[bold]Downstream usage[/] [dim](last {usage.window_days:g} days)[/]")
    if not usage.readers:
        console.print(f"  [dim]{escape(usage.summary)}[/]")
        return
    console.print(f"  {escape(usage.summary)}")
    now = time.time()
    shown = usage.readers[:SHOWN]
    for index, reader in enumerate(shown):
        last = index == len(shown) - 1 and len(usage.readers) <= SHOWN
        via = f" via {reader.via}" if reader.via and reader.via != reader.name else ""
        console.print(
            f"  {'└─' if last else '├─'} {escape(reader.name)} [dim]({reader.kind}{escape(via)})[/]"
            f" → {rate_text(reader.per_day, reader.kind)}"
            f" [dim]· last {format_moment(reader.last, now=now)}[/]"
        )
    if len(usage.readers) > SHOWN:
        console.print(f"  └─ [dim]… and {len(usage.readers) - SHOWN} more (all with --json)[/]")


def render_at_stake(at_stake: AtStake, console: Console) -> None:
    """One line of what an impact puts at stake, and the most used assets it reaches."""
    from rich.markup import escape

    from lakelens.analysis.usage import rate_text

    console.print(f"  At stake: {escape(at_stake.summary)}")
    for use in at_stake.ranked[:5]:
        rates = [
            rate_text(n, kind)
            for n, kind in ((use.reads_per_day, "job"), (use.views_per_day, "dashboard"))
            if n
        ]
        console.print(f"    [dim]·[/] {escape(use.name)} → {', '.join(rates)}")
