"""The SDK's remote sink: with LAKELENS_URL set, batches go to a lakelens server.

Every batch is first appended to a spool file under LAKELENS_HOME/spool (fsync'd), then
POSTed to `/api/v1/events` with an `Idempotency-Key`; the server stores a key at most once,
so a batch whose acknowledgement was lost is sent again without being stored twice. While
the server is unreachable batches wait in the spool and a background thread retries with
backoff; spool files left by a process that ended are picked up by the next one.

A spool file is append-only: `B <id> <json>` lines for batches and `A <id>` lines for
acknowledged ones. Each process writes its own file and holds an exclusive lock on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakelens.errors import ConfigError

if TYPE_CHECKING:
    from lakelens.config import Settings
    from lakelens.events import Batch

__all__ = ["RemoteSink", "SpoolFile", "remote_sink_factory"]

EVENTS_PATH = "/api/v1/events"
# Requests stay well under the server's 20 MiB limit.
MAX_REQUEST_BYTES = 8 * 1024 * 1024
REQUEST_TIMEOUT = 10.0
MIN_BACKOFF = 0.5
MAX_BACKOFF = 30.0
SPOOL_LIMIT_BYTES = 1024 * 1024 * 1024
# A spool file whose batches are all acknowledged is replaced once it grows past this.
ROTATE_BYTES = 16 * 1024 * 1024
ORPHAN_SCAN_SECONDS = 15.0
_RETRYABLE = {401, 403, 404, 408, 425, 429}


def remote_sink_factory(settings: Settings) -> Callable[[], Callable[[Batch], object]]:
    """The Writer's sink factory for `settings.url` (the hook in sdk/_runtime.py)."""
    return lambda: RemoteSink(settings.url or "", token=settings.api_token, home=settings.home)


class SpoolFile:
    """One process's append-only file of batches and acknowledgements, locked while open."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.size = os.fstat(fd).st_size
        # id → (offset of the JSON body, its length), oldest first.
        self.pending: dict[str, tuple[int, int]] = {}
        self.pending_bytes = 0
        self._lock = threading.Lock()

    @classmethod
    def create(cls, directory: Path) -> SpoolFile:
        path = directory / f"spool-{os.getpid()}-{uuid.uuid4().hex[:8]}.log"
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return cls(path, fd)

    @classmethod
    def adopt(cls, path: Path) -> SpoolFile | None:
        """Open another process's spool file if that process is gone (its lock is free)."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        spool = cls(path, fd)
        spool._load()
        return spool

    def _load(self) -> None:
        with open(self.fd, "rb", closefd=False) as handle:
            handle.seek(0)
            offset = 0
            for line in handle:
                if not line.endswith(b"\n"):  # a write cut short by a crash: never acknowledged
                    break
                kind, _, rest = line.partition(b" ")
                if kind == b"B":
                    batch_id, _, body = rest.partition(b" ")
                    start = offset + 2 + len(batch_id) + 1
                    self.pending[batch_id.decode()] = (start, len(body) - 1)
                    self.pending_bytes += len(body)
                elif kind == b"A":
                    found = self.pending.pop(rest.strip().decode(), None)
                    if found is not None:
                        self.pending_bytes -= found[1] + 1
                offset += len(line)
        if self.size and offset != self.size:
            os.write(self.fd, b"\n")  # end the torn line so later acknowledgements parse
            self.size += 1

    def append(self, batch_id: str, body: bytes) -> None:
        line = b"B " + batch_id.encode() + b" " + body + b"\n"
        with self._lock:
            written = 0
            while written < len(line):
                written += os.write(self.fd, line[written:])
            os.fsync(self.fd)
            self.pending[batch_id] = (self.size + 3 + len(batch_id), len(body))
            self.pending_bytes += len(body) + 1
            self.size += len(line)

    def acknowledge(self, batch_id: str) -> None:
        # No fsync: a lost acknowledgement only means the server sees the batch id again.
        with self._lock:
            found = self.pending.pop(batch_id, None)
            if found is not None:
                self.pending_bytes -= found[1] + 1
            line = b"A " + batch_id.encode() + b"\n"
            os.write(self.fd, line)
            self.size += len(line)

    def read(self, batch_id: str) -> bytes | None:
        with self._lock:
            found = self.pending.get(batch_id)
        if found is None:
            return None
        return os.pread(self.fd, found[1], found[0])

    def oldest(self) -> list[str]:
        with self._lock:
            return list(self.pending)

    def remove(self) -> None:
        """Delete the file (all acknowledged) and release it."""
        with contextlib.suppress(OSError):
            self.path.unlink()
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


