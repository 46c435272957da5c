"""Impact answers, encoded once per lineage graph.

On a 10,000-node graph, computing an impact (cycles included) and encoding its JSON took about
50 ms per request. The answer depends on the graph alone, and the server's graph cache
(`ServerContext.graph`) hands out a new graph object whenever assets or edges change, so an
answer kept with its graph object is current exactly as long as that graph is served.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

from fastapi.responses import Response

from lakelens.server.shapes import impact_dict, json_response

if TYPE_CHECKING:
    from lakelens.analysis.lineage import LineageGraph

__all__ = ["impact_response"]

# Encoded answers kept per graph, oldest dropped first beyond this many bytes (a 10,000-node
# answer is about 0.6 MB).
MAX_CACHED_BYTES = 16 * 1024 * 1024

# By id(graph), with a weak reference that checks the id still names that graph (and drops the
# entry when the graph goes): graphs are dataclasses, unhashable.
_bodies: dict[int, tuple[weakref.ref[LineageGraph], dict[str, bytes]]] = {}
# Reentrant: a graph collected while the lock is held calls `forget` in the same thread.
_lock = threading.RLock()


def _kept(graph: LineageGraph) -> dict[str, bytes]:
    """The answers kept for `graph` (call with the lock held)."""
    key = id(graph)
    entry = _bodies.get(key)
    if entry is None or entry[0]() is not graph:

        def forget(_ref: object, key: int = key) -> None:
            with _lock:
                if _bodies.get(key, (None,))[0] is _ref:
                    del _bodies[key]

        entry = _bodies[key] = (weakref.ref(graph, forget), {})
    return entry[1]


def impact_response(graph: LineageGraph, asset: str) -> Response:
    """The JSON response of `GET /api/v1/lineage/{asset}/impact` on `graph`."""
    with _lock:
        body = _kept(graph).get(asset)
    if body is None:
        from lakelens.analysis.lineage import impact

        body = bytes(json_response(impact_dict(impact(graph, asset), graph)).body)
        with _lock:
            kept = _kept(graph)
            kept[asset] = body
            size = sum(len(b) for b in kept.values())
            while size > MAX_CACHED_BYTES and len(kept) > 1:
                size -= len(kept.pop(next(iter(kept))))
    return Response(body, media_type="application/json")
