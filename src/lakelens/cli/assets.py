"""`lakelens assets`: the catalog, searchable by name, owner, kind, layer and status."""

from __future__ import annotations

from typing import Optional

import typer

from lakelens.cli._common import HomeOption, JsonOption, NoColorOption, RowsOption


def assets(
    search: Optional[str] = typer.Option(  # noqa: UP045
        None,
        "--search",
        "-q",
        help="Only assets whose name, description, owner or tags contain TEXT (any case).",
    ),
    owner: Optional[str] = typer.Option(None, "--owner", "-o", help="Only this owner's assets."),  # noqa: UP045
    kind: Optional[str] = typer.Option(  # noqa: UP045
        None, "--kind", "-k", help="table, model, external, dashboard, …"
    ),
    layer: Optional[str] = typer.Option(None, "--layer", "-l", help="Only assets of this layer."),  # noqa: UP045
    status: Optional[str] = typer.Option(  # noqa: UP045
        None,
        "--status",
        "-s",
        help="failing, stale, healthy, running, canceled, skipped or never (never ran).",
    ),
    limit: int = RowsOption,
    json_output: bool = JsonOption,
    home: Optional[str] = HomeOption,  # noqa: UP045
    no_color: bool = NoColorOption,
) -> None:
    """List assets by name with owner, layer, status, freshness and latest row count.

    Example: lakelens assets --search glucose --status stale
    """
    import time

    from lakelens.analysis.assets import AssetFilter, list_assets
    from lakelens.cli._common import open_store

    where = AssetFilter(search=search, owner=owner, kind=kind, layer=layer, status=status)
    with open_store(home).reader() as db:
        page = list_assets(
            db, where, now=time.time(), limit=None if json_output or limit == 0 else limit
        )
    if json_output:
        from lakelens.cli._output import print_json

        print_json(page.to_dict())
        return
    _table(page, no_color)


_STATUS = {
    "failing": "[red]✗ failing[/]",
    "stale": "[yellow]⏱ stale[/]",
    "healthy": "[green]✓ healthy[/]",
    "running": "[yellow]… running[/]",
    "never": "[dim]never ran[/]",
}


def _table(page: object, no_color: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    from lakelens.analysis.assets import AssetPage
    from lakelens.cli._common import make_console, more_line
    from lakelens.units import format_duration

    assert isinstance(page, AssetPage)
    console = make_console(no_color)
    if not page.assets:
        console.print("No assets match these filters." if page.total == 0 else "")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("Asset", "Kind", "Owner", "Layer", "Status", "Fresh", "Rows", "Tags"):
        table.add_column(column, no_wrap=column not in ("Asset", "Tags"))
    for a in page.assets:
        fresh = "-"
        if a.age_seconds is not None:
            fresh = f"{format_duration(a.age_seconds)} ago"
            if a.freshness_seconds is not None:
                fresh += f" / {format_duration(a.freshness_seconds)}"
        table.add_row(
            escape(a.name),
            escape(a.kind),
            escape(a.owner or "-"),
            escape(a.layer or "-"),
            _STATUS.get(a.health, escape(a.health)),
            fresh,
            f"{a.last_rows:,}" if a.last_rows is not None else "-",
            escape(", ".join(a.tag_labels)),
        )
    console.print(table)
    more = more_line(len(page.assets), page.total, "assets")
    if more:
        console.print(more)
