"""What a monitor is told: the warehouse URL (never its password), which tables, how often, and
the limits its queries run under; from `lakelens monitor add` or lakelens.yaml's `monitors:`.

The password is never stored: `password_env` names the environment variable that holds it
(PostgreSQL also reads PGPASSWORD and ~/.pgpass itself). Every message that may quote the
URL or a driver's error goes through `Masker`, which hides the password and any URL userinfo.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lakelens.errors import ConfigError, InvalidArgumentError, LakelensError
from lakelens.units import parse_duration

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = [
    "DEFAULT_INTERVAL",
    "Masker",
    "MonitorConfig",
    "MonitorError",
    "default_name",
    "display_url",
    "parse_bytes",
    "parse_columns",
    "parse_pairs",
    "parse_rows",
]

DEFAULT_INTERVAL = 600.0
# count(*) runs on PostgreSQL tables up to this size; bigger ones get the planner's estimate.
DEFAULT_EXACT_COUNT_BYTES = 16 * 1024 * 1024
# A table's opted-in columns are profiled at most this often, and only once it has changed.
DEFAULT_PROFILE_INTERVAL = 3600.0
# Bigger tables are profiled from a sample of about this many rows (PostgreSQL), or with the
# engine's approximate distinct and quantile functions (DuckDB); see monitors/profiles.py.
# A warehouse pays for every row profiled (about 4 s of one core per 1M rows on PostgreSQL,
# bench/monitor.py); above 100k a page sample keeps one profile under a second.
DEFAULT_PROFILE_SAMPLE_ABOVE = 100_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_BYTE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


class MonitorError(LakelensError):
    """A monitor cannot be added, opened or run; the message says why and what to do."""


def parse_bytes(value: object, *, name: str) -> int:
    """'64MB', '1GiB', 1048576 → bytes."""
    if isinstance(value, bool):
        raise InvalidArgumentError(f"Invalid {name}={value!r}: expected a size like 64MB.")
    if isinstance(value, (int, float)) and value >= 0:
        return int(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(value))
    if not match or match.group(2).lower() not in _BYTE_UNITS:
        raise InvalidArgumentError(f"Invalid {name}={value!r}: expected a size like 64MB or 1GiB.")
    return int(float(match.group(1)) * _BYTE_UNITS[match.group(2).lower()])


def parse_pairs(values: Iterable[str], *, name: str) -> dict[str, str]:
    """['orders=updated_at', 'events=ts'] → {'orders': 'updated_at', 'events': 'ts'}."""
    pairs: dict[str, str] = {}
    for item in values:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InvalidArgumentError(f"Invalid {name} {item!r}: expected TABLE=VALUE.")
        pairs[key.strip()] = value.strip()
    return pairs


def parse_rows(value: object, *, name: str) -> int:
    """'1M', '100k', 250000 → a number of rows."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", str(value).replace("_", ""))
    if isinstance(value, bool) or not match or float(match.group(1)) <= 0:
        raise InvalidArgumentError(f"Invalid {name}={value!r}: expected rows like 1000000 or 1M.")
    scale = {"": 1, "k": 1000, "m": 1_000_000}[match.group(2).lower()]
    return max(1, int(float(match.group(1)) * scale))


def parse_columns(value: object, *, name: str) -> list[str]:
    """'amount, status' or ['amount', 'status'] → ['amount', 'status'] ('*': every column)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise InvalidArgumentError(f"Invalid {name}: expected a list of column names.")
    columns = [str(item).strip() for item in items if str(item).strip()]
    if not columns:
        raise InvalidArgumentError(f"Invalid {name}: name at least one column (or '*').")
    return list(dict.fromkeys(columns))


def _url(text: str) -> URL:
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(text)
    except Exception:
        raise MonitorError(
            f"{Masker().url(text)!r} is not a database URL; expected postgresql://user@host/db, "
            "duckdb:///path/file.duckdb or another SQLAlchemy URL."
        ) from None


def display_url(text: str) -> str:
    """The URL as it may be shown: any password replaced by ***."""
    try:
        return _url(text).render_as_string(hide_password=True)
    except MonitorError:
        return "<unreadable URL>"


def default_name(url: str) -> str:
    """A monitor name from its URL: the database (or DuckDB file) name."""
    parsed = _url(url)
    base = os.path.basename(parsed.database or "") or parsed.host or parsed.get_backend_name()
    stem = base.rsplit(".", 1)[0] if "." in base else base
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_.-")[:64]
    return name or parsed.get_backend_name()


# A URL with userinfo: scheme://user:secret@host — the secret part is hidden.
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^@\s/]*@")


class Masker:
    """Hides the given secrets and any `user:password@` in text meant for people."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def __call__(self, text: object) -> str:
        result = _USERINFO.sub(r"\1:***@", str(text))
        for secret in self._secrets:
            result = result.replace(secret, "***")
        return result

    def url(self, text: str) -> str:
        return self(text)


