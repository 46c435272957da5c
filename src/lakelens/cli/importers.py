"""`lakelens import`: bring in what other tools recorded (dbt artifacts)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from lakelens.cli._common import HomeOption, JsonOption, NoColorOption

if TYPE_CHECKING:
    from rich.console import Console

    from lakelens.integrations.dbt import ImportResult

app = typer.Typer(help="Import what other tools recorded: dbt artifacts.", no_args_is_help=True)


@app.command("dbt")
def dbt(
    target: Path = typer.Argument(
        ..., help="The dbt target/ directory (where dbt writes manifest.json), or the project."
    ),
    column_lineage: bool = typer.Option(
        True,
        "--column-lineage/--no-column-lineage",
        help="Derive column lineage from each model's compiled SQL (sqlglot).",
    ),
    jobs: int = typer.Option(
        0,
        "--jobs",
        "-j",
        min=0,
        help="Processes deriving column lineage (0: one per core for a big project).",
    ),
    home: Optional[str] = HomeOption,  # noqa: UP045
    json_output: bool = JsonOption,
    no_color: bool = NoColorOption,
) -> None:
    """Import a dbt target/ directory: the project's graph, the run, its tests and freshness.

    Reads manifest.json (models, seeds, snapshots, sources, exposures, lineage, columns),
    run_results.json (the run, materializations, test results) and sources.json (source
    freshness). Importing the same artifacts again adds nothing; run it after every dbt
    command, since each one overwrites run_results.json.

    Example: dbt build && lakelens import dbt target/
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from lakelens.cli._common import make_console, open_store
    from lakelens.cli._output import err_console, print_json
    from lakelens.integrations.dbt import import_artifacts
    from lakelens.integrations.dbt_column_jobs import Ahead

    # Column lineage is derived ahead, by a forked process, while the store opens and the
    # artifacts are read and converted; the import takes what it derived.
    ahead = Ahead.begin(target, jobs or None) if column_lineage else None
    store = None
    try:
        store = open_store(home, create=True)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            console=err_console,
            transient=True,
            disable=json_output,
        ) as progress:
            task = progress.add_task(f"Importing dbt artifacts from {target}", total=None)
            result = import_artifacts(
                target,
                store=store,
                progress=lambda message: progress.update(task, description=message),
                column_lineage=column_lineage,
                workers=jobs or None,
                ahead=ahead,
            )
    finally:
        if ahead is not None:
            ahead.close()
        if store is not None:
            store.close()
    if json_output:
        print_json(result.to_dict())
        return
    _summary(result, make_console(no_color))


def _summary(result: ImportResult, console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    version = f"dbt {result.dbt_version}, " if result.dbt_version else ""
    console.print(
        f"[bold]Imported dbt artifacts[/] from {escape(result.target)} "
        f"[dim]({escape(version)}manifest v{result.manifest_version})[/]"
    )
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("What", style="dim")
    table.add_column("Count", justify="right")
    table.add_column("Details")
    problems = [
        *([f"[red]{result.failed_checks} failing[/]"] if result.failed_checks else []),
        *([f"[yellow]{result.warned_checks} warning[/]"] if result.warned_checks else []),
    ]
    failed = ", ".join(problems) or "all passing"
    stale = f"[yellow]{result.stale_sources} stale[/]" if result.stale_sources else "all fresh"
    rows = [
        ("assets", result.assets, ""),
        ("lineage edges", result.edges, ""),
        ("schema snapshots", result.schemas, "[dim]stored when the columns changed[/]"),
        ("runs", result.runs, escape(", ".join(result.run_ids))),
        ("materializations", result.materializations, ""),
        ("test results", result.checks, failed if result.checks else ""),
        ("freshness checks", result.freshness, stale if result.freshness else ""),
    ]
    for label, count, details in rows:
        table.add_row(label, str(count), details)
    console.print(table)
    if result.already_imported:
        console.print("[dim]These runs were imported before; nothing was duplicated.[/]")
