"""`lakelens db`: create, upgrade and prune the event store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

if TYPE_CHECKING:
    from lakelens.store import Store

app = typer.Typer(
    help="Manage the event store: upgrade the schema, prune old events.", no_args_is_help=True
)


def _store(home: Optional[str]) -> Store:  # noqa: UP045
    from lakelens.config import load_settings
    from lakelens.store import Store

    return Store(settings=load_settings(home=home), auto_upgrade=False)


@app.command()
def upgrade(
    home: str | None = typer.Option(
        None, "--home", help="Store directory (default: $LAKELENS_HOME or ./.lakelens)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Create the store or apply pending schema migrations. Safe to run again.

    Example: lakelens db upgrade --home /var/lib/lakelens
    """
    from lakelens.cli._output import console, print_json

    store = _store(home)
    before, after = store.upgrade()
    # PostgreSQL, logs partitioned by day: the --grep indexes of days that ended, and
    # today's partial ones up to the current hour.
    from lakelens.store.log_search_days import build_today

    indexed = store.index_ended_days()
    hourly = build_today(store.engine, wait=True)
    if json_output:
        print_json(
            {
                "location": store.location,
                "before": before,
                "after": after,
                "changed": before != after,
                "log_search_indexes_built": indexed,
                "log_search_hourly_indexes_built": hourly,
            }
        )
        return
    elif before == after:
        console.print(f"Store at {store.location} is up to date (revision {after}).")
    else:
        console.print(f"Upgraded store at {store.location}: {before or 'empty'} → {after}.")
    if indexed:
        console.print(f"Built {indexed} log search index(es) on days that ended.")
    if hourly:
        console.print(f"Built {hourly} log search index(es) on today's logs up to this hour.")


@app.command()
def prune(
    older_than_days: Optional[float] = typer.Option(  # noqa: UP045
        None,
        "--older-than-days",
        min=0,
        help="Retention in days (default: $LAKELENS_RETENTION_DAYS or 30).",
    ),
    home: str | None = typer.Option(
        None, "--home", help="Store directory (default: $LAKELENS_HOME or ./.lakelens)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print rows deleted per table as JSON."),
) -> None:
    """Delete events older than the retention window (logs, spans, runs, checks, metrics).

    Example: lakelens db prune --older-than-days 14
    """
    from rich.progress import Progress

    from lakelens.cli._output import console, err_console, print_json

    store = _store(home)
    store.upgrade()
    days = store.settings.retention_days if older_than_days is None else older_than_days
    with Progress(console=err_console, transient=True, disable=json_output) as progress:
        task = progress.add_task("Pruning", total=None)

        def report(table: str, deleted: int) -> None:
            progress.update(task, description=f"Pruning {table}: {deleted:,} rows deleted")

        deleted = store.prune(days, progress=report)
    if json_output:
        print_json({"location": store.location, "older_than_days": days, "deleted": deleted})
        return
    total = sum(deleted.values())
    console.print(f"Deleted {total:,} rows older than {days:g} days from {store.location}.")
    for table, count in deleted.items():
        if count:
            console.print(f"  {table:<18} {count:>10,}")
