"""What the API and the incident page's buttons do to an incident: check the input, call
alerts/triage.py (as `lakelens incidents ack|resolve|snooze|note|feedback` does), and say in one
line why not when it cannot be done."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakelens.alerts.config import AlertingConfig
    from lakelens.server.context import ServerContext

__all__ = ["ACTIONS", "ActionError", "Done", "perform"]

ACTIONS = ("acknowledge", "resolve", "snooze", "note", "feedback")
NOTE_LIMIT = 4000
REASON_LIMIT = 500


class ActionError(Exception):
    """An action refused: `status` is the HTTP status, the message one sentence with the fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Done:
    """What was done: the incident's full id, and for a snooze until when."""

    incident_id: str
    action: str
    until: float | None = None


def _text(fields: Mapping[str, object], name: str, limit: int) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ActionError(400, f"{name!r} must be a string.")
    value = value.strip()
    if len(value) > limit:
        raise ActionError(400, f"{name!r} is longer than {limit:,} characters; shorten it.")
    return value or None


def _until(fields: Mapping[str, object], now: float) -> float:
    from datetime import datetime, timezone

    from lakelens.errors import InvalidArgumentError
    from lakelens.units import parse_duration

    duration, until = _text(fields, "for", 40), _text(fields, "until", 60)
    if (duration is None) == (until is None):
        raise ActionError(400, 'Say how long to snooze: {"for": "2h"} or {"until": "<ISO time>"}.')
    if duration is not None:
        try:
            seconds = parse_duration(duration, name="for")
        except InvalidArgumentError as exc:
            raise ActionError(400, str(exc)) from None
        return now + seconds
    assert until is not None
    try:
        moment = datetime.fromisoformat(until.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ActionError(
            400, f"Invalid until {until!r}: use an ISO time like 2024-10-15T10:00Z."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if moment.timestamp() <= now:
        raise ActionError(400, "Snooze until a time in the future.")
    return moment.timestamp()


def perform(
    ctx: ServerContext, prefix: str, action: str, fields: Mapping[str, object], *, by: str
) -> Done:
    """Do `action` to the incident `prefix` names; ActionError (400, 404, 409) when it cannot."""
    from lakelens.alerts import triage
    from lakelens.errors import ConfigError, InvalidArgumentError, LakelensError, StoreError

    if action not in ACTIONS:
        raise ActionError(
            404, f"Unknown incident action {action!r}; use one of {', '.join(ACTIONS)}."
        )
    now = ctx.clock()
    # The input first: a bad request is a 400 whatever the incident.
    until = _until(fields, now) if action == "snooze" else None
    text = _text(fields, "text", NOTE_LIMIT) if action == "note" else None
    if action == "note" and text is None:
        raise ActionError(400, 'A note needs some text: {"text": "…"}.')
    resolve_note = _text(fields, "note", NOTE_LIMIT) if action == "resolve" else None
    kind = _text(fields, "kind", 40) if action == "feedback" else None
    if action == "feedback" and kind not in triage.FEEDBACK_KINDS:
        raise ActionError(400, 'Feedback "kind" is "false_positive" or "expected".')
    reason = _text(fields, "reason", REASON_LIMIT) if action == "feedback" else None

    with ctx.store.connect() as conn:
        try:
            incident_id = triage.resolve_id(conn, prefix)
        except StoreError:
            raise
        except LakelensError as exc:  # unknown or ambiguous
            raise ActionError(404, str(exc)) from None
    try:
        if action == "acknowledge":
            triage.acknowledge(ctx.store, incident_id, config=_config(ctx), by=by, now=now)
        elif action == "resolve":
            config = _config(ctx)
            triage.resolve(ctx.store, incident_id, config=config, by=by, text=resolve_note, now=now)
        elif action == "snooze":
            assert until is not None
            triage.snooze(ctx.store, incident_id, until=until, by=by, now=now)
        elif action == "note":
            assert text is not None
            triage.note(ctx.store, incident_id, text, by=by, now=now)
        else:
            assert kind is not None
            triage.feedback(ctx.store, incident_id, kind=kind, reason=reason, by=by, now=now)
    except (StoreError, ConfigError):
        raise
    except InvalidArgumentError as exc:
        raise ActionError(400, str(exc)) from None
    except LakelensError as exc:  # the incident's state does not allow it (already resolved)
        raise ActionError(409, str(exc)) from None
    return Done(incident_id, action, until)


def _config(ctx: ServerContext) -> AlertingConfig:
    """The running evaluator's alerting config (its destinations hear of acks and resolves)."""
    if ctx.alerts is not None:
        config: AlertingConfig = ctx.alerts.config
        return config
    from lakelens.alerts.config import load_alerting

    return load_alerting(ctx.settings)
