"""Alerting configuration: destinations (environment or lakelens.yaml), routing, dedup, rules."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lakelens.alerts.incidents import Policy
from lakelens.alerts.maintenance import Window
from lakelens.config import Settings
from lakelens.errors import ConfigError
from lakelens.units import parse_duration, parse_percent, parse_severity

__all__ = [
    "DATA_RULES",
    "AbsenceRule",
    "AlertingConfig",
    "DataRule",
    "Route",
    "RuleSettings",
    "ThresholdRule",
    "load_alerting",
]

# The seed's routing, by destination type: INFO → Slack; WARNING → + email; ERROR → + PagerDuty
# (low urgency); CRITICAL → every destination. Webhooks and Alertmanager take every severity:
# they exist to hand alerts to another system, which routes them itself.
DEFAULT_ROUTES: dict[str, frozenset[str]] = {
    "info": frozenset({"slack", "webhook", "alertmanager"}),
    "warning": frozenset({"slack", "email", "webhook", "alertmanager"}),
    "error": frozenset({"slack", "email", "pagerduty", "webhook", "alertmanager"}),
    "critical": frozenset({"*"}),
}
DEFAULT_PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"


@dataclass(frozen=True)
class ThresholdRule:
    """`queue_size > 10000 for 5m → critical`, or a built-in such as an asset's average duration."""

    name: str
    metric: str
    op: str
    threshold: float
    severity: str
    for_seconds: float = 0.0
    window_seconds: float = 3600.0
    labels: Mapping[str, str] = field(default_factory=dict)
    asset: str | None = None


@dataclass(frozen=True)
class AbsenceRule:
    """A heartbeat: no run of `job` (or materialization of `asset`) for `interval_seconds`."""

    name: str
    interval_seconds: float
    severity: str
    job: str | None = None
    asset: str | None = None


@dataclass(frozen=True)
class Route:
    """`routes:` entry: incidents matching every condition given also go to `to`.

    Conditions are about the incident's root asset: `asset` globs, its `owner`, its `tags`,
    and the incident's `severity` (at least).
    """

    name: str
    to: tuple[str, ...]
    assets: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    severity: str | None = None

    def matches(
        self, severity: str, asset: str | None, owner: str | None, tags: Mapping[str, str]
    ) -> bool:
        from lakelens.units import SEVERITIES

        if self.severity and SEVERITIES.get(severity, 0) < SEVERITIES[self.severity]:
            return False
        if self.assets and not (
            asset and any(fnmatch.fnmatchcase(asset, glob) for glob in self.assets)
        ):
            return False
        if self.owners and owner not in self.owners:
            return False
        return all(tags.get(key) == value for key, value in self.tags.items())


@dataclass(frozen=True)
class DataRule:
    """A rule on the data itself (`alerts.rules.null_rate_shift: {min_history: 8}`)."""

    enabled: bool = True
    # Earlier profiles (or table sizes) needed before anything is judged.
    min_history: int = 5
    # Robust deviations allowed; None: the learned baselines' (alerts.rules.baselines).
    sensitivity: float | None = None
    severity: str = "warning"
    # null_rate_shift only: the smallest rise of the null rate that is news (0.05: 5 points).
    min_change: float = 0.05


# The rules on the data (alerts/rules/data.py), in lakelens.yaml under alerts.rules.
DATA_RULES = ("row_count_anomaly", "null_rate_shift", "distinct_shift", "range_violation")


