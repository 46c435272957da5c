"""Who may call what, how much they may send, and log lines that user input cannot forge."""

from __future__ import annotations

import hashlib
import hmac
import re
import zlib

# FastAPI reads the annotations of the dependencies below at run time.
from starlette.requests import Request

__all__ = [
    "MAX_BODY_BYTES",
    "Access",
    "clean",
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
