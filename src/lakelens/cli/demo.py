"""`lakelens demo`: record 24 hours of the glucose pipeline into a store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from lakelens.demo import DemoResult


def demo(
    runs: int = typer.Option(
        288, "--runs", min=1, help="How many 5-minute runs to simulate (288 = 24 hours)."
    ),
    seed: int = typer.Option(
        42, "--seed", help="Random seed; the same seed records the same data."
    ),
    home: str | None = typer.Option(
        None, "--home", help="Store directory (default: $LAKELENS_HOME or ./.lakelens)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Simulate the glucose pipeline and record it through the SDK, then print a summary.

    Example: lakelens demo --runs 288 --seed 7 --home /tmp/lakelens-demo
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from lakelens.cli._output import err_console, print_json
    from lakelens.demo import run_demo

    with Progress(
        TextColumn("Recording glucose_pipeline runs"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
        disable=json_output or not err_console.is_terminal,
    ) as bar:
        task = bar.add_task("record", total=runs)
        result = run_demo(
            home, runs=runs, seed=seed, progress=lambda done, _: bar.update(task, completed=done)
        )
    if json_output:
        print_json(result.to_dict())
        return
    _render(result, home)


def _render(result: DemoResult, home: str | None) -> None:
    """Where the data is, the same summary `lakelens metrics summary` prints, and next steps."""
    from rich.markup import escape

    from lakelens.cli._common import make_console
    from lakelens.cli.metrics import render_summary
    from lakelens.units import format_duration

    console = make_console(False)
    window = _window(result.until - result.since)
    console.print(
        f"Recorded {result.runs:,} runs of glucose_pipeline ({window}, seed {result.seed}) "
        f"in {format_duration(result.elapsed_seconds)}.",
        soft_wrap=True,
    )
    console.print(
        f"Data is in [bold]{escape(result.location)}[/bold]"
        + (" (Replaced the previous demo recording.)" if result.replaced_previous else ""),
        soft_wrap=True,
    )
    console.print()
    render_summary(result.summary, console, title=f"Platform Metrics Summary (last {window})")
    where = f" --home {escape(home)}" if home else ""
    env = f"LAKELENS_HOME={escape(home)} " if home else ""
    steps = []
    if result.ongoing_outage:
        steps += [
            (
                f"lakelens why mrt_glucose_readings{where}",
                "the Nightscout API has been down for 15 minutes: find the root cause",
            ),
            (f"lakelens logs --level ERROR --since 1h{where}", "the errors of the last hour"),
        ]
    steps += [
        (f"lakelens metrics asset dlt_glucose_entries{where}", "one asset in depth"),
        (f"lakelens lineage impact dlt_glucose_entries{where}", "what a change to it would break"),
        (
            f"lakelens trace --asset dlt_glucose_entries --last{where}",
            "the spans of its latest run",
        ),
        (
            f"{env}python your_pipeline.py",
            "record your own pipeline here (example: lakelens/demo/glucose.py)",
        ),
    ]
    console.print("\n[bold]Next steps[/bold]")
    for command, why in steps:
        console.print(f"  {command}", soft_wrap=True)
        console.print(f"      [dim]{why}[/dim]", soft_wrap=True)


def _window(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:g}h" if hours >= 1 and hours == int(hours) else f"{seconds / 60:g}m"
