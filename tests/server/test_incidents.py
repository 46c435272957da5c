"""Incidents on the web: /incidents, /incidents/{id}, the overview panel, the API and /metrics,
over incidents the alert engine opened from a pipeline recorded through the SDK."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

import lakelens
from lakelens.alerts import triage
from lakelens.alerts.config import AlertingConfig, RuleSettings
from lakelens.alerts.destinations import create_destination
from lakelens.alerts.engine import AlertEngine
from lakelens.alerts.incidents import Policy
from lakelens.alerts.outbox import DeliveryWorker
from lakelens.config import load_settings
from lakelens.store import Store, schema
from lakelens.testing import FakeClock

from .test_pages import assert_html_page, assert_no_markup_injected, metrics

XSS = "<script>alert(1)</script>"
SECRET = "SUPERSECRETTOKEN123"


class Boom(Exception):
    pass


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _materialize(clock: FakeClock, asset: str, *, fail: bool = False, **options: Any) -> None:
    try:
        with lakelens.run("job", partition="2024-05-01"), lakelens.asset(asset, **options):
            clock.advance(1.0)
            if fail:
                raise Boom("Connection timeout after 30s")
            lakelens.record(rows=100)
    except Boom:
        pass
    lakelens.flush()


@pytest.fixture
def world(store_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Two incidents opened by the engine: one about an asset named like markup, failing
    below nothing and above `report` (acknowledged, with a note and a failed delivery), and
    one about `other` (resolved by hand)."""
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    settings = load_settings(home=str(tmp_path / "home"), database_url=store_url, log_format="none")
    store = Store(settings=settings)
    import time

    clock = FakeClock(time.time() - 3600)
    lakelens.configure(settings=settings, store=store, clock=clock)
    url = f"http://127.0.0.1:{_closed_port()}/hooks/{SECRET}"
    cfg = AlertingConfig(
        destinations={"hook": {"type": "webhook", "url": url}},
        rules=RuleSettings(),
        incident_policy=Policy(group_wait=0),
        public_url="https://lakelens.example.com/",
    )
    try:
        _materialize(clock, XSS, owner="data-eng")
        _materialize(clock, "report", deps=[XSS], owner="bi")
        _materialize(clock, "other", owner="data-eng")
        clock.advance(60)
        _materialize(clock, XSS, fail=True, owner="data-eng")
        first = AlertEngine(store, cfg).evaluate(now=clock())
        (broken,) = first.opened
        clock.advance(30)
        _materialize(clock, "other", fail=True, owner="data-eng")
        second = AlertEngine(store, cfg).evaluate(now=clock())
        (other,) = second.opened
        worker = DeliveryWorker(
            store, {"hook": create_destination("hook", cfg.destinations["hook"])}, clock=clock
        )
        worker.run_once()
        clock.advance(120)
        triage.acknowledge(store, broken, config=cfg, by="alice", now=clock())
        triage.note(store, broken, "vendor API down, ticket <b>4411</b>", by="alice", now=clock())
        clock.advance(300)
        triage.resolve(store, other, config=cfg, by="bob", text="re-ran by hand", now=clock())
        app = create_app(settings, store, clock=clock, run_alerts=False)
        with TestClient(app) as client:
            yield {
                "client": client,
                "store": store,
                "clock": clock,
                "broken": broken,
                "other": other,
                "config": cfg,
            }
    finally:
        lakelens.flush()
        lakelens.configure(settings=load_settings(home=str(tmp_path / "after"), log_format="none"))
        store.close()


def test_incident_page_tells_what_broke_findings_timeline_and_deliveries(world: Any) -> None:
    client, broken = world["client"], world["broken"]
    page = assert_html_page(client.get(f"/incidents/{broken}"))
    assert_no_markup_injected(page, "incident page")
    assert XSS not in page
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"Asset Materialization Failed: {escaped}" in page
    assert metrics(page)["root_asset"] == XSS and metrics(page)["status"] == "acknowledged"
    # The root asset, the downstream impact and the run are links.
    assert f'href="/assets/{quote(XSS, safe="")}"' in page
    assert 'href="/assets/report"' in page
    with world["store"].connect() as conn:
        run_id = triage.incident(conn, broken).run_id
    assert run_id and f'href="/runs/{run_id}"' in page
    assert "2024-05-01" in page and "Connection timeout after 30s" in page
    # Timeline: who did what.
    assert "vendor API down, ticket &lt;b&gt;4411&lt;/b&gt;" in page
    assert "by alice" in page
    for event in ("opened", "notified", "acknowledged", "note"):
        assert f'<span class="event ev-{event}">{event}</span>' in page, event
    # The delivery failed (nobody listens on that port); its error never shows the secret.
    assert "Could not connect to" in page and "/hooks/****" in page
    assert SECRET not in page


def test_a_secret_stored_in_a_delivery_error_is_masked_on_pages_and_api(world: Any) -> None:
    """Destinations scrub their errors; a row written without that (a third-party destination,
    an older version) is masked again when shown."""
    n = schema.notifications
    with world["store"].connect() as conn:
        conn.execute(
            n.update()
            .where(n.c.fingerprint == world["broken"])
            .values(last_error=f"HTTP 500 from https://hooks.example.com/services/T1/B2/{SECRET}.")
        )
        conn.commit()
    client = world["client"]
    for path in (f"/incidents/{world['broken']}", f"/api/v1/incidents/{world['broken']}"):
        text = client.get(path).text
        assert SECRET not in text, path
        assert "https://hooks.example.com/services/****/****/****." in text, path
    assert SECRET not in client.get("/alerts").text


