"""The evaluator: findings → alerts (dedup by fingerprint) → routing → outbox, in one transaction."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import sqlalchemy as sa

from lakelens.alerts.config import AlertingConfig
from lakelens.alerts.destinations.alertmanager import DEFAULT_TTL as ALERTMANAGER_TTL
from lakelens.alerts.destinations.base import AlertMessage
from lakelens.alerts.incidents import ACTIVE_INCIDENT, Incident, IncidentBook, Member
from lakelens.alerts.maintenance import stored_windows
from lakelens.alerts.rules import Finding, RuleContext, evaluate_rules
from lakelens.store import schema
from lakelens.store.engine import dialect_insert, is_sqlite
from lakelens.units import format_duration

if TYPE_CHECKING:
    from lakelens.store import Store

__all__ = [
    "ACTIVE",
    "AlertEngine",
    "Evaluation",
    "incident_message",
    "load_active",
    "queue_notification",
    "record_heartbeat",
    "record_incident_event",
]

ACTIVE = ("firing", "silenced", "acknowledged")
_PG_EVALUATOR_LOCK = 0x1A6E1E46


@dataclass
class Evaluation:
    """What one evaluation did: alerts fired and resolved (fingerprints), incidents opened,
    and the messages queued ((incident id, kind) pairs; `notifications` counts outbox rows)."""

    findings: int = 0
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    notified: list[tuple[str, str]] = field(default_factory=list)
    notifications: int = 0
    # When an incident waiting out its group wait is due to be told (epoch seconds).
    due_at: float | None = None


def record_heartbeat(
    conn: sa.Connection, component: str, now: float, details: dict[str, Any]
) -> None:
    """Upsert `component`'s last run, so a dead evaluator or worker is itself visible."""
    insert = dialect_insert(conn.engine)
    table = schema.heartbeats
    owner = f"{socket.gethostname()}:{os.getpid()}"
    stmt = insert(table).values(
        component=component, last_run=now, owner=owner, details=json.dumps(details)
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["component"],
            set_={
                "last_run": stmt.excluded.last_run,
                "owner": stmt.excluded.owner,
                "details": stmt.excluded.details,
            },
        )
    )


