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

    from lakelens.cli._output import console, err_console, print_json
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
    for line in render(result, home):
        console.print(line, soft_wrap=True)


def render(result: DemoResult, home: str | None) -> list[str]:
    """The summary as Rich markup lines."""
    from rich.markup import escape

    from lakelens.units import format_bytes, format_count, format_duration

    s = result.summary
    runs, latency, assets, checks = s.runs, s.latency, s.assets, s.checks
    window = _window(result.until - result.since)
    lines = [
        f"Recorded {result.runs:,} runs of glucose_pipeline ({window}, seed {result.seed}) "
        f"in {result.elapsed_seconds:.1f}s.",
        f"Data is in [bold]{escape(result.location)}[/bold]"
        + (" (Replaced the previous demo recording.)" if result.replaced_previous else ""),
        "",
        f"[bold]Runs[/bold] (last {window})",
        f"  Total:     {runs.total:,}",
        f"  Success:   {runs.success:,} ({_rate(runs.success_rate)})",
        f"  Failure:   {runs.failure:,} ({_rate(runs.failure_rate)})"
        + "".join(f"  [red]{escape(text)}[/red] ×{n}" for text, n in result.errors.items()),
        "",
        "[bold]Data volume[/bold]",
        f"  Rows:      {format_count(s.rows)}",
        f"  Bytes:     {format_bytes(s.bytes)}",
        "",
        f"[bold]Latency[/bold] ({latency.count:,} materializations)",
    ]
    for name in ("p50", "p95", "p99"):
        value = getattr(latency, name)
        lines.append(f"  {name}:       {'-' if value is None else format_duration(value)}")
    lines += [
        "",
        "[bold]Assets[/bold]",
        f"  Total:     {assets.total}",
        f"  Active:    {assets.active}",
        f"  Healthy:   {assets.healthy}",
        f"  Failing:   {assets.failing}",
        *(
            f"  {label}  {escape(age.name)} ({format_duration(age.age_seconds)} ago)"
            for label, age in (("Freshest:", assets.freshest), ("Stalest: ", assets.stalest))
            if age is not None
        ),
        "",
        "[bold]Quality[/bold]",
        f"  Checks:    {checks.total:,} run, {checks.failed:,} failed "
        f"({_rate(checks.pass_rate)} passed)",
        "",
        "[bold]Next steps[/bold]",
    ]
    where = f" --home {escape(home)}" if home else ""
    env = f"LAKELENS_HOME={escape(home)} " if home else ""
    if result.ongoing_outage:
        lines += [
            f"  lakelens why mrt_glucose_readings{where}",
            "      the Nightscout API has been down for 15 minutes: find the root cause",
            f"  lakelens logs --level ERROR --since 1h{where}",
        ]
    lines += [
        f"  lakelens lineage impact dlt_glucose_entries{where}",
        f"  lakelens trace --asset dlt_glucose_entries --last{where}",
        f"  {env}python your_pipeline.py",
        "      record your own pipeline here (example: lakelens/demo/glucose.py)",
        f"  lakelens db prune{where} --older-than-days 7",
        "      delete events older than a week",
    ]
    return lines


def _rate(percent: float | None) -> str:
    return "-" if percent is None else f"{percent:.2f}%"


def _window(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:g}h" if hours >= 1 and hours == int(hours) else f"{seconds / 60:g}m"