class _Transport:
    """POSTs to the server over one kept-alive connection (re-opened when it breaks)."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"Invalid LAKELENS_URL={url!r}: use http://host:port or https://host of a "
                "`lakelens serve`."
            )
        self.url = url
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port
        self.path = parts.path.rstrip("/") + EVENTS_PATH
        self.token = token
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        if self._conn is not None:
            return self._conn, True
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        self._conn = cls(self.host, self.port, timeout=self.timeout)
        return self._conn, False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def post(self, body: bytes, batch_id: str) -> tuple[int, bytes, str | None]:
        from lakelens._version import __version__

        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": batch_id,
            "User-Agent": f"lakelens/{__version__}",
        }
        if len(body) > 4096:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        while True:
            conn, reused = self._connection()
            try:
                conn.request("POST", self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if reused:  # the server closed an idle kept-alive connection: once more
                    continue
                raise
            except BaseException:
                self.close()
                raise
            if (response.getheader("Connection") or "").lower() == "close":
                self.close()
            return response.status, data, response.getheader("Retry-After")


_SINKS: weakref.WeakSet[RemoteSink] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The parent keeps its spool files and locks; the child gets a new sink of its own.
    for sink in list(_SINKS):
        sink._abandon()


os.register_at_fork(after_in_child=_after_fork_in_child)


class RemoteSink:
    """Callable sink for the SDK's Writer: spool, then deliver (now, or later in the background)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        home: str | Path,
        timeout: float = REQUEST_TIMEOUT,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        spool_limit_bytes: int = SPOOL_LIMIT_BYTES,
        deliver_inline: bool = True,
    ) -> None:
        self.transport = _Transport(url, token, timeout)
        self.directory = Path(home) / "spool"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.own = SpoolFile.create(self.directory)
        self.adopted: list[SpoolFile] = []
        self.max_request_bytes = max_request_bytes
        self.spool_limit_bytes = spool_limit_bytes
        self.deliver_inline = deliver_inline
        self.delivered_batches = 0
        self.delivered_events = 0
        self.rejected_events = 0
        self.dropped_batches = 0
        self.rejected_batches = 0
        self.last_error: str | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._last_scan = float("-inf")
        self._delivery = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._reported: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name="lakelens-remote", daemon=True)
        self._thread.start()
        self._wake.set()  # look for spool files left by earlier processes right away
        _SINKS.add(self)

    # -- the Writer's side -----------------------------------------------------------------
    def __call__(self, batch: Batch) -> None:
        """Spool `batch` durably, then try to deliver what is waiting (never raises on a
        server that is down: the spool has the batch)."""
        from lakelens.ingest.native_write import batch_to_events

        for body in _bodies(batch_to_events(batch), self.max_request_bytes):
            if self.own.pending_bytes + len(body) > self.spool_limit_bytes:
                self.dropped_batches += 1
                self._say(
                    "spool-full",
                    f"lakelens: the spool at {self.directory} is full "
                    f"({self.spool_limit_bytes // (1024 * 1024)} MiB waiting for {self.transport.url}); "
                    "dropping new events until the server is reachable.",
                )
                continue
            self.own.append(uuid.uuid4().hex, body)
        if (
            self.deliver_inline
            and time.monotonic() >= self._retry_at
            and self._delivery.acquire(timeout=self.transport.timeout)
        ):
            try:
                self._deliver(deadline=time.monotonic() + 2 * self.transport.timeout)
            finally:
                self._delivery.release()
        if self.pending():
            self._wake.set()

    # -- delivery -------------------------------------------------------------------------
    def pending(self) -> int:
        """Batches waiting in the spool (this process's and adopted ones)."""
        return len(self.own.pending) + sum(len(s.pending) for s in self.adopted)

    def _loop(self) -> None:
        while not self._closed:
            delay = max(0.05, min(ORPHAN_SCAN_SECONDS, self._retry_at - time.monotonic()))
            self._wake.wait(delay if self.pending() or self._retry_at else ORPHAN_SCAN_SECONDS)
            self._wake.clear()
            if self._closed:
                return
            if time.monotonic() < self._retry_at:
                continue
            try:
                with self._delivery:
                    if time.monotonic() - self._last_scan >= ORPHAN_SCAN_SECONDS:
                        self._adopt_orphans()
                    self._deliver(deadline=None)
            except Exception as exc:  # never let the thread die
                self._failed(f"{type(exc).__name__}: {exc}", None)

    def _adopt_orphans(self) -> None:
        self._last_scan = time.monotonic()
        known = {self.own.path} | {s.path for s in self.adopted}
        for path in sorted(self.directory.glob("spool-*.log")):
            if path in known:
                continue
            spool = SpoolFile.adopt(path)
            if spool is None:
                continue
            if spool.pending:
                self.adopted.append(spool)
            else:
                spool.remove()

    def _deliver(self, deadline: float | None) -> bool:
        """Send waiting batches oldest first; False when the server is unreachable (backoff)."""
        for spool in [*self.adopted, self.own]:
            for batch_id in spool.oldest():
                if deadline is not None and time.monotonic() > deadline:
                    return True
                body = spool.read(batch_id)
                if body is None:
                    continue
                if not self._send(batch_id, body):
                    return False
                spool.acknowledge(batch_id)
            if spool is not self.own and not spool.pending:
                spool.remove()
                self.adopted.remove(spool)
        if not self.own.pending and self.own.size > ROTATE_BYTES:
            old, self.own = self.own, SpoolFile.create(self.directory)
            old.remove()
        return True

    def _send(self, batch_id: str, body: bytes) -> bool:
        """True when the batch is done with (stored, or refused for good and reported)."""
        try:
            status, data, retry_after = self.transport.post(body, batch_id)
        except (OSError, http.client.HTTPException) as exc:
            self._failed(f"cannot reach {self.transport.url} ({type(exc).__name__}: {exc})", None)
            return False
        if 200 <= status < 300 or status == 422:
            self._succeeded()
            self._count(data)
            return True
        if status >= 500 or status in _RETRYABLE:
            hint = {
                401: "; check LAKELENS_API_TOKEN",
                403: "; check LAKELENS_API_TOKEN",
                404: "; check LAKELENS_URL",
            }.get(status, "")
            self._failed(f"{self.transport.url} answered {status}{hint}", retry_after)
            return False
        # 400, 413, 415: sending it again cannot help, and it must not block the batches
        # behind it. It is kept for a person to look at.
        self.rejected_batches += 1
        where = self._set_aside(batch_id, body, f"{status}: {_detail(data)}")
        self._say(
            f"refused-{status}",
            f"lakelens: {self.transport.url} refused a batch ({status}: {_detail(data)}); "
            f"{where}, and the next batches are sent.",
        )
        return True

    def _set_aside(self, batch_id: str, body: bytes, reason: str) -> str:
        """Keep a refused batch in spool/rejected/ (with the server's answer); where it went."""
        directory = self.directory / "rejected"
        try:
            directory.mkdir(exist_ok=True)
            (directory / f"{batch_id}.json").write_bytes(body)
            (directory / f"{batch_id}.reason.txt").write_text(reason + "\n", encoding="utf-8")
        except OSError as exc:
            return f"could not keep it in {directory} ({exc.strerror or exc}); dropped it"
        return f"kept it in {directory}"

    def _count(self, data: bytes) -> None:
        try:
            result = json.loads(data)
        except ValueError:
            return
        if not isinstance(result, dict):
            return
        self.delivered_batches += 1
        self.delivered_events += int(result.get("accepted") or 0)
        rejected = result.get("rejected") or []
        if rejected:
            self.rejected_events += len(rejected)
            first = rejected[0] if isinstance(rejected[0], dict) else {}
            self._say(
                f"rejected-{first.get('reason')}",
                f"lakelens: the server rejected {len(rejected)} events "
                f"(first: {first.get('reason')}).",
            )

    def _succeeded(self) -> None:
        if self.last_error is not None:
            print(
                f"lakelens: {self.transport.url} is reachable again; sending spooled events.",
                file=sys.stderr,
            )
            self.last_error = None
        self._failures = 0
        self._retry_at = 0.0

    def _failed(self, message: str, retry_after: str | None) -> None:
        self._failures += 1
        delay = min(MAX_BACKOFF, MIN_BACKOFF * 2 ** min(self._failures - 1, 10))
        delay *= random.uniform(0.8, 1.2)
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, min(MAX_BACKOFF, float(retry_after)))
        self._retry_at = time.monotonic() + delay
        if message != self.last_error:
            self.last_error = message
            print(
                f"lakelens: {message}; {_batches(self.pending())} kept in {self.directory}, retrying.",
                file=sys.stderr,
            )

    def _say(self, key: str, message: str) -> None:
        if key not in self._reported:
            self._reported.add(key)
            print(message, file=sys.stderr)

    # -- tests and shutdown --------------------------------------------------------------
    def drain(self, timeout: float = 30.0) -> bool:
        """Block until every spooled batch, this process's and any left by ended processes,
        is delivered (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        with self._delivery:
            self._adopt_orphans()
        while True:
            if not self.pending():
                with self._delivery:  # let a delivery in progress finish its bookkeeping
                    if not self.pending():
                        return True
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.05)

    def stats(self) -> dict[str, Any]:
        return {
            "pending_batches": self.pending(),
            "delivered_batches": self.delivered_batches,
            "delivered_events": self.delivered_events,
            "rejected_events": self.rejected_events,
            "dropped_batches": self.dropped_batches,
            "rejected_batches": self.rejected_batches,
            "last_error": self.last_error,
        }

    def close(self) -> None:
        """Stop retrying and release the spool files (what is pending stays for next time)."""
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=self.transport.timeout + 1)
        with self._delivery:
            self.transport.close()
            for spool in [*self.adopted, self.own]:
                if spool.pending:
                    spool.close()
                else:
                    spool.remove()

    def _abandon(self) -> None:
        self._closed = True
        for spool in [*self.adopted, self.own]:
            spool.close()


def _detail(data: bytes) -> str:
    try:
        return str(json.loads(data).get("detail", ""))[:200]
    except (ValueError, AttributeError):
        return data[:200].decode("utf-8", "replace")


def _bodies(events: list[dict[str, Any]], limit: int) -> list[bytes]:
    """JSON arrays of the events, each at most `limit` bytes (one event over it goes alone)."""
    chunks: list[bytes] = []
    current: list[bytes] = []
    size = 2
    for event in events:
        text = json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str)
        try:
            encoded = text.encode("utf-8")
        except UnicodeEncodeError:
            encoded = json.dumps(event, separators=(",", ":"), default=str).encode("ascii")
        if current and size + len(encoded) + 1 > limit:
            chunks.append(b"[" + b",".join(current) + b"]")
            current, size = [], 2
        current.append(encoded)
        size += len(encoded) + 1
    if current:
        chunks.append(b"[" + b",".join(current) + b"]")
    return chunks


def _batches(count: int) -> str:
    return f"{count} batch" if count == 1 else f"{count} batches"
