"""`lakelens why`: the root cause of a stale or failing asset, in one command."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

from lakelens.cli._common import HomeOption, JsonOption, NoColorOption, TzOption

if TYPE_CHECKING:
    from lakelens.model import CheckResult


def why(
    asset: str = typer.Argument(..., help="The asset that looks wrong (stale or failing)."),
    home: Optional[str] = HomeOption,  # noqa: UP045
    json_output: bool = JsonOption,
    no_color: bool = NoColorOption,
    tz: Optional[str] = TzOption,  # noqa: UP045
) -> None:
    """Explain why ASSET is stale or failing: its own failure or failed error checks first, then
    the first failing upstream asset, then a stale one; with the last error, the failed checks,
    the error log lines of that run, and the failing span.

    Example: lakelens why mrt_glucose_readings
    """
    import time

    from rich.markup import escape

    from lakelens.analysis.assets import resolve_asset
    from lakelens.analysis.lineage import load_graph
    from lakelens.analysis.run_context import run_context
    from lakelens.analysis.runs import short_run_id
    from lakelens.analysis.why import diagnose
    from lakelens.cli._common import age, make_console, open_store
    from lakelens.cli._output import print_json
    from lakelens.display import format_moment
    from lakelens.store import reads
    from lakelens.units import format_duration

    now = time.time()
    store = open_store(home)
    with store.reader() as conn:
        name = resolve_asset(conn, asset)
        graph = load_graph(conn)
        result = diagnose(conn, graph, name, now=now)
        # Hints name the failed run by a prefix that is unique in this store.
        hint_id = short_run_id(conn, result.failure.run_id) if result.failure else ""
        failed_runs = reads.runs(conn, run_id=result.failure.run_id) if result.failure else []
    context = run_context(failed_runs[0]) if failed_runs else None
    target = result.nodes[name]
    if json_output:
        failure = result.failure
        print_json(
            {
                "asset": name,
                "problem": result.problem,
                "healthy": result.healthy,
                "chain": result.chain,
                "root_cause": result.root_cause,
                "root_problem": result.root_problem,
                "failing_since": result.failing_since,
                "failed_runs": result.failed_runs,
                "last_error": None
                if failure is None
                else {
                    "run_id": failure.run_id,
                    "time": failure.start_time.isoformat() if failure.start_time else None,
                    "type": failure.error_type,
                    "message": failure.error_message,
                    "traceback": failure.error_traceback,
                    **(context.as_dict() if context else {}),
                },
                "failed_checks": [
                    {
                        "name": c.name,
                        "severity": c.severity,
                        "run_id": c.run_id,
                        "time": c.time.isoformat() if c.time else None,
                        "detail": _check_detail(c),
                    }
                    for c in result.failed_checks
                ],
                "anomalies": [
                    {"rule": a.rule, "summary": a.summary, "since": a.since}
                    for a in result.anomalies
                ],
                "also_upstream": [{"asset": n, "problem": p} for n, p in result.also],
                "error_logs": [
                    {"time": r.time.isoformat(), "level": r.level_name, "message": r.message}
                    for r in result.error_logs
                ],
                "failing_span": None
                if result.failing_span is None
                else {"name": result.failing_span.name, "error": result.failing_span.error_message},
            }
        )
        return
    console = make_console(no_color)

    def freshness(node_name: str) -> str:
        node = result.nodes[node_name]
        text = (
            "no success recorded yet"
            if node.age_seconds is None
            else f"last success {age(node.age_seconds)}"
        )
        if node.freshness_seconds:
            text += f" (SLA {format_duration(node.freshness_seconds)})"
        return text

    if result.healthy:
        console.print(
            f"[green]✓ {escape(name)} looks healthy[/]: {freshness(name)}; no failing or stale upstream asset."
        )
        return
    root = result.root_cause
    assert root is not None
    own = {
        "failing": "[red]is failing[/]",
        "failed_checks": "[red]failed its error checks[/]",
        "anomalous": "[yellow]looks anomalous[/]",
        "stale": "[yellow]is stale[/]",
        None: "[green]has no problem of its own[/]",
    }
    console.print(f"[bold]{escape(name)}[/] {own[result.problem]} — {freshness(name)}.")
    if root == name:
        console.print("[bold]Root cause:[/] the asset itself.")
    else:
        path = " ← ".join(escape(n) for n in result.chain)
        console.print(
            f"[bold]Root cause:[/] upstream [bold red]{escape(root)}[/] {own[result.root_problem]}"
        )
        console.print(f"  path: {path}")
        if result.problem is None and target.freshness_seconds and target.age_seconds is not None:
            left = target.freshness_seconds - target.age_seconds
            if left > 0:
                console.print(
                    f"  {escape(name)} breaches its freshness SLA in {format_duration(left)} unless {escape(root)} recovers."
                )
    if result.failed_checks:
        console.print("\n[bold]Failed checks[/]:")
        for check in result.failed_checks:
            when = format_moment(check.time, missing="?")
            run = f"run {escape(check.run_id[:8])}" if check.run_id else "no run"
            console.print(
                f"  [red]✗ {escape(check.name)}[/] ({check.severity}, {run} at {when}): "
                f"{escape(_check_detail(check))}"
            )
    if result.anomalies:
        console.print("\n[bold]Anomalies[/] (open alerts):")
        for anomaly in result.anomalies:
            console.print(
                f"  [yellow]! {escape(anomaly.summary)}[/] "
                f"({anomaly.rule}, first seen {age(max(0.0, now - anomaly.since))})"
            )
    failure = result.failure
    if failure is not None:
        since = ""
        if result.failing_since is not None:
            since = f"failing for {format_duration(max(0.0, now - result.failing_since))}, {result.failed_runs} failed run(s) in a row; "
        when = format_moment(failure.start_time, missing="?")
        console.print(f"\n[bold]Last error[/] ({since}run {escape(failure.run_id)} at {when}):")
        console.print(
            f"  [red]{escape(failure.error_type or 'Error')}: {escape(failure.error_message or '')}[/]"
        )
        line = context.line() if context else None
        if line:
            console.print(f"  [dim]{escape(line)}[/]")
        if result.failing_span is not None:
            console.print(
                f"  failing span: [bold]{escape(result.failing_span.name)}[/] — {escape(result.failing_span.error_message or '')}"
            )
        if result.error_logs:
            console.print("\n[bold]Log lines of that run:[/]")
            for record in result.error_logs:
                style = "red" if record.level >= 40 else "yellow"
                console.print(
                    f"  [dim]\\[{format_moment(record.time, now=now)}][/] [{style}]{record.level_name:<7}[/] {escape(record.message)}",
                    soft_wrap=True,
                )
        console.print(
            f"\nNext: [bold]lakelens trace {escape(hint_id)}[/] · "
            f"[bold]lakelens logs --run-id {escape(hint_id)}[/] · "
            f"[bold]lakelens lineage impact {escape(root)}[/]"
        )
    elif result.root_problem == "stale":
        console.print(
            f"\n{escape(root)} has not failed; it simply has not succeeded recently ({freshness(root)}). "
            "Check that its schedule is running."
        )
    if result.also:
        # After the root cause: a stale source must not hide the failing model's own error.
        console.print("\n[bold]Also upstream:[/]")
        for other, problem in result.also:
            console.print(f"  [bold]{escape(other)}[/] {own[problem]} — {freshness(other)}")


def _check_detail(check: CheckResult) -> str:
    """What a failed check found, in the words the alert uses."""
    if check.message:
        return check.message
    if check.total_rows is not None and check.valid_rows is not None:
        return f"{check.valid_rows:,}/{check.total_rows:,} rows valid"
    if check.value is not None:
        return f"value {check.value} vs threshold {check.threshold}"
    return "failed"
