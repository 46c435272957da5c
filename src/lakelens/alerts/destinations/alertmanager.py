"""Prometheus Alertmanager: POST /api/v2/alerts, so an existing Alertmanager does the routing.

Labels identify the alert in Alertmanager (alertname = rule, severity, asset, fingerprint,
source="lakelens"); everything that changes between notifications is an annotation. A
trigger has endsAt = now + ttl (default 3 h, longer than the 60-minute dedup window after
which lakelens sends a firing alert again), so Alertmanager neither resolves it early by its
resolve_timeout nor keeps it forever if lakelens goes away; a resolve sets endsAt to now.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lakelens.alerts.destinations._format import clip, fit_body, iso, occurrences
from lakelens.alerts.destinations._http import HttpPoster
from lakelens.alerts.destinations._settings import Settings
from lakelens.alerts.destinations.base import AlertMessage, DeliveryResult, mask_url

__all__ = ["AlertmanagerConfig", "AlertmanagerDestination", "alertmanager_alerts"]

API_PATH = "/api/v2/alerts"
ANNOTATION_LIMIT = 8000
# Bytes of one POST at most: longer fields are cut, marked.
BODY_LIMIT = 256 * 1024


def alerts_url(base: str) -> str:
    """`{base}/api/v2/alerts`, also when the configured URL already ends with it."""
    base = base.rstrip("/")
    return base if base.endswith(API_PATH) else base + API_PATH


DEFAULT_TTL = 3 * 3600


def alertmanager_alerts(
    message: AlertMessage, *, now: float | None = None, ttl: float = DEFAULT_TTL
) -> list[dict[str, Any]]:
    """The JSON list POSTed for `message`: one alert."""
    labels = {
        "alertname": message.rule,
        "severity": message.severity,
        "asset": message.asset,
        "fingerprint": message.fingerprint,
        "source": "lakelens",
        "test": "true" if message.is_test else None,
    }
    prefix = "[TEST] " if message.is_test else ""
    annotations = {
        "summary": prefix + (message.summary or message.title),
        "description": f"{message.title}. {occurrences(message)}.",
        "title": message.title,
        "run_id": message.run_id,
        "partition": message.partition,
        "error": clip(message.error, ANNOTATION_LIMIT) if message.error else None,
        "occurrences": str(message.count),
        "impact": ", ".join(message.impact) if message.impact else None,
        "findings": "\n".join(message.findings) if message.findings else None,
        "incident": message.incident_id,
        "acknowledged": "true" if message.kind == "acknowledged" else None,
    }
    alert: dict[str, Any] = {
        "labels": {k: str(v) for k, v in labels.items() if v},
        "annotations": {k: v for k, v in annotations.items() if v},
        "startsAt": iso(message.first_seen),
    }
    moment = time.time() if now is None else now
    alert["endsAt"] = iso(moment if message.action == "resolve" else moment + ttl)
    if message.link:
        alert["generatorURL"] = message.link
    return [alert]


@dataclass(frozen=True)
class AlertmanagerConfig:
    url: str = field(repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    ttl: int = DEFAULT_TTL


class AlertmanagerDestination:
    """Hands alerts to a Prometheus Alertmanager through its v2 API."""

    kind: ClassVar[str] = "alertmanager"
    min_interval: float = 0.0

    def __init__(self, name: str, config: AlertmanagerConfig) -> None:
        self.name = name
        self.config = config
        self._http = HttpPoster(alerts_url(config.url), headers=config.headers)

    @classmethod
    def from_config(cls, name: str, mapping: Mapping[str, Any]) -> AlertmanagerDestination:
        settings = Settings(cls.kind, name, mapping)
        config = AlertmanagerConfig(
            url=settings.url(
                "url", hint="the Alertmanager base URL, e.g. http://alertmanager:9093"
            ),
            headers=settings.headers("headers"),
            ttl=settings.number("ttl", default=DEFAULT_TTL),
        )
        return cls(name, config)

    def send(self, message: AlertMessage) -> DeliveryResult:
        try:
            ttl = self.config.ttl
            body = fit_body(
                message,
                BODY_LIMIT,
                lambda m: json.dumps(alertmanager_alerts(m, ttl=ttl), default=str).encode(),
                len,
            )
        except Exception as exc:  # send() never raises
            error = self._http.scrub(f"Could not build the Alertmanager alert: {exc}")
            return DeliveryResult(ok=False, error=error)
        return self._http.post(body, {"Content-Type": "application/json"})

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.kind,
            "url": mask_url(self.config.url),
            "headers": {name: "****" for name in self.config.headers},
        }

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"AlertmanagerDestination(name={self.name!r}, url={mask_url(self.config.url)!r})"
