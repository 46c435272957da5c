"""Generic webhook: the alert as JSON, signed per the Standard Webhooks specification.

Headers: `webhook-id` (the notification id: the same on every retry, so receivers can drop
duplicates), `webhook-timestamp` (unix seconds of this attempt) and, when a `secret` is set,
`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`. A secret written
`whsec_<base64>` (the spec's format) is base64-decoded to get the key; any other secret is
used as its UTF-8 bytes. Redirects are not followed: a 3xx is a permanent failure.

Body: {"version": 1, "type": "alert.trigger" | "alert.resolve" | "alert.test",
"timestamp": ISO time of the alert, "data": AlertMessage.to_dict() plus "headline"}.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lakelens.alerts.destinations._format import fit_body, iso
from lakelens.alerts.destinations._http import READ_TIMEOUT, HttpPoster
from lakelens.alerts.destinations._settings import Settings
from lakelens.alerts.destinations.base import (
    AlertMessage,
    DeliveryResult,
    mask_secret,
    mask_url,
)

__all__ = ["WebhookConfig", "WebhookDestination", "sign", "webhook_body", "webhook_key"]

VERSION = 1
SECRET_PREFIX = "whsec_"
# Bytes of one body at most: longer fields are cut, marked (a 4 MB error made a 4.2 MB body).
BODY_LIMIT = 256 * 1024


def webhook_body(message: AlertMessage) -> dict[str, Any]:
    """The JSON document POSTed for `message`."""
    return {
        "version": VERSION,
        "type": f"alert.{message.action}",
        "timestamp": iso(message.time),
        "data": {**message.to_dict(), "headline": message.headline},
    }


def webhook_key(secret: str) -> bytes:
    """The HMAC key: base64-decoded after a `whsec_` prefix, else the secret's UTF-8 bytes."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    return secret.encode()


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: 'v1,' + base64(HMAC-SHA256(key, id.timestamp.body))."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass(frozen=True)
class WebhookConfig:
    url: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = READ_TIMEOUT


class WebhookDestination:
    """POSTs each alert as signed JSON to any HTTP endpoint."""

    kind: ClassVar[str] = "webhook"
    min_interval: float = 0.0

    def __init__(self, name: str, config: WebhookConfig) -> None:
        self.name = name
        self.config = config
        self._key = webhook_key(config.secret) if config.secret else None
        self._http = HttpPoster(
            config.url,
            timeout=config.timeout,
            headers=config.headers,
            secrets=[config.secret or ""],
        )

    @classmethod
    def from_config(cls, name: str, mapping: Mapping[str, Any]) -> WebhookDestination:
        settings = Settings(cls.kind, name, mapping)
        secret = settings.text("secret")
        if secret and secret.startswith(SECRET_PREFIX):
            try:
                webhook_key(secret)
            except (binascii.Error, ValueError):
                raise settings.error(
                    "secret", "starts with whsec_ but the rest is not valid base64"
                ) from None
        config = WebhookConfig(
            url=settings.url("url", hint="the URL to POST alerts to"),
            secret=secret,
            headers=settings.headers("headers"),
            timeout=settings.seconds("timeout", default=READ_TIMEOUT),
        )
        return cls(name, config)

    def send(self, message: AlertMessage) -> DeliveryResult:
        try:
            body = fit_body(
                message,
                BODY_LIMIT,
                lambda m: json.dumps(webhook_body(m), default=str).encode(),
                len,
            )
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "webhook-id": message.notification_id,
                "webhook-timestamp": str(timestamp),
            }
            if self._key is not None:
                headers["webhook-signature"] = sign(
                    self._key, message.notification_id, timestamp, body
                )
        except Exception as exc:  # send() never raises
            error = self._http.scrub(f"Could not build the webhook body: {exc}")
            return DeliveryResult(ok=False, error=error)
        return self._http.post(body, headers)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.kind,
            "url": mask_url(self.config.url),
            "secret": mask_secret(self.config.secret) or None,
            "headers": {name: "****" for name in self.config.headers},
            "timeout": self.config.timeout,
        }

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"WebhookDestination(name={self.name!r}, url={mask_url(self.config.url)!r})"
