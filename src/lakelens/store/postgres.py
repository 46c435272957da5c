"""PostgreSQL connections whose every wait is bounded, shared by the engine and the CLI reader.

No SQLAlchemy here: `lakelens runs` on PostgreSQL reads through psycopg alone (store/sql.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

if TYPE_CHECKING:
    from lakelens.config import Settings

__all__ = [
    "PostgresTimeouts",
    "answer_deadline",
    "answers_within",
    "connection_class",
    "error_line",
    "import_psycopg",
    "libpq_url",
    "masked_url",
    "unbounded_answers",
]


def import_psycopg() -> Any:
    """psycopg, imported without `importlib.metadata` when it is not loaded yet.

    psycopg and psycopg-binary each read their own version from their package metadata as
    they are imported: `importlib.metadata` (and `email`, `zipfile`, `csv` under it) and a
    walk of sys.path, 10-14 ms of a CLI command's start-up on PostgreSQL (`python -X
    importtime`), for a string nothing here shows. The two version modules are given the
    version read from the `.dist-info` directory names beside the package instead. Raises
    ImportError when psycopg is not installed.
    """
    import sys

    if "psycopg" not in sys.modules and "importlib.metadata" not in sys.modules:
        _preset_versions(sys.modules)
    import psycopg

    return psycopg


def _preset_versions(modules: dict[str, Any]) -> None:
    import os
    import types
    from importlib.machinery import PathFinder

    spec = PathFinder.find_spec("psycopg")
    if spec is None or not spec.origin:
        return  # not installed: the import says so
    site = os.path.dirname(os.path.dirname(spec.origin))
    try:
        names = os.listdir(site)
    except OSError:
        return
    for package, module in (
        ("psycopg", "psycopg.version"),
        ("psycopg_binary", "psycopg_binary.version"),
    ):
        found = [n for n in names if n.startswith(f"{package}-") and n.endswith(".dist-info")]
        if len(found) != 1 or module in modules:
            continue  # none, or several: let the package read its metadata as it does
        version = types.ModuleType(module)
        version.__version__ = found[0][len(package) + 1 : -len(".dist-info")]  # type: ignore[attr-defined]
        modules[module] = version


@dataclass(frozen=True)
class PostgresTimeouts:
    """How long lakelens waits for PostgreSQL, in seconds (0 turns a timeout off).

    A half-open connection (the server or the network gone without a FIN or RST) answers
    nothing, and without these a query waits on it for the kernel's ~15 minutes.
    """

    connect: float = 5.0
    statement: float = 30.0
    idle_in_transaction: float = 60.0
    # A dead peer is noticed after this long: TCP keepalives and tcp_user_timeout.
    tcp: float = 20.0

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresTimeouts:
        return cls(
            connect=settings.db_connect_timeout,
            statement=settings.db_statement_timeout,
            idle_in_transaction=settings.db_idle_in_transaction_timeout,
            tcp=settings.db_tcp_timeout,
        )

    @property
    def answer(self) -> float | None:
        """Seconds the client waits for any answer before it closes the connection itself:
        the server's statement timeout plus a margin for the server to say so."""
        return self.statement + 5.0 if self.statement > 0 else None

    def connect_args(self, query: Any) -> dict[str, Any]:
        """libpq options for psycopg; those already in the URL's query string win."""
        args: dict[str, Any] = {}
        if self.connect > 0:
            args["connect_timeout"] = max(2, round(self.connect))  # libpq's minimum is 2
        if self.tcp > 0:
            idle = max(1, round(self.tcp / 2))
            args.update(
                keepalives=1,
                keepalives_idle=idle,
                keepalives_interval=max(1, round(idle / 3)),
                keepalives_count=3,
                tcp_user_timeout=round(self.tcp * 1000),
            )
        options = [
            f"-c {name}={round(seconds * 1000)}"
            for name, seconds in (
                ("statement_timeout", self.statement),
                ("idle_in_transaction_session_timeout", self.idle_in_transaction),
            )
            if seconds > 0
        ]
        if options:
            given = query.get("options")
            args["options"] = " ".join([*([str(given)] if given else []), *options])
        return {key: value for key, value in args.items() if key == "options" or key not in query}


# A shorter client-side wait for answers in this context (the ingest committer's writes).
_ANSWER_DEADLINE: ContextVar[float | None] = ContextVar("lakelens_answer_deadline", default=None)


@contextlib.contextmanager
def answer_deadline(seconds: float | None) -> Iterator[None]:
    """Within this block, PostgreSQL calls give up (and close their connection) after
    `seconds` without an answer, instead of the engine's statement timeout + margin."""
    token = _ANSWER_DEADLINE.set(seconds if seconds and seconds > 0 else None)
    try:
        yield
    finally:
        _ANSWER_DEADLINE.reset(token)


@contextlib.contextmanager
def answers_within(seconds: float) -> Iterator[None]:
    """Like `answer_deadline`, but a shorter deadline already set in this context stays."""
    chosen = _ANSWER_DEADLINE.get()
    with answer_deadline(min(seconds, chosen) if chosen else seconds):
        yield


@contextlib.contextmanager
def unbounded_answers() -> Iterator[None]:
    """Within this block PostgreSQL calls wait as long as the server works (migrations of a
    big store): pair it with `SET LOCAL statement_timeout = 0` in the transaction."""
    token = _ANSWER_DEADLINE.set(0.0)
    try:
        yield
    finally:
        _ANSWER_DEADLINE.reset(token)


def connection_class(default_deadline: float | None) -> Any:
    """A psycopg Connection whose every wait for the server is bounded.

    psycopg waits on the socket with no timeout; on a half-open connection that is forever
    (statement_timeout is enforced by a server that never sees the query). A wait past the
    deadline closes the connection, so SQLAlchemy sees a disconnect and discards the pool.
    """
    import_psycopg()
    import psycopg
    from psycopg import errors

    class Connection(psycopg.Connection):
        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            if timeout is not None:  # the caller's own bound (notifies, cancel)
                return super().wait(gen, interval, timeout)
            chosen = _ANSWER_DEADLINE.get()
            deadline = None if chosen == 0.0 else (chosen or default_deadline)
            try:
                return super().wait(gen, interval, deadline)
            except errors._WaitTimeout:
                self.pgconn.finish()  # in an unknown state: never use it again
                raise psycopg.OperationalError(
                    f"PostgreSQL did not answer within {deadline:g}s; the connection was "
                    "closed (a network or server outage; see LAKELENS_DB_STATEMENT_TIMEOUT)."
                ) from None

    return Connection


def error_line(exc: BaseException) -> str:
    """A database error in one log line: its first (SQLAlchemy's adds the statement and a
    link), or the error's kind when it says nothing."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def libpq_url(url: str) -> tuple[str, dict[str, str]]:
    """The URL as libpq takes it (`postgresql+psycopg://` → `postgresql://`) and its query."""
    parts = urlsplit(url)
    scheme = "postgresql" if parts.scheme.split("+")[0] in ("postgresql", "postgres") else ""
    if not scheme:
        raise ValueError(f"not a PostgreSQL URL: {masked_url(url)}")
    return urlunsplit(parts._replace(scheme=scheme)), dict(parse_qsl(parts.query))


def masked_url(url: str) -> str:
    """The URL with its password replaced by ***, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))
