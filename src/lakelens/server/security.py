"""Who may call what, how much they may send, and log lines that user input cannot forge."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
import zlib
from collections.abc import Iterable
from urllib.parse import urlsplit

# FastAPI reads the annotations of the dependencies below at run time.
from starlette.requests import Request

from lakelens.server.sessions import COOKIE, Grant, SessionCookies
from lakelens.server.tokens import ALL_SCOPES, TokenEntry, digest

__all__ = [
    "MAX_BODY_BYTES",
    "Access",
    "FormTokens",
    "Grant",
    "browsing",
    "clean",
    "cross_site",
    "grant_of",
    "is_loopback",
    "lacks",
    "masked",
    "read_body",
    "require_admin",
    "require_read",
    "require_write",
    "signin_url",
    "wants_json",
]

MAX_BODY_BYTES = 20 * 1024 * 1024
# Seconds a client may take to send a whole request body (a trickling client gets 408).
BODY_TIMEOUT = 60.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def clean(value: object, limit: int = 200) -> str:
    """A user-supplied value made safe for one log line: no CR, LF or other control characters."""
    text = _CONTROL.sub(" ", str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")


def masked(value: object) -> str:
    """Stored text (a delivery error) with every URL in it masked as destinations mask theirs.

    Destinations scrub their errors before they are stored; this second pass keeps a secret out
    of a page even when a third-party destination or an older version did not.
    """
    from lakelens.alerts.destinations.base import mask_url

    def mask(match: re.Match[str]) -> str:
        url = match.group(0)
        tail = len(url) - len(url.rstrip(".,;:)]"))
        return mask_url(url[: len(url) - tail]) + url[len(url) - tail :]

    return _URL.sub(mask, str(value))


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'; names are not resolved (anything else is public)."""
    import ipaddress

    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Access:
    """Who may do what: bearer tokens (or a session cookie) and their scopes.

    With no token configured everything is allowed (the server then listens on loopback
    unless --insecure). Else each request needs a token with the scope its endpoint needs
    (ingest, read, admin), and reads are open to anyone when `public_read`.
    LAKELENS_API_TOKEN (`token`) has every scope; `tokens` come from lakelens.yaml.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        public_read: bool = False,
        tokens: Iterable[TokenEntry] = (),
        secret: str | None = None,
        session_hours: float = 12.0,
    ) -> None:
        entries = list(tokens)
        # Only digests are kept: compared in constant time, and never printable by accident.
        api_digest = digest(token) if token else None
        if api_digest is not None:
            entries.insert(0, TokenEntry("LAKELENS_API_TOKEN", api_digest, ALL_SCOPES))
        self._tokens = tuple(entries)
        # Made once: a bearer request costs a hash and the comparisons, nothing more.
        self._checks = tuple((e.digest, e, Grant(e.name, e.scopes)) for e in entries)
        self.public_read = public_read
        # The key of form tokens and session cookies: replicas behind one address agree when
        # it comes from LAKELENS_SESSION_SECRET or the API token; else it is new at each start.
        if secret:
            base = hashlib.sha256(b"lakelens session secret\x00" + secret.encode()).digest()
        else:
            base = api_digest if api_digest is not None else secrets.token_bytes(32)
        self.secret_source = "session_secret" if secret else "api_token" if token else "random"
        self.forms = FormTokens(hmac.new(base, b"lakelens form tokens", "sha256").digest())
        self.sessions = SessionCookies(
            hmac.new(base, b"lakelens sessions", "sha256").digest(), entries, hours=session_hours
        )

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def __repr__(self) -> str:
        return (
            f"Access(tokens={len(self._tokens)}, public_read={self.public_read}, "
            f"secret={self.secret_source})"
        )

    def _match(self, given: str) -> tuple[TokenEntry, Grant] | None:
        given_digest = digest(given)
        found = None
        for entry_digest, entry, grant in self._checks:
            # No early exit: the time does not say which one matched.
            if hmac.compare_digest(given_digest, entry_digest) and found is None:
                found = (entry, grant)
        return found

    def token(self, given: str) -> TokenEntry | None:
        """The configured token `given` is, compared with every one in constant time."""
        found = self._match(given)
        return None if found is None else found[0]

    def _bearer(self, authorization: str) -> Grant | None:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return None
        found = self._match(credentials)
        return None if found is None else found[1]

    def identify(
        self, authorization: str | None, cookie: str | None = None, *, now: float | None = None
    ) -> Grant | None:
        """The grant of a request's bearer token, else of its session cookie; None if neither.

        With no token configured, everyone has every scope."""
        if not self._tokens:
            return OPEN
        grant = self._bearer(authorization) if authorization else None
        if grant is None and cookie:
            grant = self.sessions.open(cookie, now=now)
        return grant

    def permits(self, grant: Grant | None, scope: str) -> bool:
        if not self._tokens or (scope == "read" and self.public_read):
            return True
        return grant is not None and grant.has(scope)

    def allows(
        self, authorization: str | None, *, write: bool = False, scope: str | None = None
    ) -> bool:
        """Whether a bearer header (no cookie) may do `scope` (default: ingest if `write`, else read)."""
        needed = scope or ("ingest" if write else "read")
        return self.permits(self.identify(authorization), needed)


# Everyone, when no token is configured.
OPEN = Grant("anyone", ALL_SCOPES)


class FormTokens:
    """CSRF tokens for the dashboard's forms, without sessions: an HMAC, under a per-server
    key, of when the token was issued and what it is for (one incident's page)."""

    def __init__(self, key: bytes, *, max_age: float = 12 * 3600) -> None:
        self._key = key
        self.max_age = max_age

    def __repr__(self) -> str:
        return f"FormTokens(max_age={self.max_age:g})"

    def _mac(self, issued: int, scope: str) -> str:
        mac = hmac.new(self._key, f"{issued}\x00{scope}".encode(), "sha256").digest()
        return base64.urlsafe_b64encode(mac[:24]).decode()

    def issue(self, scope: str, *, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        return f"{issued}.{self._mac(issued, scope)}"

    def valid(self, token: str | None, scope: str, *, now: float | None = None) -> bool:
        """True when `token` was issued by this server for `scope` less than max_age ago."""
        now = time.time() if now is None else now
        issued_text, _, mac = (token or "").partition(".")
        if not issued_text.isdigit() or len(issued_text) > 12 or not mac:
            return False
        issued = int(issued_text)
        if not -60 <= now - issued <= self.max_age:
            return False
        return hmac.compare_digest(mac.encode(), self._mac(issued, scope).encode())


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url.strip())
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    return (scheme, host, port) if host and port else None


def cross_site(request: Request) -> str | None:
    """Why a state-changing request looks sent by another site's page, or None.

    Browsers say where a request comes from (Sec-Fetch-Site, Origin, Referer) and a page
    cannot forge them; a client that is not a browser (curl, the SDK) sends none of them.
    """
    fetch_site = request.headers.get("sec-fetch-site", "").strip().lower()
    if fetch_site in ("cross-site", "same-site"):
        return f"a {fetch_site} request"
    own = _origin(f"{request.url.scheme}://{request.headers.get('host', '')}")
    for header in ("origin", "referer"):
        value = request.headers.get(header)
        if value is None:
            continue
        if own is None or _origin(value) != own:
            return f"{header.title()} {clean(value, 80)!r} is not this server"
        return None  # Origin is enough; Referer only when a browser sent no Origin
    return None


def _deny() -> None:
    from fastapi import HTTPException

    raise HTTPException(
        status_code=401,
        detail="Missing or wrong bearer token: send 'Authorization: Bearer <token>' "
        "(LAKELENS_API_TOKEN or a token of server.tokens in lakelens.yaml).",
        headers={"WWW-Authenticate": 'Bearer realm="lakelens"'},
    )


def lacks(scope: str) -> str:
    """The one line a 403 says when a valid token has not the scope an action needs."""
    return f"This token lacks the {scope!r} scope."


def grant_of(request: Request, *, cookies: bool = True) -> Grant | None:
    """Who sent `request`: its bearer token, else (when `cookies`) its session cookie."""
    access: Access = request.app.state.ctx.access
    cookie = request.cookies.get(COOKIE) if cookies else None
    return access.identify(request.headers.get("authorization"), cookie)


def wants_json(request: Request) -> bool:
    """An API client: a path under /api/, or JSON preferred over HTML."""
    accept = request.headers.get("accept", "")
    return request.url.path.startswith("/api/") or (
        "application/json" in accept and "text/html" not in accept
    )


def browsing(request: Request) -> bool:
    """A browser navigating to a page (it asks for HTML first), not an API client."""
    return (
        request.method in ("GET", "HEAD")
        and "text/html" in request.headers.get("accept", "")
        and not wants_json(request)
    )


def signin_url(request: Request) -> str:
    """The sign-in form, coming back to this request's page afterwards."""
    from urllib.parse import quote

    # The path as sent (still percent-encoded): a decoded one may hold spaces, quotes or a
    # backslash, which `next` refuses.
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) and raw else quote(request.url.path)
    here = path + (f"?{request.url.query}" if request.url.query else "")
    return "/signin?next=" + quote(here, safe="")


