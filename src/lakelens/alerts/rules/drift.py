"""Schema drift: an asset's columns changed since its previous snapshot."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from lakelens.alerts.rules._context import Finding, RuleContext
from lakelens.store import schema


def _schema_drift(ctx: RuleContext) -> list[Finding]:
    s = schema.schema_snapshots
    window = ctx.now - ctx.config.rules.schema_drift_window
    out = []
    recent = ctx.conn.execute(
        sa.select(s.c.asset, s.c.id, s.c.time, s.c.columns, s.c.hash)
        .where(s.c.time >= window, ctx.upto(s.c.time))
        .order_by(s.c.asset, s.c.time.desc(), s.c.id.desc())
    ).all()
    latest: dict[str, Any] = {}
    for row in recent:
        latest.setdefault(row.asset, row)
    for asset, row in latest.items():
        previous = ctx.conn.execute(
            sa.select(s.c.columns, s.c.hash)
            .where(
                s.c.asset == asset,
                sa.or_(s.c.time < row.time, sa.and_(s.c.time == row.time, s.c.id < row.id)),
            )
            .order_by(s.c.time.desc(), s.c.id.desc())
            .limit(1)
        ).first()
        if previous is None or previous.hash == row.hash:
            continue
        before = dict(map(tuple, json.loads(previous.columns)))
        after = dict(map(tuple, json.loads(row.columns)))
        added = sorted(set(after) - set(before))
        removed = sorted(set(before) - set(after))
        changed = sorted(c for c in set(before) & set(after) if before[c] != after[c])
        parts = (
            [f"+{c}" for c in added]
            + [f"-{c}" for c in removed]
            + [f"{c}: {before[c]} → {after[c]}" for c in changed]
        )
        out.append(
            Finding(
                rule="schema_drift",
                key=asset,
                severity="warning",
                title="Schema Drift",
                summary=f"{asset} schema changed: {', '.join(parts)}"[:500],
                asset=asset,
                occurrence=row.hash,
                details={"added": added, "removed": removed, "changed": changed},
            )
        )
    return out
