"""The HTTP server: ingest, the read API, /metrics and health (`lakelens serve`).

Importing this package pulls in FastAPI; `import lakelens` never does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> FastAPI:
    """The ASGI app; see lakelens.server.app.create_app."""
    from lakelens.server.app import create_app as build

    return build(*args, **kwargs)
