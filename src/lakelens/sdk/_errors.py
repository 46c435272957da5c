"""Turning an exception into the fields lakelens stores."""

from __future__ import annotations

import traceback
from types import TracebackType

_MAX_TRACEBACK = 32_000
_MAX_MESSAGE = 8_000


def describe(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> tuple[str, str, str]:
    """(type name, message, formatted traceback), each bounded in size."""
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    if len(text) > _MAX_TRACEBACK:
        text = text[: _MAX_TRACEBACK // 2] + "\n…\n" + text[-_MAX_TRACEBACK // 2 :]
    return exc_type.__name__, (str(exc) or exc_type.__name__)[:_MAX_MESSAGE], text


def status_for(exc_type: type[BaseException] | None) -> str:
    if exc_type is None:
        return "success"
    if issubclass(exc_type, (KeyboardInterrupt, GeneratorExit)):
        return "canceled"
    return "failure"
