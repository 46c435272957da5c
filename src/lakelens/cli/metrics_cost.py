"""`lakelens metrics cost`: what each asset processed over a period, and what it cost."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from lakelens.cli._common import HomeOption, JsonOption, NoColorOption, RowsOption, TzOption

if TYPE_CHECKING:
    from lakelens.analysis.cost import CostReport, Growth, Usage

__all__ = ["cost", "period_label"]

NOTHING_RECORDED = "No runs recorded yet — try `lakelens demo`."


def cost(
    period: str = typer.Option("30d", "--period", help="How far back to look: 12h, 7d, 30d."),
    price_per_gb: str | None = typer.Option(
        None,
        "--price-per-gb",
        help="Price of one GB (10^9 bytes) processed; default $LAKELENS_PRICE_PER_GB or 0.023.",
    ),
    price_per_cpu_hour: str | None = typer.Option(
        None,
        "--price-per-cpu-hour",
        help="Price of one CPU hour; default $LAKELENS_PRICE_PER_CPU_HOUR or 0.05.",
    ),
    limit: int = RowsOption,
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
    no_color: bool = NoColorOption,
    tz: str | None = TzOption,
) -> None:
    """Estimated cost per asset over a period: bytes processed, rows, runs, CPU seconds, peak
    memory and storage growth, most expensive first, with totals and cost per GB.

    Estimated cost = GB processed × price per GB + CPU hours × price per CPU hour, over every
    materialization started in the period (failed ones too; 1 GB = 10^9 bytes).
    Storage growth = bytes written in the period vs bytes written in the same-length period
    just before it ("+12% vs previous 7d"; "month over month" when the period is 28 days or
    more). It is n/a unless the recorded history reaches back to the start of that earlier
    period (keep LAKELENS_RETENTION_DAYS at twice the period or more).

    Example: lakelens metrics cost --period 30d --price-per-gb 0.023 --price-per-cpu-hour 0.05
    """
    from lakelens.analysis.cost import cost_report, resolve_prices
    from lakelens.cli._common import open_store
    from lakelens.cli._output import print_json
    from lakelens.units import parse_duration

    seconds = parse_duration(period, name="--period")
    prices = resolve_prices(
        price_per_gb, price_per_cpu_hour, names=("--price-per-gb", "--price-per-cpu-hour")
    )
    store = open_store(home)
    try:
        report = cost_report(store, period=seconds, prices=prices)
    finally:
        store.close()
    if json_output:
        print_json(to_json(report))
        return
    _render(report, no_color, limit)


def to_json(report: CostReport) -> dict[str, Any]:
    """The stable JSON shape of `lakelens metrics cost --json`."""
    return {
        "period": period_json(report),
        "previous_period": {"since": report.previous_since, "until": report.since},
        "comparison": "month over month" if report.month_over_month else "period over period",
        "history_start": report.history_start,
        "prices": {"per_gb": report.prices.per_gb, "per_cpu_hour": report.prices.per_cpu_hour},
        "assets": [
            {"asset": a.asset, "owner": a.owner, "layer": a.layer, **_usage_json(a.usage)}
            for a in report.assets
        ],
        "total": _usage_json(report.total),
    }


def _usage_json(usage: Usage) -> dict[str, Any]:
    g = usage.growth
    return {
        "runs": usage.runs,
        "materializations": usage.materializations,
        "rows": usage.rows,
        "bytes": usage.bytes,
        "cpu_seconds": usage.cpu_seconds,
        "peak_memory_bytes": usage.peak_memory_bytes,
        "bytes_cost": usage.bytes_cost,
        "cpu_cost": usage.cpu_cost,
        "cost": usage.cost,
        "cost_per_gb": usage.cost_per_gb,
        "growth": {
            "current_bytes": g.current_bytes,
            "previous_bytes": g.previous_bytes,
            "change": g.change,
            "state": g.state,
        },
    }


def period_json(report: Any) -> dict[str, Any]:
    """The `period` object of the cost and slo JSON (a report with since, until, period_seconds)."""
    return {
        "since": report.since,
        "until": report.until,
        "seconds": report.period_seconds,
        "label": period_label(report.period_seconds),
    }


def period_label(seconds: float) -> str:
    """'30d', '24h', '90m', '45s': the largest whole unit (days from 2 days), else a rounded duration."""
    from lakelens.units import format_duration

    for size, unit, least in ((86400, "d", 2), (3600, "h", 1), (60, "m", 1), (1, "s", 1)):
        count = seconds / size
        if count >= least and count == int(count):
            return f"{int(count)}{unit}"
    return format_duration(seconds)


def money(amount: float) -> str:
    """An amount with the precision it needs: '1,234', '12.34', '0.0123', '<0.0001'."""
    if amount == 0:
        return "0"
    if amount >= 100:
        return f"{amount:,.0f}"
    if amount >= 1:
        return f"{amount:,.2f}"
    if amount < 0.0001:
        return "<0.0001"
    return f"{amount:.4f}"


def growth_text(growth: Growth) -> str:
    if growth.change is not None:
        percent = growth.change * 100
        return f"{percent:+.1f}%" if abs(percent) < 10 else f"{percent:+.0f}%"
    return {"new": "new", "empty": "–"}.get(growth.state, "n/a")


def _render(report: CostReport, no_color: bool, limit: int = 0) -> None:
    from rich.markup import escape
    from rich.table import Table

    from lakelens.cli._common import make_console, more_line
    from lakelens.display import format_moment
    from lakelens.units import format_bytes, format_count, format_duration

    console = make_console(no_color)
    label = period_label(report.period_seconds)
    if not report.recorded:
        console.print(NOTHING_RECORDED)
        return
    if not report.assets:
        console.print(f"No materializations in the last {label}.")
        return
    prices = report.prices
    console.print(
        f"[bold]Cost over the last {label}[/] [dim](prices: {prices.per_gb:g} per GB processed, "
        f"{prices.per_cpu_hour:g} per CPU hour)[/]"
    )
    growth_header = "Growth (MoM)" if report.month_over_month else f"Growth vs prev {label}"
    table = Table(show_edge=False, header_style="bold")
    table.add_column("Asset")
    for header in (
        "Runs",
        "Rows",
        "Processed",
        "CPU",
        "Peak memory",
        growth_header,
        "Est. cost",
        "Cost/GB",
    ):
        table.add_column(header, justify="right")

    def cells(usage: Usage) -> list[str]:
        return [
            f"{usage.runs:,}",
            format_count(usage.rows),
            format_bytes(usage.bytes),
            format_duration(usage.cpu_seconds) if usage.cpu_seconds else "0s",
            "–" if usage.peak_memory_bytes is None else format_bytes(usage.peak_memory_bytes),
            growth_text(usage.growth),
            money(usage.cost),
            "–" if usage.cost_per_gb is None else money(usage.cost_per_gb),
        ]

    # Most expensive first: a limit keeps the ones that cost the most; the total counts all.
    shown = report.assets[:limit] if limit else report.assets
    for item in shown:
        table.add_row(escape(item.asset), *cells(item.usage))
    table.add_section()
    total = "Total" if len(shown) == len(report.assets) else f"Total ({len(report.assets):,})"
    table.add_row(f"[bold]{total}[/]", *(f"[bold]{c}[/]" for c in cells(report.total)))
    console.print(table)
    more = more_line(len(shown), len(report.assets), "assets")
    if more:
        console.print(more)

    previous = f"the previous {label}" + (" (month over month)" if report.month_over_month else "")
    console.print(f"[dim]Storage growth: bytes written in the last {label} vs {previous}.[/]")
    if report.total.growth.state == "n/a" and report.history_start is not None:
        console.print(
            f"[dim]Growth is n/a: recorded history starts {format_moment(report.history_start)}, "
            f"after the start of the previous {label}.[/]"
        )
