"""Reading a destination's configuration mapping, with errors that name the destination and key.

Values may come from lakelens.yaml (typed) or from the environment (always strings), so
numbers and lists are accepted in either form. Error messages never repeat a value: it may be
a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from lakelens.alerts.destinations.base import DestinationConfigError
from lakelens.errors import InvalidArgumentError
from lakelens.units import parse_duration


class Settings:
    """One destination's configuration mapping, read key by key."""

    def __init__(self, kind: str, name: str, mapping: Mapping[str, Any]) -> None:
        self.kind = kind
        self.name = name
        self.mapping = mapping

    def error(self, key: str, problem: str) -> DestinationConfigError:
        return DestinationConfigError(
            f"Alert destination {self.name!r} ({self.kind}): `{key}` {problem}."
        )

    def _get(self, key: str) -> Any:
        value = self.mapping.get(key)
        if isinstance(value, str):
            value = value.strip()
        return None if value in (None, "") else value

    def text(self, key: str, *, default: str | None = None) -> str | None:
        """An optional string setting."""
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.error(key, "must be a string")
        if "\r" in value or "\n" in value:
            raise self.error(key, "must not contain line breaks")
        return value

    def require(self, key: str, hint: str) -> str:
        """A string setting that must be given; `hint` says what it is."""
        value = self.text(key)
        if value is None:
            raise self.error(key, f"is required ({hint})")
        return value

    def url(self, key: str, *, hint: str | None = None, default: str | None = None) -> str:
        """An http(s) URL with a host: required (with `hint`) unless a default is given."""
        value = self.text(key, default=default)
        if value is None:
            raise self.error(key, f"is required ({hint})")
        try:
            parts = urlsplit(value)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            _ = parts.port  # raises ValueError on a bad port
        except ValueError:
            valid = False
        if not valid:
            raise self.error(key, "must be an http:// or https:// URL with a host")
        return value

    def number(self, key: str, *, default: int) -> int:
        value = self._get(key)
        if value is None:
            return default
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = -1
        if isinstance(value, bool) or not 0 < number < 65536:
            raise self.error(key, "must be a port number between 1 and 65535")
        return number

    def seconds(self, key: str, *, default: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        try:
            seconds = parse_duration(value, name=key)
        except InvalidArgumentError:
            seconds = 0.0
        if seconds <= 0:
            raise self.error(key, "must be a positive duration such as 10 or '30s'")
        return seconds

    def choice(self, key: str, choices: tuple[str, ...], *, default: str | None) -> str | None:
        value = self.text(key)
        if value is None:
            return default
        if value.lower() not in choices:
            raise self.error(key, "must be one of " + ", ".join(choices))
        return value.lower()

    def names(self, key: str, *, required: str) -> tuple[str, ...]:
        """A list of strings, or one comma-separated string (as the environment gives it)."""
        value = self._get(key)
        if isinstance(value, str):
            value = value.split(",")
        if value is None:
            items: list[str] = []
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            items = [v.strip() for v in value if v.strip()]
        else:
            raise self.error(key, "must be a list or a comma-separated string")
        if not items:
            raise self.error(key, f"is required ({required})")
        if any("\r" in v or "\n" in v for v in items):
            raise self.error(key, "must not contain line breaks")
        return tuple(items)

    def headers(self, key: str) -> dict[str, str]:
        """Extra HTTP headers: a mapping of names to string values."""
        value = self._get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(key, "must be a mapping of header names to values")
        headers: dict[str, str] = {}
        for header, header_value in value.items():
            if not isinstance(header, str) or not header.strip() or ":" in header:
                raise self.error(key, "has a header name that is empty or not a string")
            text = str(header_value)
            if any(c in text or c in header for c in "\r\n"):
                raise self.error(key, f"has a line break in the value of {header.strip()!r}")
            headers[header.strip()] = text
        return headers
