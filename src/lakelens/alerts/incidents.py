"""Findings → incidents: one per root cause, and when to tell people about it.

The book is pure: the engine loads the open incidents, hands it the findings that hold now,
and stores what it decided; replay drives the same book over recorded history in memory.

Grouping: every finding about one asset joins that asset's incident. A finding on an asset
below a broken one in lineage (failed, failed an error check, stale, silent) joins the most
upstream broken asset's incident instead: the root cause. A finding about the data (volume,
size, null rate, distinct values, range) also joins the incident of an asset above whose data
is off. Anything else is its own incident.

Telling: "opened" once the group wait has passed (so one run's findings arrive together),
"escalated" when the severity rises above what was told, "reminder" after the repeat
interval while nobody has acknowledged it, "resolved" when every finding has cleared.
A finding that joins an open incident changes it silently: it shows in the timeline.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from lakelens.units import SEVERITIES

if TYPE_CHECKING:
    from lakelens.alerts.rules import Finding

__all__ = [
    "ACTIVE_INCIDENT",
    "Change",
    "Incident",
    "IncidentBook",
    "Lineage",
    "Member",
    "Policy",
    "new_incident_id",
]

ACTIVE_INCIDENT = ("open", "acknowledged")

# Findings that make their asset a root cause for the assets below it.
_BREAKING = frozenset({"asset_failed", "check_failed", "freshness", "late", "absence"})
# Findings on a downstream asset that an upstream root cause explains (schema drift and
# custom thresholds are about the asset itself: they stay separate incidents).
_FOLLOWS_UPSTREAM = frozenset(
    {
        "asset_failed",
        "check_failed",
        "freshness",
        "late",
        "absence",
        "failure_rate",
        "volume_anomaly",
        "slow_run",
        "validation_pass_rate",
        "row_count_anomaly",
        "null_rate_shift",
        "distinct_shift",
        "range_violation",
    }
)
# Findings about the data itself. One on an asset below another asset whose data is off
# joins that asset's incident too (nulls upstream are nulls downstream); other findings
# follow only the broken assets above.
_DATA = frozenset(
    {"volume_anomaly", "row_count_anomaly", "null_rate_shift", "distinct_shift", "range_violation"}
)
# Which finding names an incident: the most telling one about the root asset.
_PRIORITY = {
    "asset_failed": 0,
    "check_failed": 1,
    "freshness": 2,
    "late": 2,
    "absence": 3,
    "volume_anomaly": 4,
    "row_count_anomaly": 4,
    "slow_run": 5,
    "null_rate_shift": 5,
    "distinct_shift": 5,
    "range_violation": 5,
    "schema_drift": 6,
    "validation_pass_rate": 7,
    "failure_rate": 8,
}


def _rank(severity: str | None) -> int:
    return SEVERITIES.get(severity or "", 0)


def new_incident_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class Policy:
    """When to tell: `group_wait` after opening, again every `repeat_interval` while open.
    `rule_repeat`: a rule's own interval (`alerts.rules.NAME.dedup_window`); an incident is
    reminded at the shortest interval among its findings' rules."""

    group_wait: float = 10.0
    repeat_interval: float = 4 * 3600.0
    rule_repeat: tuple[tuple[str, float], ...] = ()

    def repeat_for(self, rules: Iterable[str]) -> float:
        own = dict(self.rule_repeat)
        return min(
            (own.get(rule, self.repeat_interval) for rule in rules), default=self.repeat_interval
        )


class Lineage(Protocol):
    """What grouping needs of the lineage graph."""

    def downstream(self, asset: str) -> list[str]: ...


@dataclass
class Member:
    """A finding as it belongs to an incident."""

    fingerprint: str
    rule: str
    severity: str
    title: str
    summary: str
    asset: str | None = None
    occurrence: str | None = None
    run_id: str | None = None
    partition: str | None = None
    error: str | None = None
    at: float | None = None
    silenced: bool = False

    @classmethod
    def of(cls, finding: Finding, *, silenced: bool = False) -> Member:
        return cls(
            fingerprint=finding.fingerprint,
            rule=finding.rule,
            severity=finding.severity,
            title=finding.title,
            summary=finding.summary,
            asset=finding.asset,
            occurrence=finding.occurrence,
            run_id=finding.run_id,
            partition=finding.partition,
            error=finding.error,
            at=finding.at,
            silenced=silenced,
        )


