"""Dashboard sessions: a signed cookie saying which token signed in, with which scopes, until when.

Stateless: nothing is stored. The cookie's value is

    v1.<fingerprint>.<scopes>.<expires>.<nonce>.<mac>

`fingerprint` is an HMAC of the token's hash under the server's key (the cookie tells nothing
about the token), `scopes` the token's scopes joined by '+', `expires` epoch seconds, `nonce`
random (each sign-in is its own session, and form tokens are bound to it), and `mac` an
HMAC-SHA256 of everything before it. On each request the fingerprint must still name a
configured token (removing a token from lakelens.yaml ends its sessions) and the scopes used
are those both the cookie and the token still have. A new server key (a restart without
LAKELENS_SESSION_SECRET or LAKELENS_API_TOKEN) signs everyone out.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lakelens.server.tokens import SCOPES, TokenEntry

__all__ = [
    "COOKIE",
    "Grant",
    "SessionCookies",
    "clear_session_cookie",
    "form_purpose",
    "safe_next",
    "set_session_cookie",
]

COOKIE = "lakelens_session"
_VERSION = "v1"
# A cookie may claim to last this much longer than sessions do now (clocks of replicas differ).
_SKEW = 60


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass(frozen=True)
class Grant:
    """Who a request comes from: a token's name and scopes, and the session if it has one."""

    name: str
    scopes: frozenset[str]
    # The session's id (its cookie's signature) when the grant came from a cookie; form
    # tokens issued in a session are good in that session only.
    session: str | None = None
    expires: float | None = None

    def has(self, scope: str) -> bool:
        return scope in self.scopes


class SessionCookies:
    """Issues and opens session cookie values under one key, for the tokens configured."""

    def __init__(self, key: bytes, tokens: Iterable[TokenEntry], *, hours: float = 12.0) -> None:
        self._key = key
        self.seconds = int(hours * 3600)
        self._by_fingerprint = {self.fingerprint(entry): entry for entry in tokens}

    def __repr__(self) -> str:
        return f"SessionCookies(tokens={len(self._by_fingerprint)}, seconds={self.seconds})"

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), "sha256").digest()[:24])

    def fingerprint(self, entry: TokenEntry) -> str:
        """A short name for the token that reveals nothing about it (HMAC of its hash)."""
        return _b64(hmac.new(self._key, b"fingerprint\x00" + entry.digest, "sha256").digest()[:12])

    def issue(self, entry: TokenEntry, *, now: float | None = None) -> str:
        """A new session of `entry` (with all its scopes) lasting `seconds` from `now`."""
        expires = int((time.time() if now is None else now) + self.seconds)
        scopes = "+".join(s for s in SCOPES if s in entry.scopes)
        payload = ".".join(
            (_VERSION, self.fingerprint(entry), scopes, str(expires), _b64(secrets.token_bytes(9)))
        )
        return f"{payload}.{self._mac(payload)}"

    def open(self, value: str | None, *, now: float | None = None) -> Grant | None:
        """The grant of a cookie value; None when it is forged, altered, expired or its token
        is no longer configured."""
        if not value or len(value) > 200:
            return None
        payload, _, mac = value.rpartition(".")
        parts = payload.split(".")
        if len(parts) != 5 or parts[0] != _VERSION:
            return None
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return None
        _, fingerprint, scopes, expires_text, _nonce = parts
        if not expires_text.isdigit():
            return None
        expires = int(expires_text)
        now = time.time() if now is None else now
        if not now < expires <= now + self.seconds + _SKEW:
            return None
        entry = self._by_fingerprint.get(fingerprint)
        if entry is None:
            return None
        granted = frozenset(scopes.split("+")) & entry.scopes
        return Grant(entry.name, granted, session=mac, expires=float(expires))


def form_purpose(purpose: str, grant: Grant | None) -> str:
    """What a form token is for: `purpose`, and within a session only that session."""
    if grant is not None and grant.session:
        return f"{purpose}\x00session:{grant.session}"
    return purpose


def set_session_cookie(response: Any, value: str, *, max_age: int, secure: bool) -> None:
    """The session cookie on `response`: HttpOnly, SameSite=Strict, Secure over TLS, expiring."""
    response.set_cookie(
        COOKIE,
        value,
        max_age=max_age,
        expires=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Any, *, secure: bool) -> None:
    """Tell the browser to forget the session cookie."""
    response.delete_cookie(COOKIE, path="/", secure=secure, httponly=True, samesite="strict")


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this server, else '/' (never another site)."""
    text = (value or "").strip()
    if (
        not text.startswith("/")
        or text.startswith("//")
        or "\\" in text
        or len(text) > 2000
        or any(ord(c) < 0x21 or ord(c) == 0x7F for c in text)
    ):
        return "/"
    try:
        parts = urlsplit(text)
    except ValueError:
        return "/"
    if parts.scheme or parts.netloc or parts.path in ("/signin", "/signout"):
        return "/"
    return text
