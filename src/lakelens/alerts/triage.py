"""What people do with incidents (acknowledge, snooze, resolve, note) and what they read
(the list, one incident with its findings, timeline and deliveries, the statistics)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lakelens.alerts.engine import (
    incident_from_row,
    incident_message,
    queue_notification,
    record_incident_event,
)
from lakelens.alerts.incidents import ACTIVE_INCIDENT
from lakelens.alerts.state import resolve_prefix
from lakelens.errors import InvalidArgumentError, LakelensError
from lakelens.store import schema
from lakelens.store.engine import is_sqlite

if TYPE_CHECKING:
    from lakelens.alerts.config import AlertingConfig
    from lakelens.store import Store

__all__ = [
    "IncidentView",
    "acknowledge",
    "feedback",
    "incident",
    "incidents",
    "note",
    "resolve",
    "resolve_id",
    "snooze",
]

STATUSES = ("open", "acknowledged", "resolved")


@dataclass(frozen=True)
class IncidentView:
    """An incident as the CLI, the API and the pages show it."""

    id: str
    title: str
    summary: str
    severity: str
    status: str
    root_asset: str | None
    opened_at: float
    fault_at: float | None
    notified_at: float | None
    acknowledged_at: float | None
    acknowledged_by: str | None
    snoozed_until: float | None
    resolved_at: float | None
    resolved_by: str | None
    assets: list[str]
    impact: list[str]
    findings: list[dict[str, Any]]
    run_id: str | None
    partition: str | None
    error: str | None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _view(row: Any) -> IncidentView:
    details = json.loads(row.details) if row.details else {}
    return IncidentView(
        id=row.id,
        title=row.title,
        summary=row.summary,
        severity=row.severity,
        status=row.status,
        root_asset=row.root_asset,
        opened_at=row.opened_at,
        fault_at=row.fault_at,
        notified_at=row.notified_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        snoozed_until=row.snoozed_until,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        assets=list(details.get("assets", [])),
        impact=list(details.get("impact", [])),
        findings=list(details.get("findings", [])),
        run_id=details.get("run_id"),
        partition=details.get("partition"),
        error=details.get("error"),
    )


def incidents(
    conn: sa.Connection,
    *,
    statuses: tuple[str, ...] = ACTIVE_INCIDENT,
    since: float | None = None,
    asset: str | None = None,
    limit: int = 200,
) -> list[IncidentView]:
    """Incidents with one of `statuses`, newest first (opened since `since`; about `asset`)."""
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise InvalidArgumentError(
            f"Unknown incident status {unknown[0]!r}; use one of {', '.join(STATUSES)}."
        )
    i = schema.incidents
    query = sa.select(i).where(i.c.status.in_(statuses)).order_by(i.c.opened_at.desc(), i.c.id)
    if since is not None:
        query = query.where(i.c.opened_at >= since)
    if asset is not None:
        a = schema.alerts
        query = query.where(
            sa.or_(
                i.c.root_asset == asset,
                i.c.id.in_(sa.select(a.c.incident_id).where(a.c.asset == asset)),
            )
        )
    return [_view(row) for row in conn.execute(query.limit(limit))]


def resolve_id(conn: sa.Connection, prefix: str) -> str:
    """The incident id `prefix` names (a unique prefix is enough)."""
    return resolve_prefix(
        conn,
        schema.incidents.c.id,
        prefix,
        what="incident id",
        listed_by="lakelens incidents list --all",
    )


def incident(conn: sa.Connection, prefix: str) -> IncidentView:
    """One incident with its timeline and every delivery made about it."""
    incident_id = resolve_id(conn, prefix)
    i, e, n = schema.incidents, schema.incident_events, schema.notifications
    view = _view(conn.execute(sa.select(i).where(i.c.id == incident_id)).one())
    view.timeline.extend(
        dict(r)
        for r in conn.execute(
            sa.select(e.c.time, e.c.event, e.c.actor, e.c.fingerprint, e.c.severity, e.c.text)
            .where(e.c.incident_id == incident_id)
            .order_by(e.c.time, e.c.id)
        ).mappings()
    )
    for row in conn.execute(
        sa.select(
            n.c.id,
            n.c.destination,
            n.c.action,
            n.c.payload,
            n.c.status,
            n.c.attempts,
            n.c.created_at,
            n.c.delivered_at,
            n.c.last_status_code,
            n.c.last_error,
        )
        .where(n.c.fingerprint == incident_id)
        .order_by(n.c.created_at, n.c.id)
    ).mappings():
        item = dict(row)
        payload = json.loads(item.pop("payload") or "{}")
        item["kind"] = payload.get("kind")
        view.deliveries.append(item)
    return view


def _write(store: Store) -> sa.Connection:
    conn = store.connect()
    if is_sqlite(conn.engine):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    return conn


def _load(conn: sa.Connection, prefix: str) -> Any:
    incident_id = resolve_id(conn, prefix)
    i = schema.incidents
    return conn.execute(sa.select(i).where(i.c.id == incident_id)).one()


def _told(conn: sa.Connection, incident_id: str) -> list[str]:
    n = schema.notifications
    return sorted(
        conn.execute(
            sa.select(n.c.destination)
            .where(n.c.fingerprint == incident_id, n.c.action != "test")
            .distinct()
        ).scalars()
    )


def acknowledge(
    store: Store,
    prefix: str,
    *,
    config: AlertingConfig,
    by: str | None = None,
    now: float | None = None,
) -> str:
    """Someone is on it: no reminders; PagerDuty is acknowledged too. Returns the id."""
    now = time.time() if now is None else now
    i = schema.incidents
    with _write(store) as conn:
        row = _load(conn, prefix)
        if row.status != "open":
            raise LakelensError(
                f"Incident {row.id} is {row.status}; only an open one can be acknowledged."
            )
        conn.execute(
            i.update()
            .where(i.c.id == row.id)
            .values(status="acknowledged", acknowledged_at=now, acknowledged_by=by, updated_at=now)
        )
        record_incident_event(conn, row.id, "acknowledged", now, actor=by)
        pagers = [
            d
            for d in _told(conn, row.id)
            if (config.destinations.get(d) or {}).get("type") == "pagerduty"
        ]
        _send(conn, row, "acknowledge", pagers, config, now)
        conn.commit()
    return str(row.id)


def resolve(
    store: Store,
    prefix: str,
    *,
    config: AlertingConfig,
    by: str | None = None,
    text: str | None = None,
    now: float | None = None,
) -> str:
    """Resolve by hand: everyone who was told hears it; its findings open nothing new until
    they clear or recur."""
    now = time.time() if now is None else now
    i = schema.incidents
    with _write(store) as conn:
        row = _load(conn, prefix)
        if row.status == "resolved":
            raise LakelensError(f"Incident {row.id} is already resolved.")
        conn.execute(
            i.update()
            .where(i.c.id == row.id)
            .values(status="resolved", resolved_at=now, resolved_by=by or "someone", updated_at=now)
        )
        record_incident_event(conn, row.id, "resolved", now, actor=by, text=text)
        if row.notified_at is not None:
            _send(conn, row, "resolved", _told(conn, row.id), config, now)
        conn.commit()
    return str(row.id)


def snooze(
    store: Store, prefix: str, *, until: float, by: str | None = None, now: float | None = None
) -> str:
    """Nothing is sent about it until `until` (but its resolve)."""
    now = time.time() if now is None else now
    if until <= now:
        raise InvalidArgumentError("Snooze until a time in the future, e.g. --for 2h.")
    i = schema.incidents
    with _write(store) as conn:
        row = _load(conn, prefix)
        if row.status == "resolved":
            raise LakelensError(f"Incident {row.id} is resolved; there is nothing to snooze.")
        conn.execute(i.update().where(i.c.id == row.id).values(snoozed_until=until, updated_at=now))
        from lakelens.alerts.destinations._format import utc

        record_incident_event(conn, row.id, "snoozed", now, actor=by, text=f"until {utc(until)}")
        conn.commit()
    return str(row.id)


def note(
    store: Store, prefix: str, text: str, *, by: str | None = None, now: float | None = None
) -> str:
    """Add a note to the timeline."""
    now = time.time() if now is None else now
    if not text.strip():
        raise InvalidArgumentError("A note needs some text.")
    with _write(store) as conn:
        row = _load(conn, prefix)
        record_incident_event(conn, row.id, "note", now, actor=by, text=text.strip())
        conn.commit()
    return str(row.id)


def _send(
    conn: sa.Connection,
    row: Any,
    kind: str,
    destinations: list[str],
    config: AlertingConfig,
    now: float,
) -> None:
    if not destinations:
        return
    from dataclasses import replace
    from uuid import uuid4

    message = incident_message(incident_from_row(row), kind, now, config, owners=[])
    for destination in destinations:
        queue_notification(conn, replace(message, notification_id=uuid4().hex), destination, now)
    record_incident_event(
        conn, row.id, "notified", now, actor="lakelens", text=f"{kind} → {', '.join(destinations)}"
    )


FEEDBACK_KINDS = ("false_positive", "expected")


def feedback(
    store: Store,
    prefix: str,
    *,
    kind: str,
    reason: str | None = None,
    by: str | None = None,
    now: float | None = None,
) -> int:
    """Take the runs behind an incident's findings out of their assets' learned baselines
    (a false positive, or something expected such as a planned backfill) and record why.
    The findings about those runs clear at the next evaluation. Returns how many runs."""
    if kind not in FEEDBACK_KINDS:
        raise InvalidArgumentError("Feedback is --false-positive or --expected.")
    now = time.time() if now is None else now
    a, f = schema.alerts, schema.baseline_feedback
    with _write(store) as conn:
        row = _load(conn, prefix)
        points = sorted(
            {
                (r.asset, r.run_id, r.rule)
                for r in conn.execute(
                    sa.select(a.c.asset, a.c.run_id, a.c.rule).where(
                        a.c.incident_id == row.id, a.c.asset.is_not(None), a.c.run_id.is_not(None)
                    )
                )
            }
        )
        for asset, run_id, rule in points:
            conn.execute(
                f.insert().values(
                    incident_id=row.id,
                    asset=asset,
                    run_id=run_id,
                    rule=rule,
                    kind=kind,
                    reason=reason,
                    created_by=by,
                    time=now,
                )
            )
        label = "false positive" if kind == "false_positive" else "expected"
        record_incident_event(
            conn,
            row.id,
            "feedback",
            now,
            actor=by,
            text=f"{label}: {len(points)} run(s) out of the baselines"
            + (f"; {reason}" if reason else ""),
        )
        conn.commit()
    return len(points)
