"""`lakelens metrics`: pipeline health in numbers — summary, one asset, exports."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from lakelens.cli._common import HomeOption, JsonOption, NoColorOption, TzOption, WatchOption

if TYPE_CHECKING:
    from rich.console import Console

    from lakelens.analysis.asset_metrics import AssetMetrics
    from lakelens.analysis.summary import Summary
    from lakelens.store.sql import Reader

app = typer.Typer(
    help="Pipeline health in numbers: runs, latency, volume, freshness, quality "
    "(alone: the summary of the last 24 h).",
)

PeriodOption = typer.Option(
    "24h", "--period", "-p", help="Window: 30m, 24h, 7d, … or an ISO start time (UTC)."
)
_STATUS_MARK = {"HEALTHY": ("✓", "green"), "DEGRADED": ("⚠", "yellow"), "FAILING": ("✗", "red")}
_SPARK = "▁▂▃▄▅▆▇█"


def _rate(percent: float | None) -> str:
    return "-" if percent is None else f"{percent:.2f}%"


def _seconds(value: float | None) -> str:
    from lakelens.units import format_duration

    return "-" if value is None else format_duration(value)


def render_summary(result: Summary, console: Console, *, title: str) -> None:
    """Print a Summary the way `lakelens metrics summary` (and `lakelens demo`) show it."""
    from rich.markup import escape

    from lakelens.analysis.summary import status_of
    from lakelens.units import format_bytes, format_count

    status, reasons = status_of(result)
    mark, style = _STATUS_MARK[status]
    console.print(f"[bold]{escape(title)}[/]")
    console.print(
        f"Overall status: [bold {style}]{mark} {status}[/]"
        + (f" — {escape('; '.join(reasons))}" if reasons else "")
    )
    runs = result.runs
    lines = [
        "",
        "[bold]Runs[/]",
        f"  Total:     {runs.total:,}",
        f"  Success:   {runs.success:,} ({_rate(runs.success_rate)})",
        f"  Failure:   {runs.failure:,} ({_rate(runs.failure_rate)})",
    ]
    failures = result.failures
    if failures.by_error_type:
        lines.append("  By error:  " + _top(failures.by_error_type))
        lines.append("  By stage:  " + _top(failures.by_asset))
    lines += [
        "",
        "[bold]Data volume[/]",
        f"  Rows:      {format_count(result.rows)}",
        f"  Bytes:     {format_bytes(result.bytes)}",
    ]
    if result.completeness.percent is not None:
        lines.append(
            f"  Complete:  {result.completeness.percent:.1f}% of expected rows "
            f"({len(result.completeness.by_asset)} asset(s) declare expected_rows)"
        )
    latency = result.latency
    lines += [
        "",
        f"[bold]Latency[/] ({latency.count:,} materializations"
        + (", from hourly histograms: within 4.4%)" if latency.approximate else ")"),
        f"  p50:       {_seconds(latency.p50)}",
        f"  p95:       {_seconds(latency.p95)}",
        f"  p99:       {_seconds(latency.p99)}",
        "",
        "[bold]Assets[/]",
        f"  Total:     {result.assets.total:,}",
        f"  Active:    {result.assets.active:,}",
        f"  Healthy:   {result.assets.healthy:,}",
        f"  Warning:   {result.assets.warning:,}" + _names(result.assets.warning_assets, "yellow"),
        f"  Failing:   {result.assets.failing:,}" + _names(result.assets.failing_assets, "red"),
    ]
    for label, age in (("Freshest:", result.assets.freshest), ("Stalest: ", result.assets.stalest)):
        if age is not None:
            lines.append(f"  {label}  {escape(age.name)} ({_seconds(age.age_seconds)} ago)")
    checks = result.checks
    lines += [
        "",
        "[bold]Quality[/]",
        f"  Pass rate: {_rate(checks.pass_rate)}",
        f"  Checks:    {checks.total:,} run, {checks.failed:,} failed",
        "",
    ]
    incidents = result.incidents
    lines.append(
        f"[bold]Open incidents:[/] {incidents.open}"
        + (f" [dim]({result.alerts.firing} active alert(s))[/]" if result.alerts.firing else "")
    )
    for severity, title in incidents.top:
        lines.append(f"  {_MARKS.get(severity, '•')} {escape(title)}")
    if incidents.opened:
        times = ", ".join(
            f"{label} {_seconds(value)}"
            for label, value in (
                ("detect", incidents.mean_time_to_detect),
                ("acknowledge", incidents.mean_time_to_acknowledge),
                ("resolve", incidents.mean_time_to_resolve),
            )
            if value is not None
        )
        lines.append(
            f"  Opened in the period: {incidents.opened:,}"
            + (f" (mean time to {times})" if times else "")
        )
        if incidents.by_asset:
            lines.append(f"  Most incidents: {_top(incidents.by_asset, 5)}")
        if incidents.by_owner:
            lines.append(f"  By owner:       {_top(incidents.by_owner, 5)}")

    for line in lines:
        console.print(line)


_MARKS = {
    "critical": "[red]✗[/]",
    "error": "[red]✗[/]",
    "warning": "[yellow]⚠[/]",
    "info": "[cyan]ℹ[/]",
}


def _top(counts: dict[str, int], shown: int = 8) -> str:
    """The most frequent entries ('name ×n', most first), then how many more (all in --json)."""
    from rich.markup import escape

    text = ", ".join(f"{escape(k)} ×{v:,}" for k, v in list(counts.items())[:shown])
    more = len(counts) - shown
    return text + (f" [dim]… and {more:,} more (all of them with --json)[/]" if more > 0 else "")


def _names(names: tuple[str, ...], style: str) -> str:
    from rich.markup import escape

    if not names:
        return ""
    shown = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
    return f"  [{style}]{escape(shown)}[/]"


def _period(period: str) -> tuple[float, float]:
    from lakelens.units import parse_since

    now = time.time()
    return parse_since(period, now=now, name="--period"), now


def _empty(console: Console, db: Reader) -> bool:
    if db.row("SELECT run_id FROM runs LIMIT 1") is None:
        console.print("No runs recorded yet — try `lakelens demo`.")
        return True
    return False


@app.callback(invoke_without_command=True)
def _summary_by_default(
    ctx: typer.Context,
    home: str | None = HomeOption,
    watch: str | None = WatchOption,
    tz: str | None = TzOption,
) -> None:
    """`lakelens metrics` alone is the summary, as the seed documents' `metrics` is."""
    if ctx.invoked_subcommand is None:
        summary(period="24h", home=home, json_output=False, no_color=False, watch=watch, tz=tz)
    elif watch is not None:
        from lakelens.cli._output import fail

        fail(
            f"--watch goes after the command: lakelens metrics {ctx.invoked_subcommand} --watch N",
            2,
        )


