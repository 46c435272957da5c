"""`lakelens serve`: the HTTP server (ingest, read API, /metrics, health) under uvicorn."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import sys
import time
from typing import Any, Optional

import typer

from lakelens.cli._common import HomeOption, TzOption
from lakelens.errors import LakelensError

# uvicorn limits that keep slow or numerous clients from exhausting the worker. Requests
# handled at once and the request-head timeout are settings (server/limits.py); there is no
# bound on connections, which idle clients would use up (idle ones are closed instead).
KEEP_ALIVE_SECONDS = 5
GRACEFUL_SHUTDOWN_SECONDS = 30
MAX_HEADER_BYTES = 64 * 1024


def uvicorn_options(header_timeout: float) -> dict[str, Any]:
    """The HTTP stack `lakelens serve` runs under (protocol, limits), as uvicorn.Config
    keywords: bench/ingest.py's bare reference endpoint runs under the same, so its ratio
    measures lakelens, not a different parser or event loop."""
    from lakelens.server.limits import header_timeout_protocol

    return {
        "http": header_timeout_protocol(header_timeout),
        "server_header": False,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
    }


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def _configure_logging(log_format: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    for name in ("lakelens.server", "uvicorn.error", "lakelens.monitors"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    if log_format == "none":
        logging.getLogger("lakelens.server.access").setLevel(logging.WARNING)


def _raise_open_files_limit() -> None:
    """Let the server hold as many sockets as the hard limit allows (often 1,024 by default,
    which a thousand idle clients would use up before their head timeout closes them)."""
    try:
        import resource
    except ImportError:  # Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _check_port(host: str, port: int) -> None:
    """Fail with one line (not a uvicorn traceback) when the address cannot be bound."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise LakelensError(
                f"Cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port or --host."
            ) from None


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port to listen on."),
    home: Optional[str] = HomeOption,  # noqa: UP045
    insecure: bool = typer.Option(
        False,
        "--insecure",
        help="Listen on a non-loopback address without LAKELENS_API_TOKEN (prints a warning).",
    ),
    no_alerts: bool = typer.Option(
        False,
        "--no-alerts",
        help="Do not run the alert evaluator and delivery worker (for extra ingest replicas).",
    ),
    tz: Optional[str] = TzOption,  # noqa: UP045  (the dashboard's zone; server logs stay UTC)
    no_monitors: bool = typer.Option(
        False,
        "--no-monitors",
        help="Do not poll the warehouses of `lakelens monitor add` / lakelens.yaml monitors.",
    ),
) -> None:
    """Run the HTTP server: ingest (native, OpenLineage, OTLP), the read API, /metrics, /health.

    Writes need 'Authorization: Bearer $LAKELENS_API_TOKEN' (or a token of server.tokens in
    lakelens.yaml with its scope) when a token is set, reads too unless LAKELENS_PUBLIC_READ=1;
    browsers sign in at /signin. A non-loopback --host needs a token (or --insecure).

    Example: LAKELENS_API_TOKEN=… lakelens serve --host 0.0.0.0 --port 8765
    """
    from lakelens.cli._output import err_console
    from lakelens.config import load_settings
    from lakelens.server.security import is_loopback
    from lakelens.server.tokens import declared_tokens

    settings = load_settings(home=home)
    # A bad `server.tokens` entry fails here, in one line, before anything listens.
    tokens = declared_tokens(settings)
    protected = bool(settings.api_token or tokens)
    # "[::1]" is how an IPv6 address is written in a URL; the socket wants "::1".
    host = host.strip().removeprefix("[").removesuffix("]")
    if not is_loopback(host) and not protected:
        if not insecure:
            raise LakelensError(
                f"Refusing to listen on {host} without LAKELENS_API_TOKEN or server.tokens in "
                "lakelens.yaml: anyone who can reach it could read and write your data. Set a "
                "token (`lakelens token create`), or pass --insecure."
            )
        err_console.print(
            f"[yellow]Warning:[/] listening on {host} without LAKELENS_API_TOKEN (--insecure): "
            "anyone who can reach this port can read and write your data."
        )
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise LakelensError(
            "The server needs FastAPI and uvicorn: pip install 'fastapi>=0.115' 'uvicorn>=0.30'"
        ) from None
    from lakelens.server.app import create_app
    from lakelens.store import Store

    _check_port(host, port)
    _raise_open_files_limit()
    store = Store(settings=settings)
    store.background_indexes = True  # a long-lived process: see Store.maintain_partitions
    store.engine  # noqa: B018 -- open (and migrate) now: a bad URL fails here in one line
    app = create_app(settings, store, run_alerts=not no_alerts)
    ctx = app.state.ctx
    stopping = ctx.stopping
    alerts_thread = None
    if not no_alerts:
        import threading

        from lakelens.alerts.service import AlertingService

        ctx.alerts = AlertingService(store)
        alerts_thread = threading.Thread(
            target=ctx.alerts.run_forever, args=(stopping,), name="lakelens-alerts", daemon=True
        )
    monitors_thread = None if no_monitors else _monitors_thread(store, ctx)
    upkeep_thread = None if store.is_sqlite else _upkeep_thread(store, stopping)
    _configure_logging(settings.log_format, settings.log_level)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            stopping.set()  # live log streams end, so in-flight requests can finish
            super().handle_exit(sig, frame)
            # A requested stop that shut down gracefully is a clean exit (status 0): uvicorn
            # would re-raise the signal afterwards and end the process with -SIGTERM.
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        **uvicorn_options(settings.http_header_timeout),
    )
    shown = f"[{host}]" if ":" in host else host
    err_console.print(
        f"lakelens {_version()} serving http://{shown}:{port} — store {store.location}"
        + ("" if protected else " — no API token set")
        + (" — alerts off" if no_alerts else "")
        + " (Ctrl-C stops)",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    # What start-up built (modules, the app, caches) lives as long as the server: frozen out of
    # the cycle collector, whose full passes walked all of it every few hundred ingest requests
    # (about 70 ms each, docs/benchmarks.md "Native ingest decoding").
    gc.collect()
    gc.freeze()
    try:
        if alerts_thread is not None:
            alerts_thread.start()
        if monitors_thread is not None:
            monitors_thread.start()
        if upkeep_thread is not None:
            upkeep_thread.start()
        Server(config).run()
    finally:
        stopping.set()
        if alerts_thread is not None:
            alerts_thread.join(timeout=10)
            ctx.alerts.close()
        if monitors_thread is not None:
            monitors_thread.join(timeout=10)
        if upkeep_thread is not None:
            upkeep_thread.join(timeout=10)
        store.close()


def _monitors_thread(store: Any, ctx: Any) -> Any:
    """The background loop that runs due monitors (the server's health gains a `monitors`
    component once one exists)."""
    import threading

    from lakelens.monitors.service import MonitorService
    from lakelens.server.health import register_monitors

    def found() -> None:
        if "monitors" not in ctx.health:
            options = ctx.settings.raw.get("health") if isinstance(ctx.settings.raw, dict) else None
            register_monitors(ctx.health, store, options if isinstance(options, dict) else None)

    service = MonitorService(store, on_monitors=found)
    return threading.Thread(
        target=service.run_forever, args=(ctx.stopping,), name="lakelens-monitors", daemon=True
    )


def _upkeep_thread(store: Any, stopping: Any) -> Any:
    """The partition upkeep on the clock (`Store.keep_up`): a write runs it when due, but a
    server may receive none for hours (a quiet night, a replica that only serves reads)."""
    import threading

    return threading.Thread(
        target=store.keep_up, args=(stopping,), name="lakelens-upkeep", daemon=True
    )


def _version() -> str:
    from lakelens._version import __version__

    return __version__