def queue_notification(
    conn: sa.Connection, message: AlertMessage, destination: str, now: float
) -> None:
    """One outbox row; the delivery worker sends it (after this transaction commits)."""
    conn.execute(
        schema.notifications.insert().values(
            id=message.notification_id,
            fingerprint=message.fingerprint,
            destination=destination,
            action=message.action,
            status="pending",
            payload=json.dumps(message.to_dict(), default=str),
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
    )


class AlertEngine:
    """Evaluates the rules, keeps each finding's alert, and folds them into incidents: the
    unit people are told about (alerts/incidents.py decides when)."""

    def __init__(self, store: Store, config: AlertingConfig) -> None:
        self.store = store
        self.config = config

    def evaluate(self, *, now: float | None = None, group_wait: float | None = None) -> Evaluation:
        """One cycle at `now`. `group_wait` overrides the configured wait before "opened"
        (0 when the run that caused the findings has ended, as in the pipeline's process)."""
        now = time.time() if now is None else now
        with self.store.connect() as conn:
            context = RuleContext(conn, self.config, now)
            findings = evaluate_rules(conn, self.config, now=now, context=context)
            if findings:
                context.graph  # noqa: B018 - loaded now: grouping uses it after this connection
        result = Evaluation(findings=len(findings))
        with self.store.connect() as conn:
            if is_sqlite(conn.engine):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                # Evaluators on several servers take turns; each sees the other's state.
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_EVALUATOR_LOCK}
                )
            try:
                # Read before the alerts below resolve: their findings leave as "cleared".
                active = load_active(conn)
                silenced = self._reconcile(conn, findings, now, result)
                Casebook(conn, self.config, context, now, result).run(
                    active, findings, silenced, group_wait
                )
                record_heartbeat(
                    conn,
                    "evaluator",
                    now,
                    {
                        "findings": len(findings),
                        "fired": len(result.fired),
                        "resolved": len(result.resolved),
                        "incidents": len(result.opened),
                    },
                )
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        return result

    # -- alerts: one row per finding's fingerprint -------------------------------------------
    def _reconcile(
        self, conn: sa.Connection, findings: list[Finding], now: float, result: Evaluation
    ) -> frozenset[str]:
        """Fire, update and resolve the alert of each finding; return the silenced ones."""
        a = schema.alerts
        wanted = {f.fingerprint: f for f in findings}
        rows = conn.execute(
            sa.select(a).where(sa.or_(a.c.status.in_(ACTIVE), a.c.fingerprint.in_(sorted(wanted))))
        ).mappings()
        existing = {row["fingerprint"]: dict(row) for row in rows}
        silenced_fps, silenced_assets = self._silences(conn, now)
        windows = [
            w for w in (*self.config.maintenance, *stored_windows(conn, now=now)) if w.open_at(now)
        ]
        silenced: set[str] = set()
        for fingerprint, finding in wanted.items():
            muted = (
                fingerprint in silenced_fps
                or (finding.asset is not None and finding.asset in silenced_assets)
                or any(w.covers(finding.asset) for w in windows)
            )
            if muted:
                silenced.add(fingerprint)
            old = existing.get(fingerprint)
            if old is not None and old["status"] in ACTIVE:
                self._update(conn, old, finding, muted, now)
            else:
                self._fire(conn, old, finding, muted, now, result)
        for fingerprint, old in existing.items():
            if old["status"] in ACTIVE and fingerprint not in wanted:
                conn.execute(
                    a.update()
                    .where(a.c.fingerprint == fingerprint)
                    .values(status="resolved", resolved_at=now)
                )
                self._event(conn, fingerprint, "resolved", now, None, old["count"], about=old)
                result.resolved.append(fingerprint)
        return frozenset(silenced)

    def _silences(self, conn: sa.Connection, now: float) -> tuple[set[str], set[str]]:
        s = schema.silences
        rows = conn.execute(
            sa.select(s.c.fingerprint, s.c.asset).where(
                s.c.ended_at.is_(None), s.c.starts_at <= now, s.c.ends_at > now
            )
        ).all()
        return {r.fingerprint for r in rows if r.fingerprint}, {r.asset for r in rows if r.asset}

    def _event(
        self,
        conn: sa.Connection,
        fingerprint: str,
        event: str,
        now: float,
        finding: Finding | None,
        count: int | None,
        *,
        about: dict[str, Any] | None = None,
    ) -> None:
        """Record an event; with no finding (a resolve), `about` is the alert's row, so the
        event still says what resolved."""
        source: dict[str, Any] = (
            {"severity": finding.severity, "asset": finding.asset, "summary": finding.summary}
            if finding
            else about or {}
        )
        conn.execute(
            schema.alert_events.insert().values(
                fingerprint=fingerprint,
                time=now,
                event=event,
                severity=source.get("severity"),
                asset=source.get("asset"),
                summary=source.get("summary"),
                count=count,
            )
        )

    def _fire(
        self,
        conn: sa.Connection,
        old: dict[str, Any] | None,
        finding: Finding,
        silenced: bool,
        now: float,
        result: Evaluation,
    ) -> None:
        status = "silenced" if silenced else "firing"
        values = {
            "rule": finding.rule,
            "severity": finding.severity,
            "asset": finding.asset,
            "status": status,
            "summary": finding.summary,
            "details": _details(finding),
            "run_id": finding.run_id,
            "occurrence": finding.occurrence,
            "count": 1,
            "first_seen": now,
            "last_seen": now,
            "last_notified": None,
            "resolved_at": None,
            "acknowledged_at": None,
            "parent": finding.parent,
            # Fired anew: it finds its incident again (a cleared finding left its old one).
            "incident_id": None,
        }
        a = schema.alerts
        if old is None:
            conn.execute(a.insert().values(fingerprint=finding.fingerprint, **values))
        else:
            conn.execute(a.update().where(a.c.fingerprint == finding.fingerprint).values(**values))
        self._event(
            conn, finding.fingerprint, "fired" if status == "firing" else status, now, finding, 1
        )
        result.fired.append(finding.fingerprint)

    def _update(
        self,
        conn: sa.Connection,
        old: dict[str, Any],
        finding: Finding,
        silenced: bool,
        now: float,
    ) -> None:
        count = old["count"]
        if finding.occurrence is not None and finding.occurrence != old["occurrence"]:
            count += 1
        if silenced:
            status = "silenced"
        elif old["status"] == "acknowledged":
            status = "acknowledged"
        else:
            status = "firing"
        a = schema.alerts
        conn.execute(
            a.update()
            .where(a.c.fingerprint == old["fingerprint"])
            .values(
                severity=finding.severity,
                status=status,
                summary=finding.summary,
                details=_details(finding),
                run_id=finding.run_id or old["run_id"],
                occurrence=finding.occurrence or old["occurrence"],
                count=count,
                last_seen=now,
                parent=finding.parent,
            )
        )
        if count != old["count"]:
            self._event(conn, old["fingerprint"], "occurred", now, finding, count)
        if status != old["status"]:
            self._event(conn, old["fingerprint"], status, now, finding, count)


