"""The destination contract: what is sent (AlertMessage), what came of it (DeliveryResult),
the small interface a destination implements, its registry, and secret masking."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import urlsplit

from lakelens.errors import ConfigError

__all__ = [
    "ENTRY_POINT_GROUP",
    "AlertMessage",
    "DeliveryResult",
    "Destination",
    "DestinationConfigError",
    "create_destination",
    "destination_types",
    "mask_secret",
    "mask_url",
]

ENTRY_POINT_GROUP = "lakelens.destinations"
SEVERITY_EMOJI = {"info": "ℹ️", "warning": "⚠️", "error": "🔴", "critical": "🚨"}
# The longest Retry-After honoured (seconds): a larger, infinite or unreadable one is clamped.
RETRY_AFTER_CAP = 3600.0
# URL path segments shown by mask_url: the fixed parts of well-known webhook URLs. Any
# other segment may be a token (Slack's /services/T…/B…/…, Telegram's /bot<token>/…).
PUBLIC_PATH_SEGMENTS = frozenset(
    {
        "services", "api", "v1", "v2", "v3", "hooks", "hook", "webhook", "webhooks",
        "integrations", "events", "enqueue", "alerts", "alert", "notify", "incoming",
    }
)  # fmt: skip


class DestinationConfigError(ConfigError):
    """A destination's configuration is missing something or has a bad value."""


@dataclass(frozen=True)
class AlertMessage:
    """One notification to send: a snapshot of the alert taken when it was queued.

    `notification_id` is the idempotency key: the same on every retry of this notification.
    `action` is "trigger" (firing or still firing), "resolve" (the condition cleared),
    "acknowledge" (someone is on it: PagerDuty only) or "test" (`lakelens alerts test`).
    For an incident, `fingerprint` is the incident id (the dedup key downstream) and `kind`
    says which message this is: opened, escalated, reminder, resolved, acknowledged or
    refresh (keeps it active in Alertmanager). Times are epoch seconds (UTC).
    """

    notification_id: str
    fingerprint: str
    action: str
    rule: str
    severity: str
    title: str
    summary: str
    time: float
    first_seen: float
    count: int = 1
    asset: str | None = None
    partition: str | None = None
    run_id: str | None = None
    error: str | None = None
    impact: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    link: str | None = None
    incident_id: str | None = None
    kind: str | None = None
    findings: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)

    @property
    def is_test(self) -> bool:
        return self.action == "test"

    @property
    def headline(self) -> str:
        """'🔴 Asset Materialization Failed' — the seed's alert header (resolved/test marked)."""
        if self.action == "resolve":
            return f"✅ Resolved: {self.title}"
        if self.kind == "reminder":
            return f"⏰ Still open: {self.title}"
        if self.kind == "escalated":
            return f"{SEVERITY_EMOJI.get(self.severity, '')} Escalated to {self.severity.upper()}: {self.title}"
        prefix = "[TEST] " if self.is_test else ""
        return f"{SEVERITY_EMOJI.get(self.severity, '')} {prefix}{self.title}".strip()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertMessage:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class DeliveryResult:
    """What one attempt achieved. `retry`: a transient failure worth another attempt."""

    ok: bool
    status_code: int | None = None
    retry: bool = False
    retry_after: float | None = None
    error: str | None = None
    response: str | None = None

    @classmethod
    def from_http(cls, status: int, body: str, retry_after: str | None = None) -> DeliveryResult:
        """Classify an HTTP answer: 2xx ok; 408, 429 and 5xx retried (429 honouring Retry-After,
        clamped to 0…RETRY_AFTER_CAP); any other 4xx permanent, with the response body kept."""
        text = body[:2000]
        if 200 <= status < 300:
            return cls(ok=True, status_code=status, response=text)
        transient = status in (408, 429) or status >= 500
        delay = None
        if retry_after:
            try:
                delay = float(retry_after)
            except ValueError:
                delay = None
            if delay is not None:
                # "inf" and "1e12" parse as floats; "nan" compares false with everything.
                delay = min(max(delay, 0.0), RETRY_AFTER_CAP) if delay == delay else None
        return cls(
            ok=False,
            status_code=status,
            retry=transient,
            retry_after=delay,
            error=f"HTTP {status}",
            response=text,
        )


@runtime_checkable
class Destination(Protocol):
    """What a destination implements. `kind` names the type in configuration ("slack").

    `min_interval` paces sends to the service's rate limit (seconds between two sends;
    0 for none). `describe()` is shown by `lakelens alerts list` and must mask secrets.
    """

    kind: ClassVar[str]
    name: str
    min_interval: float

    def send(self, message: AlertMessage) -> DeliveryResult: ...

    def describe(self) -> dict[str, Any]: ...


def destination_types() -> dict[str, type[Any]]:
    """Destination classes by kind, from the `lakelens.destinations` entry points."""
    from importlib.metadata import entry_points

    found: dict[str, type[Any]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[entry.name] = entry.load()
        except Exception as exc:  # a broken plugin must not break alerting
            raise DestinationConfigError(
                f"The destination plugin {entry.name!r} ({entry.value}) failed to load: {exc}"
            ) from None
    return found


def create_destination(name: str, config: Mapping[str, Any]) -> Any:
    """Build the destination `name` from its configuration mapping (`type` picks the class)."""
    kind = config.get("type")
    types = destination_types()
    if kind not in types:
        known = ", ".join(sorted(types)) or "none installed"
        raise DestinationConfigError(
            f"Alert destination {name!r} has type {kind!r}; known types: {known}."
        )
    return types[kind].from_config(name, config)


def mask_secret(value: str | None, keep: int = 4) -> str:
    """'r0ut1ngk3y…' → '****k3y…' style: only the last few characters survive."""
    if not value:
        return ""
    if len(value) <= keep * 2:
        return "****"
    return "****" + value[-keep:]


def mask_url(url: str | None) -> str:
    """A URL with its credentials, query and every path segment that may be a secret hidden:
    https://hooks.slack.com/services/****/****/****, https://api.telegram.org/****/****."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "****"
    host = parts.hostname or ""
    if port:
        host = f"{host}:{port}"
    segments = [s for s in parts.path.split("/") if s]
    masked = [s if s.lower() in PUBLIC_PATH_SEGMENTS else "****" for s in segments]
    path = "/" + "/".join(masked) if masked else ""
    query = "?****" if parts.query else ""
    return f"{parts.scheme}://{host}{path}{query}"