@app.command()
def summary(
    period: str = PeriodOption,
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
    no_color: bool = NoColorOption,
    watch: str | None = WatchOption,
    tz: str | None = TzOption,
) -> None:
    """Platform summary: runs and success rate, failures by error type and stage, rows and bytes,
    latency p50/p95/p99, asset health, freshest and stalest asset, quality pass rate.

    Overall status: FAILING when any asset's latest materialization failed; DEGRADED when none
    failed but an asset is stale beyond its freshness SLA or failed a check in its latest run,
    or the run success rate or check pass rate of the period is below 95%; HEALTHY otherwise.

    Example: lakelens metrics summary --period 7d --watch 10
    """
    from lakelens.analysis.summary import summary as compute
    from lakelens.cli._common import make_console, open_store
    from lakelens.cli._output import print_json
    from lakelens.cli._watch import watch as keep_drawing
    from lakelens.cli._watch import watch_interval

    every = watch_interval(watch, json_output=json_output)
    since, _now = _period(period)
    store = open_store(home)
    if json_output:
        with store.reader() as db:
            result = compute(db, since=since)
        print_json({"period": period, **result.to_dict()})
        return

    def draw(console: Console) -> None:
        since, _now = _period(period)  # a moving window: "last 24h" from each redraw
        with store.reader() as db:
            if _empty(console, db):
                return
            result = compute(db, since=since)
        render_summary(result, console, title=f"Platform Metrics Summary ({_since_text(period)})")

    console = make_console(no_color)
    if every is None:
        draw(console)
    else:
        keep_drawing(draw, every, console, title="lakelens metrics summary")


def _since_text(period: str) -> str:
    """'last 24h' for a duration, 'since 2026-12-01' for a time."""
    return (
        f"last {period}" if period[:1].isdigit() and not period[:4].isdigit() else f"since {period}"
    )


