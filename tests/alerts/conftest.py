"""Real receivers for alert tests: an HTTP server and SMTP servers on 127.0.0.1.

`receiver` stands in for Slack, PagerDuty, a webhook and Alertmanager:

    def test_something(receiver):
        receiver.respond(500)                     # the next request gets a 500…
        receiver.respond(429, headers={"Retry-After": "7"})
        ...                                       # …then a 429, then the default 200 "ok"
        request = receiver.wait_for(1)[0]         # wait (≤ 5 s) for requests to arrive
        request.json(), request.headers["webhook-id"], request.path

    receiver.stop() / receiver.start()            # the receiver is down / back (same port)

While down, its port refuses connections and stays held: no other test's server can take it.

`smtp_server(mode, users=...)` starts an aiosmtpd server: mode "plain" (no STARTTLS),
"starttls" or "tls" (implicit TLS). Its certificate is signed by a throwaway CA generated
for the session; point a client at `server.ca_file` to trust it.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


class HeldPort:
    """A port of `host` kept from creation to `close()`, for a server that stops and starts
    again on it: while no `listener()` is open it refuses connections, and no other test's
    server can bind it at any time. A bound, never listening socket holds it; it and the
    listeners share the port through SO_REUSEPORT, which no other server of the tests sets.
    (One socket cannot: after shutdown() a port bound as 0 is free, and listening again past
    TIME_WAIT needs SO_REUSEADDR, with which uvicorn's bind takes the port while it is down.)
    Not on `_support.bound_socket`: bench/delivery_faults.py loads this file outside pytest."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._holder = self._bound(0)
        self.port = int(self._holder.getsockname()[1])

    def _bound(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((self.host, port))
        return sock

    def listener(self) -> socket.socket:
        """A new socket bound to the port, not listening yet; close it to stop serving."""
        return self._bound(self.port)

    def close(self) -> None:
        self._holder.close()


# --- HTTP ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request the receiver got. Header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class ScriptedResponse:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Receiver:
    """A real HTTP server on 127.0.0.1 (a free port, in a thread) that records every request.

    Responses are scripted in order with `respond()`; when the script is used up every request
    gets `default` (200 "ok"). Thread-safe: the code under test may send from other threads.
    """

    def __init__(self) -> None:
        self._port = HeldPort()
        self.port = self._port.port
        self.default = ScriptedResponse()
        self._requests: list[RecordedRequest] = []
        self._script: deque[ScriptedResponse] = deque()
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, path: str = "/") -> str:
        return self.url + "/" + path.lstrip("/")

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._requests)

    def respond(
        self,
        status: int = 200,
        body: str | bytes = "",
        headers: dict[str, str] | None = None,
        *,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue the answer to the next request(s); `delay` seconds before answering."""
        data = body.encode() if isinstance(body, str) else body
        with self._changed:
            for _ in range(times):
                self._script.append(ScriptedResponse(status, data, dict(headers or {}), delay))

    def wait_for(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """The requests, once at least `count` have arrived; fails the test after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"the receiver got {len(self._requests)} of {count} requests")
                self._changed.wait(left)
            return list(self._requests)

    def clear(self) -> None:
        """Forget recorded requests and any unused scripted responses."""
        with self._changed:
            self._requests.clear()
            self._script.clear()

    def start(self) -> None:
        """Listen (again) on the same port."""
        if self._server is not None:
            return
        server = ThreadingHTTPServer(
            ("127.0.0.1", self.port), self._handler_class(), bind_and_activate=False
        )
        server.socket.close()  # on the held port's socket instead: see HeldPort
        server.socket = self._port.listener()
        server.server_activate()
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening: new connections are refused until `start()`, the port kept."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = None

    def close(self) -> None:
        """Stop, and give the port back (at the end of the test)."""
        self.stop()
        self._port.close()

    def _record(self, request: RecordedRequest) -> ScriptedResponse:
        with self._changed:
            self._requests.append(request)
            answer = self._script.popleft() if self._script else self.default
            self._changed.notify_all()
            return answer

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: one request per connection, so stop() really takes the receiver down.
            protocol_version = "HTTP/1.0"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.command == "GET" and self.path == "/livez":
                    # Another test's readiness probe: its server was to take this port, picked
                    # as free at the same moment as ours. Not a delivery, and not its server.
                    self.send_error(404)
                    return
                answer = receiver._record(
                    RecordedRequest(
                        method=self.command,
                        path=self.path,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=body,
                        received_at=time.time(),
                    )
                )
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:  # the client gave up (e.g. its read timeout)
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A started Receiver (see the module docstring); stopped after the test."""
    server = Receiver()
    server.start()
    yield server
    server.close()


# --- TLS certificates --------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca_file: str  # PEM of the throwaway CA: give it to clients as `ca_file`
    cert_file: str  # the server's certificate (for localhost and 127.0.0.1)
    key_file: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA and a server certificate it signed, valid for localhost and 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = Path(tmp_path_factory.mktemp("tls"))
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lakelens test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        ca_file=str(folder / "ca.pem"),
        cert_file=str(folder / "server.pem"),
        key_file=str(folder / "server.key"),
    )
    Path(files.ca_file).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    Path(files.cert_file).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    Path(files.key_file).write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


# --- SMTP --------------------------------------------------------------------------------------


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 that keeps what it receives.

    `messages` are parsed emails, `envelopes` the (mail_from, rcpt_tos) pairs, `logins` the
    users that authenticated. `reply_with("451 4.3.0 Try again later")` makes the next DATA
    fail with that reply.
    """

    host = "127.0.0.1"

    def __init__(self, mode: str, tls: TlsFiles, users: dict[str, str] | None = None) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if mode not in ("plain", "starttls", "tls"):
            raise ValueError(f"unknown SMTP server mode {mode!r}")
        self.mode = mode
        self._port = HeldPort(self.host)
        self.port = self._port.port
        self.ca_file = tls.ca_file
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []
        self._replies: deque[str] = deque()
        server = self

        class Handler:
            async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
                if server._replies:
                    return server._replies.popleft()
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                server.messages.append(message)  # type: ignore[arg-type]
                server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                return "250 Message accepted for delivery"

        def authenticate(
            smtp: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            if isinstance(data, LoginPassword):
                login, password = data.login.decode(), data.password.decode()
                if users and users.get(login) == password:
                    server.logins.append(login)
                    return AuthResult(success=True)
            return AuthResult(success=False, handled=False)

        options: dict[str, Any] = {}
        if users is not None:
            # aiosmtpd only offers AUTH over STARTTLS by default; implicit TLS and plain
            # servers have to allow it explicitly (implicit TLS is not seen as TLS).
            options.update(authenticator=authenticate, auth_require_tls=mode == "starttls")
        if mode == "starttls":
            options.update(tls_context=tls.server_context(), require_starttls=False)
        listener = self._port.listener()

        class HeldController(Controller):
            def _create_server(self) -> Any:  # on the held port's socket: see HeldPort
                return self.loop.create_server(
                    self._factory_invoker, sock=listener, ssl=self.ssl_context
                )

        self._controller = HeldController(
            Handler(),
            hostname=self.host,
            port=self.port,
            ssl_context=tls.server_context() if mode == "tls" else None,
            server_hostname="localhost",
            **options,
        )
        self._controller.start()
        self._running = True

    def reply_with(self, reply: str) -> None:
        self._replies.append(reply)

    def stop(self) -> None:
        """Stop listening (connections are refused afterwards, the port kept); safe to call
        twice."""
        if self._running:
            self._running = False
            self._controller.stop()

    def close(self) -> None:
        """Stop, and give the port back (at the end of the test)."""
        self.stop()
        self._port.close()


@pytest.fixture
def smtp_server(tls_files: TlsFiles) -> Iterator[Callable[..., SmtpServer]]:
    """`smtp_server("starttls", users={"alice": "pw"})` starts a server; all stop after the test."""
    started: list[SmtpServer] = []

    def start(mode: str = "plain", *, users: dict[str, str] | None = None) -> SmtpServer:
        server = SmtpServer(mode, tls_files, users)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


# The start of the alert tests' fake clock (a test may `clock.set()` another start first).
T0 = 1_800_000_000.0


@pytest.fixture
def recorder(store_url: str, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """(store, clock): the SDK records into a fresh store (SQLite, then PostgreSQL) with a
    fake clock starting at T0; the SDK's configuration is put back afterwards."""
    import lakelens
    from lakelens.config import load_settings
    from lakelens.store import Store
    from lakelens.testing import FakeClock

    settings = load_settings(home=str(tmp_path / "home"), database_url=store_url, log_format="none")
    store = Store(settings=settings)
    clock = FakeClock(T0)
    lakelens.configure(settings=settings, store=store, clock=clock)
    yield store, clock
    lakelens.flush()
    lakelens.configure(settings=load_settings(home=str(tmp_path / "after"), log_format="none"))
    store.close()