@dataclass(frozen=True)
class MonitorConfig:
    """One watched warehouse. `url` holds no password; see `password_env`."""

    name: str
    url: str
    schemas: tuple[str, ...] = ()
    # Globs over `schema.table` (or just `table`); empty: every table.
    tables: tuple[str, ...] = ()
    interval: float = DEFAULT_INTERVAL
    # Table glob → the column whose max() is the table's last modification.
    timestamp_columns: dict[str, str] = field(default_factory=dict)
    # Table glob → a freshness SLA (seconds) for the tables' assets.
    freshness: dict[str, float] = field(default_factory=dict)
    password_env: str | None = None
    statement_timeout: float = 30.0
    lock_timeout: float = 2.0
    connect_timeout: float = 10.0
    exact_count_max_bytes: int = DEFAULT_EXACT_COUNT_BYTES
    # Table glob → columns to profile ('*': every column); see monitors/profiles.py.
    profile_columns: dict[str, list[str]] = field(default_factory=dict)
    profile_interval: float = DEFAULT_PROFILE_INTERVAL
    profile_sample_above: int = DEFAULT_PROFILE_SAMPLE_ABOVE
    # "cli" (lakelens monitor add) or "config" (lakelens.yaml: changed there only).
    source: str = "cli"

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise InvalidArgumentError(
                f"Invalid monitor name {self.name!r}: use letters, digits, '_', '-' or '.', "
                "at most 64 characters."
            )
        for label, value in (
            ("interval", self.interval),
            ("statement_timeout", self.statement_timeout),
            ("lock_timeout", self.lock_timeout),
            ("connect_timeout", self.connect_timeout),
            ("profile_interval", self.profile_interval),
            ("profile_sample_above", self.profile_sample_above),
        ):
            if not value > 0:
                raise InvalidArgumentError(f"Invalid {label}={value!r}: it must be positive.")

    # -- building -----------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        url: str,
        *,
        name: str | None = None,
        schemas: Iterable[str] = (),
        tables: Iterable[str] = (),
        interval: object = DEFAULT_INTERVAL,
        timestamp_columns: Mapping[str, str] | None = None,
        freshness: Mapping[str, object] | None = None,
        password_env: str | None = None,
        statement_timeout: object = 30.0,
        lock_timeout: object = 2.0,
        connect_timeout: object = 10.0,
        exact_count_max_bytes: object = DEFAULT_EXACT_COUNT_BYTES,
        profile_columns: Mapping[str, object] | None = None,
        profile_interval: object = DEFAULT_PROFILE_INTERVAL,
        profile_sample_above: object = DEFAULT_PROFILE_SAMPLE_ABOVE,
        source: str = "cli",
    ) -> MonitorConfig:
        """Validate user input: the URL may not carry a password, durations may be '10m'."""
        url = normalize_url(url)
        return cls(
            name=name or default_name(url),
            url=url,
            schemas=tuple(schemas),
            tables=tuple(tables),
            interval=parse_duration(interval, name="interval"),
            timestamp_columns=dict(timestamp_columns or {}),
            freshness={
                glob: parse_duration(value, name=f"freshness for {glob}")
                for glob, value in (freshness or {}).items()
            },
            password_env=password_env or None,
            statement_timeout=parse_duration(statement_timeout, name="statement_timeout"),
            lock_timeout=parse_duration(lock_timeout, name="lock_timeout"),
            connect_timeout=parse_duration(connect_timeout, name="connect_timeout"),
            exact_count_max_bytes=parse_bytes(exact_count_max_bytes, name="exact_count_below"),
            profile_columns={
                str(glob): parse_columns(columns, name=f"profile columns for {glob}")
                for glob, columns in (profile_columns or {}).items()
            },
            profile_interval=parse_duration(profile_interval, name="profile_interval"),
            profile_sample_above=parse_rows(profile_sample_above, name="profile_sample_above"),
            source=source,
        )

    def settings_json(self) -> str:
        """The `monitors.settings` column: everything but the name and URL."""
        data = asdict(self)
        del data["name"], data["url"]
        data["schemas"], data["tables"] = list(self.schemas), list(self.tables)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_row(cls, name: str, url: str, settings: str | None) -> MonitorConfig:
        data: dict[str, Any] = json.loads(settings) if settings else {}
        known = {f for f in cls.__dataclass_fields__ if f not in ("name", "url")}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("schemas", "tables"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(name=name, url=url, **values)

    def with_changes(self, **changes: Any) -> MonitorConfig:
        return replace(self, **changes)

    # -- using --------------------------------------------------------------------------------
    @property
    def shown_url(self) -> str:
        return display_url(self.url)

    @property
    def backend(self) -> str:
        return _url(self.url).get_backend_name()

    def password(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The password from `password_env`; MonitorError when that variable is unset."""
        if not self.password_env:
            return None
        environ = os.environ if environ is None else environ
        value = environ.get(self.password_env)
        if value is None:
            raise MonitorError(
                f"Monitor {self.name!r} takes its password from ${self.password_env}, which is "
                f"not set in this environment; set it where lakelens runs."
            )
        return value

    def connect_url(self, environ: Mapping[str, str] | None = None) -> URL:
        """The URL to connect with: the stored one plus the password from the environment."""
        parsed = _url(self.url)
        password = self.password(environ)
        return parsed.set(password=password) if password is not None else parsed

    def masker(self, environ: Mapping[str, str] | None = None) -> Masker:
        try:
            secret = self.password(environ)
        except MonitorError:
            secret = None
        return Masker([secret])

    def wants(self, schema: str, table: str) -> bool:
        """Whether `schema.table` is one of the monitored tables."""
        if self.schemas and schema not in self.schemas:
            return False
        if not self.tables:
            return True
        return any(_matches(glob, schema, table) for glob in self.tables)

    def timestamp_column(self, schema: str, table: str) -> str | None:
        for glob, column in self.timestamp_columns.items():
            if _matches(glob, schema, table):
                return column
        return None

    def freshness_for(self, schema: str, table: str) -> float | None:
        for glob, seconds in self.freshness.items():
            if _matches(glob, schema, table):
                return seconds
        return None

    def profile_for(self, schema: str, table: str) -> list[str]:
        """The columns to profile of `schema.table`: those of every matching glob, in order
        ('*' stands for every column)."""
        found: list[str] = []
        for glob, columns in self.profile_columns.items():
            if _matches(glob, schema, table):
                found.extend(columns)
        return list(dict.fromkeys(found))


def _matches(glob: str, schema: str, table: str) -> bool:
    return fnmatch.fnmatchcase(f"{schema}.{table}", glob) or fnmatch.fnmatchcase(table, glob)


def normalize_url(text: str) -> str:
    """The URL as stored: no password (refused, with the fix) and DuckDB paths made absolute."""
    parsed = _url(text.strip())
    if parsed.password is not None:
        raise MonitorError(
            f"Do not put the password in the monitor URL ({display_url(text)}): lakelens would "
            "store it. Give the URL without it and name the environment variable that holds it "
            "with --password-env (or password_env: in lakelens.yaml)."
        )
    if parsed.get_backend_name() == "duckdb":
        database = parsed.database or ""
        if not database or database == ":memory:":
            raise MonitorError(
                "A DuckDB monitor needs a database file: duckdb:///path/to/file.duckdb."
            )
        parsed = parsed.set(database=os.path.abspath(os.path.expanduser(database)))
    return parsed.render_as_string(hide_password=False)


# -- lakelens.yaml -----------------------------------------------------------------------------


def from_config(raw: Mapping[str, Any], where: str) -> list[MonitorConfig]:
    """The `monitors:` section: a mapping of name → {url, password_env, schema, tables, …}."""
    section = raw.get("monitors") if isinstance(raw, Mapping) else None
    if not section:
        return []
    if not isinstance(section, Mapping):
        raise ConfigError(f"monitors in {where} must map a monitor name to its settings.")
    found = []
    for name, item in section.items():
        if not isinstance(item, Mapping) or not item.get("url"):
            raise ConfigError(f"monitors.{name} in {where} needs a url.")
        unknown = set(item) - _YAML_KEYS
        if unknown:
            raise ConfigError(
                f"monitors.{name} in {where} has unknown settings {sorted(unknown)}; known: "
                f"{', '.join(sorted(_YAML_KEYS))}."
            )
        options: dict[str, Any] = {}
        for key in ("schema", "schemas", "tables"):
            if key in item:
                value = item[key]
                listed = [value] if isinstance(value, str) else value
                if not isinstance(listed, list):
                    raise ConfigError(f"monitors.{name}.{key} in {where} must be a list of names.")
                options["schemas" if key.startswith("schema") else "tables"] = [
                    str(v) for v in listed
                ]
        for key in ("timestamp_columns", "freshness", "profile_columns"):
            if key in item:
                if not isinstance(item[key], Mapping):
                    raise ConfigError(
                        f"monitors.{name}.{key} in {where} must map tables to values."
                    )
                options[key] = dict(item[key])
        if "exact_count_below" in item:
            options["exact_count_max_bytes"] = item["exact_count_below"]
        for key in (
            "interval",
            "statement_timeout",
            "lock_timeout",
            "connect_timeout",
            "profile_interval",
            "profile_sample_above",
        ):
            if key in item:
                options[key] = item[key]
        try:
            found.append(
                MonitorConfig.create(
                    str(item["url"]),
                    name=str(name),
                    password_env=item.get("password_env"),
                    source="config",
                    **options,
                )
            )
        except LakelensError as exc:
            raise ConfigError(f"monitors.{name} in {where}: {exc}") from None
    return found


_YAML_KEYS = frozenset(
    {
        "url",
        "password_env",
        "schema",
        "schemas",
        "tables",
        "interval",
        "timestamp_columns",
        "freshness",
        "statement_timeout",
        "lock_timeout",
        "connect_timeout",
        "exact_count_below",
        "profile_columns",
        "profile_interval",
        "profile_sample_above",
    }
)
