"""Email over SMTP: a text and an HTML part (every value escaped), to several recipients.

Transport security (`security`): `starttls` (the default, port 587) upgrades the connection
and fails closed when the server does not offer STARTTLS; `tls` (the default on port 465)
speaks TLS from the first byte; `none` sends in plain text and must be chosen explicitly.
Certificates are always verified against the system's CAs, or the PEM bundle in `ca_file`.

Outcomes: SMTP 4xx replies, timeouts and connection failures are retried; 5xx replies, TLS
failures and a missing STARTTLS are permanent. The Message-ID derives from the
notification id, so a retried notification can be recognised as a duplicate.
"""

from __future__ import annotations

import base64
import html
import re
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any, ClassVar

from lakelens.alerts.destinations._format import (
    clip,
    fit_body,
    occurrences,
    one_line,
    plain_text,
    utc,
)
from lakelens.alerts.destinations._http import Scrubber
from lakelens.alerts.destinations._settings import Settings
from lakelens.alerts.destinations.base import (
    AlertMessage,
    DeliveryResult,
    DestinationConfigError,
)

__all__ = ["EmailConfig", "EmailDestination", "build_email"]

SECURITY_MODES = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
DEFAULT_TIMEOUT = 10.0
ERROR_LIMIT = 20_000
# Bytes of one email (text and HTML parts) at most: longer fields are cut, marked.
BODY_LIMIT = 1024 * 1024
_COLOURS = {"info": "#1d6fb8", "warning": "#b8860b", "error": "#c0392b", "critical": "#8e0000"}


class _NoStartTLSError(Exception):
    """The server did not offer STARTTLS and plain text was not allowed."""


def _address(value: str) -> str:
    """The bare address of 'Name <user@host>' (for the SMTP envelope)."""
    return parseaddr(value)[1]


def message_id(notification_id: str, sender: str) -> str:
    """'<lakelens.{notification_id}@{sender's domain}>', made safe for the header."""
    local = re.sub(r"[^A-Za-z0-9_-]", "-", notification_id)[:200] or "alert"
    domain = _address(sender).rpartition("@")[2]
    if not re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*", domain):
        domain = "lakelens.invalid"
    return f"<lakelens.{local}@{domain}>"