@dataclass(frozen=True)
class RuleSettings:
    failure: bool = True
    checks: bool = True
    pass_rate_below: float = 95.0
    pass_rate_window: float = 86400.0
    pass_rate_min_results: int = 5
    freshness: bool = True
    failure_rate_above: float = 10.0
    failure_rate_window: float = 3600.0
    failure_rate_min_runs: int = 5
    slow_factor: float = 2.0
    slow_min_history: int = 5
    slow_history: int = 20
    volume_mads: float = 3.0
    volume_window: float = 14 * 86400.0
    volume_min_points: int = 5
    schema_drift_window: float = 86400.0
    # Learned expectations (analysis/baselines.py).
    learned_freshness: bool = True
    learned_min_updates: int = 10
    sensitivity: float = 4.0
    baseline_min_history: int = 10
    # (asset glob, sensitivity or None, direction or None): the first matching wins.
    baseline_overrides: tuple[tuple[str, float | None, str | None], ...] = ()
    # The data itself (alerts/rules/data.py): sizes need more points (a week's, see baselines).
    row_count_anomaly: DataRule = DataRule(min_history=10)
    null_rate_shift: DataRule = DataRule()
    distinct_shift: DataRule = DataRule()
    range_violation: DataRule = DataRule()
    thresholds: tuple[ThresholdRule, ...] = ()
    absences: tuple[AbsenceRule, ...] = ()


@dataclass(frozen=True)
class AlertingConfig:
    """Everything the evaluator and the delivery worker need."""

    destinations: dict[str, dict[str, Any]] = field(default_factory=dict)
    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    owner_routes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tag_routes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    extra_routes: tuple[Route, ...] = ()
    maintenance: tuple[Window, ...] = ()
    # Routes that could not be used, one line each: the others still work.
    route_errors: tuple[str, ...] = ()
    dedup_window: float = 3600.0
    # When incidents are told: after group_wait, again every repeat_interval while open.
    incident_policy: Policy = field(default_factory=Policy)
    evaluation_interval: float = 30.0
    max_attempts: int = 8
    max_age: float = 86400.0
    public_url: str | None = None
    rules: RuleSettings = field(default_factory=RuleSettings)

    @property
    def enabled(self) -> bool:
        return bool(self.destinations)

    def route(
        self,
        severity: str,
        *,
        owner: str | None = None,
        tags: Mapping[str, str] | None = None,
        asset: str | None = None,
    ) -> list[str]:
        """The destination names an incident of `severity` about `asset` (its owner and
        tags) goes to: the severity routing, then every matching route."""
        if severity in self.routes:
            names = list(self.routes[severity])
        else:
            kinds = DEFAULT_ROUTES.get(severity, DEFAULT_ROUTES["critical"])
            names = [
                n for n, c in self.destinations.items() if "*" in kinds or c.get("type") in kinds
            ]
        if owner and owner in self.owner_routes:
            names += self.owner_routes[owner]
        for key, value in (tags or {}).items():
            names += self.tag_routes.get(f"{key}={value}", ())
        for extra in self.extra_routes:
            if extra.matches(severity, asset, owner, tags or {}):
                names += extra.to
        return [n for n in dict.fromkeys(names) if n in self.destinations]


