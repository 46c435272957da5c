"""`lakelens.get_logger()`: structlog loggers whose records carry run, asset and span ids and are stored."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from typing import Any

from lakelens._clean import plain
from lakelens.sdk._runtime import ENV_RUN_ID, FRAME, RT

__all__ = ["capture_child_logging", "get_logger", "install_stdlib_capture", "store_log"]

_METHOD_LEVELS = {
    "debug": 10,
    "info": 20,
    "msg": 20,
    "warning": 30,
    "warn": 30,
    "error": 40,
    "err": 40,
    "exception": 40,
    "critical": 50,
    "fatal": 50,
}


def store_log(
    level: int,
    message: str,
    logger: str | None,
    run: Any,
    mat: Any,
    span: Any,
    attributes: dict[str, Any] | None,
) -> None:
    """Queue one log row with explicit context (used by the SDK's own lifecycle messages)."""
    RT.writer.put_log(
        (
            RT.clock(),
            level,
            message,
            logger,
            run.run_id if run is not None else None,
            mat.name if mat is not None else None,
            run.job if run is not None else None,
            span.trace_id if span is not None else (run.trace_id if run is not None else None),
            span.span_id if span is not None else None,
            attributes or None,
        )
    )


def _format_exc_info(value: Any) -> str | None:
    if value is True:
        value = sys.exc_info()
    elif isinstance(value, BaseException):
        value = (type(value), value, value.__traceback__)
    if isinstance(value, tuple) and value[0] is not None:
        return "".join(traceback.format_exception(*value))
    return None


def _process(logger: Any, method_name: str, event_dict: dict[str, Any]) -> Any:
    """Queue the record for the store (with run/asset/span ids from the context), then render it.

    One processor instead of a chain: this runs for every log line of the pipeline, so the
    clock is read once and nothing is rendered when LAKELENS_LOG_FORMAT=none.
    """
    now = RT.clock()
    run, mat, span = FRAME.get()
    if run is None:
        run = RT.ambient_run()
    exc_info = event_dict.pop("exc_info", None)
    if exc_info is None and method_name == "exception":
        exc_info = True
    if exc_info:
        formatted = _format_exc_info(exc_info)
        if formatted:
            event_dict["exception"] = formatted
    get = event_dict.get
    run_id = get("run_id") or (run.run_id if run is not None else None)
    job = get("job") or (run.job if run is not None else None)
    asset = get("asset") or (mat.name if mat is not None else None)
    trace_id = get("trace_id") or (
        span.trace_id if span is not None else (run.trace_id if run is not None else None)
    )
    span_id = get("span_id") or (span.span_id if span is not None else None)
    render = RT.log_render
    if render is None:
        render = RT.log_render = _build_renderer()
    if render is not _render_nothing:
        # Every change to event_dict happens before it is queued: the writer thread reads it
        # (skipping the keys in events.RESERVED_LOG_KEYS) while the renderer only reads it too.
        if run_id is not None:
            event_dict.setdefault("run_id", run_id)
            event_dict.setdefault("job", job)
            event_dict.setdefault("trace_id", trace_id)
        if asset is not None:
            event_dict.setdefault("asset", asset)
        if span_id is not None:
            event_dict.setdefault("span_id", span_id)
        event_dict["level"] = "warning" if method_name == "warn" else method_name
        event_dict["timestamp"] = _iso(now)
    RT.writer.put_log(
        (
            now,
            _METHOD_LEVELS.get(method_name, 20),
            str(get("event", "")),
            get("logger"),
            run_id,
            asset,
            job,
            trace_id,
            span_id,
            event_dict,
        )
    )
    return render(method_name, event_dict, now)


_second = [-1, ""]


def _iso(moment: float) -> str:
    """ISO 8601 UTC with milliseconds; the date-time part is formatted once per second."""
    whole = int(moment)
    cached = _second
    if cached[0] != whole:
        cached[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        cached[0] = whole
    return f"{cached[1]}.{int((moment - whole) * 1000):03d}+00:00"


def _render_nothing(method_name: str, event_dict: dict[str, Any], now: float) -> str:
    return ""


_json = json.JSONEncoder(default=str, ensure_ascii=False).encode


def _render_json(method_name: str, event_dict: dict[str, Any], now: float) -> str:
    return _json(event_dict)


def _build_renderer() -> Any:
    fmt = RT.settings.log_format
    if fmt == "none":
        return _render_nothing
    if fmt == "json":
        return _render_json
    import structlog

    console = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())

    def render_console(method_name: str, event_dict: dict[str, Any], now: float) -> Any:
        # The console renderer pops keys: give it a copy, the writer thread reads the original.
        return console(None, method_name, dict(event_dict))

    return render_console


class _StderrLogger:
    """Writes rendered lines to whatever sys.stderr is at the time (test runners swap it)."""

    __slots__ = ()

    def msg(self, message: str) -> None:
        if message:
            sys.stderr.write(message + "\n")

    log = debug = info = warn = warning = error = err = critical = exception = fatal = msg


def get_logger(name: str | None = None, **initial_values: Any) -> Any:
    """A structlog logger; records carry run_id, asset, trace_id and span_id and are stored.

    They are also printed to stderr as JSON lines or console lines (LAKELENS_LOG_FORMAT=json,
    console or none). Records below LAKELENS_LOG_LEVEL (default INFO) are neither stored nor printed.
    Does not touch structlog's global configuration.
    """
    import structlog

    if name is not None:
        initial_values.setdefault("logger", name)
    wrapper = structlog.make_filtering_bound_logger(RT.settings.log_level_number)
    return wrapper(_StderrLogger(), [_process], initial_values)  # type: ignore[call-arg]


_STD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


# Loggers of lakelens itself and of what it runs for its store (Alembic migrations): their
# records describe lakelens, not the user's pipeline.
_INTERNAL_LOGGERS = frozenset({"lakelens", "alembic"})


class StdlibCapture(logging.Handler):
    """Stores the user's standard-library log records emitted inside a run, with its context."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < RT.settings.log_level_number:
            return
        if (
            record.name.partition(".")[0] in _INTERNAL_LOGGERS
            or (record.threadName or "").startswith("lakelens-")  # writer, remote sender
        ):
            return
        run, mat, span = FRAME.get()
        if run is None:
            run = RT.ambient_run()
            if run is None:
                return
        try:
            attributes = {k: v for k, v in vars(record).items() if k not in _STD_ATTRS}
            if record.exc_info and record.exc_info[0] is not None:
                attributes["exception"] = "".join(traceback.format_exception(*record.exc_info))
            message = plain(record.getMessage())
            store_log(record.levelno, message, record.name, run, mat, span, attributes)
        except Exception:
            self.handleError(record)


_capture: StdlibCapture | None = None


def install_stdlib_capture() -> None:
    """Store the user's `logging` records from now on (records outside runs are ignored).

    Not a handler on the root logger: with one there, the program's own
    `logging.basicConfig()` does nothing, `logging.warning()` no longer configures logging,
    and `logging.lastResort` stops printing warnings. Instead every record a logger hands to
    its handlers is also offered to the capture, so the program's configuration (and loggers
    with `propagate = False`) stay as they were.
    """
    global _capture
    if _capture is not None:
        return
    capture = _capture = StdlibCapture()
    call_handlers = logging.Logger.callHandlers

    def callHandlers(self: logging.Logger, record: logging.LogRecord) -> None:
        call_handlers(self, record)
        capture.handle(record)

    callHandlers.__wrapped__ = call_handlers  # type: ignore[attr-defined]
    logging.Logger.callHandlers = callHandlers  # type: ignore[method-assign]


def capture_child_logging() -> None:
    """At `import lakelens` in a process started inside a run (LAKELENS_RUN_ID is set): its
    `logging` records belong to the run, even when it never calls the SDK."""
    if os.environ.get(ENV_RUN_ID) and not _is_lakelens_cli():
        install_stdlib_capture()


def _is_lakelens_cli() -> bool:
    """Whether this process is the `lakelens` command (`serve`, `import dbt`, ...): its records
    describe lakelens, not the pipeline that started it."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", "") or ""
    return name.startswith("lakelens.") or os.path.basename(sys.argv[0] if sys.argv else "") in (
        "lakelens",
        "lakelens.exe",
    )
