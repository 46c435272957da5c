"""`lakelens runs`: recent runs, newest first, with their check outcomes; `runs diff` and
`runs partitions` are its subcommands."""

from __future__ import annotations

from typing import Optional

import typer

from lakelens.cli import partitions as _partitions
from lakelens.cli import run_diff as _run_diff
from lakelens.cli._common import HomeOption, JsonOption, NoColorOption

# A group that still lists runs when no subcommand follows: `lakelens runs --since 1d`.
app = typer.Typer(invoke_without_command=True, no_args_is_help=False)


@app.callback()
def runs(
    ctx: typer.Context,
    job: Optional[str] = typer.Option(None, "--job", "-j", help="Only runs of this job."),  # noqa: UP045
    asset: Optional[str] = typer.Option(  # noqa: UP045
        None, "--asset", "-a", help="Only runs that materialized this asset."
    ),
    status: Optional[str] = typer.Option(  # noqa: UP045
        None, "--status", "-s", help="queued, started, success, failure, canceled or skipped."
    ),
    partition: Optional[str] = typer.Option(  # noqa: UP045
        None, "--partition", "-p", help="Only runs of this partition."
    ),
    since: Optional[str] = typer.Option(  # noqa: UP045
        None, "--since", help="Started after: 30m, 2h, 7d or an ISO time (UTC)."
    ),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="Show the newest N runs."),
    json_output: bool = JsonOption,
    home: Optional[str] = HomeOption,  # noqa: UP045
    no_color: bool = NoColorOption,
) -> None:
    """List runs newest first, filtered by job, asset, status, partition and start time, with
    passed and failed checks. Times are UTC.

    Example: lakelens runs --status failure --since 1d
    """
    if ctx.invoked_subcommand is not None:
        return
    import time

    from lakelens.analysis.assets import resolve_asset
    from lakelens.analysis.runs import RunFilter, list_runs
    from lakelens.cli._common import open_store
    from lakelens.units import parse_since

    where = RunFilter(
        job=job,
        status=status,
        partition=partition,
        since=parse_since(since, now=time.time()) if since else None,
    )
    with open_store(home).reader() as db:
        if asset is not None:
            where.asset = resolve_asset(db, asset)
        page = list_runs(db, where, limit=limit)
    if json_output:
        from lakelens.cli._output import print_json

        print_json(page.to_dict())
        return
    _table(page, where, limit, no_color)


app.command("diff")(_run_diff.diff)
app.command("partitions")(_partitions.partitions)


def _table(page: object, where: object, limit: int, no_color: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    from lakelens.analysis.runs import RunPage
    from lakelens.cli._common import make_console, status_text
    from lakelens.display import format_moment
    from lakelens.units import format_duration

    assert isinstance(page, RunPage)
    console = make_console(no_color)
    if not page.runs:
        console.print("No runs match these filters.")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("Started", "Run", "Job", "Status", "Duration", "Partition", "Assets"):
        table.add_column(column, no_wrap=column != "Job")
    table.add_column("Checks", no_wrap=True)
    for item in page.runs:
        run = item.run
        checks = ""
        if item.checks_passed or item.checks_failed:
            checks = f"[green]{item.checks_passed} passed[/]"
            if item.checks_failed:
                checks += f", [red]{item.checks_failed} failed[/]"
        status = status_text(run.status)
        if item.last_record is not None:
            # Known only from log records: a log line never says the run ended.
            status += f" [dim]no end reported, last record {format_moment(item.last_record)}[/]"
        table.add_row(
            format_moment(run.start_time, missing="-"),
            escape(run.run_id[:12]),
            escape(run.job),
            status,
            format_duration(run.duration_seconds) if run.duration_seconds is not None else "-",
            escape(run.partition or "-"),
            str(item.assets),
            checks or "[dim]-[/]",
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"[dim]Newest {limit} shown; --limit N shows more.[/]")