def _details(finding: Finding) -> str:
    return json.dumps({**finding.details, "fault_at": finding.at}, default=str)


class Casebook:
    """One cycle of incidents: load the active ones, let the book decide, store its changes
    and queue the messages it asked for (in the evaluator's transaction)."""

    def __init__(
        self,
        conn: sa.Connection,
        config: AlertingConfig,
        context: RuleContext,
        now: float,
        result: Evaluation,
    ) -> None:
        self.conn = conn
        self.config = config
        self.context = context
        self.now = now
        self.result = result
        self.loaded: dict[str, str] = {}

    def run(
        self,
        active: list[Incident],
        findings: list[Finding],
        silenced: frozenset[str],
        group_wait: float | None,
    ) -> None:
        # What each incident's status was when this cycle read it: a person may acknowledge or
        # resolve one while the cycle runs, and the cycle must not write that back.
        self.loaded = {incident.id: incident.status for incident in active}
        book = IncidentBook(active, held=self._held(), policy=self.config.incident_policy)
        changes = book.apply(
            findings, self.now, self.context, silenced=silenced, group_wait=group_wait
        )
        touched: dict[str, Incident] = {}
        for change in changes:
            incident = change.incident
            touched[incident.id] = incident
            if change.kind == "opened":
                self._insert(incident)
                self.result.opened.append(incident.id)
            elif change.kind in ("joined", "cleared"):
                member = change.member
                assert member is not None
                if change.kind == "joined":
                    a = schema.alerts
                    self.conn.execute(
                        a.update()
                        .where(a.c.fingerprint == member.fingerprint)
                        .values(incident_id=incident.id)
                    )
                record_incident_event(
                    self.conn,
                    incident.id,
                    change.kind,
                    self.now,
                    fingerprint=member.fingerprint,
                    severity=member.severity,
                    text=member.summary,
                )
            elif change.kind == "resolved":
                record_incident_event(
                    self.conn,
                    incident.id,
                    "resolved",
                    self.now,
                    actor="lakelens",
                    text="every finding cleared",
                )
            elif change.kind == "notify":
                assert change.action is not None
                self._notify(incident, change.action)
        for incident in book.active():
            if incident.id not in touched and incident.notified_at is not None:
                touched[incident.id] = incident
            if incident.notified_at is not None and not incident.muted(self.now):
                self._catch_up(incident)
        for incident in touched.values():
            self._save(incident)
        waiting = [
            i.opened_at + (book.policy.group_wait if group_wait is None else group_wait)
            for i in book.active()
            if i.notified_at is None and not i.muted(self.now)
        ]
        self.result.due_at = min(waiting, default=None)

    # -- storage ------------------------------------------------------------------------------
    def _held(self) -> dict[str, tuple[str, str | None]]:
        a, i = schema.alerts, schema.incidents
        rows = self.conn.execute(
            sa.select(a.c.fingerprint, a.c.incident_id, a.c.occurrence)
            .join(i, i.c.id == a.c.incident_id)
            .where(a.c.status.in_(ACTIVE), i.c.status == "resolved")
        )
        return {r.fingerprint: (r.incident_id, r.occurrence) for r in rows}

    def _insert(self, incident: Incident) -> None:
        self.conn.execute(
            schema.incidents.insert().values(
                id=incident.id,
                key=incident.key[:600],
                root_asset=incident.root_asset,
                title="",
                summary="",
                severity=incident.severity,
                status=incident.status,
                opened_at=incident.opened_at,
                updated_at=self.now,
            )
        )
        record_incident_event(self.conn, incident.id, "opened", self.now, actor="lakelens")

    def _save(self, incident: Incident) -> None:
        """Write what the evaluator owns; the status only when this cycle changed it (resolved
        every finding) and only if nobody changed it since the cycle read it."""
        i = schema.incidents
        self.conn.execute(
            i.update()
            .where(i.c.id == incident.id)
            .values(
                title=incident.title[:2000],
                summary=incident.summary[:2000],
                severity=incident.severity,
                fault_at=incident.fault_at,
                updated_at=incident.updated_at or self.now,
                notified_at=incident.notified_at,
                notified_severity=incident.notified_severity,
                last_notified_at=incident.last_notified_at,
                details=json.dumps(incident.details, default=str),
            )
        )
        before = self.loaded.get(incident.id, incident.status)
        if incident.status != before:
            self.conn.execute(
                i.update()
                .where(i.c.id == incident.id, i.c.status == before)
                .values(
                    status=incident.status,
                    resolved_at=incident.resolved_at,
                    resolved_by=incident.resolved_by,
                )
            )

    # -- messages -----------------------------------------------------------------------------
    def _owners(self, incident: Incident) -> list[str]:
        ctx = self.context
        names = [incident.root_asset, *incident.details.get("assets", [])]
        names += incident.details.get("impact", [])
        return sorted({o for n in names if n for o in [ctx.owner(n)] if o})

    def _routes(self, incident: Incident) -> list[str]:
        root = incident.root_asset
        owner = self.context.owner(root) if root else None
        tags = self.context.tags(root) if root else {}
        names = self.config.route(incident.severity, owner=owner, tags=tags, asset=root)
        # "Alerts to X are not arriving" is not sent to X.
        excluded = incident.key.removeprefix("alert_delivery_failed:")
        return [n for n in names if n != excluded]

    def _told(self, incident: Incident) -> dict[str, float]:
        """Destination → when it was last sent something about this incident."""
        n = schema.notifications
        return {
            row.destination: row.last
            for row in self.conn.execute(
                sa.select(n.c.destination, sa.func.max(n.c.created_at).label("last"))
                .where(n.c.fingerprint == incident.id, n.c.action != "test")
                .group_by(n.c.destination)
            )
        }

    def _notify(self, incident: Incident, action: str) -> None:
        told = self._told(incident)
        if action == "resolved":
            destinations = sorted(told)
        else:
            destinations = self._routes(incident)
            if action == "escalated":
                destinations = sorted(set(destinations) | set(told))
        self._queue(incident, action, destinations)

    def _catch_up(self, incident: Incident) -> None:
        """A destination added while the incident is open is told once; Alertmanager is kept
        from expiring it (its endsAt) while it is open or acknowledged."""
        told = self._told(incident)
        missing = [d for d in self._routes(incident) if d not in told]
        if missing:
            self._queue(incident, "opened", missing)
        refresh = []
        for name, last in told.items():
            mapping = self.config.destinations.get(name) or {}
            if mapping.get("type") != "alertmanager":
                continue
            ttl = float(mapping.get("ttl") or ALERTMANAGER_TTL)
            if self.now - last >= ttl / 3:
                refresh.append(name)
        if refresh:
            kind = "acknowledged" if incident.status == "acknowledged" else "refresh"
            self._queue(incident, kind, refresh, record=False)

    def _queue(
        self, incident: Incident, kind: str, destinations: list[str], *, record: bool = True
    ) -> None:
        if not destinations:
            return
        message = incident_message(incident, kind, self.now, self.config, self._owners(incident))
        for destination in destinations:
            queue_notification(self.conn, _with_id(message), destination, self.now)
            self.result.notifications += 1
        self.result.notified.append((incident.id, kind))
        if record:
            record_incident_event(
                self.conn,
                incident.id,
                "notified",
                self.now,
                actor="lakelens",
                severity=incident.severity,
                text=f"{kind} → {', '.join(destinations)}",
            )