def _require(request: Request, scope: str, *, cookies: bool) -> Grant | None:
    from fastapi import HTTPException

    grant = grant_of(request, cookies=cookies)
    if request.app.state.ctx.access.permits(grant, scope):
        return grant
    if grant is None:
        if cookies and browsing(request):  # /health in a browser: the sign-in form, then back
            raise HTTPException(303, "Sign in first.", headers={"Location": signin_url(request)})
        _deny()
    raise HTTPException(status_code=403, detail=lacks(scope))


async def require_read(request: Request) -> None:
    """FastAPI dependency of every read endpoint: the `read` scope, by token or session
    (async: a sync one ran in a worker thread)."""
    _require(request, "read", cookies=True)


def require_write(request: Request) -> None:
    """What every ingest endpoint calls first: a bearer token with the `ingest` scope."""
    _require(request, "ingest", cookies=False)


def require_admin(request: Request) -> None:
    """What the API's incident actions call first: a bearer token with the `admin` scope
    (the dashboard's forms use the session and a form token instead)."""
    _require(request, "admin", cookies=False)


async def read_body(
    request: Request, *, limit: int = MAX_BODY_BYTES, timeout: float = BODY_TIMEOUT
) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` (before it is all read).

    gzip and deflate bodies are inflated under the same limit; a client that takes longer
    than `timeout` seconds to send the body gets 408.
    """
    import anyio
    from fastapi import HTTPException

    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise HTTPException(400, "Invalid Content-Length header.") from None
        if size > limit:
            raise HTTPException(413, _too_large(limit))
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "x-gzip", "deflate"):
        raise HTTPException(
            415, f"Unsupported Content-Encoding {clean(encoding, 40)!r}: send gzip or none."
        )
    chunks: list[bytes] = []
    received = 0
    try:
        with anyio.fail_after(timeout):
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise HTTPException(413, _too_large(limit))
                chunks.append(chunk)
    except TimeoutError:
        raise HTTPException(
            408, f"The request body took longer than {timeout:g}s to arrive."
        ) from None
    body = b"".join(chunks)
    if encoding in ("gzip", "x-gzip", "deflate"):
        body = _inflate(body, encoding, limit)
    return body


_GZIP_MAGIC = b"\x1f\x8b"


def _too_large(limit: int) -> str:
    return f"The request body is larger than {limit // (1024 * 1024)} MiB; send smaller batches."


def _inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """The inflated body; every member of a multi-member gzip body, under one `limit`.

    Anything after the end of the compressed data that is not another gzip member is a 400
    naming it, never dropped in silence.
    """
    from fastapi import HTTPException

    gzip = encoding != "deflate"
    wbits = 16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS
    parts: list[bytes] = []
    size = 0
    rest = body
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            data = inflater.decompress(rest, limit + 1 - size)
        except zlib.error as exc:
            raise HTTPException(
                400, f"The {encoding} body cannot be decompressed: {exc}."
            ) from None
        size += len(data)
        parts.append(data)
        if size > limit or inflater.unconsumed_tail:
            raise HTTPException(413, _too_large(limit) + " (after decompression)")
        if not inflater.eof:
            raise HTTPException(400, f"The {encoding} body is truncated.")
        rest = inflater.unused_data
        if not rest:
            return b"".join(parts)
        if not (gzip and rest.startswith(_GZIP_MAGIC)):
            raise HTTPException(
                400,
                f"The {encoding} body has {len(rest):,} bytes after the end of its compressed "
                "data; send one compressed stream (or whole gzip members) and nothing after it.",
            )
