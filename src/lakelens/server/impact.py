"""Impact answers, encoded once per lineage graph.

On a 10,000-node graph, computing an impact (cycles included) and encoding its JSON took about
50 ms per request. The answer depends on the graph alone, and the server's graph cache
(`ServerContext.graph`) hands out a new graph object whenever assets or edges change, so an
answer kept with its graph object is current exactly as long as that graph is served. The use
at stake (analysis/usage.py) changes with every read: it is added to each response.
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import TYPE_CHECKING, Any

from fastapi.responses import Response

from lakelens.server.shapes import impact_dict, json_response

if TYPE_CHECKING:
    from lakelens.analysis.lineage import LineageGraph

__all__ = ["impact_answer", "impact_response"]

# Encoded answers kept per graph, oldest dropped first beyond this many bytes (a 10,000-node
# answer is about 0.6 MB).
MAX_CACHED_BYTES = 16 * 1024 * 1024

# By id(graph), with a weak reference that checks the id still names that graph (and drops the
# entry when the graph goes): graphs are dataclasses, unhashable.
_bodies: dict[int, tuple[weakref.ref[LineageGraph], dict[str, tuple[bytes, list[str]]]]] = {}
# Reentrant: a graph collected while the lock is held calls `forget` in the same thread.
_lock = threading.RLock()


def _kept(graph: LineageGraph) -> dict[str, tuple[bytes, list[str]]]:
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


def impact_answer(graph: LineageGraph, asset: str) -> tuple[bytes, list[str]]:
    """The encoded impact of `asset` on `graph`, and the assets it reaches (`asset` first)."""
    with _lock:
        answer = _kept(graph).get(asset)
    if answer is None:
        from lakelens.analysis.lineage import impact

        result = impact(graph, asset)
        body = bytes(json_response(impact_dict(result, graph)).body)
        answer = (body, [asset, *result.direct, *(name for name, _ in result.transitive)])
        with _lock:
            kept = _kept(graph)
            kept[asset] = answer
            size = sum(len(b) + 64 * len(reach) for b, reach in kept.values())
            while size > MAX_CACHED_BYTES and len(kept) > 1:
                body_, reach_ = kept.pop(next(iter(kept)))
                size -= len(body_) + 64 * len(reach_)
    return answer


def impact_response(body: bytes, usage: dict[str, Any]) -> Response:
    """The JSON response of `GET /api/v1/lineage/{asset}/impact`: the cached impact with its
    `usage` added (use changes with every read, the rest only with the graph)."""
    extra = json.dumps(usage, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(body[:-1] + b',"usage":' + extra.encode() + b"}", media_type="application/json")
