"""Text shared by the destinations: UTC times, occurrence counts and the seed's alert layout."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TypeVar

from lakelens._clean import cut
from lakelens.alerts.destinations.base import AlertMessage

T = TypeVar("T")

ELLIPSIS = "…"


def utc(timestamp: float) -> str:
    """'2024-01-15 10:35:42 UTC', as in the seed's alerts."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(timestamp: float) -> str:
    """RFC 3339 / ISO 8601 in UTC with milliseconds: '2024-01-15T10:35:42.000Z'."""
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in … when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + ELLIPSIS


def one_line(text: str) -> str:
    return " ".join(text.split())


def occurrences(message: AlertMessage) -> str:
    """'12 occurrences since 2024-01-15 09:00:00 UTC' or 'First seen 2024-01-15 09:00:00 UTC'."""
    if message.count > 1:
        return f"{message.count} occurrences since {utc(message.first_seen)}"
    return f"First seen {utc(message.first_seen)}"


def fields(message: AlertMessage) -> list[tuple[str, str]]:
    """The labelled values of the seed's alert, in its order; absent ones left out."""
    rows = [
        ("Asset", message.asset),
        ("Partition", message.partition),
        ("Run ID", message.run_id),
        ("Error", message.error),
        ("Timestamp", utc(message.time)),
        ("Occurrences", occurrences(message)),
        ("Findings", "\n".join(f"- {f}" for f in message.findings) if message.findings else None),
        ("Impact", ", ".join(message.impact) if message.impact else None),
        ("Owners", ", ".join(message.owners) if message.owners else None),
    ]
    return [(label, value) for label, value in rows if value]


def plain_text(message: AlertMessage, *, error_limit: int = 20_000) -> str:
    """The alert as plain text, laid out like the seed's example."""
    values = dict(fields(message))
    lines = [message.headline, ""]
    if message.summary:
        lines += [message.summary, ""]
    for label in ("Asset", "Partition", "Run ID"):
        if label in values:
            lines.append(f"{label}: {values[label]}")
    if "Error" in values:
        lines += ["", f"Error: {clip(values['Error'], error_limit)}"]
    if "Findings" in values:
        lines += ["", "Findings:", values["Findings"]]
    lines += ["", f"Timestamp: {values['Timestamp']}", f"Occurrences: {values['Occurrences']}"]
    if "Impact" in values:
        lines.append(f"Impact: {values['Impact']}")
    if "Owners" in values:
        lines.append(f"Owners: {values['Owners']}")
    if message.link:
        lines += ["", f"Open in lakelens: {message.link}"]
    lines += ["", f"-- lakelens · rule {message.rule} · fingerprint {message.fingerprint}"]
    return "\n".join(lines)


def _names(values: list[str], budget: int) -> list[str]:
    kept: list[str] = []
    used = 0
    for value in values:
        value = cut(value, max(64, budget // 8))
        if kept and used + len(value) > budget:
            kept.append(f"… and {len(values) - len(kept):,} more")
            break
        kept.append(value)
        used += len(value)
    return kept


def _trimmed(message: AlertMessage, budget: int) -> AlertMessage:
    """`message` with each long field cut to about `budget` characters (marked as cut)."""
    details = message.details
    size = len(json.dumps(details, default=str))
    if size > budget:
        details = {"cut": f"{size:,} characters of details left out; lakelens has them all"}
    short = max(64, min(budget, 1000))
    return dataclasses.replace(
        message,
        title=cut(message.title, short),
        summary=cut(message.summary, budget),
        error=cut(message.error, budget) if message.error else message.error,
        asset=cut(message.asset, short) if message.asset else message.asset,
        partition=cut(message.partition, short) if message.partition else message.partition,
        run_id=cut(message.run_id, short) if message.run_id else message.run_id,
        findings=_names(message.findings, budget),
        impact=_names(message.impact, budget),
        owners=_names(message.owners, budget),
        details=details,
    )


def fit_body(
    message: AlertMessage, limit: int, build: Callable[[AlertMessage], T], size: Callable[[T], int]
) -> T:
    """`build(message)`, with the message's long fields cut (each marked) until its `size`
    is at most `limit` bytes: the destination's cap on a whole message body."""
    built = build(message)
    for budget in (limit // 4, limit // 16, limit // 64, 256):
        if size(built) <= limit:
            break
        built = build(_trimmed(message, budget))
    return built
