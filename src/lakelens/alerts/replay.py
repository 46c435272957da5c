"""Replay: the rules and the incident policy driven by a simulated clock over recorded
history, exactly as a live evaluator stepping at the same times would have decided.

Nothing is stored or delivered: the incidents live in memory, and every message the policy
would have sent is returned. This is how sensitivity is tuned and how the alert-quality
benchmark measures.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lakelens.alerts.incidents import IncidentBook
from lakelens.alerts.maintenance import stored_windows
from lakelens.alerts.rules import RuleContext, evaluate_rules
from lakelens.errors import InvalidArgumentError
from lakelens.store import schema

if TYPE_CHECKING:
    from lakelens.alerts.config import AlertingConfig
    from lakelens.store import Store

__all__ = ["ReplayNotification", "ReplayResult", "replay"]

MAX_STEPS = 200_000


@dataclass(frozen=True)
class ReplayNotification:
    """One message the live evaluator would have sent."""

    time: float
    incident: str
    action: str  # opened, escalated, reminder, resolved
    severity: str
    root_asset: str | None
    title: str
    assets: list[str]
    findings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ReplayResult:
    since: float
    until: float
    step: float
    evaluations: int = 0
    notifications: list[ReplayNotification] = field(default_factory=list)

    def totals(self) -> dict[str, Any]:
        by_action = Counter(n.action for n in self.notifications)
        incidents = {n.incident for n in self.notifications}
        by_root = Counter(n.root_asset or "-" for n in self.notifications if n.action == "opened")
        return {
            "since": self.since,
            "until": self.until,
            "step_seconds": self.step,
            "evaluations": self.evaluations,
            "notifications": len(self.notifications),
            "incidents": len(incidents),
            "by_action": dict(sorted(by_action.items())),
            "opened_by_root_asset": dict(by_root.most_common()),
        }


def _silenced(conn: sa.Connection, now: float) -> tuple[set[str], set[str]]:
    s = schema.silences
    rows = conn.execute(
        sa.select(s.c.fingerprint, s.c.asset).where(
            s.c.starts_at <= now,
            s.c.ends_at > now,
            sa.or_(s.c.ended_at.is_(None), s.c.ended_at > now),
        )
    ).all()
    return {r.fingerprint for r in rows if r.fingerprint}, {r.asset for r in rows if r.asset}


def steps(since: float, until: float, step: float) -> Iterator[float]:
    """since, since + step, … up to and including until."""
    count = int((until - since) // step)
    for index in range(count + 1):
        yield since + index * step


def replay(
    store: Store,
    config: AlertingConfig,
    *,
    since: float,
    until: float,
    step: float = 300.0,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Evaluate at since, since + step, … until, with the incident policy of `config`."""
    if step <= 0:
        raise InvalidArgumentError("--step must be a positive duration, e.g. 5m.")
    if until <= since:
        raise InvalidArgumentError("The replay window is empty: --until must come after --since.")
    total = int((until - since) // step) + 1
    if total > MAX_STEPS:
        raise InvalidArgumentError(
            f"That is {total:,} evaluations; use a larger --step or a shorter window "
            f"(at most {MAX_STEPS:,})."
        )
    counter = itertools.count(1)
    book = IncidentBook(policy=config.incident_policy, new_id=lambda: f"replay-{next(counter)}")
    result = ReplayResult(since=since, until=until, step=step)
    with store.connect() as conn:
        for index, now in enumerate(steps(since, until, step)):
            context = RuleContext(conn, config, now, as_of=True)
            findings = evaluate_rules(conn, config, now=now, context=context)
            by_fingerprint, by_asset = _silenced(conn, now)
            windows = [
                w for w in (*config.maintenance, *stored_windows(conn, now=now)) if w.open_at(now)
            ]
            silenced = frozenset(
                f.fingerprint
                for f in findings
                if f.fingerprint in by_fingerprint
                or (f.asset is not None and f.asset in by_asset)
                or any(w.covers(f.asset) for w in windows)
            )
            for change in book.apply(findings, now, context, silenced=silenced):
                if change.kind != "notify" or change.action is None:
                    continue
                incident = change.incident
                details = incident.details
                result.notifications.append(
                    ReplayNotification(
                        time=now,
                        incident=incident.id,
                        action=change.action,
                        severity=incident.severity,
                        root_asset=incident.root_asset,
                        title=incident.title,
                        assets=list(details.get("assets", [])),
                        findings=[f["summary"] for f in details.get("findings", [])],
                    )
                )
            result.evaluations += 1
            if progress is not None:
                progress(index + 1, total)
    return result
