"""The JSON shapes of the read API: those of analysis/shapes.py, plus the JSON response."""

from __future__ import annotations

from typing import Any

from lakelens.analysis.shapes import (
    impact_dict,
    jsonable,
    log_dict,
    node_dict,
    run_dict,
    trace_dict,
    tree_dict,
)

__all__ = [
    "impact_dict",
    "json_response",
    "jsonable",
    "log_dict",
    "node_dict",
    "run_dict",
    "trace_dict",
    "tree_dict",
]


def json_response(data: Any, status_code: int = 200) -> Any:
    """A JSONResponse that never fails on NaN or infinity (they become null)."""
    from fastapi.responses import JSONResponse

    class _Response(JSONResponse):
        def render(self, content: Any) -> bytes:
            try:
                return super().render(content)
            except ValueError:
                return super().render(jsonable(content))

    return _Response(data, status_code=status_code)