@dataclass
class Incident:
    """One root cause and everything found about it."""

    id: str
    key: str
    root_asset: str | None
    opened_at: float
    title: str = ""
    summary: str = ""
    severity: str = "info"
    status: str = "open"
    fault_at: float | None = None
    updated_at: float = 0.0
    notified_at: float | None = None
    notified_severity: str | None = None
    last_notified_at: float | None = None
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    snoozed_until: float | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_INCIDENT

    def headline(self) -> Member | None:
        """The finding that names the incident: about the root asset first, then by rule."""
        if not self.members:
            return None
        return min(
            self.members.values(),
            key=lambda m: (
                m.asset != self.root_asset,
                _PRIORITY.get(m.rule, 9),
                -_rank(m.severity),
                m.at or 0.0,
                m.fingerprint,
            ),
        )

    def muted(self, now: float) -> bool:
        """Snoozed, or every finding in it is silenced: nothing is sent but the resolve."""
        if self.snoozed_until is not None and self.snoozed_until > now:
            return True
        return bool(self.members) and all(m.silenced for m in self.members.values())


@dataclass(frozen=True)
class Change:
    """What the book decided. kind: opened, joined, cleared, resolved, notify (with `action`:
    opened, escalated, reminder, resolved)."""

    kind: str
    incident: Incident
    member: Member | None = None
    action: str | None = None


class IncidentBook:
    """The active incidents, and the rules that group findings into them and decide messages.

    `held` maps a finding's fingerprint to (incident id, occurrence) for findings whose
    incident someone resolved by hand: they open nothing new until they clear or recur.
    """

    def __init__(
        self,
        incidents: Iterable[Incident] = (),
        *,
        held: dict[str, tuple[str, str | None]] | None = None,
        policy: Policy | None = None,
        new_id: Callable[[], str] = new_incident_id,
    ) -> None:
        self.incidents = {incident.id: incident for incident in incidents}
        self.held = dict(held or {})
        self.policy = policy or Policy()
        self._new_id = new_id

    def active(self) -> list[Incident]:
        return sorted(
            (i for i in self.incidents.values() if i.active), key=lambda i: (i.opened_at, i.id)
        )

    def apply(
        self,
        findings: Iterable[Finding],
        now: float,
        lineage: Lineage,
        *,
        silenced: frozenset[str] = frozenset(),
        group_wait: float | None = None,
    ) -> list[Change]:
        """Fold the findings that hold at `now` into incidents; return what changed."""
        live = {f.fingerprint: f for f in findings}
        changes: list[Change] = []
        for incident in self.active():
            for fingerprint in list(incident.members):
                if fingerprint not in live:
                    member = incident.members.pop(fingerprint)
                    changes.append(Change("cleared", incident, member))
        for fingerprint, (_, occurrence) in list(self.held.items()):
            finding = live.get(fingerprint)
            if finding is None or finding.occurrence != occurrence:
                del self.held[fingerprint]
        attached = {fp: incident for incident in self.active() for fp in incident.members}
        grouping = _Grouping(live.values(), lineage)
        for finding in sorted(live.values(), key=lambda f: (f.at or now, f.fingerprint)):
            fingerprint = finding.fingerprint
            member = Member.of(finding, silenced=fingerprint in silenced)
            if fingerprint in attached:
                attached[fingerprint].members[fingerprint] = member
                continue
            if fingerprint in self.held:
                continue
            key, root = grouping.key(finding)
            found = self._incident_for(key, root)
            if found is None:
                incident = Incident(
                    id=self._new_id(), key=key, root_asset=root, opened_at=now, updated_at=now
                )
                self.incidents[incident.id] = incident
                changes.append(Change("opened", incident))
            else:
                incident = found
            incident.members[fingerprint] = member
            attached[fingerprint] = incident
            changes.append(Change("joined", incident, member))
        wait = self.policy.group_wait if group_wait is None else group_wait
        for incident in self.active():
            changes += self._tell(incident, now, lineage, wait)
        return changes

    def _incident_for(self, key: str, root: str | None) -> Incident | None:
        active = self.active()
        for incident in active:
            if incident.key == key:
                return incident
        if root is not None:  # the root's own findings already joined a cause further up
            for incident in active:
                if any(m.asset == root for m in incident.members.values()):
                    return incident
        return None

    def _tell(self, incident: Incident, now: float, lineage: Lineage, wait: float) -> list[Change]:
        if not incident.members:
            incident.status = "resolved"
            incident.resolved_at = now
            incident.resolved_by = incident.resolved_by or "lakelens"
            incident.updated_at = now
            out = [Change("resolved", incident)]
            if incident.notified_at is not None:
                out.append(Change("notify", incident, action="resolved"))
            return out
        _describe(incident, lineage)
        if incident.muted(now):
            return []
        action = None
        if incident.notified_at is None:
            if now - incident.opened_at >= wait:
                action = "opened"
                incident.notified_at = now
        elif _rank(incident.severity) > _rank(incident.notified_severity):
            action = "escalated"
        elif incident.status == "open" and now - (
            incident.last_notified_at or incident.notified_at
        ) >= self.policy.repeat_for(m.rule for m in incident.members.values()):
            action = "reminder"
        if action is None:
            return []
        incident.notified_severity = incident.severity
        incident.last_notified_at = now
        incident.updated_at = now
        return [Change("notify", incident, action=action)]


