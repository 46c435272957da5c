"""POSTing to an HTTP endpoint and turning whatever happens into a DeliveryResult.

Shared by the HTTP destinations: one httpx.Client each, explicit timeouts, redirects never
followed, and no configured URL or secret ever copied into an error or a recorded response.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urlsplit

import httpx

from lakelens._version import __version__
from lakelens.alerts.destinations.base import PUBLIC_PATH_SEGMENTS, DeliveryResult, mask_url

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
USER_AGENT = f"lakelens/{__version__}"


def url_secrets(url: str) -> list[str]:
    """The parts of a URL that may be secret: the URL itself, its credentials, path and query."""
    parts = urlsplit(url)
    found = [url, parts.path, parts.query, parts.password or "", parts.username or ""]
    # Every segment mask_url hides, raw and decoded: a server may echo either form.
    segments = [s for s in parts.path.split("/") if s and s.lower() not in PUBLIC_PATH_SEGMENTS]
    found += segments + [unquote(s) for s in segments]
    return found


class Scrubber:
    """Replaces known secrets in text with ****, longest first."""

    def __init__(self, secrets: Iterable[str]) -> None:
        unique = {s for s in secrets if s and len(s) >= 4}
        self._secrets = sorted(unique, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "****")
        return text


def _retry_after_seconds(value: str | None) -> str | None:
    """Retry-After as seconds: a number is kept; an HTTP date becomes the seconds until it."""
    if not value:
        return None
    try:
        float(value)
        return value
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return str(max(0.0, round(moment - time.time(), 3)))


class HttpPoster:
    """POSTs bodies to one URL; `post()` never raises."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = READ_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        self.url = url
        self._timeout = httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout))
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self.scrub = Scrubber([*url_secrets(url), *(headers or {}).values(), *secrets])
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def _get_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=self._timeout,
                    follow_redirects=False,
                    headers=self._headers,
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def post(self, body: bytes, headers: Mapping[str, str] | None = None) -> DeliveryResult:
        """POST `body`; classify the answer (see DeliveryResult.from_http) or the failure."""
        where = mask_url(self.url)
        try:
            response = self._get_client().post(self.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            phase = {
                httpx.ConnectTimeout: "connecting to",
                httpx.WriteTimeout: "sending to",
                httpx.PoolTimeout: "waiting for a connection to",
            }.get(type(exc), "waiting for the response from")
            return self._failed(f"Timed out {phase} {where}", retry=True)
        except httpx.ConnectError as exc:
            return self._failed(f"Could not connect to {where}: {exc}", retry=True)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            return self._failed(f"Cannot POST to {where}: {exc}", retry=False)
        except httpx.HTTPError as exc:  # protocol errors, a dropped connection…
            return self._failed(f"HTTP request to {where} failed: {exc}", retry=True)
        except Exception as exc:  # send() must never raise
            return self._failed(
                f"Unexpected {type(exc).__name__} posting to {where}: {exc}", retry=True
            )
        body_text = self.scrub(response.text)
        if 300 <= response.status_code < 400:
            location = response.headers.get("location")
            target = f" to {mask_url(location)}" if location else ""
            return DeliveryResult(
                ok=False,
                status_code=response.status_code,
                retry=False,
                error=(
                    f"HTTP {response.status_code}: {where} redirects{target}; redirects are "
                    "not followed, configure the final URL"
                ),
                response=body_text[:2000],
            )
        result = DeliveryResult.from_http(
            response.status_code,
            body_text,
            _retry_after_seconds(response.headers.get("retry-after")),
        )
        if not result.ok:
            result = replace(result, error=f"HTTP {response.status_code} from {where}")
        return result

    def _failed(self, error: str, *, retry: bool) -> DeliveryResult:
        return DeliveryResult(ok=False, retry=retry, error=self.scrub(error))