def _env_destinations(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    prefix = "LAKELENS_ALERT_"

    def get(key: str) -> str | None:
        value = env.get(prefix + key)
        return value if value else None

    if get("SLACK_WEBHOOK"):
        found["slack"] = {
            "type": "slack",
            "url": get("SLACK_WEBHOOK"),
            "channel": get("SLACK_CHANNEL"),
        }
    if get("PAGERDUTY_KEY"):
        found["pagerduty"] = {
            "type": "pagerduty",
            "routing_key": get("PAGERDUTY_KEY"),
            "url": get("PAGERDUTY_URL") or DEFAULT_PAGERDUTY_URL,
        }
    if get("EMAIL_SMTP_HOST"):
        found["email"] = {
            "type": "email",
            "host": get("EMAIL_SMTP_HOST"),
            "port": int(get("EMAIL_SMTP_PORT") or 587),
            "user": get("EMAIL_SMTP_USER"),
            "password": get("EMAIL_SMTP_PASSWORD"),
            "sender": get("EMAIL_FROM") or get("EMAIL_SMTP_USER") or "lakelens@localhost",
            "recipients": [
                r.strip() for r in (get("EMAIL_RECIPIENTS") or "").split(",") if r.strip()
            ],
            "security": get("EMAIL_SECURITY"),
        }
    if get("WEBHOOK_URL"):
        found["webhook"] = {
            "type": "webhook",
            "url": get("WEBHOOK_URL"),
            "secret": get("WEBHOOK_SECRET"),
        }
    if get("ALERTMANAGER_URL"):
        found["alertmanager"] = {"type": "alertmanager", "url": get("ALERTMANAGER_URL")}
    return {name: {k: v for k, v in cfg.items() if v is not None} for name, cfg in found.items()}


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{where} must be a destination name or a list of names, not {value!r}.")


_ROUTE_KEYS = ("name", "match", "to")
_MATCH_KEYS = ("asset", "owner", "tags", "severity")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{where} must be a name or a list of names, not {value!r}.")


def _glob(value: str, where: str) -> str:
    # fnmatch reads an unclosed "[" as a literal: almost always a typo in a route.
    if re.search(r"\[[^\]]*$", value) or not value.strip():
        raise ConfigError(f"{where} {value!r} is not a valid glob (e.g. 'fct_*' or 'raw.[ab]*').")
    return value


def _route(index: int, item: Any, destinations: Mapping[str, Any]) -> Route:
    where = f"alerts.routes[{index}]"
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where} must be a mapping with `match` and `to`.")
    unknown = sorted(set(map(str, item)) - set(_ROUTE_KEYS))
    if unknown:
        raise ConfigError(
            f"{where} has unknown key {unknown[0]!r}; known keys: {', '.join(_ROUTE_KEYS)}."
        )
    if "to" not in item:
        raise ConfigError(f"{where} needs `to`: the destination name(s) it sends to.")
    to = _strings(item["to"], f"{where}.to")
    missing = [n for n in to if n not in destinations]
    if missing:
        raise ConfigError(
            f"{where}.to names unknown destination {missing[0]!r}; "
            f"configured: {', '.join(destinations) or 'none'}."
        )
    match = item.get("match") or {}
    if not isinstance(match, Mapping):
        raise ConfigError(f"{where}.match must be a mapping (asset, owner, tags, severity).")
    unknown = sorted(set(map(str, match)) - set(_MATCH_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}.match has unknown key {unknown[0]!r}; known keys: {', '.join(_MATCH_KEYS)}."
        )
    tags = match.get("tags") or {}
    if not isinstance(tags, Mapping):
        raise ConfigError(f"{where}.match.tags must be a mapping such as {{team: finance}}.")
    return Route(
        name=str(item.get("name") or f"route {index}"),
        to=to,
        assets=tuple(
            _glob(g, f"{where}.match.asset")
            for g in (_strings(match["asset"], f"{where}.match.asset") if "asset" in match else ())
        ),
        owners=_strings(match["owner"], f"{where}.match.owner") if "owner" in match else (),
        tags={str(k): str(v) for k, v in tags.items()},
        severity=parse_severity(match["severity"], name=f"{where}.match.severity")
        if "severity" in match
        else None,
    )


def _routes(raw: Any, destinations: Mapping[str, Any]) -> tuple[tuple[Route, ...], tuple[str, ...]]:
    """The usable routes and one line per route that is not: a bad route never stops the others."""
    if raw is None:
        return (), ()
    if not isinstance(raw, (list, tuple)):
        return (), (
            "alerts.routes in lakelens.yaml must be a list of routes (see docs/alerting.md).",
        )
    routes: list[Route] = []
    errors: list[str] = []
    for index, item in enumerate(raw):
        try:
            routes.append(_route(index, item, destinations))
        except ConfigError as exc:
            errors.append(str(exc))
    return tuple(routes), tuple(errors)


