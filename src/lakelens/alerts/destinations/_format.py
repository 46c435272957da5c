"""Text shared by the destinations: UTC times, occurrence counts and the seed's alert layout."""

from __future__ import annotations

from datetime import datetime, timezone

from lakelens.alerts.destinations.base import AlertMessage

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