def html_body(message: AlertMessage) -> str:
    """The HTML part. Every value from the alert goes through html.escape."""

    def e(value: object) -> str:
        return html.escape(str(value), quote=True)

    colour = _COLOURS.get(message.severity, "#333333")
    rows = [
        ("Asset", message.asset),
        ("Partition", message.partition),
        ("Run ID", message.run_id),
        ("Severity", message.severity.upper()),
        ("Timestamp", utc(message.time)),
        ("Occurrences", occurrences(message)),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html><body style="font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif">',
        f'<h2 style="color: {colour}">{e(message.headline)}</h2>',
    ]
    if message.summary:
        parts.append(f"<p>{e(message.summary)}</p>")
    parts.append('<table cellpadding="4" style="border-collapse: collapse">')
    for label, value in rows:
        if value:
            parts.append(f'<tr><th align="left">{e(label)}</th><td>{e(value)}</td></tr>')
    if message.error:
        error = e(clip(message.error, ERROR_LIMIT))
        parts.append(
            '<tr><th align="left" valign="top">Error</th>'
            f'<td><pre style="white-space: pre-wrap; margin: 0">{error}</pre></td></tr>'
        )
    if message.impact:
        items = "".join(f"<li>{e(item)}</li>" for item in message.impact)
        parts.append(f'<tr><th align="left" valign="top">Impact</th><td><ul>{items}</ul></td></tr>')
    parts.append("</table>")
    if message.link and message.link.startswith(("https://", "http://")):
        parts.append(f'<p><a href="{e(message.link)}">Open in lakelens</a></p>')
    parts.append(
        f'<p style="color: #888888; font-size: 12px">lakelens · rule {e(message.rule)}'
        f" · fingerprint {e(message.fingerprint)}</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def build_email(message: AlertMessage, *, sender: str, recipients: tuple[str, ...]) -> EmailMessage:
    """The multipart/alternative email for `message`: subject = headline, text + HTML."""
    mail = EmailMessage()
    mail["Subject"] = clip(one_line(message.headline), 250)
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = message_id(message.notification_id, sender)
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    mail["X-Lakelens-Severity"] = one_line(message.severity)
    mail["X-Lakelens-Fingerprint"] = clip(one_line(message.fingerprint), 200)
    mail.set_content(plain_text(message, error_limit=ERROR_LIMIT))
    mail.add_alternative(html_body(message), subtype="html")
    return mail


@dataclass(frozen=True)
class EmailConfig:
    host: str
    sender: str
    recipients: tuple[str, ...]
    port: int = 587
    security: str = "starttls"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    timeout: float = DEFAULT_TIMEOUT


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying client context (system CAs, or `ca_file`): never an unverified one."""
    return ssl.create_default_context(cafile=ca_file)


def _config(name: str, mapping: Mapping[str, Any]) -> EmailConfig:
    settings = Settings("email", name, mapping)
    host = settings.require("host", "the SMTP server's host name")
    security = settings.choice("security", SECURITY_MODES, default=None)
    port = settings.number("port", default=DEFAULT_PORTS[security or "starttls"])
    if security is None:
        security = "tls" if port == 465 else "starttls"
    user = settings.text("user")
    password = settings.text("password")
    if bool(user) != bool(password):
        missing = "password" if user else "user"
        raise settings.error(missing, "is required when the other of user/password is set")
    if "sender" in mapping or "from" not in mapping:
        sender = settings.require("sender", "the From address, e.g. lakelens@example.com")
    else:
        sender = settings.require("from", "the From address, e.g. lakelens@example.com")
    recipients = settings.names("recipients", required="a list of addresses to send to")
    for address in (sender, *recipients):
        if "@" not in _address(address):
            key = "sender" if address == sender else "recipients"
            raise settings.error(key, f"has {address!r}, which is not an email address")
    ca_file = settings.text("ca_file")
    if ca_file is not None:
        try:
            _tls_context(ca_file)
        except (OSError, ssl.SSLError):
            raise settings.error("ca_file", "is not a readable PEM certificate file") from None
    return EmailConfig(
        host=host,
        sender=sender,
        recipients=recipients,
        port=port,
        security=security,
        user=user,
        password=password,
        ca_file=ca_file,
        timeout=settings.seconds("timeout", default=DEFAULT_TIMEOUT),
    )


def _smtp_outcome(code: int, text: str) -> DeliveryResult:
    """An SMTP error reply: 4xx is transient (retry), anything else permanent."""
    return DeliveryResult(ok=False, status_code=code, retry=400 <= code < 500, error=text)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    raw = exc.smtp_error
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return f"{exc.smtp_code} {one_line(text)}"


def _password_forms(user: str | None, password: str | None) -> list[str]:
    """The password as typed and as AUTH PLAIN / LOGIN put it on the wire (base64)."""
    if not password:
        return []
    plain = f"\0{user or ''}\0{password}".encode()
    return [password, *(base64.b64encode(v).decode() for v in (password.encode(), plain))]


class EmailDestination:
    """Sends alerts by email through an SMTP server."""

    kind: ClassVar[str] = "email"
    min_interval: float = 0.0

    def __init__(self, name: str, config: EmailConfig) -> None:
        self.name = name
        self.config = config
        self._scrub = Scrubber(_password_forms(config.user, config.password))
        self._context: ssl.SSLContext | None = None
        if config.security != "none":
            try:
                self._context = _tls_context(config.ca_file)
            except (OSError, ssl.SSLError):
                raise DestinationConfigError(
                    f"Alert destination {name!r} (email): `ca_file` is not a readable PEM "
                    "certificate file."
                ) from None

    @classmethod
    def from_config(cls, name: str, mapping: Mapping[str, Any]) -> EmailDestination:
        return cls(name, _config(name, mapping))

    def send(self, message: AlertMessage) -> DeliveryResult:
        config = self.config
        try:
            mail = fit_body(
                message,
                BODY_LIMIT,
                lambda m: build_email(m, sender=config.sender, recipients=config.recipients),
                lambda built: len(built.as_bytes()),
            )
        except Exception as exc:  # send() never raises
            return DeliveryResult(ok=False, error=f"Could not build the email: {exc}")
        try:
            result = self._deliver(mail)
        except Exception as exc:
            result = self._classify(exc)
        if result.error:
            result = DeliveryResult(
                ok=result.ok,
                status_code=result.status_code,
                retry=result.retry,
                error=self._scrub(result.error),
                response=result.response,
            )
        return result

    def _deliver(self, mail: EmailMessage) -> DeliveryResult:
        config = self.config
        smtp: smtplib.SMTP
        if config.security == "tls":
            smtp = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout, context=self._context
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        try:
            smtp.ehlo_or_helo_if_needed()
            if config.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise _NoStartTLSError
                smtp.starttls(context=self._context)
                smtp.ehlo()
            if config.user and config.password:
                smtp.login(config.user, config.password)
            envelope_to = [_address(r) for r in config.recipients]
            refused = smtp.send_message(
                mail, from_addr=_address(config.sender), to_addrs=envelope_to
            )
        finally:
            # The mail is handed over once DATA is accepted: a failing QUIT must not undo that.
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
        accepted = [r for r in envelope_to if r not in refused]
        response = "Accepted for " + ", ".join(accepted)
        if refused:
            response += "; refused for " + ", ".join(
                f"{r} ({_reply(smtplib.SMTPResponseException(*reply))})"
                for r, reply in refused.items()
            )
        return DeliveryResult(ok=True, status_code=250, response=response)

    def _classify(self, exc: Exception) -> DeliveryResult:
        where = f"{self.config.host}:{self.config.port}"
        if isinstance(exc, _NoStartTLSError):
            return DeliveryResult(
                ok=False,
                error=(
                    f"The SMTP server {where} does not offer STARTTLS, so the email was not "
                    "sent in plain text; use security: tls for implicit TLS (port 465), or "
                    "security: none to allow plain text."
                ),
            )
        if isinstance(exc, ssl.SSLCertVerificationError):
            return DeliveryResult(
                ok=False,
                error=(
                    f"The TLS certificate of {where} could not be verified "
                    f"({exc.verify_message}); set ca_file to trust a private CA."
                ),
            )
        if isinstance(exc, ssl.SSLError):
            return DeliveryResult(
                ok=False,
                error=(
                    f"TLS with {where} failed ({exc.reason or exc}); check `security` "
                    "(tls for port 465, starttls for 587)."
                ),
            )
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            replies = {
                r: smtplib.SMTPResponseException(*reply) for r, reply in exc.recipients.items()
            }
            transient = all(400 <= reply.smtp_code < 500 for reply in replies.values())
            listed = ", ".join(f"{r} ({_reply(reply)})" for r, reply in replies.items())
            code = next(iter(replies.values())).smtp_code if replies else None
            return DeliveryResult(
                ok=False,
                status_code=code,
                retry=transient,
                error=f"{where} refused every recipient: {listed}",
            )
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return _smtp_outcome(
                exc.smtp_code,
                f"SMTP authentication as {self.config.user!r} at {where} failed: {_reply(exc)}",
            )
        if isinstance(exc, smtplib.SMTPResponseException):
            return _smtp_outcome(exc.smtp_code, f"{where} answered {_reply(exc)}")
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return DeliveryResult(ok=False, retry=True, error=f"{where} closed the connection")
        if isinstance(exc, smtplib.SMTPException):  # e.g. AUTH not offered: configuration
            return DeliveryResult(ok=False, error=f"SMTP with {where} failed: {exc}")
        if isinstance(exc, TimeoutError):
            return DeliveryResult(ok=False, retry=True, error=f"Timed out talking to {where}")
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc) or type(exc).__name__
            return DeliveryResult(
                ok=False, retry=True, error=f"Could not connect to {where}: {reason}"
            )
        return DeliveryResult(
            ok=False, retry=True, error=f"Unexpected {type(exc).__name__} with {where}: {exc}"
        )

    def describe(self) -> dict[str, Any]:
        config = self.config
        return {
            "name": self.name,
            "type": self.kind,
            "host": config.host,
            "port": config.port,
            "security": config.security,
            "sender": config.sender,
            "recipients": list(config.recipients),
            "user": config.user,
            "password": "****" if config.password else None,
            "ca_file": config.ca_file,
            "timeout": config.timeout,
        }

    def close(self) -> None:
        """Nothing to release: each send uses its own SMTP connection."""

    def __repr__(self) -> str:
        return f"EmailDestination(name={self.name!r}, host={self.config.host!r})"
