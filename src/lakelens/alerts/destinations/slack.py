"""Slack: a Block Kit message POSTed to an incoming webhook.

Slack's limits are respected: header text ≤ 150 characters, section text ≤ 3000, fields ≤ 10
of ≤ 2000 each, ≤ 50 blocks; longer values are cut and end in "…". User-supplied text is
escaped (&, <, >) so an error message cannot mention @channel or forge a link. `channel`
only takes effect on legacy webhooks; a Slack-app webhook always posts to its own channel.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lakelens.alerts.destinations._format import fit_body, occurrences, one_line, utc
from lakelens.alerts.destinations._http import HttpPoster
from lakelens.alerts.destinations._settings import Settings
from lakelens.alerts.destinations.base import AlertMessage, DeliveryResult, mask_url

__all__ = ["SlackConfig", "SlackDestination", "slack_payload"]

HEADER_LIMIT = 150
TEXT_LIMIT = 3000
FIELD_LIMIT = 2000
MAX_FIELDS = 10
MAX_BLOCKS = 50
BUTTON_URL_LIMIT = 3000
# Bytes of one payload at most (its blocks are bounded; this bounds the whole).
BODY_LIMIT = 64 * 1024
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _units(text: str) -> int:
    """Length as Slack may count it (UTF-16 code units): never less than len()."""
    return len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int, *, escape: bool = True) -> str:
    """`text` escaped for mrkdwn and cut to `limit` (never inside an entity), "…" when cut."""
    text = text[: limit + 1]  # every character is at least one unit
    pieces = [_ESCAPES.get(c, c) for c in text] if escape else list(text)
    if sum(_units(p) for p in pieces) <= limit:
        return "".join(pieces)
    kept: list[str] = []
    size = 0
    for piece in pieces:
        size += _units(piece)
        if size > limit - 1:
            break
        kept.append(piece)
    return "".join(kept) + "…"


def _labelled(label: str, value: str, limit: int) -> str:
    prefix = f"*{label}*\n"
    return prefix + fit(value, limit - _units(prefix))


def _impact(items: list[str]) -> str:
    """'*Impact*' and a bullet per downstream asset, ending in '… and N more' if too many."""
    text = "*Impact*"
    for index, item in enumerate(items):
        line = "\n• " + fit(one_line(item), 200)
        rest = len(items) - index - 1
        reserve = len(f"\n… and {rest} more") if rest else 0
        if _units(text + line) + reserve > TEXT_LIMIT:
            return text + f"\n… and {len(items) - index} more"
        text += line
    return text


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def slack_payload(message: AlertMessage, channel: str | None = None) -> dict[str, Any]:
    """The webhook body: `text` (notification fallback) and Block Kit `blocks`."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": fit(one_line(message.headline), HEADER_LIMIT, escape=False),
                "emoji": True,
            },
        }
    ]
    if message.summary:
        blocks.append(_section(fit(message.summary, TEXT_LIMIT)))
    values = [
        ("Asset", message.asset),
        ("Partition", message.partition),
        ("Run ID", message.run_id),
        ("Severity", message.severity.upper()),
        ("Time", utc(message.time)),
        ("Occurrences", occurrences(message)),
        ("Owners", ", ".join(message.owners)),
    ]
    fields = [
        {"type": "mrkdwn", "text": _labelled(label, value, FIELD_LIMIT)}
        for label, value in values
        if value
    ]
    blocks.append({"type": "section", "fields": fields[:MAX_FIELDS]})
    if message.error:
        # A ``` inside the error would end the code block early: break it with a zero-width space.
        error = message.error.replace("```", "`\u200b``")
        opening = "*Error*\n```"
        body = fit(error, TEXT_LIMIT - _units(opening) - 3)
        blocks.append(_section(f"{opening}{body}```"))
    if message.findings:
        blocks.append(_section(_impact(message.findings).replace("*Impact*", "*Findings*", 1)))
    if message.impact:
        blocks.append(_section(_impact(message.impact)))
    link = message.link
    if link and link.startswith(("https://", "http://")) and len(link) <= BUTTON_URL_LIMIT:
        button = {
            "type": "button",
            "text": {"type": "plain_text", "text": "Open in lakelens"},
            "url": link,
        }
        blocks.append({"type": "actions", "elements": [button]})
    footer = f"lakelens · rule {message.rule} · fingerprint {message.fingerprint}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": fit(footer, 2000)}]})

    fallback = message.headline
    detail = message.summary or message.error or message.asset
    if detail:
        fallback += " — " + detail
    payload: dict[str, Any] = {
        "text": fit(one_line(fallback), TEXT_LIMIT),
        "blocks": blocks[:MAX_BLOCKS],
    }
    if channel:
        payload["channel"] = channel
    return payload


@dataclass(frozen=True)
class SlackConfig:
    url: str = field(repr=False)
    channel: str | None = None


class SlackDestination:
    """Posts alerts to a Slack incoming webhook (about one message per second allowed)."""

    kind: ClassVar[str] = "slack"
    min_interval: float = 1.0

    def __init__(self, name: str, config: SlackConfig) -> None:
        self.name = name
        self.config = config
        self._http = HttpPoster(config.url)

    @classmethod
    def from_config(cls, name: str, mapping: Mapping[str, Any]) -> SlackDestination:
        settings = Settings(cls.kind, name, mapping)
        config = SlackConfig(
            url=settings.url(
                "url", hint="the incoming webhook URL, https://hooks.slack.com/services/…"
            ),
            channel=settings.text("channel"),
        )
        return cls(name, config)

    def send(self, message: AlertMessage) -> DeliveryResult:
        try:
            channel = self.config.channel
            body = fit_body(
                message,
                BODY_LIMIT,
                lambda m: json.dumps(slack_payload(m, channel), default=str),
                lambda text: len(text.encode()),
            )
        except Exception as exc:  # send() never raises
            return DeliveryResult(ok=False, error=f"Could not build the Slack message: {exc}")
        return self._http.post(body.encode(), {"Content-Type": "application/json"})

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.kind,
            "url": mask_url(self.config.url),
            "channel": self.config.channel,
        }

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"SlackDestination(name={self.name!r}, url={mask_url(self.config.url)!r})"
