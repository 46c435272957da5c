"""Monitors watching themselves: a warehouse that cannot be read is news, as is a table a
monitor cannot read (a missing privilege, a query past its limit, a table that vanished)."""

from __future__ import annotations

from lakelens.alerts.rules._context import Finding, RuleContext

TITLE = "Monitor Failing"


def _monitor_failures(ctx: RuleContext) -> list[Finding]:
    """One finding per monitor that read nothing, one per table a monitor could not read
    (on the table's asset, so it joins that asset's incident)."""
    from lakelens.monitors.state import load_monitors

    if ctx.as_of:  # replay has no warehouse
        return []
    try:
        monitors = load_monitors(ctx.conn)
    except Exception:  # a monitor row this version cannot read: `lakelens monitor list` says so
        return []
    out = []
    for state in monitors:
        if not state.last_error:
            continue
        at = state.details.get("started") or state.last_run
        if state.unreachable:
            out.append(
                Finding(
                    rule="monitor_failed",
                    key=state.name,
                    severity="error",
                    title=TITLE,
                    summary=f"Monitor {state.name} cannot read its warehouse: "
                    f"{state.details.get('error')}"[:500],
                    details={"monitor": state.name, "url": state.config.shown_url},
                    at=at,
                )
            )
            continue
        for table, failure in sorted(state.failed_tables.items()):
            error = failure.get("error") if isinstance(failure, dict) else str(failure)
            asset = failure.get("asset") if isinstance(failure, dict) else None
            out.append(
                Finding(
                    rule="monitor_failed",
                    key=f"{state.name}|{table}",
                    severity="warning",
                    title=TITLE,
                    summary=f"Monitor {state.name} cannot read {table}: {error}"[:500],
                    asset=asset,
                    details={"monitor": state.name, "table": table, "url": state.config.shown_url},
                    at=at,
                )
            )
    return out
