"""Run ids with "/" in them (dbt, some OpenLineage producers) open from the links the pages
print and from the API, whether the slashes are sent raw or as %2F."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import quote

RUN_ID = "dbt/2026-01-01/abc"
EVENTS = [
    {"type": "asset", "name": "mart.orders", "kind": "model"},
    {"type": "run", "run_id": RUN_ID, "job": "dbt build", "status": "success"},
    {
        "type": "materialization",
        "run_id": RUN_ID,
        "asset": "mart.orders",
        "status": "success",
        "rows": 7,
    },
    {"type": "log", "run_id": RUN_ID, "asset": "mart.orders", "message": "built", "level": "INFO"},
]


def _ingest(client: Any) -> None:
    response = client.post("/api/v1/events", json=EVENTS)
    assert response.status_code == 200, response.text


def test_the_asset_page_link_to_a_run_with_slashes_opens(served: Any) -> None:
    client, _ = served
    _ingest(client)
    page = client.get("/assets/mart.orders")
    assert page.status_code == 200, page.text
    links = {unescape(h) for h in re.findall(r'href="(/runs/[^"]+)"', page.text)}
    assert f"/runs/{quote(RUN_ID, safe='')}" in links
    for link in links:
        run = client.get(link)
        assert run.status_code == 200, (link, run.text[:300])
        assert RUN_ID in unescape(run.text)


def test_the_logs_page_link_to_a_run_with_slashes_opens(served: Any) -> None:
    client, _ = served
    _ingest(client)
    page = client.get("/logs")
    links = {unescape(h) for h in re.findall(r'href="(/runs/[^"]+)"', page.text)}
    assert links, page.text[:500]
    for link in links:
        assert client.get(link).status_code == 200, link


def test_the_api_opens_a_run_with_slashes_encoded_or_not(served: Any) -> None:
    client, _ = served
    _ingest(client)
    for path in (quote(RUN_ID, safe=""), RUN_ID, quote(RUN_ID[:6], safe="")):
        response = client.get(f"/api/v1/runs/{path}")
        assert response.status_code == 200, (path, response.text)
        assert response.json()["run"]["run_id"] == RUN_ID
    missing = client.get(f"/api/v1/runs/{quote('dbt/nope', safe='')}")
    assert missing.status_code == 404
    assert "dbt/nope" in missing.json()["detail"]
