"""Settings from the environment (LAKELENS_*) and lakelens.yaml, read in this one place."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from lakelens.errors import ConfigError

__all__ = ["Settings", "load_settings"]

_LOG_FORMATS = ("json", "console", "none")
_SECONDS = (
    "flush_interval",
    "db_connect_timeout",
    "db_tcp_timeout",
    "db_write_timeout",
    "ready_write_stall",
    "http_header_timeout",
)
_OPTIONAL_SECONDS = ("db_statement_timeout", "db_idle_in_transaction_timeout")
# Settings that may also be written under `server:` in lakelens.yaml (its `tokens` are read by
# server/tokens.py).
_SERVER_SECTION = ("session_hours", "session_secret", "http_header_timeout", "http_max_requests")
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


@dataclass(frozen=True)
class Settings:
    """Everything lakelens can be told; build with `load_settings()`, override with `replace()`."""

    home: Path = Path(".lakelens")
    database_url: str | None = None
    retention_days: int = 30
    url: str | None = None
    api_token: str | None = field(default=None, repr=False)
    log_format: str = "console"
    log_level: str = "INFO"
    queue_size: int = 100_000
    batch_size: int = 5_000
    flush_interval: float = 0.5
    sqlite_synchronous: str = "NORMAL"
    # PostgreSQL timeouts in seconds (0 turns one off); see docs/deploy.md.
    db_connect_timeout: float = 5.0
    db_statement_timeout: float = 30.0
    db_idle_in_transaction_timeout: float = 60.0
    db_tcp_timeout: float = 20.0
    # Seconds the server's ingest writer waits for PostgreSQL to answer one commit.
    db_write_timeout: float = 10.0
    # /readyz says not ready while an ingest commit has been waiting longer than this.
    ready_write_stall: float = 5.0
    # `lakelens serve`: seconds a connection may take to send a request head, and the
    # number of requests handled at once (more get 503 with Retry-After).
    http_header_timeout: float = 10.0
    http_max_requests: int = 200
    # Dashboard sign-in (server/sessions.py): how long a session lasts, and the key that signs
    # session cookies and form tokens (default: derived from api_token, else new at each start).
    session_hours: float = 12.0
    session_secret: str | None = field(default=None, repr=False)
    config_file: Path | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL of the store: LAKELENS_DATABASE_URL or SQLite under home."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'lakelens.db').resolve()}"

    @property
    def log_level_number(self) -> int:
        return _LEVELS[self.log_level]

    def replace(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _env_name(name: str) -> str:
    return "LAKELENS_" + name.upper()


def _coerce(name: str, value: Any, source: str) -> Any:
    """Convert a raw setting to its field's type, raising ConfigError that names the source."""
    try:
        if name in ("home", "config_file"):
            return Path(os.path.expanduser(str(value)))
        if name in ("retention_days", "queue_size", "batch_size", "http_max_requests"):
            number = int(value)
            if number <= 0:
                raise ValueError
            return number
        if name in _OPTIONAL_SECONDS:
            number_f = float(value)
            if not 0 <= number_f < float("inf"):
                raise ValueError
            return number_f
        if name in _SECONDS or name == "session_hours":
            number_f = float(value)
            if not 0 < number_f < float("inf"):
                raise ValueError
            return number_f
        if name == "log_format":
            text = str(value).lower()
            if text not in _LOG_FORMATS:
                raise ValueError
            return text
        if name == "log_level":
            text = str(value).upper()
            if text == "WARN":
                text = "WARNING"
            if text not in _LEVELS:
                raise ValueError
            return text
        if name == "sqlite_synchronous":
            text = str(value).upper()
            if text not in ("OFF", "NORMAL", "FULL", "EXTRA"):
                raise ValueError
            return text
        return None if value in (None, "") else str(value)
    except (TypeError, ValueError):
        hints = {
            "retention_days": "a whole number of days above 0",
            "queue_size": "a whole number above 0",
            "batch_size": "a whole number above 0",
            "flush_interval": "a number of seconds above 0",
            "http_max_requests": "a whole number above 0",
            **{name: "a number of seconds above 0" for name in _SECONDS},
            **{name: "a number of seconds, 0 for none" for name in _OPTIONAL_SECONDS},
            "session_hours": "a number of hours above 0",
            "log_format": "one of json, console, none",
            "log_level": "one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
            "sqlite_synchronous": "one of OFF, NORMAL, FULL, EXTRA",
        }
        raise ConfigError(
            f"Invalid {source}={value!r}: expected {hints.get(name, 'a string')}."
        ) from None


def _find_config_file(env: Mapping[str, str]) -> Path | None:
    explicit = env.get("LAKELENS_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"LAKELENS_CONFIG points to {path}, which does not exist; fix the path or unset it."
            )
        return path
    for candidate in (Path("lakelens.yaml"), Path("lakelens.yml")):
        if candidate.is_file():
            return candidate
    return None


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml  # only when a file exists: keeps `import lakelens` light

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(
            f"{path} is not valid YAML{where}; fix the syntax or remove the file."
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings at the top level.")
    return data


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read settings: keyword overrides beat LAKELENS_* variables, which beat lakelens.yaml."""
    env = os.environ if env is None else env
    names = [f.name for f in fields(Settings) if f.name not in ("raw", "config_file")]
    values: dict[str, Any] = {}
    config_file = _find_config_file(env)
    raw: dict[str, Any] = {}
    if config_file is not None:
        raw = _read_yaml(config_file)
        for name in names:
            if name in raw and not isinstance(raw[name], (dict, list)):
                values[name] = _coerce(name, raw[name], f"{name} in {config_file}")
        server = raw.get("server")
        if server is not None and not isinstance(server, dict):
            raise ConfigError(f"`server:` in {config_file} must be a mapping of settings.")
        for name in _SERVER_SECTION:
            if server and name in server and not isinstance(server[name], (dict, list)):
                values[name] = _coerce(name, server[name], f"server.{name} in {config_file}")
    for name in names:
        if _env_name(name) in env:
            values[name] = _coerce(name, env[_env_name(name)], _env_name(name))
    for name, value in overrides.items():
        if value is not None:
            values[name] = _coerce(name, value, name) if name in names else value
    if "log_format" not in values:
        values["log_format"] = "console" if sys.stderr.isatty() else "json"
    return Settings(config_file=config_file, raw=raw, **values)
