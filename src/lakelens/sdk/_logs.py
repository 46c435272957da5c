"""`lakelens.get_logger()`: structlog loggers whose records carry run, asset and span ids and are stored."""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import datetime, timezone
from typing import Any

from lakelens.sdk._runtime import FRAME, RT

__all__ = ["get_logger", "install_stdlib_capture", "store_log"]

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
_CONTEXT_KEYS = ("run_id", "asset", "job", "trace_id", "span_id")
_RESERVED = frozenset(("event", "logger", "exc_info", "_record", "_from_structlog", *_CONTEXT_KEYS))


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


def _store_processor(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Add run/asset/span ids from the current context, then queue the record for the store."""
    run, mat, span = FRAME.get()
    if run is None:
        run = RT.ambient_run()
    if run is not None:
        event_dict.setdefault("run_id", run.run_id)
        event_dict.setdefault("job", run.job)
    if mat is not None:
        event_dict.setdefault("asset", mat.name)
    if span is not None:
        event_dict.setdefault("trace_id", span.trace_id)
        event_dict.setdefault("span_id", span.span_id)
    elif run is not None:
        event_dict.setdefault("trace_id", run.trace_id)
    exc_info = event_dict.pop("exc_info", None)
    if exc_info is None and method_name == "exception":
        exc_info = True
    if exc_info:
        formatted = _format_exc_info(exc_info)
        if formatted:
            event_dict["exception"] = formatted
    attributes = {k: v for k, v in event_dict.items() if k not in _RESERVED} or None
    RT.writer.put_log(
        (
            RT.clock(),
            _METHOD_LEVELS.get(method_name, 20),
            str(event_dict.get("event", "")),
            event_dict.get("logger"),
            event_dict.get("run_id"),
            event_dict.get("asset"),
            event_dict.get("job"),
            event_dict.get("trace_id"),
            event_dict.get("span_id"),
            attributes,
        )
    )
    return event_dict


def _iso_now() -> str:
    return datetime.fromtimestamp(RT.clock(), tz=timezone.utc).isoformat(timespec="milliseconds")


def _build_renderer() -> Any:
    import structlog

    fmt = RT.settings.log_format
    if fmt == "none":

        def drop(logger: Any, method_name: str, event_dict: dict[str, Any]) -> Any:
            raise structlog.DropEvent

        return drop
    if fmt == "json":
        json_renderer = structlog.processors.JSONRenderer()

        def render_json(logger: Any, method_name: str, event_dict: dict[str, Any]) -> Any:
            event_dict["level"] = "warning" if method_name == "warn" else method_name
            event_dict["timestamp"] = _iso_now()
            return json_renderer(logger, method_name, event_dict)

        return render_json
    console = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())

    def render_console(logger: Any, method_name: str, event_dict: dict[str, Any]) -> Any:
        event_dict["level"] = method_name
        event_dict["timestamp"] = _iso_now()
        return console(logger, method_name, event_dict)

    return render_console


def _render(logger: Any, method_name: str, event_dict: dict[str, Any]) -> Any:
    render = RT.log_render
    if render is None:
        render = RT.log_render = _build_renderer()
    return render(logger, method_name, event_dict)


class _StderrLogger:
    """Writes rendered lines to whatever sys.stderr is at the time (test runners swap it)."""

    __slots__ = ()

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")

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
    return wrapper(_StderrLogger(), [_store_processor, _render], initial_values)  # type: ignore[call-arg]


_STD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class StdlibCapture(logging.Handler):
    """Stores standard-library log records emitted inside a run, with its context."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < RT.settings.log_level_number:
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
            store_log(record.levelno, record.getMessage(), record.name, run, mat, span, attributes)
        except Exception:
            self.handleError(record)


_capture: StdlibCapture | None = None


def install_stdlib_capture() -> None:
    """Attach the capturing handler to the root logger once; it ignores records outside runs."""
    global _capture
    if _capture is None:
        _capture = StdlibCapture()
        logging.getLogger().addHandler(_capture)
