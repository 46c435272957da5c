"""PagerDuty: Events API v2 trigger and resolve events, deduplicated by the alert's fingerprint.

Urgency. PagerDuty derives an incident's urgency from the event's severity ("Dynamic
notifications based on alert severity" in the service settings), with a fixed mapping:
critical and error → high urgency, warning and info → low urgency. lakelens routes ERROR to
PagerDuty at low urgency and CRITICAL at high urgency, so by default ERROR is sent as
`warning`. The lakelens severity and the intended urgency are kept in `custom_details`
(`severity`, `urgency`) for Event Orchestration rules. To send ERROR as `error` instead, set
`severity_map: {error: error}`.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lakelens.alerts.destinations._format import clip, fit_body, iso, one_line
from lakelens.alerts.destinations._http import HttpPoster
from lakelens.alerts.destinations._settings import Settings
from lakelens.alerts.destinations.base import (
    AlertMessage,
    DeliveryResult,
    mask_secret,
    mask_url,
)
from lakelens.errors import InvalidArgumentError
from lakelens.units import parse_severity

__all__ = ["PagerDutyConfig", "PagerDutyDestination", "pagerduty_event"]

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
DEFAULT_SEVERITY_MAP = {
    "critical": "critical",
    "error": "warning",
    "warning": "warning",
    "info": "info",
}
URGENCY = {"critical": "high", "error": "high", "warning": "low", "info": "low"}
SUMMARY_LIMIT = 1024
# Bytes of one event at most (PagerDuty refuses events over 512 KB).
BODY_LIMIT = 400 * 1024
DETAIL_LIMIT = 8000


def _lakelens_severity(value: str) -> str:
    try:
        return parse_severity(value)
    except InvalidArgumentError:
        return "critical"  # an unknown severity pages rather than going unseen


def pagerduty_event(
    message: AlertMessage,
    *,
    routing_key: str,
    source: str,
    severity_map: Mapping[str, str] = DEFAULT_SEVERITY_MAP,
) -> dict[str, Any]:
    """The Events API v2 body for `message`: a resolve, an acknowledge (someone took the
    incident in lakelens), or a trigger (also for tests)."""
    action = message.action if message.action in ("resolve", "acknowledge") else "trigger"
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": message.fingerprint,
    }
    if action != "trigger":
        return event
    severity = _lakelens_severity(message.severity)
    pd_severity = severity_map.get(severity, DEFAULT_SEVERITY_MAP[severity])
    title = ("[TEST] " if message.is_test else "") + message.title
    summary = f"{title}: {message.summary}" if message.summary else title
    details: dict[str, Any] = {
        **message.details,  # the rule's own details first: the fields below win
        "asset": message.asset,
        "partition": message.partition,
        "run_id": message.run_id,
        "error": clip(message.error, DETAIL_LIMIT) if message.error else None,
        "occurrences": message.count,
        "first_seen": iso(message.first_seen),
        "impact": message.impact or None,
        "severity": severity,
        "urgency": URGENCY[pd_severity],
        "fingerprint": message.fingerprint,
        "notification_id": message.notification_id,
        "test": True if message.is_test else None,
    }
    payload: dict[str, Any] = {
        "summary": clip(one_line(summary), SUMMARY_LIMIT),
        "source": source,
        "severity": pd_severity,
        "timestamp": iso(message.time),
        "component": message.asset,
        "group": message.details.get("group"),
        "class": message.rule,
        "custom_details": {k: v for k, v in details.items() if v is not None},
    }
    event["payload"] = {k: v for k, v in payload.items() if v is not None}
    event["client"] = "lakelens"
    if message.link:
        event["client_url"] = message.link
        label = f"{message.asset} in lakelens" if message.asset else "Open in lakelens"
        event["links"] = [{"href": message.link, "text": label}]
    return event


@dataclass(frozen=True)
class PagerDutyConfig:
    routing_key: str = field(repr=False)
    url: str = DEFAULT_URL
    source: str = field(default_factory=socket.gethostname)
    severity_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SEVERITY_MAP))


def _severity_map(settings: Settings) -> dict[str, str]:
    value = settings.mapping.get("severity_map")
    mapping = dict(DEFAULT_SEVERITY_MAP)
    if value in (None, ""):
        return mapping
    if not isinstance(value, Mapping):
        raise settings.error("severity_map", "must map lakelens severities to PagerDuty ones")
    for ours, theirs in value.items():
        try:
            key = parse_severity(ours)
        except InvalidArgumentError:
            raise settings.error(
                "severity_map", "has a key that is not info, warning, error or critical"
            ) from None
        if theirs not in PAGERDUTY_SEVERITIES:
            raise settings.error(
                "severity_map", "values must be one of " + ", ".join(PAGERDUTY_SEVERITIES)
            )
        mapping[key] = theirs
    return mapping


class PagerDutyDestination:
    """Sends alerts to a PagerDuty service through the Events API v2 (≤ 120 events/min/key)."""

    kind: ClassVar[str] = "pagerduty"
    min_interval: float = 0.5

    def __init__(self, name: str, config: PagerDutyConfig) -> None:
        self.name = name
        self.config = config
        self._http = HttpPoster(config.url, secrets=[config.routing_key])

    @classmethod
    def from_config(cls, name: str, mapping: Mapping[str, Any]) -> PagerDutyDestination:
        settings = Settings(cls.kind, name, mapping)
        routing_key = settings.require(
            "routing_key", "the integration key of an Events API v2 integration"
        )
        config = PagerDutyConfig(
            routing_key=routing_key,
            url=settings.url("url", default=DEFAULT_URL),
            source=settings.text("source") or socket.gethostname(),
            severity_map=_severity_map(settings),
        )
        return cls(name, config)

    def send(self, message: AlertMessage) -> DeliveryResult:
        try:
            config = self.config
            body = fit_body(
                message,
                BODY_LIMIT,
                lambda m: json.dumps(
                    pagerduty_event(
                        m,
                        routing_key=config.routing_key,
                        source=config.source,
                        severity_map=config.severity_map,
                    ),
                    default=str,
                ).encode(),
                len,
            )
        except Exception as exc:  # send() never raises
            error = self._http.scrub(f"Could not build the PagerDuty event: {exc}")
            return DeliveryResult(ok=False, error=error)
        return self._http.post(body, {"Content-Type": "application/json"})

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.kind,
            "routing_key": mask_secret(self.config.routing_key),
            "url": mask_url(self.config.url),
            "source": self.config.source,
            "severity_map": dict(self.config.severity_map),
        }

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"PagerDutyDestination(name={self.name!r})"
