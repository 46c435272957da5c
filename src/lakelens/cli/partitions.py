"""`lakelens runs partitions --job J`: each partition's latest outcome, as a row of cells."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

from lakelens.cli._common import HomeOption, JsonOption, NoColorOption

if TYPE_CHECKING:
    from datetime import tzinfo

    from rich.console import Console

    from lakelens.analysis.partitions import PartitionGrid

# One cell per partition, coloured by the outcome of its latest run.
CELL = {
    "success": ("■", "green"),
    "failure": ("■", "red"),
    "running": ("■", "yellow"),
    "canceled": ("■", "bright_black"),
    "skipped": ("■", "bright_black"),
    "missing": ("□", "bright_black"),
}
# Plain-text cells, for --no-color and pipes: the outcome must still be readable.
PLAIN = {
    "success": "#",
    "failure": "X",
    "running": "~",
    "canceled": "c",
    "skipped": "s",
    "missing": ".",
}
# Failed partitions listed under the cells (newest first).
FAILED_ROWS = 10


def partitions(
    job: str = typer.Option(..., "--job", "-j", help="The partitioned job."),
    since: Optional[str] = typer.Option(  # noqa: UP045
        None, "--since", help="Only runs started after: 30m, 2h, 7d or an ISO time (UTC)."
    ),
    limit: int = typer.Option(
        500, "--limit", "-n", min=0, help="Show the last N partitions (0: all; --json has all)."
    ),
    tz: Optional[str] = typer.Option(  # noqa: UP045
        None, "--tz", help="Show times in this zone (default: $LAKELENS_TIMEZONE or UTC)."
    ),
    json_output: bool = JsonOption,
    home: Optional[str] = HomeOption,  # noqa: UP045
    no_color: bool = NoColorOption,
) -> None:
    """Show a partitioned job's partitions in order, each coloured by the outcome of its latest
    run, with counts of succeeded, failed, running and missing partitions.

    Example: lakelens runs partitions --job daily_sales --since 30d
    """
    import time

    from lakelens.analysis.partitions import partition_grid
    from lakelens.cli._common import make_console, open_store
    from lakelens.display import display_zone
    from lakelens.units import parse_since

    zone = display_zone(tz)
    start = parse_since(since, now=time.time()) if since else None
    with open_store(home).reader() as db:
        grid = partition_grid(db, job, since=start)
    if json_output:
        from lakelens.cli._output import print_json

        print_json(grid.to_dict())
        return
    render(make_console(no_color), grid, limit, zone)


def render(console: Console, grid: PartitionGrid, limit: int, zone: tzinfo) -> None:
    from rich.markup import escape
    from rich.text import Text

    from lakelens.display import format_moment

    plain = console.no_color or console.color_system is None
    counts = grid.counts
    console.print(
        f"[bold]{escape(grid.job)}[/]: {len(grid.cells):,} partitions"
        + (f" [dim](every {escape(grid.step)})[/]" if grid.step else "")
    )
    if not grid.cells:
        console.print("No partitioned runs in this period.")
        return
    shown = grid.cells if limit == 0 else grid.cells[-limit:]
    summary = Text()
    for outcome, n in counts.items():
        if n or outcome in ("success", "failure"):
            mark, style = CELL[outcome]
            summary.append(PLAIN[outcome] if plain else mark, style=None if plain else style)
            summary.append(f" {n:,} {outcome}   ")
    console.print(summary)
    cells = Text(no_wrap=False, overflow="fold")
    for cell in shown:
        mark, style = CELL[cell.outcome]
        cells.append(PLAIN[cell.outcome] if plain else mark, style=None if plain else style)
    console.print(cells)
    first, last = shown[0].partition, shown[-1].partition
    console.print(f"[dim]{escape(first)} … {escape(last)}[/]" if first != last else escape(first))
    if len(shown) < len(grid.cells):
        console.print(
            f"[dim]The last {len(shown):,} of {len(grid.cells):,} partitions "
            "(--limit 0 shows all; --json lists them).[/]"
        )
    failed = [c for c in reversed(grid.cells) if c.outcome == "failure"]
    if failed:
        console.print("\n[bold]Failed partitions[/] [dim](latest run of each; newest first)[/]")
        for cell in failed[:FAILED_ROWS]:
            console.print(
                f"  [red]✗[/] {escape(cell.partition)}  run {escape(cell.run_id or '-')}  "
                f"[dim]{escape(format_moment(cell.start_time, zone))}"
                + (f", {cell.runs} runs" if cell.runs > 1 else "")
                + "[/]"
            )
        if len(failed) > FAILED_ROWS:
            console.print(f"  [dim]… and {len(failed) - FAILED_ROWS:,} more (--json lists them)[/]")