def _positive(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0:
        raise ConfigError(f"{where} must be a positive number, not {value!r}.")
    return number


def _maintenance(raw: Any) -> tuple[Window, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, (list, tuple)):
        raise ConfigError("alerts.maintenance in lakelens.yaml must be a list of windows.")
    out = []
    for index, item in enumerate(raw):
        where = f"alerts.maintenance[{index}]"
        if not isinstance(item, Mapping) or "schedule" not in item:
            raise ConfigError(f"{where} needs a `schedule` such as 'Sat 00:00-06:00'.")
        unknown = sorted(set(map(str, item)) - {"name", "schedule", "assets"})
        if unknown:
            raise ConfigError(
                f"{where} has unknown key {unknown[0]!r}; known: name, schedule, assets."
            )
        assets = item.get("assets") or []
        if isinstance(assets, str):
            assets = [assets]
        out.append(
            Window.of(str(item.get("name") or item["schedule"]), str(item["schedule"]), assets)
        )
    return tuple(out)


def _rules(raw: Mapping[str, Any]) -> RuleSettings:
    base = RuleSettings()
    values: dict[str, Any] = {}

    def section(name: str) -> Mapping[str, Any]:
        item = raw.get(name, {})
        if item is False:
            return {"enabled": False}
        if not isinstance(item, Mapping):
            raise ConfigError(f"alerts.rules.{name} in lakelens.yaml must be a mapping.")
        return item

    for flag in ("failure", "checks", "freshness"):
        values[flag] = bool(section(flag).get("enabled", True))
    rate = section("pass_rate")
    if "below" in rate:
        values["pass_rate_below"] = (
            parse_percent(rate["below"], name="alerts.rules.pass_rate.below") * 100
        )
    if "window" in rate:
        values["pass_rate_window"] = parse_duration(
            rate["window"], name="alerts.rules.pass_rate.window"
        )
    failure_rate = section("failure_rate")
    if "above" in failure_rate:
        values["failure_rate_above"] = (
            parse_percent(failure_rate["above"], name="alerts.rules.failure_rate.above") * 100
        )
    if "window" in failure_rate:
        values["failure_rate_window"] = parse_duration(
            failure_rate["window"], name="alerts.rules.failure_rate.window"
        )
    if "min_runs" in failure_rate:
        values["failure_rate_min_runs"] = int(failure_rate["min_runs"])
    slow = section("slow_run")
    if "factor" in slow:
        values["slow_factor"] = float(slow["factor"])
    if "min_history" in slow:
        values["slow_min_history"] = int(slow["min_history"])
    thresholds = []
    for index, item in enumerate(raw.get("thresholds", []) or []):
        where = f"alerts.rules.thresholds[{index}]"
        try:
            op = str(item["op"])
            if op not in (">", ">=", "<", "<=", "==", "!="):
                raise ConfigError(f"{where}.op must be one of > >= < <= == !=, not {op!r}.")
            thresholds.append(
                ThresholdRule(
                    name=str(item.get("name") or item["metric"]),
                    metric=str(item["metric"]),
                    op=op,
                    threshold=float(item["threshold"]),
                    severity=parse_severity(
                        item.get("severity", "warning"), name=f"{where}.severity"
                    ),
                    for_seconds=parse_duration(item["for"], name=f"{where}.for")
                    if item.get("for")
                    else 0.0,
                    window_seconds=parse_duration(item.get("window", "1h"), name=f"{where}.window"),
                    labels={str(k): str(v) for k, v in (item.get("labels") or {}).items()},
                    asset=item.get("asset"),
                )
            )
        except KeyError as missing:
            raise ConfigError(f"{where} needs {missing}: see docs/alerting.md.") from None
    absences = []
    for index, item in enumerate(raw.get("heartbeats", []) or []):
        where = f"alerts.rules.heartbeats[{index}]"
        if not (item.get("job") or item.get("asset")) or "every" not in item:
            raise ConfigError(f"{where} needs `job` or `asset`, and `every` (e.g. 15m).")
        absences.append(
            AbsenceRule(
                name=str(item.get("name") or f"heartbeat {item.get('job') or item.get('asset')}"),
                interval_seconds=parse_duration(item["every"], name=f"{where}.every"),
                severity=parse_severity(item.get("severity", "error"), name=f"{where}.severity"),
                job=item.get("job"),
                asset=item.get("asset"),
            )
        )
    baselines = raw.get("baselines") or {}
    if not isinstance(baselines, Mapping):
        raise ConfigError("alerts.rules.baselines in lakelens.yaml must be a mapping.")
    known = {"sensitivity", "min_history", "learned_freshness", "min_updates", "assets"}
    unknown = sorted(set(map(str, baselines)) - known)
    if unknown:
        raise ConfigError(
            f"alerts.rules.baselines has unknown key {unknown[0]!r}; known: {', '.join(sorted(known))}."
        )
    if "sensitivity" in baselines:
        values["sensitivity"] = _positive(
            baselines["sensitivity"], "alerts.rules.baselines.sensitivity"
        )
    if "min_history" in baselines:
        values["baseline_min_history"] = int(baselines["min_history"])
    if "min_updates" in baselines:
        values["learned_min_updates"] = int(baselines["min_updates"])
    if "learned_freshness" in baselines:
        values["learned_freshness"] = bool(baselines["learned_freshness"])
    overrides = []
    for glob, item in (baselines.get("assets") or {}).items():
        where = f"alerts.rules.baselines.assets.{glob}"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where} must be a mapping (sensitivity, direction).")
        direction = item.get("direction")
        if direction is not None and direction not in ("drop", "spike", "both"):
            raise ConfigError(f"{where}.direction must be drop, spike or both, not {direction!r}.")
        sensitivity = (
            _positive(item["sensitivity"], f"{where}.sensitivity")
            if "sensitivity" in item
            else None
        )
        overrides.append((str(glob), sensitivity, direction))
    values["baseline_overrides"] = tuple(overrides)
    for name in DATA_RULES:
        values[name] = _data_rule(name, section(name), getattr(base, name))
    values["thresholds"] = tuple(thresholds)
    values["absences"] = tuple(absences)
    return RuleSettings(**{**base.__dict__, **values})


