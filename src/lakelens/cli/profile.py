"""`lakelens profile ASSET`: the latest column profile, its change, and one column's history."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any, Optional

import typer

from lakelens.cli._common import HomeOption, JsonOption, NoColorOption

if TYPE_CHECKING:
    from rich.console import Console

    from lakelens.analysis.profiles import ProfileReport


def profile(
    name: str = typer.Argument(..., help="Asset name."),
    column: Optional[str] = typer.Option(  # noqa: UP045
        None, "--column", "-c", help="Show the history of this column instead."
    ),
    history: int = typer.Option(
        20, "--history", "-n", min=1, max=500, help="How many recent profiles to read."
    ),
    json_output: bool = JsonOption,
    home: Optional[str] = HomeOption,  # noqa: UP045
    no_color: bool = NoColorOption,
) -> None:
    """The latest column profile of an asset (type, nulls, distinct, min, max, mean, std,
    p50/p95 per column), what changed since the profile before, and the row count history.

    Profiles come from lakelens.profile(df) in a pipeline, dlt, Dagster and warehouse
    monitors (profile_columns).
    Example: lakelens profile orders --column amount
    """
    from lakelens.analysis.assets import resolve_asset
    from lakelens.analysis.profiles import column_history, profile_report
    from lakelens.cli._common import make_console, open_store
    from lakelens.cli._output import print_json
    from lakelens.errors import InvalidArgumentError

    with open_store(home).reader() as db:
        resolved = resolve_asset(db, name)
        report = profile_report(db, resolved, history=history)
    if column is not None:
        known = list(dict.fromkeys(c for p in report.history for c in p.columns))
        if column not in known:
            close = difflib.get_close_matches(column, known, n=2)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise InvalidArgumentError(
                f"No column {column!r} in the profiles of {resolved!r}.{hint}"
                if known
                else f"No profiles of {resolved!r} yet, so no column {column!r}."
            )
        rows = column_history(report.history, column)
        if json_output:
            print_json({"asset": resolved, "column": column, "history": rows})
            return
        _column_table(resolved, column, rows, make_console(no_color))
        return
    if json_output:
        print_json(report.to_dict())
        return
    render_report(report, make_console(no_color))


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value.replace("T", " ").removesuffix("Z") if len(value) >= 19 else value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1e6 or (value and abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.1f}"


def _nulls(stats: dict[str, Any]) -> str:
    rate = stats.get("null_rate")
    return "-" if rate is None else f"{rate:.1%}"


def _distinct(stats: dict[str, Any]) -> str:
    distinct = stats.get("distinct")
    if distinct is None:
        return "-"
    return f"~{distinct:,}" if stats.get("distinct_approx") else f"{distinct:,}"


def _bounds(stats: dict[str, Any]) -> tuple[str, str]:
    if stats.get("type") == "string" and stats.get("min_length") is not None:
        return f"len {stats['min_length']}", f"len {stats['max_length']}"
    return _number(stats.get("min")), _number(stats.get("max"))


def _header(report: ProfileReport) -> str:
    from rich.markup import escape

    from lakelens.display import format_moment

    latest = report.latest
    assert latest is not None
    parts = [format_moment(latest.time)]
    if latest.run_id:
        parts.append(f"run {latest.run_id[:8]}")
    if latest.row_count is not None:
        rows = f"{latest.row_count:,} rows"
        if latest.sampled_rows is not None:
            rows += f" (statistics from a sample of {latest.sampled_rows:,})"
        parts.append(rows)
    parts.append(f"from {latest.source}")
    return f"[bold]Profile of {escape(report.asset)}[/] [dim]({escape(' · '.join(parts))})[/]"


def render_report(report: ProfileReport, console: Console, *, changes: bool = True) -> None:
    """The latest profile as a table, then its changes and the row count history."""
    from rich.markup import escape
    from rich.table import Table

    latest = report.latest
    if latest is None:
        console.print(
            f"No profiles recorded for {escape(report.asset)} yet: call lakelens.profile(df) "
            "inside the asset (see docs/profiles.md)."
        )
        return
    console.print(_header(report))
    if latest.error:
        console.print(f"[red]Profiling failed: {escape(latest.error)}[/]")
    failed_since = [p for p in report.history if p.error and p.time > latest.time]
    if failed_since:
        console.print(f"[red]The latest profile failed: {escape(failed_since[0].error or '')}[/]")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for title in ("Column", "Type", "Nulls", "Distinct", "Min", "Max", "Mean", "Std", "p50", "p95"):
        table.add_column(title, justify="left" if title in ("Column", "Type") else "right")
    for column, stats in latest.columns.items():
        quantiles = stats.get("quantiles") or {}
        low, high = _bounds(stats)
        table.add_row(
            escape(column),
            escape(str(stats.get("type", "-"))),
            _nulls(stats),
            _distinct(stats),
            escape(low),
            escape(high),
            _number(stats.get("mean")),
            _number(stats.get("std")),
            _number(quantiles.get("p50")),
            _number(quantiles.get("p95")),
        )
    console.print(table)
    for column, stats in latest.columns.items():
        if stats.get("error"):
            console.print(f"[red]{escape(column)}: {escape(str(stats['error']))}[/]")
    if changes:
        render_changes(report, console)
    counts = [p.row_count for p in reversed(report.history) if p.row_count is not None]
    if len(counts) > 1:
        from lakelens.cli.metrics import _spark

        console.print(
            f"\n[bold]Row count[/] [dim](last {len(counts)} profiles, oldest → newest)[/]  "
            f"{_spark([float(c) for c in counts])}  {counts[0]:,} → {counts[-1]:,}"
        )


def render_changes(report: ProfileReport, console: Console) -> None:
    from rich.markup import escape

    from lakelens.display import format_moment

    if report.previous is None:
        console.print("\n[dim]No earlier profile to compare with.[/]")
        return
    console.print(
        f"\n[bold]Change since the previous profile[/] [dim]({format_moment(report.previous.time)})[/]"
    )
    notable = [c for c in report.changes if c.status != "same"]
    if not notable:
        console.print(
            "  No notable change (null rate within 5 points, mean and distinct within 10%)."
        )
        return
    for change in notable:
        if change.status == "added":
            line = "[green]new column[/]"
        elif change.status == "removed":
            line = "[red]column removed[/]"
        else:
            line = escape(", ".join(change.notes))
        console.print(f"  {escape(change.column)}: {line}")


def _column_table(asset: str, column: str, rows: list[dict[str, Any]], console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    from lakelens.display import format_moment

    console.print(f"[bold]{escape(column)} of {escape(asset)}[/] [dim](newest first)[/]")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for title in ("Time", "Run", "Rows", "Type", "Nulls", "Distinct", "Min", "Max", "Mean", "p50"):
        table.add_column(title, justify="left" if title in ("Time", "Run", "Type") else "right")
    for row in rows:
        low, high = _bounds(row)
        table.add_row(
            format_moment(row["time"]),
            escape((row.get("run_id") or "-")[:8]),
            _number(row.get("row_count")),
            escape(str(row.get("type", "-"))),
            _nulls(row),
            _distinct(row),
            escape(low),
            escape(high),
            _number(row.get("mean")),
            _number((row.get("quantiles") or {}).get("p50")),
        )
    console.print(table)


def render_data(report: ProfileReport, console: Console) -> None:
    """The short "Data" section of `lakelens metrics asset`: row count and profile summary."""
    from rich.markup import escape

    from lakelens.display import format_moment

    latest = report.latest
    console.print(
        f"\n[bold]Data[/] [dim](every column: lakelens profile {escape(report.asset)})[/]"
    )
    if latest is None:
        console.print("  No profile recorded (lakelens.profile(df) inside the asset records one).")
        return
    rows = "-" if latest.row_count is None else f"{latest.row_count:,}"
    console.print(f"  Row count  {rows} [dim](profiled {format_moment(latest.time)})[/]")
    with_nulls = sorted(
        ((c, s["null_rate"]) for c, s in latest.columns.items() if s.get("null_rate")),
        key=lambda item: -item[1],
    )
    nulls = ", ".join(f"{escape(c)} {rate:.1%}" for c, rate in with_nulls[:5]) or "none"
    console.print(f"  Columns    {len(latest.columns)} profiled · nulls in: {nulls}")
    notable = [c for c in report.changes if c.status != "same"]
    if notable:
        shown = "; ".join(
            f"{escape(c.column)}: {escape(', '.join(c.notes) or c.status)}" for c in notable[:5]
        )
        console.print(f"  Changed    {shown}")
