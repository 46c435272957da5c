"""Who may call what, how much they may send, and log lines that user input cannot forge."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
import zlib
from urllib.parse import urlsplit

# FastAPI reads the annotations of the dependencies below at run time.
from starlette.requests import Request

__all__ = [
    "MAX_BODY_BYTES",
    "Access",
    "FormTokens",
    "clean",
    "cross_site",
    "is_loopback",
    "masked",
    "read_body",
    "require_read",
    "require_write",
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
    """Bearer-token rules: writes need the token when one is set; reads too unless public."""

    def __init__(self, token: str | None, *, public_read: bool = False) -> None:
        # Only a digest is kept: compared in constant time, and never printable by accident.
        self._digest = hashlib.sha256(token.encode()).digest() if token else None
        self.public_read = public_read
        # Derived from the token (replicas behind one address agree), else new at each start.
        key = (
            hmac.new(self._digest, b"lakelens form tokens", "sha256").digest()
            if self._digest is not None
            else secrets.token_bytes(32)
        )
        self.forms = FormTokens(key)

    @property
    def enabled(self) -> bool:
        return self._digest is not None

    def __repr__(self) -> str:
        return f"Access(token={'set' if self.enabled else 'unset'}, public_read={self.public_read})"

    def allows(self, authorization: str | None, *, write: bool) -> bool:
        if self._digest is None or (not write and self.public_read):
            return True
        if not authorization:
            return False
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return False
        given = hashlib.sha256(credentials.strip().encode("utf-8", "replace")).digest()
        return hmac.compare_digest(given, self._digest)


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
        detail="Missing or wrong bearer token: send 'Authorization: Bearer <LAKELENS_API_TOKEN>'.",
        headers={"WWW-Authenticate": 'Bearer realm="lakelens"'},
    )


async def require_read(request: Request) -> None:
    """FastAPI dependency of every read endpoint (async: a sync one ran in a worker thread)."""
    if not request.app.state.ctx.access.allows(request.headers.get("authorization"), write=False):
        _deny()


def require_write(request: Request) -> None:
    """FastAPI dependency of every ingest endpoint."""
    if not request.app.state.ctx.access.allows(request.headers.get("authorization"), write=True):
        _deny()


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