class _Grouping:
    """Which incident key a finding belongs to, given what is broken now."""

    def __init__(self, findings: Iterable[Finding], lineage: Lineage) -> None:
        self.lineage = lineage
        findings = list(findings)
        self.broken = sorted(
            {
                f.asset
                for f in findings
                if f.asset
                and f.rule in _BREAKING
                and (f.rule != "check_failed" or _rank(f.severity) >= _rank("error"))
            }
        )
        self.data_off = sorted({f.asset for f in findings if f.asset and f.rule in _DATA})
        self._below: dict[str, set[str]] = {}
        self.with_findings = {f.asset for f in findings if f.asset}

    def below(self, asset: str) -> set[str]:
        found = self._below.get(asset)
        if found is None:
            found = self._below[asset] = set(self.lineage.downstream(asset)) - {asset}
        return found

    def root(self, asset: str, *, data: bool = False) -> str:
        """The most upstream broken asset above `asset` (with `data`, or one whose data is
        off), or `asset` itself."""
        causes = sorted({*self.broken, *self.data_off}) if data else self.broken
        above = [b for b in causes if b != asset and asset in self.below(b)]
        if not above:
            return asset
        tops = [b for b in above if not any(b in self.below(o) for o in above if o != b)]
        return sorted(tops or above)[0]

    def key(self, finding: Finding) -> tuple[str, str | None]:
        asset = finding.asset
        if asset is None:
            # A job's failure rate belongs with the failing assets of that job.
            for name in finding.details.get("assets", ()) or ():
                if name in self.with_findings:
                    root = self.root(name)
                    return f"asset:{root}", root
            return f"{finding.rule}:{finding.key}", None
        if finding.rule not in _FOLLOWS_UPSTREAM:
            return f"asset:{asset}", asset
        root = self.root(asset, data=finding.rule in _DATA)
        return f"asset:{root}", root


def _describe(incident: Incident, lineage: Lineage) -> None:
    """Title, summary, severity and details from the findings it holds now."""
    members = list(incident.members.values())
    head = incident.headline()
    assert head is not None
    incident.severity = max((m.severity for m in members), key=_rank)
    root = incident.root_asset
    incident.title = f"{head.title}: {root}" if root and root not in head.title else head.title
    incident.summary = head.summary
    faults = [m.at for m in members if m.at is not None]
    if faults:
        incident.fault_at = min(faults + ([incident.fault_at] if incident.fault_at else []))
    impact = sorted(set(lineage.downstream(root)) - {root}) if root else []
    incident.details.update(
        {
            "assets": sorted({m.asset for m in members if m.asset}),
            "impact": impact,
            "run_id": head.run_id,
            "partition": head.partition,
            "error": head.error,
            "rule": head.rule,
            "findings": [
                {
                    "fingerprint": m.fingerprint,
                    "rule": m.rule,
                    "severity": m.severity,
                    "asset": m.asset,
                    "summary": m.summary,
                    "silenced": m.silenced,
                }
                for m in sorted(
                    members,
                    key=lambda m: (m.asset != root, _PRIORITY.get(m.rule, 9), m.asset or ""),
                )
            ],
        }
    )
