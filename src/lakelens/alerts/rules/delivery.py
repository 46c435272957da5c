"""Alerting watching itself: a destination that keeps failing is news for the others."""

from __future__ import annotations

import sqlalchemy as sa

from lakelens.alerts.rules._context import Finding, RuleContext
from lakelens.store import schema
from lakelens.units import format_duration

DELIVERY_FAILING_AFTER = 300.0


def _delivery_failures(ctx: RuleContext) -> list[Finding]:
    """A destination that has been failing for a while, or failed for good, in the last day:
    tell the others."""
    from lakelens.alerts.outbox import failing_destinations

    if ctx.as_of:  # replay delivers nothing
        return []
    n = schema.notifications
    failing = failing_destinations(ctx.conn, ctx.now)
    out = []
    for destination, since in sorted(failing.items()):
        if destination not in ctx.config.destinations:
            continue
        last = ctx.conn.execute(
            sa.select(n.c.status, n.c.last_error)
            .where(n.c.destination == destination, n.c.action != "test", n.c.attempts > 0)
            .order_by(sa.func.coalesce(n.c.finished_at, n.c.next_attempt_at).desc())
            .limit(1)
        ).first()
        for_good = last is not None and last.status in ("failed", "gave_up")
        if not for_good and ctx.now - since < DELIVERY_FAILING_AFTER:
            continue
        error = (last.last_error if last is not None else None) or "failed"
        out.append(
            Finding(
                rule="alert_delivery_failed",
                key=destination,
                severity="error",
                title="Alert Delivery Failing",
                summary=f"Alerts to {destination} have not arrived for "
                f"{format_duration(max(ctx.now - since, 0.0))}: {error}"[:500],
                details={
                    "destination": destination,
                    "exclude_destination": destination,
                    "failing_since": since,
                },
                at=since,
            )
        )
    return out
