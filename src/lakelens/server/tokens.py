"""API tokens with scopes: the `server.tokens` of lakelens.yaml, how a token is hashed, new ones.

A token is 256 random bits, so one SHA-256 is enough to keep the configuration from
granting access (nobody can search that space); a password KDF would cost every ingest
request milliseconds (scrypt: ~67 ms, PBKDF2 600,000 rounds: ~160 ms, SHA-256: 0.5 µs).
Only standard-library imports: `lakelens token create` uses this module.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakelens.errors import ConfigError, InvalidArgumentError

if TYPE_CHECKING:
    from lakelens.config import Settings

__all__ = [
    "ALL_SCOPES",
    "SCOPES",
    "TokenEntry",
    "declared_tokens",
    "digest",
    "hash_token",
    "new_token",
    "parse_scopes",
    "yaml_entry",
]

# What a token may do: send events, read pages and the GET API, change incidents and silences.
SCOPES = ("ingest", "read", "admin")
ALL_SCOPES = frozenset(SCOPES)
HASH_SCHEME = "sha256"
_HASH = re.compile(r"sha256:([0-9a-fA-F]{64})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
# Recognisable in a leaked log or a repository (secret scanners can look for it).
PREFIX = "llk_"
SCOPE_HINT = "use ingest, read or admin"


@dataclass(frozen=True)
class TokenEntry:
    """One accepted token: its name, the SHA-256 of the token, and its scopes."""

    name: str
    digest: bytes = field(repr=False)
    scopes: frozenset[str]


def digest(token: str) -> bytes:
    """The SHA-256 of a token as sent (surrounding spaces removed)."""
    return hashlib.sha256(token.strip().encode("utf-8", "replace")).digest()


def hash_token(token: str) -> str:
    """What lakelens.yaml holds for `token`: 'sha256:' and 64 hex digits."""
    return f"{HASH_SCHEME}:{digest(token).hex()}"


def new_token() -> str:
    """A new random token: 'llk_' and 43 URL-safe characters (256 bits)."""
    return PREFIX + secrets.token_urlsafe(32)


def parse_scopes(values: Iterable[object], where: str = "scope") -> frozenset[str]:
    """The scopes named, or InvalidArgumentError listing the accepted ones."""
    scopes: set[str] = set()
    for value in values:
        text = str(value).strip().lower() if isinstance(value, str) else None
        if text not in SCOPES:
            raise InvalidArgumentError(f"Unknown {where} {value!r}: {SCOPE_HINT}.")
        scopes.add(text)
    if not scopes:
        raise InvalidArgumentError(f"Give at least one {where}: {SCOPE_HINT}.")
    return frozenset(scopes)


def yaml_entry(name: str, hashed: str, scopes: Iterable[str]) -> str:
    """The lines to paste under `server: tokens:` in lakelens.yaml."""
    listed = ", ".join(s for s in SCOPES if s in set(scopes))
    return (
        f"server:\n  tokens:\n    - name: {name}\n      hash: {hashed}\n      scopes: [{listed}]\n"
    )


def check_name(name: str) -> str:
    """A token name: letters, digits and . _ @ - (it is shown in logs and the page header)."""
    if not _NAME.fullmatch(name):
        raise InvalidArgumentError(
            f"Invalid token name {name!r}: use up to 64 letters, digits, '.', '_', '@' or '-'."
        )
    return name


def declared_tokens(settings: Settings) -> list[TokenEntry]:
    """The tokens of `server: tokens:` in lakelens.yaml; ConfigError naming a bad entry."""
    where = settings.config_file or "lakelens.yaml"
    server = settings.raw.get("server") if isinstance(settings.raw, Mapping) else None
    listed = server.get("tokens") if isinstance(server, Mapping) else None
    if listed is None:
        return []
    if not isinstance(listed, list):
        raise ConfigError(
            f"server.tokens in {where} must be a list of {{name, hash, scopes}} entries."
        )
    entries: list[TokenEntry] = []
    for index, item in enumerate(listed):
        entries.append(_entry(item, f"server.tokens[{index}]", where))
    names = [e.name for e in entries]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(
                f"Two tokens in server.tokens of {where} are named {name!r}; give each its own name."
            )
    return entries


def _entry(item: Any, label: str, where: object) -> TokenEntry:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{label} in {where} must be a mapping with name, hash and scopes.")
    name = item.get("name")
    if isinstance(name, str) and name.strip():
        label = f"{label} ({name.strip()})"
    unknown = sorted(str(k) for k in item if k not in ("name", "hash", "scopes"))
    if unknown:
        raise ConfigError(
            f"{label} in {where} has unknown key {unknown[0]!r}; a token entry has name, hash "
            "and scopes."
        )
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{label} in {where} needs a `name` (shown in logs, never the token).")
    try:
        check_name(name.strip())
    except InvalidArgumentError as exc:
        raise ConfigError(f"{label} in {where}: {exc}") from None
    hashed = item.get("hash")
    match = _HASH.fullmatch(hashed.strip()) if isinstance(hashed, str) else None
    if match is None:
        raise ConfigError(
            f"{label} in {where} needs `hash: sha256:<64 hex digits>` (the token itself never "
            "goes in the file); `lakelens token create` prints a token and its entry."
        )
    scopes = item.get("scopes")
    if isinstance(scopes, str):
        scopes = [scopes]
    if not isinstance(scopes, list):
        raise ConfigError(f"{label} in {where} needs `scopes`: a list of ingest, read, admin.")
    try:
        parsed = parse_scopes(scopes)
    except InvalidArgumentError as exc:
        raise ConfigError(f"{label} in {where}: {exc}") from None
    return TokenEntry(name.strip(), bytes.fromhex(match.group(1)), parsed)