def incident_message(
    incident: Incident, kind: str, now: float, config: AlertingConfig, owners: list[str]
) -> AlertMessage:
    """The message for `kind` (opened, escalated, reminder, resolved, acknowledged, refresh)."""
    details = incident.details
    action = {"resolved": "resolve", "acknowledge": "acknowledge"}.get(kind, "trigger")
    findings = [
        f"{f['summary']}" + (f" ({f['severity']})" if f.get("severity") else "")
        for f in details.get("findings", [])
    ]
    summary = incident.summary
    if kind == "resolved":
        summary = (
            f"Every finding cleared after {format_duration(now - incident.opened_at)}: {summary}"
        )
    return AlertMessage(
        notification_id="",
        fingerprint=incident.id,
        action=action,
        rule=str(details.get("rule") or "incident"),
        severity=incident.severity,
        title=incident.title,
        summary=summary,
        time=now,
        first_seen=incident.opened_at,
        count=1,
        asset=incident.root_asset,
        partition=details.get("partition"),
        run_id=details.get("run_id"),
        error=details.get("error"),
        impact=list(details.get("impact", [])),
        details={"incident": incident.id, "assets": details.get("assets", [])},
        link=_link(config, incident),
        incident_id=incident.id,
        kind=kind,
        findings=findings[:50],
        owners=owners,
    )