def test_incident_list_filters_by_status_and_asset(world: Any) -> None:
    client, broken, other = world["client"], world["broken"], world["other"]
    page = assert_html_page(client.get("/incidents"))
    assert_no_markup_injected(page, "incident list")
    # Acknowledged before resolved, each linked to its page.
    assert page.index(f'href="/incidents/{broken}"') < page.index(f'href="/incidents/{other}"')
    assert 'aria-current="page">Incidents</a>' in page
    assert metrics(page)["acknowledged"] == "1" and metrics(page)["open"] == "0"
    only = {
        "resolved": [other],
        "acknowledged": [broken],
        "open": [],
        "all": [broken, other],
    }
    for status, expected in only.items():
        shown = assert_html_page(client.get(f"/incidents?status={status}"))
        for incident_id in (broken, other):
            assert (f'href="/incidents/{incident_id}"' in shown) == (incident_id in expected), (
                status,
                incident_id,
            )
    about = assert_html_page(client.get("/incidents", params={"asset": XSS}))
    assert_no_markup_injected(about, "incident list about an asset")
    assert broken in about and other not in about
    assert other in client.get("/incidents?asset=other").text
    bad = assert_html_page(client.get("/incidents?status=bogus"), 400)
    assert "Unknown incident status" in bad


def test_unknown_incident_is_a_404_page_and_a_404_json(world: Any) -> None:
    client = world["client"]
    page = assert_html_page(client.get("/incidents/ffffffffffff"), 404)
    assert "No incident id starts with" in page
    api = client.get("/api/v1/incidents/ffffffffffff")
    assert api.status_code == 404 and "No incident id starts with" in api.json()["detail"]
    # A prefix that is a LIKE wildcard matches nothing rather than everything.
    assert client.get("/incidents/%25").status_code == 404


def test_api_lists_and_shows_incidents(world: Any) -> None:
    client, broken, other = world["client"], world["broken"], world["other"]
    active = client.get("/api/v1/incidents").json()["incidents"]
    assert [i["id"] for i in active] == [broken]
    assert active[0]["root_asset"] == XSS and active[0]["acknowledged_by"] == "alice"
    everything = client.get("/api/v1/incidents", params={"status": "all"}).json()["incidents"]
    assert {i["id"] for i in everything} == {broken, other}
    resolved = client.get("/api/v1/incidents?status=resolved&since=2h&limit=5").json()
    assert [i["id"] for i in resolved["incidents"]] == [other]
    assert client.get("/api/v1/incidents?asset=other&status=all").json()["incidents"][0]["id"] == (
        other
    )
    bad = client.get("/api/v1/incidents?status=bogus")
    assert bad.status_code == 400 and "Unknown incident status" in bad.json()["detail"]
    one = client.get(f"/api/v1/incidents/{broken[:6]}").json()
    assert one["id"] == broken and one["impact"] == ["report"]
    events = [e["event"] for e in one["timeline"]]
    assert events[0] == "opened" and {"joined", "notified", "acknowledged", "note"} <= set(events)
    assert one["findings"][0]["asset"] == XSS
    (delivery,) = one["deliveries"]
    assert delivery["destination"] == "hook" and delivery["attempts"] == 1
    assert SECRET not in str(one)


def test_overview_lists_open_incidents_and_their_times(world: Any) -> None:
    client, broken = world["client"], world["broken"]
    page = assert_html_page(client.get("/"))
    assert_no_markup_injected(page, "overview")
    assert f'href="/incidents/{broken}"' in page and world["other"] not in page
    assert 'href="/alerts"' in page
    figures = metrics(page)
    assert figures["open_incidents"] == "1" and figures["incidents_opened"] == "2"
    assert float(figures["mtta"]) > 0 and float(figures["mttr"]) > 0
    with world["store"].connect() as conn:
        from lakelens.analysis.summary import summary

        stats = summary(conn, since=world["clock"]() - 86400, until=world["clock"]()).incidents
    assert float(figures["mttr"]) == pytest.approx(stats.mean_time_to_resolve)


def test_metrics_expose_incidents(world: Any) -> None:
    text = world["client"].get("/metrics").text
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    open_ = {s.labels["severity"]: s.value for s in samples["lakelens_incidents_open"]}
    assert open_ == {"info": 0, "warning": 0, "error": 1, "critical": 0}
    assert [s.value for s in samples["lakelens_incidents_opened_total"]] == [2]
    owners = {s.labels["owner"]: s.value for s in samples["lakelens_incidents_by_owner"]}
    assert owners == {"data-eng": 1}
    (ack,) = samples["lakelens_incident_time_to_acknowledge_seconds"]
    (resolve,) = samples["lakelens_incident_time_to_resolve_seconds"]
    # Acknowledged 30 s + a 1 s run + 120 s after opening; the other resolved 420 s after its.
    assert ack.value == pytest.approx(151) and resolve.value == pytest.approx(420)
    assert "lakelens_incident_time_to_detect_seconds" in samples


def test_messages_link_to_the_incident_page(world: Any) -> None:
    import json

    n = schema.notifications
    with world["store"].connect() as conn:
        payload = json.loads(
            conn.execute(sa.select(n.c.payload).where(n.c.fingerprint == world["broken"]))
            .scalars()
            .first()
        )
    link = payload["link"]
    assert link == f"https://lakelens.example.com/incidents/{world['broken']}"
    path = link.removeprefix("https://lakelens.example.com")
    assert world["client"].get(path).status_code == 200


def test_promtool_accepts_the_incident_series(world: Any, require_tool: Any) -> None:
    import subprocess

    promtool = require_tool("promtool", "apt-get install prometheus")
    text = world["client"].get("/metrics").text
    assert "lakelens_incidents_open{" in text and "lakelens_incidents_by_owner{" in text
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