def _spark(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    return "".join(
        " " if v is None else _SPARK[min(7, int((v - low) / span * 7 + 0.5))] for v in values
    )


@app.command()
def asset(
    name: str = typer.Argument(..., help="Asset name."),
    runs: int = typer.Option(
        20, "--runs", "-n", min=1, max=10_000, help="How many recent runs to analyse."
    ),
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
    no_color: bool = NoColorOption,
    tz: str | None = TzOption,
) -> None:
    """One asset in depth: last status, durations (last / average / p95), failure rate, rows,
    size, freshness vs SLA, owner, layer, lineage, a table of the last N runs, trends, checks,
    downstream usage (jobs and dashboards reading it, per day) and the data (row count and
    column profile summary).

    Example: lakelens metrics asset dlt_glucose_entries --runs 20
    """
    from lakelens.analysis.asset_metrics import asset_document, asset_metrics
    from lakelens.analysis.assets import resolve_asset
    from lakelens.analysis.profiles import profile_report
    from lakelens.analysis.usage import asset_usage
    from lakelens.cli._common import make_console, open_store
    from lakelens.cli._output import print_json
    from lakelens.cli._usage import render_usage
    from lakelens.cli.profile import render_data

    store = open_store(home)
    now = time.time()
    with store.reader() as db:
        resolved = resolve_asset(db, name)
        # The JSON is the document of GET /api/v1/assets/NAME, built by the same function.
        document = asset_document(db, resolved, runs=runs, now=now) if json_output else None
        if document is None:
            result = asset_metrics(db, resolved, runs=runs, now=now)
            usage = asset_usage(db, resolved, now=now)
            data = profile_report(db, resolved, history=2)
    if document is not None:
        print_json(document)
        return
    console = make_console(no_color)
    _render_asset(result, console)
    render_usage(usage, console)
    render_data(data, console)


def _render_asset(result: AssetMetrics, console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    from lakelens.cli._common import age, status_text
    from lakelens.display import format_moment
    from lakelens.units import format_bytes, format_count

    details = [
        result.kind,
        *(f"owner {result.owner}",) * bool(result.owner),
        *(f"layer {result.layer}",) * bool(result.layer),
    ]
    console.print(
        f"[bold]Metrics for {escape(result.name)}[/] [dim]({escape(' · '.join(details))})[/]"
    )
    if result.description:
        console.print(f"[dim]{escape(result.description)}[/]")
    if result.aliases:
        names = ", ".join(f"{a.alias} ({a.source})" for a in result.aliases)
        console.print(f"Also known as: {escape(names)}")
    if not result.runs:
        console.print("No materializations recorded for this asset yet.")
        _render_checks(result, console)
        return
    finished = [r for r in result.runs if r.status in ("success", "failure")]
    failures = sum(1 for r in finished if r.status == "failure")
    freshness = age(result.age_seconds)
    if result.freshness_seconds:
        verdict = "[red]✗ stale[/]" if result.stale else "[green]✓ fresh[/]"
        freshness += f" (SLA {_seconds(result.freshness_seconds)}) {verdict}"
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("Metric")
    table.add_column("Value")
    for label, value in [
        ("Last run status", status_text(result.last_status)),
        ("Last run duration", _seconds(result.last_duration)),
        ("Average duration", _seconds(result.avg_duration)),
        ("P95 duration", _seconds(result.p95_duration)),
        ("P99 duration", _seconds(result.p99_duration)),
        ("Failure rate", f"{_rate(result.failure_rate)} ({failures}/{len(finished)})"),
        ("Avg rows/run", "-" if result.avg_rows is None else format_count(round(result.avg_rows))),
        (
            "Data size",
            f"{format_bytes(result.total_bytes)} in {len(result.runs)} runs"
            + ("" if result.last_bytes is None else f" (last {format_bytes(result.last_bytes)})"),
        ),
        ("Freshness", freshness),
        ("Lineage", f"{result.upstream} upstream · {result.downstream} downstream"),
    ]:
        table.add_row(label, value)
    console.print(table)
    console.print("\n[bold]Trend[/] [dim](oldest → newest)[/]")
    console.print(f"  Duration  {_spark(result.duration_trend)}")
    marks = "".join("[red]✗[/]" if failed else "[dim]·[/]" for failed in result.failure_trend)
    console.print(f"  Failures  {marks}  ({failures} in window)")
    runs = Table(
        title=f"Last {len(result.runs)} runs", title_justify="left", header_style="bold", box=None
    )
    for column in ("Run ID", "Started", "Duration", "Rows", "Status", "Error"):
        runs.add_column(column)
    now = time.time()
    for row in result.runs:
        when = format_moment(row.start_time, now=now, missing="-")
        error = (
            "" if not row.error_message else escape(f"{row.error_type}: {row.error_message}"[:80])
        )
        runs.add_row(
            escape(row.run_id[:8]),
            when,
            _seconds(row.duration_seconds),
            "-" if row.rows is None else f"{row.rows:,}",
            status_text(row.status),
            f"[red]{error}[/]" if error else "",
        )
    console.print()
    console.print(runs)
    _render_checks(result, console)


def _render_checks(result: AssetMetrics, console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    if result.checks:
        checks = Table(title="Quality checks", title_justify="left", header_style="bold", box=None)
        for column in ("Check", "Severity", "Pass rate", "Results", "Last"):
            checks.add_column(column)
        for check in result.checks:
            checks.add_row(
                escape(check.name),
                check.severity,
                f"{check.pass_rate:.1f}%",
                f"{check.passed}/{check.results}",
                "[green]✓[/]" if check.last_passed else "[red]✗[/]",
            )
        console.print()
        console.print(checks)


def _register_more() -> None:
    from lakelens.cli import metrics_cost, metrics_slo

    app.command("cost")(metrics_cost.cost)
    app.command("slo")(metrics_slo.slo)


_register_more()


class ExportFormat(str, Enum):
    json = "json"
    csv = "csv"
    prometheus = "prometheus"


class ExportLevel(str, Enum):
    run = "run"
    asset = "asset"


@app.command()
def export(
    fmt: ExportFormat = typer.Option(
        ExportFormat.json, "--format", "-f", help="json, csv or prometheus."
    ),
    period: str = typer.Option(
        "7d", "--period", "-p", help="Window: 30m, 24h, 7d, … or an ISO start time (UTC)."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file instead of stdout."
    ),
    level: ExportLevel = typer.Option(
        ExportLevel.run, "--level", help="CSV only: one row per run (asset × run) or per asset."
    ),
    home: str | None = HomeOption,
) -> None:
    """Export per-asset and per-run metrics of a period as JSON, CSV or the Prometheus text format.

    JSON holds both levels; CSV holds one (--level run|asset); Prometheus counters count the
    events of the period (see docs for the metric names).

    Example: lakelens metrics export --format csv --period 30d --output metrics.csv
    """
    import csv
    import json
    import sys
    from dataclasses import asdict

    from lakelens.analysis.export import RUN_COLUMNS, asset_periods, run_rows
    from lakelens.cli._common import open_store
    from lakelens.cli._output import err_console
    from lakelens.errors import LakelensError
    from lakelens.export.prometheus import exposition

    since, now = _period(period)
    store = open_store(home)
    try:
        handle: Any = (
            sys.stdout if output is None else output.open("w", encoding="utf-8", newline="")
        )
    except OSError as exc:
        raise LakelensError(
            f"Cannot write {output}: {exc.strerror}; choose another --output path."
        ) from None
    count = 0
    try:
        with store.connect() as conn:
            if fmt is ExportFormat.prometheus:
                handle.write(exposition(conn, since=since, now=now))
            elif fmt is ExportFormat.json:
                assets = [asdict(a) for a in asset_periods(conn, since=since)]
                head = {"period": period, "since": since, "until": now, "assets": assets}
                # One compact line per run, written as it is read: json.dump's indented
                # output goes through the pure-Python encoder (11 s for a busy week's
                # 224,000 runs; one json.dumps per row is about 1 s).
                handle.write(json.dumps(head, indent=2)[:-2] + ',\n  "runs": [')
                for row in run_rows(conn, since=since):
                    handle.write(",\n    " if count else "\n    ")
                    handle.write(json.dumps(dict(zip(RUN_COLUMNS, row, strict=True))))
                    count += 1
                handle.write("\n  ]\n}\n" if count else "]\n}\n")
            elif level is ExportLevel.asset:
                periods = asset_periods(conn, since=since)
                writer = csv.writer(handle)
                columns = list(asdict(periods[0]).keys()) if periods else ["asset"]
                writer.writerow(columns)
                for item in periods:
                    writer.writerow(_csv_row(columns, asdict(item).values()))
                count = len(periods)
            else:
                writer = csv.writer(handle)
                writer.writerow(RUN_COLUMNS)
                for row in run_rows(conn, since=since):
                    writer.writerow(_csv_row(RUN_COLUMNS, row))
                    count += 1
    finally:
        if output is not None:
            handle.close()
    if output is not None:
        err_console.print(
            f"Wrote {fmt.value} metrics for the last {period} to {output}"
            + (f" ({count:,} rows)." if count else ".")
        )


def _csv_row(columns: Any, values: Any) -> list[Any]:
    """Times as ISO 8601 UTC, other numbers rounded to 4 decimals: for spreadsheets and people."""
    from lakelens.alerts.destinations._format import iso

    out: list[Any] = []
    for column, value in zip(columns, values, strict=True):
        if isinstance(value, float) and column.endswith("_time"):
            out.append(iso(value))
        elif isinstance(value, float):
            out.append(f"{value:.4f}".rstrip("0").rstrip("."))
        else:
            out.append(value)
    return out