def _data_rule(name: str, item: Mapping[str, Any], default: DataRule) -> DataRule:
    where = f"alerts.rules.{name}"
    known = {"enabled", "min_history", "sensitivity", "severity", "dedup_window"}
    if name == "null_rate_shift":
        known.add("min_change")
    unknown = sorted(set(map(str, item)) - known)
    if unknown:
        raise ConfigError(
            f"{where} has unknown key {unknown[0]!r}; known: {', '.join(sorted(known))}."
        )
    min_history = item.get("min_history", default.min_history)
    if isinstance(min_history, bool) or not isinstance(min_history, int) or min_history < 2:
        raise ConfigError(
            f"{where}.min_history must be a whole number of 2 or more, not {min_history!r}."
        )
    return DataRule(
        enabled=bool(item.get("enabled", default.enabled)),
        min_history=min_history,
        sensitivity=_positive(item["sensitivity"], f"{where}.sensitivity")
        if "sensitivity" in item
        else default.sensitivity,
        severity=parse_severity(item.get("severity", default.severity), name=f"{where}.severity"),
        min_change=parse_percent(item["min_change"], name=f"{where}.min_change")
        if "min_change" in item
        else default.min_change,
    )


def _wait(value: Any, *, name: str) -> float:
    """A duration that may be zero (tell at once)."""
    if str(value).strip().lower() in ("0", "0s", "0.0", "none"):
        return 0.0
    return parse_duration(value, name=name)


