"""Compressed bodies: every gzip member is read, and bytes after the data are a 400, never dropped."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import sqlalchemy as sa

from lakelens.store import schema

HEADERS = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
EVENTS = [
    {"type": "run", "run_id": f"r{i}", "job": "nightly", "status": "success"} for i in range(4)
]


def _runs(store: Any) -> int:
    with store.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(schema.runs)).scalar_one())


def test_every_gzip_member_is_inflated(served: Any) -> None:
    """`cat a.gz b.gz` is one valid gzip stream: the events of the second member count too."""
    client, store = served
    text = json.dumps(EVENTS).encode()
    half = len(text) // 2
    body = gzip.compress(text[:half]) + gzip.compress(text[half:])
    response = client.post("/api/v1/events", content=body, headers=HEADERS)
    assert response.status_code == 200, response.text
    assert _runs(store) == 4


def test_bytes_after_the_gzip_data_are_refused_by_name(served: Any) -> None:
    client, store = served
    body = gzip.compress(json.dumps(EVENTS).encode()) + b"trailing junk"
    response = client.post("/api/v1/events", content=body, headers=HEADERS)
    assert response.status_code == 400, response.text
    assert "13 bytes after the end of its compressed data" in response.json()["detail"]
    assert _runs(store) == 0


def test_bytes_after_deflate_data_are_refused(served: Any) -> None:
    client, _ = served
    body = zlib.compress(json.dumps(EVENTS).encode()) + b"\x00\x00"
    response = client.post(
        "/api/v1/events", content=body, headers={**HEADERS, "Content-Encoding": "deflate"}
    )
    assert response.status_code == 400, response.text
    assert "after the end of its compressed data" in response.json()["detail"]


def test_many_members_share_one_size_limit(served: Any) -> None:
    """Twenty 4 MiB members (each under the limit alone) are refused as one 80 MiB body."""
    client, _ = served
    member = gzip.compress(b" " * (4 * 1024 * 1024))
    body = gzip.compress(b"[") + member * 20 + gzip.compress(b"]")
    response = client.post("/api/v1/events", content=body, headers=HEADERS)
    assert response.status_code == 413, response.text
