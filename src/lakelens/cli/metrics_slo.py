"""`lakelens metrics slo`: availability and freshness SLOs per asset, with error budgets."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import typer

from lakelens.cli._common import HomeOption, JsonOption, NoColorOption, RowsOption

if TYPE_CHECKING:
    from lakelens.analysis.slo import AssetSlo, ErrorBudget, Objective, SloReport

__all__ = ["slo"]

_STATUS_STYLE = {"OK": "green", "AT RISK": "yellow", "BREACHED": "bold red", "NO DATA": "dim"}


def slo(
    period: str = typer.Option("30d", "--period", help="How far back to look: 24h, 7d, 30d."),
    limit: int = RowsOption,
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
    no_color: bool = NoColorOption,
) -> None:
    """SLO compliance per asset with declared targets: availability, freshness, error budgets.

    Availability = successful / finished (success + failure) materializations in the period,
    against the asset's availability target (99% when it declares only a freshness SLA).
    Freshness = share of the period during which the latest success was no older than the
    freshness SLA (time before any success is not fresh; the period starts no earlier than the
    asset's first recorded materialization); its target is the availability target.
    Error budget: allowed = 1 - target; consumed = bad fraction / allowed; remaining = 1 -
    consumed; burn rate = bad fraction / allowed over the period (1.0 spends exactly the budget).
    Status: BREACHED below target, AT RISK under 25% budget left, NO DATA when nothing finished
    in the period, else OK. JSON fractions are 0..1.

    Example: lakelens metrics slo --period 7d
    """
    from lakelens.analysis.slo import slo_report
    from lakelens.cli._common import open_store
    from lakelens.cli._output import print_json
    from lakelens.units import parse_duration

    seconds = parse_duration(period, name="--period")
    store = open_store(home)
    try:
        report = slo_report(store, period=seconds)
    finally:
        store.close()
    if json_output:
        print_json(to_json(report))
        return
    _render(report, no_color, limit)


def to_json(report: SloReport) -> dict[str, Any]:
    """The stable JSON shape of `lakelens metrics slo --json`."""
    from lakelens.cli.metrics_cost import period_json

    return {
        "period": period_json(report),
        "default_target": report.default_target,
        "assets": [_asset_json(a) for a in report.assets],
        "no_slo_declared": list(report.undeclared),
    }


def _asset_json(item: AssetSlo) -> dict[str, Any]:
    freshness = item.freshness
    return {
        "asset": item.asset,
        "owner": item.owner,
        "layer": item.layer,
        "status": item.status,
        "target": item.target,
        "target_source": "default" if item.target_is_default else "declared",
        "freshness_sla_seconds": item.freshness_seconds,
        "availability": {
            "actual": item.availability.actual,
            "target": item.availability.target,
            "successes": int(item.availability.good),
            "finished": int(item.availability.total),
            "status": item.availability.status,
            "error_budget": _budget_json(item.availability.budget),
        },
        "freshness": None
        if freshness is None
        else {
            "actual": freshness.actual,
            "target": freshness.target,
            "fresh_seconds": freshness.good,
            "measured_since": freshness.since,
            "measured_seconds": freshness.total,
            "status": freshness.status,
            "error_budget": _budget_json(freshness.budget),
        },
    }


def _budget_json(budget: ErrorBudget | None) -> dict[str, Any] | None:
    if budget is None:
        return None
    return {
        "allowed": budget.allowed,
        "bad": budget.bad,
        "consumed": budget.consumed,
        "remaining": budget.remaining,
        "burn_rate": budget.burn_rate,
        "exhausted": budget.exhausted,
    }


def target_text(fraction: float) -> str:
    """99.9% / 99.95% / 99%: as many decimals as the target has (up to 3)."""
    return f"{fraction * 100:.3f}".rstrip("0").rstrip(".") + "%"


def actual_text(fraction: float | None) -> str:
    """Two decimals, rounded down so that compliance is never shown better than it was."""
    if fraction is None:
        return "no runs"
    return f"{math.floor(fraction * 10000 + 1e-9) / 100:.2f}%"


def remaining_text(budget: ErrorBudget | None) -> str:
    if budget is None:
        return "–"
    if budget.exhausted:
        return "exhausted"
    return "–" if budget.remaining is None else f"{budget.remaining:.0%}"


def burn_text(budget: ErrorBudget | None) -> str:
    if budget is None or budget.burn_rate is None:
        return "–"
    return f"{budget.burn_rate:.2f}×"


def _render(report: SloReport, no_color: bool, limit: int = 0) -> None:
    from rich.markup import escape
    from rich.table import Table

    from lakelens.cli._common import make_console, more_line
    from lakelens.cli.metrics_cost import NOTHING_RECORDED, period_label
    from lakelens.units import format_duration

    console = make_console(no_color)
    label = period_label(report.period_seconds)
    if not report.recorded:
        console.print(NOTHING_RECORDED)
        return
    if not report.assets:
        console.print(
            "No asset declares an SLO: give one freshness= or availability= in lakelens.asset(...)."
        )
    else:
        console.print(f"[bold]SLOs over the last {label}[/]")
        table = Table(show_edge=False, header_style="bold")
        table.add_column("Asset")
        table.add_column("Objective")
        for header in ("Actual", "Target", "Budget left", "Burn rate"):
            table.add_column(header, justify="right")
        table.add_column("Status")

        def row(name: str, objective: Objective, what: str, target: str) -> None:
            style = _STATUS_STYLE.get(objective.status, "white")
            actual = actual_text(objective.actual)
            if objective.kind == "availability" and objective.total:
                actual += f" ({int(objective.good):,}/{int(objective.total):,})"
            elif objective.since > report.since and objective.total:
                # Measured from the asset's first recorded materialization.
                actual += f" of {format_duration(objective.total)}"
            table.add_row(
                name,
                what,
                actual,
                target,
                remaining_text(objective.budget),
                burn_text(objective.budget),
                f"[{style}]{objective.status}[/]",
            )

        # Breached and at-risk assets come first: a limit keeps the ones that need attention.
        shown = report.assets[:limit] if limit else report.assets
        for item in shown:
            target = target_text(item.target) + (" (default)" if item.target_is_default else "")
            row(escape(item.asset), item.availability, "availability", target)
            if item.freshness is not None and item.freshness_seconds is not None:
                sla = format_duration(item.freshness_seconds)
                row("", item.freshness, f"freshness ≤ {sla}", target)
        console.print(table)
        more = more_line(len(shown), len(report.assets), "assets")
        if more:
            console.print(more)
        if any(item.target_is_default for item in report.assets):
            console.print(
                f"[dim](default) target {target_text(report.default_target)}: the asset declares "
                "only a freshness SLA; set availability= on it to choose another.[/]"
            )
        console.print(
            "[dim]Freshness: share of the period within the SLA of the latest success. "
            "Burn rate 1.0 spends exactly the error budget over the period.[/]"
        )
    if report.undeclared:
        listed = report.undeclared if not limit else report.undeclared[:limit]
        names = ", ".join(listed)
        rest = len(report.undeclared) - len(listed)
        more = f" [dim]… and {rest:,} more (--limit 0 shows all)[/]" if rest else ""
        console.print(
            f"[dim]No SLO declared:[/] {escape(names)}{more}",
            soft_wrap=True,
        )