def load_alerting(settings: Settings, env: Mapping[str, str] | None = None) -> AlertingConfig:
    """Alerting from LAKELENS_ALERT_* variables and the `alerts:` section of lakelens.yaml."""
    env = os.environ if env is None else env
    raw = settings.raw.get("alerts", {}) or {}
    if not isinstance(raw, Mapping):
        raise ConfigError("The `alerts:` section of lakelens.yaml must be a mapping.")
    destinations = _env_destinations(env)
    from_file: set[str] = set()
    for index, item in enumerate(raw.get("destinations", []) or []):
        if not isinstance(item, Mapping) or "type" not in item:
            raise ConfigError(
                f"alerts.destinations[{index}] in lakelens.yaml needs a `type` (slack, email, …)."
            )
        name = str(item.get("name") or item["type"])
        if name in from_file:
            raise ConfigError(
                f"Two alert destinations in lakelens.yaml are named {name!r}; give each a distinct `name`."
            )
        from_file.add(name)
        destinations[name] = dict(item)
    routing = raw.get("routing", {}) or {}
    routes = {
        parse_severity(key, name="alerts.routing key"): _names(value, f"alerts.routing.{key}")
        for key, value in routing.items()
        if key not in ("owners", "tags")
    }
    owner_routes = {
        str(k): _names(v, f"alerts.routing.owners.{k}")
        for k, v in (routing.get("owners") or {}).items()
    }
    tag_routes = {
        str(k): _names(v, f"alerts.routing.tags.{k}")
        for k, v in (routing.get("tags") or {}).items()
    }
    for where, names in [
        *(("routing", n) for n in routes.values()),
        *(("owners", n) for n in owner_routes.values()),
    ]:
        unknown = [n for n in names if n not in destinations]
        if unknown:
            raise ConfigError(
                f"alerts.{where} names unknown destination(s) {', '.join(unknown)}; "
                f"configured: {', '.join(destinations) or 'none'}."
            )
    dedup = env.get("LAKELENS_ALERT_DEDUP_WINDOW") or raw.get("dedup_window", "60m")
    rules_raw = raw.get("rules", {}) or {}
    rule_dedup = {
        str(name): parse_duration(section["dedup_window"], name=f"alerts.rules.{name}.dedup_window")
        for name, section in rules_raw.items()
        if isinstance(section, Mapping) and "dedup_window" in section
    }
    incidents = raw.get("incidents", {}) or {}
    if not isinstance(incidents, Mapping):
        raise ConfigError(
            "alerts.incidents in lakelens.yaml must be a mapping (group_wait, repeat_interval)."
        )
    unknown = sorted(set(incidents) - {"group_wait", "repeat_interval"})
    if unknown:
        raise ConfigError(
            f"alerts.incidents has unknown key(s) {', '.join(unknown)}; known: group_wait, repeat_interval."
        )
    # An explicit dedup window (the setting before incidents) still sets the reminder interval.
    repeat = incidents.get("repeat_interval") or (
        env.get("LAKELENS_ALERT_DEDUP_WINDOW") or raw.get("dedup_window") or "4h"
    )
    policy = Policy(
        group_wait=_wait(
            env.get("LAKELENS_ALERT_GROUP_WAIT") or incidents.get("group_wait", "10s"),
            name="alerts.incidents.group_wait",
        ),
        repeat_interval=parse_duration(repeat, name="alerts.incidents.repeat_interval"),
        rule_repeat=tuple(sorted(rule_dedup.items())),
    )
    interval = env.get("LAKELENS_ALERT_EVALUATION_INTERVAL") or raw.get(
        "evaluation_interval", "30s"
    )
    extra_routes, route_errors = _routes(raw.get("routes"), destinations)
    return AlertingConfig(
        destinations=destinations,
        extra_routes=extra_routes,
        route_errors=route_errors,
        maintenance=_maintenance(raw.get("maintenance")),
        routes=routes,
        owner_routes=owner_routes,
        tag_routes=tag_routes,
        dedup_window=parse_duration(dedup, name="alerts.dedup_window"),
        incident_policy=policy,
        evaluation_interval=parse_duration(interval, name="alerts.evaluation_interval"),
        max_attempts=int(raw.get("max_attempts", 8)),
        max_age=parse_duration(raw.get("max_age", "24h"), name="alerts.max_age"),
        public_url=env.get("LAKELENS_PUBLIC_URL") or raw.get("public_url"),
        rules=_rules(rules_raw),
    )
