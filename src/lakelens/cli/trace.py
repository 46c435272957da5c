"""`lakelens trace`: a run's spans as a tree with offsets and durations."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

import typer

from lakelens.cli._common import HomeOption, JsonOption, NoColorOption, TzOption


def _duration(seconds: float | None) -> str:
    """'70ms', '5.2s', '45s', '2.3m': --json keeps the exact seconds."""
    from lakelens.units import format_duration

    return "?" if seconds is None else format_duration(seconds)


def trace(
    run_id: Optional[str] = typer.Argument(  # noqa: UP045
        None, help="Run id or trace id, or a unique prefix of one."
    ),
    asset: str | None = typer.Option(
        None, "--asset", "-a", help="With --last: the latest run of this asset."
    ),
    last: bool = typer.Option(False, "--last", help="Trace the latest run of --asset."),
    attrs: bool = typer.Option(False, "--attrs", help="Show each span's attributes."),
    home: Optional[str] = HomeOption,  # noqa: UP045
    json_output: bool = JsonOption,
    no_color: bool = NoColorOption,
    tz: Optional[str] = TzOption,  # noqa: UP045
) -> None:
    """Show a run's trace: nested spans with start offset and duration, errors marked.

    Example: lakelens trace --asset dlt_glucose_entries --last --attrs
    """
    from rich.markup import escape
    from rich.tree import Tree

    from lakelens.analysis.assets import resolve_asset
    from lakelens.analysis.runs import latest_run_of_asset
    from lakelens.analysis.trace import resolve_trace
    from lakelens.cli._common import make_console, open_store, status_text
    from lakelens.cli._output import print_json
    from lakelens.display import format_moment
    from lakelens.errors import InvalidArgumentError, LakelensError

    if (run_id is None) == (asset is None) or (asset is not None and not last):
        raise InvalidArgumentError(
            "Give a RUN_ID, or --asset NAME --last for the latest run of an asset."
        )
    store = open_store(home)
    with store.reader() as conn:
        if asset is not None:
            name = resolve_asset(conn, asset)
            found = latest_run_of_asset(conn, name)
            if found is None:
                raise LakelensError(f"Asset {name!r} has no runs yet.")
            run_id = found
        assert run_id is not None
        full_id, result = resolve_trace(conn, run_id)
    if json_output:
        from lakelens.analysis.shapes import trace_dict

        print_json(trace_dict(full_id, result))
        return
    console = make_console(no_color)
    run = result.run
    title = f"[bold]Trace:[/] {escape(run.job) if run else '(unknown run)'} [dim]run {escape(full_id)}[/]"
    if run is not None:
        title += f"  {status_text(run.status)}"
    console.print(title)
    started = (
        f" · started {format_moment(run.start_time, now=datetime.now(timezone.utc))}"
        if run is not None and run.start_time is not None
        else ""
    )
    console.print(
        f"Duration: {_duration(result.duration_seconds)} · {result.span_count} spans · "
        + (f"[red]{result.error_count} errors[/]" if result.error_count else "0 errors")
        + started
    )
    if run is not None:
        from lakelens.analysis.run_context import run_context

        context = run_context(run).line()
        if context:
            console.print(escape(context[:1].upper() + context[1:]))
    if run is not None and run.error_message:
        console.print(f"[red]Error:[/] {escape(run.error_type or '')}: {escape(run.error_message)}")
    if not result.roots:
        console.print("[dim]This run recorded no spans.[/]")
        return
    tree = Tree("", hide_root=True)

    def add(branch: Tree, node: Any) -> None:
        span = node.span
        end = node.offset_seconds + (node.duration_seconds or 0)
        text = (
            f"{escape(span.name)} [dim]\\[{_duration(node.offset_seconds)} - {_duration(end)}][/] "
            f"{_duration(node.duration_seconds)}"
        )
        if span.status == "error":
            text = f"[red]✗ {text} {escape(span.error_message or 'error')}[/]"
        child_branch = branch.add(text)
        if attrs and span.attributes:
            for key, value in sorted(span.attributes.items()):
                child_branch.add(f"[dim]{escape(str(key))} = {escape(repr(value))}[/]")
        for child in node.children:
            add(child_branch, child)

    for root in result.roots:
        add(tree, root)
    console.print(tree)
