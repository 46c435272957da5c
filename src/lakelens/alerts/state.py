"""Operator actions on alerts (silence, unsilence, acknowledge) and read views for the CLI/API."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lakelens.errors import InvalidArgumentError, LakelensError
from lakelens.store import schema
from lakelens.store.engine import is_sqlite

if TYPE_CHECKING:
    from lakelens.store import Store

__all__ = [
    "AlertRow",
    "acknowledge",
    "alerts",
    "history",
    "resolve_fingerprint",
    "silence",
    "status",
    "unsilence",
]


@dataclass(frozen=True)
class AlertRow:
    fingerprint: str
    rule: str
    severity: str
    asset: str | None
    status: str
    summary: str
    count: int
    first_seen: float
    last_seen: float
    last_notified: float | None
    resolved_at: float | None
    parent: str | None
    details: dict[str, Any]


def _row(r: Any) -> AlertRow:
    return AlertRow(
        fingerprint=r.fingerprint,
        rule=r.rule,
        severity=r.severity,
        asset=r.asset,
        status=r.status,
        summary=r.summary,
        count=r.count,
        first_seen=r.first_seen,
        last_seen=r.last_seen,
        last_notified=r.last_notified,
        resolved_at=r.resolved_at,
        parent=r.parent,
        details=json.loads(r.details) if r.details else {},
    )


def alerts(
    conn: sa.Connection, *, statuses: tuple[str, ...] = ("firing", "acknowledged", "silenced")
) -> list[AlertRow]:
    a = schema.alerts
    rows = conn.execute(sa.select(a).where(a.c.status.in_(statuses)).order_by(a.c.last_seen.desc()))
    return [_row(r) for r in rows]


def history(
    conn: sa.Connection, *, since: float, asset: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """Alert events since `since` (newest first) with the deliveries made for each alert.

    Every event says what it is about: events recorded without a summary, severity or asset
    (resolves, acknowledgements) take their alert's.
    """
    e, n, a = schema.alert_events, schema.notifications, schema.alerts
    query = (
        sa.select(e).where(e.c.time >= since).order_by(e.c.time.desc(), e.c.id.desc()).limit(limit)
    )
    if asset is not None:
        query = query.where(
            sa.or_(
                e.c.asset == asset,
                sa.and_(
                    e.c.asset.is_(None),
                    e.c.fingerprint.in_(sa.select(a.c.fingerprint).where(a.c.asset == asset)),
                ),
            )
        )
    events = [dict(r) for r in conn.execute(query).mappings()]
    fingerprints = sorted({ev["fingerprint"] for ev in events})
    # Messages are about incidents: an alert's deliveries are those of its incident.
    incident_of: dict[str, str] = {}
    about: dict[str, Any] = {}
    for first in range(0, len(fingerprints), 500):
        for found in conn.execute(
            sa.select(a.c.fingerprint, a.c.incident_id, a.c.severity, a.c.asset, a.c.summary).where(
                a.c.fingerprint.in_(fingerprints[first : first + 500])
            )
        ):
            about[found.fingerprint] = found
            if found.incident_id is not None:
                incident_of[found.fingerprint] = found.incident_id
    for event in events:
        alert = about.get(event["fingerprint"])
        if alert is not None:
            for key in ("severity", "asset", "summary"):
                if event[key] is None:
                    event[key] = getattr(alert, key)
    keys = sorted(set(fingerprints) | set(incident_of.values()))
    deliveries: dict[str, list[dict[str, Any]]] = {}
    if keys:
        for row in conn.execute(
            sa.select(
                n.c.fingerprint,
                n.c.destination,
                n.c.action,
                n.c.status,
                n.c.attempts,
                n.c.created_at,
                n.c.last_status_code,
                n.c.last_error,
            )
            .where(n.c.fingerprint.in_(keys), n.c.created_at >= since)
            .order_by(n.c.created_at)
        ).mappings():
            deliveries.setdefault(row["fingerprint"], []).append(dict(row))
    for event in events:
        key = incident_of.get(event["fingerprint"], event["fingerprint"])
        event["incident"] = incident_of.get(event["fingerprint"])
        event["deliveries"] = deliveries.get(key, [])
    return events


def resolve_prefix(
    conn: sa.Connection, column: Any, prefix: str, *, what: str, listed_by: str
) -> str:
    """The one value of `column` that starts with `prefix` (a unique prefix is enough)."""
    clean = prefix.strip().replace("%", "").replace("_", "")
    matches = (
        list(conn.execute(sa.select(column).where(column.like(clean + "%")).limit(3)).scalars())
        if clean
        else []
    )
    if len(matches) == 1:
        return str(matches[0])
    if not matches:
        raise LakelensError(f"No {what} starts with {prefix!r}; `{listed_by}` lists them.")
    raise LakelensError(
        f"{what.capitalize()} prefix {prefix!r} is ambiguous; type more characters."
    )


def resolve_fingerprint(conn: sa.Connection, prefix: str) -> str:
    """The alert fingerprint `prefix` names (a unique prefix is enough)."""
    return resolve_prefix(
        conn,
        schema.alerts.c.fingerprint,
        prefix,
        what="alert fingerprint",
        listed_by="lakelens alerts firing",
    )


def _write(store: Store) -> sa.Connection:
    conn = store.connect()
    if is_sqlite(conn.engine):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    return conn


def silence(
    store: Store,
    *,
    fingerprint: str | None = None,
    asset: str | None = None,
    seconds: float,
    reason: str | None = None,
    created_by: str | None = None,
    now: float | None = None,
) -> str:
    """Mute an alert (by fingerprint) or every alert of an asset for `seconds`; returns the silence id."""
    if (fingerprint is None) == (asset is None):
        raise InvalidArgumentError(
            "Silence either a FINGERPRINT or --asset NAME, not both and not neither."
        )
    now = time.time() if now is None else now
    silence_id = uuid.uuid4().hex
    with _write(store) as conn:
        if fingerprint is not None:
            fingerprint = resolve_fingerprint(conn, fingerprint)
        conn.execute(
            schema.silences.insert().values(
                id=silence_id,
                fingerprint=fingerprint,
                asset=asset,
                starts_at=now,
                ends_at=now + seconds,
                reason=reason,
                created_by=created_by,
            )
        )
        a = schema.alerts
        target = a.c.fingerprint == fingerprint if fingerprint else a.c.asset == asset
        conn.execute(a.update().where(target, a.c.status == "firing").values(status="silenced"))
        conn.commit()
    return silence_id


def unsilence(
    store: Store,
    *,
    fingerprint: str | None = None,
    asset: str | None = None,
    now: float | None = None,
) -> int:
    """End the active silences of a fingerprint or asset (all when neither is given); returns how many."""
    now = time.time() if now is None else now
    s, a = schema.silences, schema.alerts
    with _write(store) as conn:
        if fingerprint is not None:
            fingerprint = resolve_fingerprint(conn, fingerprint)
        query = s.update().where(s.c.ended_at.is_(None), s.c.ends_at > now)
        if fingerprint is not None:
            query = query.where(s.c.fingerprint == fingerprint)
        if asset is not None:
            query = query.where(s.c.asset == asset)
        ended = conn.execute(query.values(ended_at=now)).rowcount or 0
        # The next evaluation decides whether they fire (and notifies if they do).
        target = [a.c.status == "silenced"]
        if fingerprint is not None:
            target.append(a.c.fingerprint == fingerprint)
        if asset is not None:
            target.append(a.c.asset == asset)
        conn.execute(a.update().where(*target).values(status="firing", last_notified=None))
        conn.commit()
    return int(ended)


def acknowledge(store: Store, fingerprint: str, *, now: float | None = None) -> str:
    """Someone is on it: no more reminders until the alert resolves (the resolve is still sent)."""
    now = time.time() if now is None else now
    a = schema.alerts
    with _write(store) as conn:
        full = resolve_fingerprint(conn, fingerprint)
        changed = conn.execute(
            a.update()
            .where(a.c.fingerprint == full, a.c.status.in_(("firing", "silenced")))
            .values(status="acknowledged", acknowledged_at=now)
        ).rowcount
        if changed:
            conn.execute(
                schema.alert_events.insert().values(
                    fingerprint=full, time=now, event="acknowledged"
                )
            )
            # People are told about incidents: acknowledging a finding takes its incident.
            i = schema.incidents
            incident_id = conn.execute(
                sa.select(a.c.incident_id).where(a.c.fingerprint == full)
            ).scalar()
            if (
                incident_id is not None
                and conn.execute(
                    i.update()
                    .where(i.c.id == incident_id, i.c.status == "open")
                    .values(status="acknowledged", acknowledged_at=now, updated_at=now)
                ).rowcount
            ):
                conn.execute(
                    schema.incident_events.insert().values(
                        incident_id=incident_id,
                        time=now,
                        event="acknowledged",
                        fingerprint=full,
                        text="through `lakelens alerts ack`",
                    )
                )
        conn.commit()
    if not changed:
        raise LakelensError(f"Alert {full[:12]} is not firing; nothing to acknowledge.")
    return full


def status(conn: sa.Connection, *, now: float) -> dict[str, Any]:
    """Counts for `lakelens alerts status`: heartbeats, firing, sent in 24 h, backlog, failures."""
    a, n, h = schema.alerts, schema.notifications, schema.heartbeats
    beats = {
        r.component: {"last_run": r.last_run, "owner": r.owner} for r in conn.execute(sa.select(h))
    }
    firing = conn.execute(sa.select(sa.func.count()).where(a.c.status == "firing")).scalar_one()
    i = schema.incidents
    incidents_open = conn.execute(
        sa.select(sa.func.count()).where(i.c.status.in_(("open", "acknowledged")))
    ).scalar_one()
    by_status: dict[str, int] = dict(
        conn.execute(
            sa.select(n.c.status, sa.func.count())
            .where(n.c.created_at >= now - 86400)
            .group_by(n.c.status)
        ).all()
    )
    backlog = conn.execute(
        sa.select(sa.func.count()).where(n.c.status.in_(("pending", "sending")))
    ).scalar_one()
    return {
        "heartbeats": beats,
        "firing": int(firing),
        "incidents_open": int(incidents_open),
        "sent_24h": int(by_status.get("delivered", 0)),
        "failed_24h": int(by_status.get("failed", 0)) + int(by_status.get("gave_up", 0)),
        "backlog": int(backlog),
    }
