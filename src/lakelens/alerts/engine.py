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
from lakelens.alerts.destinations.base import AlertMessage
from lakelens.alerts.rules import Finding, evaluate_rules
from lakelens.store import schema
from lakelens.store.engine import dialect_insert, is_sqlite
from lakelens.units import SEVERITIES

if TYPE_CHECKING:
    from lakelens.store import Store

__all__ = ["ACTIVE", "AlertEngine", "Evaluation", "queue_notification", "record_heartbeat"]

ACTIVE = ("firing", "silenced", "acknowledged")
_PG_EVALUATOR_LOCK = 0x1A6E1E46


@dataclass
class Evaluation:
    """What one evaluation did (fingerprints)."""

    findings: int = 0
    fired: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    notifications: int = 0


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
    """Evaluates the rules and reconciles their findings with the stored alerts."""

    def __init__(self, store: Store, config: AlertingConfig) -> None:
        self.store = store
        self.config = config

    def evaluate(self, *, now: float | None = None) -> Evaluation:
        now = time.time() if now is None else now
        with self.store.connect() as conn:
            findings = evaluate_rules(conn, self.config, now=now)
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
                self._reconcile(conn, findings, now, result)
                record_heartbeat(
                    conn,
                    "evaluator",
                    now,
                    {
                        "findings": len(findings),
                        "fired": len(result.fired),
                        "resolved": len(result.resolved),
                    },
                )
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        return result

    # -- reconciliation --------------------------------------------------------------------
    def _reconcile(
        self, conn: sa.Connection, findings: list[Finding], now: float, result: Evaluation
    ) -> None:
        a = schema.alerts
        wanted = {f.fingerprint: f for f in findings}
        rows = conn.execute(
            sa.select(a).where(sa.or_(a.c.status.in_(ACTIVE), a.c.fingerprint.in_(sorted(wanted))))
        ).mappings()
        existing = {row["fingerprint"]: dict(row) for row in rows}
        silenced_fps, silenced_assets = self._silences(conn, now)
        asset_info = {
            row.name: (row.owner, json.loads(row.tags) if row.tags else {})
            for row in conn.execute(
                sa.select(schema.assets.c.name, schema.assets.c.owner, schema.assets.c.tags)
            )
        }
        for fingerprint, finding in wanted.items():
            silenced = fingerprint in silenced_fps or (
                finding.asset is not None and finding.asset in silenced_assets
            )
            old = existing.get(fingerprint)
            if old is not None and old["status"] in ACTIVE:
                self._update(conn, old, finding, silenced, now, result, asset_info)
            else:
                self._fire(conn, old, finding, silenced, now, result, asset_info)
        for fingerprint, old in existing.items():
            if old["status"] in ACTIVE and fingerprint not in wanted:
                self._resolve(conn, old, now, result)

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
    ) -> None:
        conn.execute(
            schema.alert_events.insert().values(
                fingerprint=fingerprint,
                time=now,
                event=event,
                severity=finding.severity if finding else None,
                asset=finding.asset if finding else None,
                summary=finding.summary if finding else None,
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
        asset_info: dict[str, Any],
    ) -> None:
        status = "silenced" if silenced else "firing"
        notify = status == "firing" and finding.parent is None
        values = {
            "rule": finding.rule,
            "severity": finding.severity,
            "asset": finding.asset,
            "status": status,
            "summary": finding.summary,
            "details": json.dumps(finding.details, default=str),
            "run_id": finding.run_id,
            "occurrence": finding.occurrence,
            "count": 1,
            "first_seen": now,
            "last_seen": now,
            "last_notified": now if notify else None,
            "resolved_at": None,
            "acknowledged_at": None,
            "parent": finding.parent,
        }
        a = schema.alerts
        if old is None:
            conn.execute(a.insert().values(fingerprint=finding.fingerprint, **values))
        else:
            conn.execute(a.update().where(a.c.fingerprint == finding.fingerprint).values(**values))
        self._event(
            conn,
            finding.fingerprint,
            "fired" if status == "firing" else "silenced",
            now,
            finding,
            1,
        )
        result.fired.append(finding.fingerprint)
        if notify:
            self._notify(
                conn,
                finding,
                "trigger",
                now,
                first_seen=now,
                count=1,
                asset_info=asset_info,
                result=result,
            )

    def _update(
        self,
        conn: sa.Connection,
        old: dict[str, Any],
        finding: Finding,
        silenced: bool,
        now: float,
        result: Evaluation,
        asset_info: dict[str, Any],
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
        escalated = SEVERITIES.get(finding.severity, 0) > SEVERITIES.get(old["severity"], 0)
        window = self.config.dedup_for(finding.rule)
        reference = old["last_notified"] if old["last_notified"] is not None else old["first_seen"]
        notify = (
            status == "firing"
            and finding.parent is None
            and (escalated or old["last_notified"] is None or now - reference >= window)
        )
        a = schema.alerts
        conn.execute(
            a.update()
            .where(a.c.fingerprint == old["fingerprint"])
            .values(
                severity=finding.severity,
                status=status,
                summary=finding.summary,
                details=json.dumps(finding.details, default=str),
                run_id=finding.run_id or old["run_id"],
                occurrence=finding.occurrence or old["occurrence"],
                count=count,
                last_seen=now,
                last_notified=now if notify else old["last_notified"],
                parent=finding.parent,
            )
        )
        if count != old["count"]:
            self._event(conn, old["fingerprint"], "occurred", now, finding, count)
        if status != old["status"]:
            self._event(conn, old["fingerprint"], status, now, finding, count)
        if notify:
            self._event(
                conn,
                old["fingerprint"],
                "escalated" if escalated else "repeated",
                now,
                finding,
                count,
            )
            result.repeated.append(old["fingerprint"])
            self._notify(
                conn,
                finding,
                "trigger",
                now,
                first_seen=old["first_seen"],
                count=count,
                asset_info=asset_info,
                result=result,
                repeat=not escalated,
            )

    def _resolve(
        self, conn: sa.Connection, old: dict[str, Any], now: float, result: Evaluation
    ) -> None:
        a, n = schema.alerts, schema.notifications
        conn.execute(
            a.update()
            .where(a.c.fingerprint == old["fingerprint"])
            .values(status="resolved", resolved_at=now)
        )
        self._event(conn, old["fingerprint"], "resolved", now, None, old["count"])
        result.resolved.append(old["fingerprint"])
        told = sorted(
            conn.execute(
                sa.select(n.c.destination)
                .where(
                    n.c.fingerprint == old["fingerprint"],
                    n.c.action == "trigger",
                    n.c.created_at >= old["first_seen"],
                )
                .distinct()
            ).scalars()
        )
        if not told:
            return
        details = json.loads(old["details"]) if old["details"] else {}
        message = AlertMessage(
            notification_id="",
            fingerprint=old["fingerprint"],
            action="resolve",
            rule=old["rule"],
            severity=old["severity"],
            title=_title(old["rule"]),
            summary=f"Resolved after {old['count']} occurrence(s): {old['summary']}",
            time=now,
            first_seen=old["first_seen"],
            count=old["count"],
            asset=old["asset"],
            run_id=old["run_id"],
            details=details,
            link=self._link(old["asset"]),
        )
        for destination in told:
            queue_notification(conn, _with_id(message), destination, now)
            result.notifications += 1

    def _notify(
        self,
        conn: sa.Connection,
        finding: Finding,
        action: str,
        now: float,
        *,
        first_seen: float,
        count: int,
        asset_info: dict[str, Any],
        result: Evaluation,
        repeat: bool = False,
    ) -> None:
        owner, tags = asset_info.get(finding.asset or "", (None, {}))
        destinations = self.config.route(finding.severity, owner=owner, tags=tags)
        excluded = finding.details.get("exclude_destination")
        summary = finding.summary
        if repeat:
            summary = f"Still firing, {count} occurrence(s) since first seen: {summary}"
        message = AlertMessage(
            notification_id="",
            fingerprint=finding.fingerprint,
            action=action,
            rule=finding.rule,
            severity=finding.severity,
            title=finding.title,
            summary=summary,
            time=now,
            first_seen=first_seen,
            count=count,
            asset=finding.asset,
            partition=finding.partition,
            run_id=finding.run_id,
            error=finding.error,
            impact=list(finding.details.get("impact", [])),
            details=finding.details,
            link=self._link(finding.asset),
        )
        for destination in destinations:
            if destination == excluded:
                continue
            queue_notification(conn, _with_id(message), destination, now)
            result.notifications += 1

    def _link(self, asset: str | None) -> str | None:
        if not asset or not self.config.public_url:
            return None
        return f"{self.config.public_url.rstrip('/')}/assets/{quote(asset, safe='')}"


def _with_id(message: AlertMessage) -> AlertMessage:
    from dataclasses import replace

    return replace(message, notification_id=uuid.uuid4().hex)


_TITLES = {
    "asset_failed": "Asset Materialization Failed",
    "check_failed": "Quality Check Failed",
    "validation_pass_rate": "Validation Pass Rate Low",
    "freshness": "Freshness SLA Breached",
    "failure_rate": "Failure Rate High",
    "slow_run": "Asset Running Slow",
    "volume_anomaly": "Volume Anomaly",
    "schema_drift": "Schema Drift",
    "absence": "Heartbeat Missing",
    "alert_delivery_failed": "Alert Delivery Failing",
}


def _title(rule: str) -> str:
    return _TITLES.get(rule, rule.replace("_", " ").title())
