"""Incidents on the web: /incidents, /incidents/{id}, the overview panel, the API and /metrics,
over incidents the alert engine opened from a pipeline recorded through the SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

import lakelens
from _support import bound_socket
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
    # The delivery fails: the port refuses connections, and no other test's server can take it.
    refusing = bound_socket()
    url = f"http://127.0.0.1:{refusing.getsockname()[1]}/hooks/{SECRET}"
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
        refusing.close()


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


# -- acting on incidents: the API and the page's buttons --------------------------------------

TOKEN = "incident-actions-token"


def _open_incident(world: Any, asset: str) -> str:
    """A new open incident: `asset` succeeds, then fails, and the engine evaluates."""
    clock = world["clock"]
    _materialize(clock, asset, owner="data-eng")
    clock.advance(60)
    _materialize(clock, asset, fail=True, owner="data-eng")
    AlertEngine(world["store"], world["config"]).evaluate(now=clock())
    with world["store"].connect() as conn:
        (opened,) = [i.id for i in triage.incidents(conn, statuses=("open",), asset=asset)]
    return opened


def _state(world: Any, incident_id: str) -> tuple[str, float | None, list[tuple[str, Any, Any]]]:
    with world["store"].connect() as conn:
        view = triage.incident(conn, incident_id)
    events = [(e["event"], e["actor"], e["text"]) for e in view.timeline]
    return view.status, view.snoozed_until, events


def test_api_actions_change_the_state_and_the_timeline(world: Any) -> None:
    client, clock = world["client"], world["clock"]
    fresh = _open_incident(world, "fresh")
    url = f"/api/v1/incidents/{fresh}"

    acked = client.post(url + "/acknowledge")
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert body["id"] == fresh and body["status"] == "acknowledged"
    assert body["acknowledged_by"] == "api" and body["timeline"][-1]["event"] == "acknowledged"

    noted = client.post(url + "/note", json={"text": "  vendor ticket 4411 ", "by": "carol"})
    assert noted.status_code == 200, noted.text
    assert noted.json()["timeline"][-1] | {"time": 0} == {
        "time": 0,
        "event": "note",
        "actor": "carol",
        "fingerprint": None,
        "severity": None,
        "text": "vendor ticket 4411",
    }

    snoozed = client.post(url[: len(url) - 4] + "/snooze", json={"for": "2h"})  # a prefix works
    assert snoozed.status_code == 200, snoozed.text
    assert snoozed.json()["snoozed_until"] == pytest.approx(clock() + 7200)
    later = "2099-01-01T00:00:00Z"
    assert client.post(url + "/snooze", json={"until": later}).json()["snoozed_until"] == (
        pytest.approx(4070908800)
    )

    feedback = client.post(url + "/feedback", json={"kind": "expected", "reason": "backfill"})
    assert feedback.status_code == 200, feedback.text
    assert feedback.json()["timeline"][-1]["text"] == (
        "expected: 1 run(s) out of the baselines; backfill"
    )

    resolved = client.post(url + "/resolve", json={"note": "re-ran the load"})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved" and resolved.json()["resolved_by"] == "api"
    status, _, events = _state(world, fresh)
    assert status == "resolved"
    assert [e[0] for e in events if e[1] in ("api", "carol")] == [
        "acknowledged",
        "note",
        "snoozed",
        "snoozed",
        "feedback",
        "resolved",
    ]
    assert ("resolved", "api", "re-ran the load") in events


@pytest.mark.parametrize(
    ("action", "body", "status", "message"),
    [
        ("note", {"text": "   "}, 400, "A note needs some text"),
        ("note", None, 400, "A note needs some text"),
        ("note", {"text": 42}, 400, "'text' must be a string"),
        ("note", {"text": "x" * 4001}, 400, "longer than 4,000 characters"),
        ("snooze", {"for": "soon"}, 400, "Invalid for='soon'"),
        ("snooze", {"for": "0s"}, 400, "it must be positive"),
        ("snooze", {}, 400, "Say how long to snooze"),
        ("snooze", {"for": "2h", "until": "2099-01-01"}, 400, "Say how long to snooze"),
        ("snooze", {"until": "2001-01-01T00:00Z"}, 400, "a time in the future"),
        ("snooze", {"until": "tomorrow"}, 400, "use an ISO time"),
        ("feedback", {"kind": "meh"}, 400, '"false_positive" or "expected"'),
        ("acknowledge", None, 409, "only an open one can be acknowledged"),
        ("bogus", None, 404, "Not Found"),
    ],
)
def test_api_action_bad_input_is_a_one_line_4xx(
    world: Any, action: str, body: Any, status: int, message: str
) -> None:
    client, broken = world["client"], world["broken"]  # acknowledged, not resolved
    before = _state(world, broken)
    response = client.post(f"/api/v1/incidents/{broken}/{action}", json=body)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert message in detail and "\n" not in detail
    assert _state(world, broken) == before


def test_api_actions_on_a_resolved_or_unknown_incident(world: Any) -> None:
    client, other = world["client"], world["other"]  # resolved by bob
    for action, body in (("resolve", {}), ("snooze", {"for": "1h"}), ("acknowledge", None)):
        response = client.post(f"/api/v1/incidents/{other}/{action}", json=body)
        assert response.status_code == 409, (action, response.text)
        assert other in response.json()["detail"]
    # A note and feedback still apply to a resolved incident.
    assert client.post(f"/api/v1/incidents/{other}/note", json={"text": "post-mortem"}).is_success
    for action in ("acknowledge", "resolve", "note"):
        missing = client.post(f"/api/v1/incidents/ffffffffffff/{action}", json={"text": "x"})
        assert (
            missing.status_code == 404 and "No incident id starts with" in missing.json()["detail"]
        )
    raw = {"content": b"{not json", "headers": {"content-type": "application/json"}}
    assert client.post(f"/api/v1/incidents/{other}/note", **raw).status_code == 400  # type: ignore[arg-type]
    # A page on another site can send text/plain without a preflight: refused.
    plain = client.post(
        f"/api/v1/incidents/{other}/note",
        content=b'{"text": "x"}',
        headers={"content-type": "text/plain"},
    )
    assert plain.status_code == 415 and "application/json" in plain.json()["detail"]


def test_api_actions_refuse_requests_sent_by_another_site(world: Any) -> None:
    client = world["client"]
    fresh = _open_incident(world, "fresh")
    before = _state(world, fresh)
    for headers in (
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"referer": "http://evil.example/page"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site", "origin": "http://testserver:8080"},
    ):
        response = client.post(f"/api/v1/incidents/{fresh}/acknowledge", headers=headers)
        assert response.status_code == 403, (headers, response.text)
        assert response.json()["detail"].startswith("Refused:")
    assert _state(world, fresh) == before
    same = client.post(
        f"/api/v1/incidents/{fresh}/acknowledge",
        headers={"origin": "http://testserver", "sec-fetch-site": "same-origin"},
    )
    assert same.status_code == 200, same.text


def _app_with_token(world: Any, monkeypatch: pytest.MonkeyPatch, *, public_read: bool) -> Any:
    from dataclasses import replace

    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    if public_read:
        monkeypatch.setenv("LAKELENS_PUBLIC_READ", "1")
    settings = replace(world["store"].settings, api_token=TOKEN)
    return TestClient(create_app(settings, world["store"], clock=world["clock"], run_alerts=False))


@pytest.mark.parametrize("public_read", [False, True])
def test_actions_need_the_token_when_one_is_set(
    world: Any, monkeypatch: pytest.MonkeyPatch, public_read: bool
) -> None:
    fresh = _open_incident(world, "fresh")
    before = _state(world, fresh)
    with _app_with_token(world, monkeypatch, public_read=public_read) as client:
        for auth in ({}, {"authorization": "Bearer wrong"}):
            refused = client.post(f"/api/v1/incidents/{fresh}/acknowledge", headers=auth)
            assert refused.status_code == 401, refused.text
            page = client.post(f"/incidents/{fresh}/acknowledge", headers=auth, data={"csrf": "x"})
            assert page.status_code == 401
        assert _state(world, fresh) == before
        # A page read without the token (public reads) shows no buttons, and says why.
        if public_read:
            shown = assert_html_page(client.get(f"/incidents/{fresh}"))
            assert "<form" not in shown and "needs LAKELENS_API_TOKEN" in shown
        bearer = {"authorization": f"Bearer {TOKEN}"}
        done = client.post(f"/api/v1/incidents/{fresh}/acknowledge", headers=bearer)
        assert done.status_code == 200 and done.json()["status"] == "acknowledged"


def _token(page: str, action: str) -> str:
    import re

    form = re.search(rf'<form method="post" action="[^"]*/{action}".*?</form>', page, re.S)
    assert form, f"no {action} form"
    match = re.search(r'name="csrf" value="([^"]+)"', form.group(0))
    assert match
    return match.group(1)


def _forms(page: str) -> set[str]:
    import re

    return set(re.findall(r'<form method="post" action="/incidents/[^"/]+/(\w+)"', page))


def test_incident_page_shows_the_buttons_that_apply(world: Any) -> None:
    client = world["client"]
    fresh = _open_incident(world, "fresh")
    expected = {
        fresh: {"acknowledge", "snooze", "resolve", "note", "feedback"},  # open
        world["broken"]: {"snooze", "resolve", "note", "feedback"},  # acknowledged
        world["other"]: {"note", "feedback"},  # resolved
    }
    for incident_id, forms in expected.items():
        page = assert_html_page(client.get(f"/incidents/{incident_id}"))
        assert _forms(page) == forms, incident_id
        assert page.count('name="csrf"') == len(forms)
    snooze = assert_html_page(client.get(f"/incidents/{fresh}"))
    for duration in ("1h", "4h", "1d"):
        assert f'name="for" value="{duration}"' in snooze


def test_page_buttons_act_and_come_back_with_a_notice(world: Any) -> None:
    client = world["client"]
    fresh = _open_incident(world, "fresh")
    page = client.get(f"/incidents/{fresh}").text
    token = _token(page, "acknowledge")
    same_origin = {"origin": "http://testserver", "sec-fetch-site": "same-origin"}
    acked = client.post(
        f"/incidents/{fresh}/acknowledge",
        data={"csrf": token},
        headers=same_origin,
        follow_redirects=False,
    )
    assert acked.status_code == 303, acked.text
    assert acked.headers["location"] == f"/incidents/{fresh}?done=acknowledge"
    shown = assert_html_page(client.get(acked.headers["location"]))
    assert 'role="status">Acknowledged: no reminders' in shown
    assert metrics(shown)["status"] == "acknowledged"
    # No acknowledge button any more; the same page's token serves its other buttons.
    assert "acknowledge" not in _forms(shown)
    noted = client.post(
        f"/incidents/{fresh}/note",
        data={"csrf": token, "text": f"looked at it {XSS}"},
        follow_redirects=True,
    )
    assert noted.status_code == 200 and "Note added to the timeline." in noted.text
    assert_no_markup_injected(noted.text, "incident page after a note")
    snoozed = client.post(f"/incidents/{fresh}/snooze", data={"csrf": token, "for": "4h"})
    assert "Snoozed: nothing is sent about it until" in snoozed.text
    client.post(
        f"/incidents/{fresh}/feedback", data={"csrf": token, "kind": "false_positive", "reason": ""}
    )
    resolved = client.post(f"/incidents/{fresh}/resolve", data={"csrf": token, "note": "fixed"})
    assert "Resolved: everyone who was told" in resolved.text
    status, snoozed_until, events = _state(world, fresh)
    assert status == "resolved" and snoozed_until == pytest.approx(world["clock"]() + 4 * 3600)
    assert [(e, t) for e, a, t in events if a == "web"] == [
        ("acknowledged", None),
        ("note", f"looked at it {XSS}"),
        ("snoozed", f"until {_utc(snoozed_until)}"),
        ("feedback", "false positive: 1 run(s) out of the baselines"),
        ("resolved", "fixed"),
    ]
    # A button pressed on a stale page (resolved meanwhile): the page again, saying why not.
    again = client.post(f"/incidents/{fresh}/acknowledge", data={"csrf": token})
    assert again.status_code == 409
    assert "Nothing done: Incident" in again.text and "only an open one" in again.text
    empty = client.post(f"/incidents/{fresh}/note", data={"csrf": token, "text": "  "})
    assert empty.status_code == 400 and "A note needs some text" in empty.text


def test_a_forged_form_post_is_refused_and_changes_nothing(world: Any) -> None:
    client, broken = world["client"], world["broken"]
    fresh = _open_incident(world, "fresh")
    token = _token(client.get(f"/incidents/{fresh}").text, "acknowledge")
    other_token = _token(client.get(f"/incidents/{broken}").text, "resolve")
    before = _state(world, fresh)
    forged: list[tuple[dict[str, str], dict[str, str]]] = [
        ({}, {}),  # no token
        ({"csrf": "1700000000.AAAA"}, {}),  # made up
        ({"csrf": token + "x"}, {}),  # tampered
        ({"csrf": other_token}, {}),  # another incident's page
        ({"csrf": token}, {"origin": "http://evil.example"}),  # a valid token, from elsewhere
        ({"csrf": token}, {"origin": "https://testserver"}),
        ({"csrf": token}, {"referer": "http://evil.example/x"}),
        ({"csrf": token}, {"sec-fetch-site": "cross-site"}),
    ]
    for data, headers in forged:
        response = client.post(
            f"/incidents/{fresh}/acknowledge", data=data, headers=headers, follow_redirects=False
        )
        assert response.status_code == 403, (data, headers)
        page = assert_html_page(response, 403)
        assert "This form did not come from this server" in page
        assert _state(world, fresh) == before, (data, headers)
    # A token older than its lifetime is refused too.
    from lakelens.server.security import FormTokens

    tokens = FormTokens(b"k" * 32)
    old = tokens.issue("incident:x", now=1_000_000)
    assert tokens.valid(old, "incident:x", now=1_000_000 + 3600)
    assert not tokens.valid(old, "incident:x", now=1_000_000 + 13 * 3600)
    assert not tokens.valid(old, "incident:y", now=1_000_000)
    assert not FormTokens(b"j" * 32).valid(old, "incident:x", now=1_000_000)


def _utc(moment: float | None) -> str:
    from lakelens.alerts.destinations._format import utc

    assert moment is not None
    return utc(moment)
