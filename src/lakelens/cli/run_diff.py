"""`lakelens runs diff A B`: what changed between two runs, the important first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

from lakelens.cli._common import HomeOption, JsonOption, NoColorOption

if TYPE_CHECKING:
    from datetime import tzinfo

    from rich.console import Console

    from lakelens.analysis.run_diff import Change, CheckDiff, RunDiff
    from lakelens.model import Run

# The text report lists this many spans (biggest change first); --json has all of them.
SPAN_ROWS = 15


def diff(
    a: str = typer.Argument(..., help="The run to compare from: a run id or a unique prefix."),
    b: Optional[str] = typer.Argument(  # noqa: UP045
        None,
        help="The run to compare with A. Without it, A is compared with the run of its job "
        "that started before it.",
    ),
    tz: Optional[str] = typer.Option(  # noqa: UP045
        None, "--tz", help="Show times in this zone (default: $LAKELENS_TIMEZONE or UTC)."
    ),
    json_output: bool = JsonOption,
    home: Optional[str] = HomeOption,  # noqa: UP045
    no_color: bool = NoColorOption,
) -> None:
    """Show what changed between two runs: status, checks that started failing, schema
    changes, and duration and rows per asset and span.

    Example: lakelens runs diff 3f2a9c1e 9b1e04d2
    """
    from lakelens.analysis.run_diff import diff_runs
    from lakelens.cli._common import make_console, open_store
    from lakelens.display import display_zone

    zone = display_zone(tz)
    older, newer = (None, a) if b is None else (a, b)
    with open_store(home).reader() as db:
        result = diff_runs(db, older, newer)
    if json_output:
        from lakelens.cli._output import print_json

        print_json(result.to_dict())
        return
    report(make_console(no_color), result, zone)


# -- the text report ------------------------------------------------------------------------------


def _dur(seconds: float | None) -> str:
    from lakelens.units import format_duration

    return "-" if seconds is None else format_duration(max(0.0, seconds))


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _size(value: float | None) -> str:
    from lakelens.units import format_bytes

    return "-" if value is None else format_bytes(value)


def _percent(change: Change) -> str:
    percent = change.percent
    if percent is None or abs(percent) < 0.5:
        return ""
    style = "dim" if abs(percent) < 10 else "yellow"
    return f" [{style}]({percent:+.0f}%)[/]"


def _signed_dur(delta: float | None) -> str:
    from lakelens.units import format_duration

    if delta is None:
        return ""
    if delta == 0:
        return "same"
    return ("+" if delta > 0 else "-") + format_duration(abs(delta))


def _arrow(change: Change, fmt: object) -> str:
    """'487 → 512 (+5%)', or the one value when it did not change."""
    from rich.markup import escape

    assert callable(fmt)
    if not change.changed:
        return escape(str(fmt(change.a)))
    return f"{escape(str(fmt(change.a)))} → {escape(str(fmt(change.b)))}{_percent(change)}"


def _status(status: str | None) -> str:
    from lakelens.cli._common import status_text

    return "[dim]not run[/]" if status is None else status_text(status)


def _run_line(label: str, run: Run, zone: tzinfo) -> str:
    from rich.markup import escape

    from lakelens.display import format_moment

    parts = [
        f"  [bold]{label}[/]  {escape(run.run_id)}",
        _status(run.status),
        escape(format_moment(run.start_time, zone, missing="not started")),
        f"took {_dur(run.duration_seconds)}",
    ]
    if run.partition:
        parts.append(f"partition {escape(run.partition)}")
    return "  ".join(parts)


def _check_line(item: CheckDiff) -> str:
    from rich.markup import escape

    def outcome(passed: bool | None) -> str:
        return "not run" if passed is None else ("passed" if passed else "failed")

    latest = item.b or item.a
    line = (
        f"{escape(item.asset)} · [bold]{escape(item.name)}[/] [dim]({escape(item.severity)})[/]"
        f"  {outcome(item.passed_a)} → {outcome(item.passed_b)}"
    )
    if latest is not None and latest.valid_rows is not None and latest.total_rows is not None:
        line += f"  [dim]{latest.valid_rows:,}/{latest.total_rows:,} rows valid[/]"
    if latest is not None and latest.message:
        line += f"  [dim]{escape(latest.message)}[/]"
    return line


def report(console: Console, result: RunDiff, zone: tzinfo) -> None:
    """The differences in the order they matter: checks that started failing, the run's status
    and errors, schema changes, then durations and rows (biggest change first)."""
    from rich.markup import escape

    a, b = result.a, result.b
    job = escape(b.job) if result.same_job else f"{escape(a.job)} / {escape(b.job)}"
    console.print(f"[bold]Run diff[/] {job}")
    console.print(_run_line("A", a, zone))
    console.print(_run_line("B", b, zone))
    gap = result.start_gap_seconds
    if gap is not None and gap != 0:
        console.print(f"  [dim]B started {_dur(abs(gap))} {'after' if gap > 0 else 'before'} A.[/]")
    for warning in result.warnings:
        console.print(f"[yellow]! {escape(warning)}[/]")

    failing = result.checks_by_change("newly_failing", "new_failing")
    if failing:
        console.print("\n[bold red]Checks that started failing[/]")
        for item in failing:
            console.print(f"  [red]✗[/] {_check_line(item)}")

    console.print()
    if result.status_changed:
        console.print(f"[bold]Status:[/] {_status(a.status)} → {_status(b.status)}")
    else:
        console.print(f"[bold]Status:[/] {_status(b.status)} in both")
    for label, run in (("A", a), ("B", b)):
        error = ": ".join(p for p in (run.error_type, run.error_message) if p)
        if error:
            console.print(f"  {label} error: [red]{escape(error)}[/]")

    changed = result.schema_changes
    if changed:
        console.print("\n[bold]Schema changes[/]")
        marks = {"added": "[green]+[/]", "removed": "[red]-[/]", "type_changed": "[yellow]~[/]"}
        for schema in changed:
            console.print(f"  {escape(schema.asset)}")
            for column in schema.changes:
                kind = (
                    f"{escape(column.type_a or '')} → {escape(column.type_b or '')}"
                    if column.change == "type_changed"
                    else escape(column.type_b or column.type_a or "")
                )
                console.print(f"    {marks[column.change]} {escape(column.column)}  {kind}")

    duration = result.duration
    line = f"\n[bold]Duration:[/] {_dur(duration.a)} → {_dur(duration.b)}"
    if duration.delta is not None:
        percent = (
            ""
            if duration.percent is None or abs(duration.percent) < 0.5
            else f", {duration.percent:+.0f}%"
        )
        line += f" ({_signed_dur(duration.delta)}{percent})"
    console.print(line)
    _assets(console, result)
    _spans(console, result)
    _other_checks(console, result)


def _assets(console: Console, result: RunDiff) -> None:
    from rich.markup import escape
    from rich.table import Table

    if not result.assets:
        console.print("\n[dim]Neither run materialized an asset.[/]")
        return
    console.print("\n[bold]Assets[/] [dim](biggest change first)[/]")
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 2))
    for column in ("Asset", "Status A → B", "Rows", "Bytes", "Duration"):
        table.add_column(column, no_wrap=column != "Asset")
    for item in result.assets:
        status = (
            _status(item.status_b)
            if item.status_a == item.status_b
            else f"{_status(item.status_a)} → {_status(item.status_b)}"
        )
        table.add_row(
            escape(item.asset),
            status,
            _arrow(item.rows, _num),
            _arrow(item.bytes, _size),
            _arrow(item.duration, _dur),
        )
    console.print(table)
    for item in result.assets:
        for label, error in (("A", item.error_a), ("B", item.error_b)):
            if error:
                console.print(f"  {escape(item.asset)} in {label}: [red]{escape(error)}[/]")


def _spans(console: Console, result: RunDiff) -> None:
    from rich.markup import escape
    from rich.table import Table

    if not result.spans:
        return
    console.print("\n[bold]Spans[/] [dim](biggest change in time first)[/]")
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 2))
    for column in ("Span", "A", "B", "Change"):
        table.add_column(
            column, no_wrap=column != "Span", justify="left" if column == "Span" else "right"
        )
    for item in result.spans[:SPAN_ROWS]:
        name = " › ".join(escape(part) for part in item.path)
        if item.count_a > 1 or item.count_b > 1:
            name += f" [dim]×{item.count_a}/{item.count_b}[/]"
        if item.errors_a or item.errors_b:
            name += f" [red]errors {item.errors_a} → {item.errors_b}[/]"
        if item.only == "a":
            change = "[dim]only in A[/]"
        elif item.only == "b":
            change = "[yellow]only in B[/]"
        elif not item.duration.delta:
            change = "[dim]same[/]"
        else:
            change = _signed_dur(item.duration.delta) + _percent(item.duration)
        table.add_row(name, _dur(item.duration.a), _dur(item.duration.b), change)
    console.print(table)
    if len(result.spans) > SPAN_ROWS:
        console.print(
            f"  [dim]… and {len(result.spans) - SPAN_ROWS} more span names (--json lists them)[/]"
        )


def _other_checks(console: Console, result: RunDiff) -> None:
    rest = result.checks_by_change("still_failing", "fixed", "removed", "new_passing")
    passing = result.checks_by_change("passing")
    if not rest and not passing:
        return
    console.print("\n[bold]Other checks[/]")
    marks = {
        "still_failing": "[red]✗ still failing[/]",
        "fixed": "[green]✓ fixed[/]",
        "removed": "[dim]– only in A[/]",
        "new_passing": "[green]✓ new[/]",
    }
    for item in rest:
        console.print(f"  {marks[item.change]}  {_check_line(item)}")
    if passing:
        console.print(f"  [dim]{len(passing)} check(s) passed in both runs.[/]")