def _link(config: AlertingConfig, incident: Incident) -> str | None:
    if not config.public_url:
        return None
    return f"{config.public_url.rstrip('/')}/incidents/{quote(incident.id, safe='')}"


def record_incident_event(
    conn: sa.Connection,
    incident_id: str,
    event: str,
    now: float,
    *,
    actor: str | None = None,
    fingerprint: str | None = None,
    severity: str | None = None,
    text: str | None = None,
) -> None:
    """One line of an incident's timeline."""
    conn.execute(
        schema.incident_events.insert().values(
            incident_id=incident_id,
            time=now,
            event=event,
            actor=actor,
            fingerprint=fingerprint,
            severity=severity,
            text=text[:2000] if text else None,
        )
    )


def load_active(conn: sa.Connection) -> list[Incident]:
    """The open and acknowledged incidents, with the findings that belong to them."""
    i, a = schema.incidents, schema.alerts
    incidents = {
        row.id: incident_from_row(row)
        for row in conn.execute(sa.select(i).where(i.c.status.in_(ACTIVE_INCIDENT)))
    }
    if incidents:
        for row in conn.execute(
            sa.select(a).where(a.c.incident_id.in_(sorted(incidents)), a.c.status.in_(ACTIVE))
        ):
            details = json.loads(row.details) if row.details else {}
            incidents[row.incident_id].members[row.fingerprint] = Member(
                fingerprint=row.fingerprint,
                rule=row.rule,
                severity=row.severity,
                title=_title(row.rule),
                summary=row.summary,
                asset=row.asset,
                occurrence=row.occurrence,
                run_id=row.run_id,
                at=details.get("fault_at"),
                silenced=row.status == "silenced",
            )
    return list(incidents.values())


def incident_from_row(row: Any) -> Incident:
    return Incident(
        id=row.id,
        key=row.key,
        root_asset=row.root_asset,
        opened_at=row.opened_at,
        title=row.title,
        summary=row.summary,
        severity=row.severity,
        status=row.status,
        fault_at=row.fault_at,
        updated_at=row.updated_at,
        notified_at=row.notified_at,
        notified_severity=row.notified_severity,
        last_notified_at=row.last_notified_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        snoozed_until=row.snoozed_until,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        details=json.loads(row.details) if row.details else {},
    )


def _with_id(message: AlertMessage) -> AlertMessage:
    from dataclasses import replace

    return replace(message, notification_id=uuid.uuid4().hex)


_TITLES = {
    "asset_failed": "Asset Materialization Failed",
    "check_failed": "Quality Check Failed",
    "validation_pass_rate": "Validation Pass Rate Low",
    "freshness": "Freshness SLA Breached",
    "late": "Data Late",
    "failure_rate": "Failure Rate High",
    "slow_run": "Asset Running Slow",
    "volume_anomaly": "Volume Anomaly",
    "row_count_anomaly": "Row Count Anomaly",
    "null_rate_shift": "Null Rate Shift",
    "distinct_shift": "Distinct Values Shift",
    "range_violation": "Values Out of Range",
    "schema_drift": "Schema Drift",
    "absence": "Heartbeat Missing",
    "alert_delivery_failed": "Alert Delivery Failing",
    "monitor_failed": "Monitor Failing",
}


def _title(rule: str) -> str:
    return _TITLES.get(rule, rule.replace("_", " ").title())
