"""The built-in destinations against real receivers: payloads, signatures, TLS, classification."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime
from typing import Any

import pytest

from lakelens.alerts.destinations import (
    AlertMessage,
    DestinationConfigError,
    create_destination,
)
from lakelens.alerts.destinations.alertmanager import AlertmanagerDestination
from lakelens.alerts.destinations.email import EmailDestination
from lakelens.alerts.destinations.pagerduty import PagerDutyDestination
from lakelens.alerts.destinations.slack import SlackDestination
from lakelens.alerts.destinations.webhook import WebhookDestination

T0 = 1705314942.0  # 2024-01-15 10:35:42 UTC, the seed's timestamp
ROUTING_KEY = "R0UTINGKEY0123456789abcdefSECRET"
PASSWORD = "correct-horse-battery-staple"
XSS = "<img src=x onerror=alert(1)>"


def alert(**changes: Any) -> AlertMessage:
    """The seed's example alert: glucose_entries failed, with two downstream assets."""
    values: dict[str, Any] = {
        "notification_id": "ntf-0001",
        "fingerprint": "asset_failed:glucose_entries:TimeoutError",
        "action": "trigger",
        "rule": "asset_failed",
        "severity": "error",
        "title": "Asset Materialization Failed",
        "summary": "glucose_entries failed: Connection timeout after 30s",
        "time": T0,
        "first_seen": T0 - 3600,
        "count": 12,
        "asset": "glucose_entries",
        "partition": "2024-01-15",
        "run_id": "abc123-def456",
        "error": "Connection timeout after 30s",
        "impact": ["stg_glucose_entries", "Superset Dashboard (Glucose Monitoring)"],
        "link": "https://lakelens.example.com/assets/glucose_entries",
    }
    values.update(changes)
    return AlertMessage(**values)


def slack(receiver: Any, **config: Any) -> SlackDestination:
    url = receiver.url_for("/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX")
    return SlackDestination.from_config("team", {"type": "slack", "url": url, **config})


def pagerduty(receiver: Any, **config: Any) -> PagerDutyDestination:
    return PagerDutyDestination.from_config(
        "oncall",
        {"routing_key": ROUTING_KEY, "url": receiver.url_for("/v2/enqueue"), **config},
    )


def webhook(receiver: Any, **config: Any) -> WebhookDestination:
    return WebhookDestination.from_config("hook", {"url": receiver.url_for("/hook"), **config})


def alertmanager(receiver: Any, **config: Any) -> AlertmanagerDestination:
    return AlertmanagerDestination.from_config("am", {"url": receiver.url, **config})


# --- Slack -------------------------------------------------------------------------------------


def test_slack_message_has_header_fields_error_impact_and_link(receiver):
    result = slack(receiver, channel="#data-alerts").send(alert())

    assert result.ok, result
    (request,) = receiver.requests
    assert request.path == "/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert body["channel"] == "#data-alerts"
    assert body["text"].startswith("🔴 Asset Materialization Failed — glucose_entries failed")
    header, summary, fields, error, impact, actions, context = body["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "🔴 Asset Materialization Failed", "emoji": True},
    }
    assert summary["text"]["text"] == "glucose_entries failed: Connection timeout after 30s"
    texts = [f["text"] for f in fields["fields"]]
    assert texts == [
        "*Asset*\nglucose_entries",
        "*Partition*\n2024-01-15",
        "*Run ID*\nabc123-def456",
        "*Severity*\nERROR",
        "*Time*\n2024-01-15 10:35:42 UTC",
        "*Occurrences*\n12 occurrences since 2024-01-15 09:35:42 UTC",
    ]
    assert error["text"]["text"] == "*Error*\n```Connection timeout after 30s```"
    assert impact["text"]["text"] == (
        "*Impact*\n• stg_glucose_entries\n• Superset Dashboard (Glucose Monitoring)"
    )
    assert actions["elements"][0]["url"] == "https://lakelens.example.com/assets/glucose_entries"
    assert "asset_failed" in context["elements"][0]["text"]


def test_slack_first_occurrence_and_resolve():
    from lakelens.alerts.destinations.slack import slack_payload

    body = slack_payload(alert(count=1, action="resolve"))
    assert body["blocks"][0]["text"]["text"] == "✅ Resolved: Asset Materialization Failed"
    assert "*Occurrences*\nFirst seen 2024-01-15 09:35:42 UTC" in json.dumps(
        body["blocks"], ensure_ascii=False
    ).replace("\\n", "\n")
    assert "channel" not in body


def _text_lengths(block: dict[str, Any]) -> list[int]:
    return [len(block["text"]["text"])] if "text" in block else []


def test_slack_blocks_stay_within_limits_with_a_10kb_error(receiver):
    message = alert(
        title="T" * 400,
        summary="S" * 5000,
        asset="a" * 3000,
        error="x<" * 5000,  # 10 kB, and every "<" grows to "&lt;" when escaped
        impact=[f"downstream_asset_{n:04d}" for n in range(1000)],
    )
    assert slack(receiver).send(message).ok

    body = receiver.requests[0].json()
    blocks = body["blocks"]
    assert len(blocks) <= 50
    header = blocks[0]["text"]["text"]
    assert len(header) <= 150 and header.endswith("…")
    for block in blocks:
        if block["type"] == "section":
            if "text" in block:
                assert len(block["text"]["text"]) <= 3000
            fields = block.get("fields", [])
            assert len(fields) <= 10
            assert all(len(f["text"]) <= 2000 for f in fields)
    error = next(b for b in blocks if b.get("text", {}).get("text", "").startswith("*Error*"))
    assert error["text"]["text"].endswith("…```")
    assert "&lt;" in error["text"]["text"] and "<" not in error["text"]["text"]
    impact = next(b for b in blocks if b.get("text", {}).get("text", "").startswith("*Impact*"))
    assert impact["text"]["text"].endswith("more")
    assert len(body["text"]) <= 3000


def test_slack_escapes_user_text_so_an_error_cannot_ping_the_channel():
    from lakelens.alerts.destinations.slack import slack_payload

    body = slack_payload(alert(error="<!channel> & <https://evil.example|click>"))
    text = json.dumps(body)
    assert "<!channel>" not in text
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in text


# --- PagerDuty ---------------------------------------------------------------------------------


def test_pagerduty_trigger_event_has_the_events_api_v2_fields(receiver):
    receiver.respond(202, '{"status":"success","dedup_key":"x"}')
    result = pagerduty(receiver, source="etl-01").send(alert(details={"group": "glucose"}))

    assert result.ok and result.status_code == 202
    event = receiver.requests[0].json()
    assert receiver.requests[0].path == "/v2/enqueue"
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "asset_failed:glucose_entries:TimeoutError"
    payload = event["payload"]
    assert payload["summary"] == (
        "Asset Materialization Failed: glucose_entries failed: Connection timeout after 30s"
    )
    assert payload["source"] == "etl-01"
    assert payload["severity"] == "warning"  # ERROR pages at low urgency (see pagerduty.py)
    assert payload["timestamp"] == "2024-01-15T10:35:42.000Z"
    assert payload["component"] == "glucose_entries"
    assert payload["group"] == "glucose"
    assert payload["class"] == "asset_failed"
    details = payload["custom_details"]
    assert details["severity"] == "error" and details["urgency"] == "low"
    assert details["run_id"] == "abc123-def456"
    assert details["partition"] == "2024-01-15"
    assert details["occurrences"] == 12
    assert details["impact"] == ["stg_glucose_entries", "Superset Dashboard (Glucose Monitoring)"]
    assert event["links"] == [
        {
            "href": "https://lakelens.example.com/assets/glucose_entries",
            "text": "glucose_entries in lakelens",
        }
    ]


@pytest.mark.parametrize(
    ("severity", "expected", "urgency"),
    [
        ("critical", "critical", "high"),
        ("P1", "critical", "high"),
        ("error", "warning", "low"),
        ("warning", "warning", "low"),
        ("info", "info", "low"),
    ],
)
def test_pagerduty_severity_values_give_the_routed_urgency(severity, expected, urgency):
    from lakelens.alerts.destinations.pagerduty import pagerduty_event

    event = pagerduty_event(alert(severity=severity), routing_key="k", source="s")
    assert event["payload"]["severity"] == expected
    assert event["payload"]["custom_details"]["urgency"] == urgency


def test_pagerduty_severity_map_can_send_error_as_error(receiver):
    pagerduty(receiver, severity_map={"error": "error"}).send(alert())
    assert receiver.requests[0].json()["payload"]["severity"] == "error"


def test_pagerduty_resolve_carries_only_key_action_and_dedup_key(receiver):
    assert pagerduty(receiver).send(alert(action="resolve")).ok
    assert receiver.requests[0].json() == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": "asset_failed:glucose_entries:TimeoutError",
    }


def test_pagerduty_summary_is_at_most_1024_characters(receiver):
    pagerduty(receiver).send(alert(summary="s" * 5000, error="e" * 20_000))
    payload = receiver.requests[0].json()["payload"]
    assert len(payload["summary"]) == 1024 and payload["summary"].endswith("…")


def test_pagerduty_default_source_is_the_host_name_and_default_url_is_pagerduty():
    import socket

    destination = PagerDutyDestination.from_config("p", {"routing_key": ROUTING_KEY})
    assert destination.config.source == socket.gethostname()
    assert destination.config.url == "https://events.pagerduty.com/v2/enqueue"
    assert destination.min_interval == 0.5


# --- Webhook -----------------------------------------------------------------------------------


def _verify(secret_key: bytes, request: Any) -> bool:
    """Standard Webhooks verification, written independently of the code under test."""
    msg_id = request.headers["webhook-id"]
    timestamp = request.headers["webhook-timestamp"]
    content = f"{msg_id}.{timestamp}.".encode() + request.body
    expected = base64.b64encode(hmac.new(secret_key, content, hashlib.sha256).digest()).decode()
    signatures = [s.split(",", 1)[1] for s in request.headers["webhook-signature"].split()]
    return any(hmac.compare_digest(expected, s) for s in signatures)


def test_webhook_signature_verifies_per_standard_webhooks(receiver):
    key = b"0123456789abcdef0123456789abcdef"
    secret = "whsec_" + base64.b64encode(key).decode()
    destination = webhook(receiver, secret=secret, headers={"X-Team": "data"})

    assert destination.send(alert()).ok
    request = receiver.requests[0]
    assert _verify(key, request)
    assert request.headers["webhook-id"] == "ntf-0001"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["x-team"] == "data"
    body = request.json()
    assert body["version"] == 1 and body["type"] == "alert.trigger"
    assert AlertMessage.from_dict(body["data"]) == alert()
    assert body["data"]["headline"] == "🔴 Asset Materialization Failed"


def test_webhook_secret_without_prefix_is_used_as_raw_bytes(receiver):
    webhook(receiver, secret="plain shared secret").send(alert())
    assert _verify(b"plain shared secret", receiver.requests[0])


def test_webhook_without_secret_sends_no_signature(receiver):
    webhook(receiver).send(alert())
    assert "webhook-signature" not in receiver.requests[0].headers


def test_webhook_id_is_the_same_when_a_notification_is_retried(receiver):
    receiver.respond(503, "busy")
    destination = webhook(receiver, secret="s3cr3t-s3cr3t")

    first = destination.send(alert())
    second = destination.send(alert())

    assert first.retry and not first.ok and second.ok
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert ids == {"ntf-0001"}
    assert all(_verify(b"s3cr3t-s3cr3t", r) for r in receiver.requests)


def test_redirect_is_not_followed_and_is_permanent(receiver):
    receiver.respond(302, headers={"Location": receiver.url_for("/moved/elsewhere")})
    result = webhook(receiver).send(alert())

    assert len(receiver.requests) == 1  # the Location was not requested
    assert not result.ok and not result.retry and result.status_code == 302
    assert "redirects to http://127.0.0.1" in (result.error or "")
    assert "not followed" in (result.error or "")


# --- Alertmanager ------------------------------------------------------------------------------


def test_alertmanager_trigger_posts_one_alert_to_api_v2(receiver):
    assert alertmanager(receiver).send(alert()).ok
    request = receiver.requests[0]
    assert request.path == "/api/v2/alerts"
    (posted,) = request.json()
    assert posted["labels"] == {
        "alertname": "asset_failed",
        "severity": "error",
        "asset": "glucose_entries",
        "fingerprint": "asset_failed:glucose_entries:TimeoutError",
        "source": "lakelens",
    }
    annotations = posted["annotations"]
    assert annotations["summary"] == "glucose_entries failed: Connection timeout after 30s"
    assert annotations["run_id"] == "abc123-def456"
    assert annotations["error"] == "Connection timeout after 30s"
    assert "12 occurrences" in annotations["description"]
    assert posted["startsAt"] == "2024-01-15T09:35:42.000Z"
    # Kept firing for the ttl (3 h): longer than the 60-minute window after which lakelens re-sends.
    ends = datetime.fromisoformat(posted["endsAt"].replace("Z", "+00:00")).timestamp()
    assert 3 * 3600 - 60 < ends - time.time() <= 3 * 3600 + 1
    assert posted["generatorURL"] == "https://lakelens.example.com/assets/glucose_entries"


def test_alertmanager_resolve_sets_ends_at_now(receiver):
    AlertmanagerDestination.from_config("am", {"url": receiver.url + "/"}).send(
        alert(action="resolve")
    )
    (posted,) = receiver.requests[0].json()
    assert receiver.requests[0].path == "/api/v2/alerts"
    from datetime import datetime

    ends = datetime.fromisoformat(posted["endsAt"].replace("Z", "+00:00")).timestamp()
    assert abs(ends - time.time()) < 60


# --- Classification of HTTP outcomes (every HTTP destination) ------------------------------------

HTTP_DESTINATIONS = [slack, pagerduty, webhook, alertmanager]


@pytest.mark.parametrize("make", HTTP_DESTINATIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_server_errors_and_408_are_retried(receiver, make, status):
    receiver.respond(status, "oops")
    result = make(receiver).send(alert())
    assert not result.ok and result.retry and result.status_code == status


@pytest.mark.parametrize("make", HTTP_DESTINATIONS, ids=lambda f: f.__name__)
def test_429_is_retried_after_the_retry_after_header(receiver, make):
    receiver.respond(429, "rate limited", {"Retry-After": "7"})
    result = make(receiver).send(alert())
    assert not result.ok and result.retry and result.retry_after == 7.0


def test_retry_after_as_an_http_date_becomes_seconds(receiver):
    from email.utils import formatdate

    receiver.respond(429, headers={"Retry-After": formatdate(time.time() + 30, usegmt=True)})
    result = webhook(receiver).send(alert())
    assert result.retry and result.retry_after is not None and 25 <= result.retry_after <= 31


@pytest.mark.parametrize("make", HTTP_DESTINATIONS, ids=lambda f: f.__name__)
def test_400_is_permanent_with_the_body_recorded(receiver, make):
    receiver.respond(400, '{"message": "Event object is invalid"}')
    result = make(receiver).send(alert())
    assert not result.ok and not result.retry and result.status_code == 400
    assert result.response == '{"message": "Event object is invalid"}'


@pytest.mark.parametrize("make", HTTP_DESTINATIONS, ids=lambda f: f.__name__)
def test_connection_refused_is_retried(receiver, make):
    destination = make(receiver)
    receiver.stop()
    result = destination.send(alert())
    assert not result.ok and result.retry and result.status_code is None
    assert "Could not connect" in (result.error or "")

    receiver.start()  # back up: the same destination delivers
    assert destination.send(alert()).ok


def test_a_slow_receiver_times_out_and_is_retried(receiver):
    receiver.respond(200, delay=1.0)
    result = webhook(receiver, timeout=0.2).send(alert())
    assert not result.ok and result.retry and "Timed out" in (result.error or "")


@pytest.mark.parametrize("make", HTTP_DESTINATIONS, ids=lambda f: f.__name__)
def test_send_never_raises_on_a_hostile_message(receiver, make):
    """A header-breaking id and unserialisable details become a DeliveryResult, not a crash."""
    message = alert(notification_id="ntf\r\nX-Evil: 1", details={"thing": object()})
    result = make(receiver).send(message)
    assert result.ok or result.error
    assert all("x-evil" not in r.headers for r in receiver.requests)


# --- Secrets stay secret -------------------------------------------------------------------------


def test_describe_masks_the_slack_webhook_url():
    destination = SlackDestination.from_config(
        "team",
        {"url": "https://hooks.slack.com/services/T0001ABCD/B0002EFGH/abcdefghijklmnopqrstuvwx"},
    )
    assert destination.describe() == {
        "name": "team",
        "type": "slack",
        "url": "https://hooks.slack.com/services/****/****/****",
        "channel": None,
    }
    assert "abcdefghij" not in repr(destination) + repr(destination.config)


def test_routing_key_never_appears_in_describe_or_errors(receiver):
    destination = pagerduty(receiver)
    described = json.dumps(destination.describe())
    assert ROUTING_KEY not in described and described.count("****") >= 1

    receiver.respond(400, f'{{"errors": ["bad routing key {ROUTING_KEY}"]}}')  # echoed back
    rejected = destination.send(alert())
    receiver.stop()
    refused = destination.send(alert())
    for result in (rejected, refused):
        assert ROUTING_KEY not in f"{result.error} {result.response}"
    assert "****" in (rejected.response or "")


def test_webhook_secret_and_header_values_are_masked_in_describe(receiver):
    destination = webhook(
        receiver, secret="whsec_" + "A" * 40, headers={"Authorization": "Bearer tok-123456789"}
    )
    described = json.dumps(destination.describe())
    assert "A" * 10 not in described and "tok-123456789" not in described
    assert destination.describe()["headers"] == {"Authorization": "****"}


def test_a_secret_in_the_url_path_is_not_in_connection_errors(receiver):
    secret_url = receiver.url_for("/hooks/SUPERSECRETTOKEN123")
    destination = WebhookDestination.from_config("hook", {"url": secret_url})
    receiver.stop()
    result = destination.send(alert())
    assert "SUPERSECRETTOKEN123" not in (result.error or "")
    assert "/hooks/****" in (result.error or "")


# --- Email -------------------------------------------------------------------------------------


def email_destination(server: Any, **config: Any) -> EmailDestination:
    settings: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "sender": "lakelens <alerts@example.com>",
        "recipients": "oncall@example.com, data-team@example.com",
        "ca_file": server.ca_file,
        "timeout": 5,
    }
    settings.update(config)
    return EmailDestination.from_config("mail", {k: v for k, v in settings.items() if v})


def test_email_has_text_and_escaped_html_parts_for_several_recipients(smtp_server):
    server = smtp_server("starttls")
    message = alert(asset=XSS, error="boom </pre><script>x()</script>")
    result = email_destination(server).send(message)

    assert result.ok, result
    (mail,) = server.messages
    assert server.envelopes == [
        ("alerts@example.com", ["oncall@example.com", "data-team@example.com"])
    ]
    assert mail["Subject"] == "🔴 Asset Materialization Failed"
    assert mail["To"] == "oncall@example.com, data-team@example.com"
    assert mail["Message-ID"] == "<lakelens.ntf-0001@example.com>"
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = mail.get_body(("html",)).get_content()
    assert f"Asset: {XSS}" in text
    assert "Partition: 2024-01-15\nRun ID: abc123-def456" in text
    assert "Timestamp: 2024-01-15 10:35:42 UTC" in text
    assert "<img" not in html and "<script>" not in html and "</pre><script>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert '<a href="https://lakelens.example.com/assets/glucose_entries">' in html


def test_email_message_id_is_stable_across_retries(smtp_server):
    server = smtp_server("starttls")
    destination = email_destination(server)
    server.reply_with("451 4.3.0 Try again later")

    first = destination.send(alert())
    second = destination.send(alert())

    assert first.retry and first.status_code == 451 and second.ok
    assert server.messages[0]["Message-ID"] == "<lakelens.ntf-0001@example.com>"


def test_email_5xx_is_permanent(smtp_server):
    server = smtp_server("starttls")
    server.reply_with("554 5.6.0 Message rejected")
    result = email_destination(server).send(alert())
    assert not result.ok and not result.retry and result.status_code == 554
    assert "554 5.6.0 Message rejected" in (result.error or "")


def test_email_starttls_with_an_untrusted_certificate_fails_closed(smtp_server):
    server = smtp_server("starttls")
    result = email_destination(server, ca_file=None).send(alert())

    assert not result.ok and not result.retry
    assert "certificate" in (result.error or "") and "ca_file" in (result.error or "")
    assert server.messages == []


def test_email_refuses_a_server_without_starttls_unless_plain_is_allowed(smtp_server):
    server = smtp_server("plain")
    refused = email_destination(server).send(alert())
    assert not refused.ok and not refused.retry and "STARTTLS" in (refused.error or "")
    assert server.messages == []

    assert email_destination(server, security="none").send(alert()).ok
    assert len(server.messages) == 1


def test_email_implicit_tls(smtp_server):
    server = smtp_server("tls")
    destination = email_destination(server, security="tls")
    assert destination.send(alert()).ok
    assert len(server.messages) == 1

    untrusted = email_destination(server, security="tls", ca_file=None).send(alert())
    assert not untrusted.ok and "certificate" in (untrusted.error or "")


def test_email_starttls_against_an_implicit_tls_port_fails_without_hanging(smtp_server):
    server = smtp_server("tls")
    result = email_destination(server, timeout=0.5).send(alert())
    assert not result.ok


def test_email_auth_with_user_and_password(smtp_server):
    server = smtp_server("starttls", users={"alice": PASSWORD})
    assert email_destination(server, user="alice", password=PASSWORD).send(alert()).ok
    assert server.logins == ["alice"]

    denied = email_destination(server, user="alice", password="wrong-" + PASSWORD).send(alert())
    assert not denied.ok and not denied.retry and denied.status_code == 535
    assert PASSWORD not in (denied.error or "")
    assert len(server.messages) == 1


def test_email_password_is_masked_in_describe(smtp_server):
    server = smtp_server("starttls")
    destination = email_destination(server, user="alice", password=PASSWORD)
    described = destination.describe()
    assert described["password"] == "****"
    assert PASSWORD not in json.dumps(described) + repr(destination) + repr(destination.config)
    assert described["recipients"] == ["oncall@example.com", "data-team@example.com"]
    assert described["security"] == "starttls"


def test_email_connection_refused_is_retried(smtp_server):
    server = smtp_server("starttls")
    destination = email_destination(server)
    server.stop()
    result = destination.send(alert())
    assert not result.ok and result.retry and "Could not connect" in (result.error or "")


def test_email_subject_and_headers_survive_line_breaks_in_the_alert(smtp_server):
    server = smtp_server("plain")
    message = alert(title="Broken\r\nBcc: victim@example.com", fingerprint="fp\nX: 1")
    assert email_destination(server, security="none").send(message).ok
    (mail,) = server.messages
    assert mail["Bcc"] is None and mail["X"] is None
    assert mail["Subject"] == "🔴 Broken Bcc: victim@example.com"


def test_email_security_defaults_by_port():
    base = {"host": "smtp.example.com", "sender": "a@example.com", "recipients": ["b@example.com"]}
    assert EmailDestination.from_config("m", base).config.port == 587
    assert EmailDestination.from_config("m", base).config.security == "starttls"
    assert EmailDestination.from_config("m", {**base, "port": "465"}).config.security == "tls"
    assert EmailDestination.from_config("m", {**base, "security": "tls"}).config.port == 465
    assert EmailDestination.from_config("m", {**base, "port": 25}).config.security == "starttls"


# --- Registry and configuration errors -----------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "cls"),
    [
        ({"type": "slack", "url": "https://hooks.slack.com/services/T/B/X"}, SlackDestination),
        ({"type": "pagerduty", "routing_key": ROUTING_KEY}, PagerDutyDestination),
        (
            {
                "type": "email",
                "host": "smtp.example.com",
                "sender": "a@example.com",
                "recipients": "b@example.com",
            },
            EmailDestination,
        ),
        ({"type": "webhook", "url": "https://example.com/hook"}, WebhookDestination),
        ({"type": "alertmanager", "url": "http://alertmanager:9093"}, AlertmanagerDestination),
    ],
)
def test_create_destination_by_entry_point(config, cls):
    destination = create_destination("mine", config)
    assert isinstance(destination, cls)
    assert destination.name == "mine" and destination.kind == config["type"]
    assert destination.describe()["type"] == config["type"]


def test_unknown_type_lists_the_known_types():
    with pytest.raises(DestinationConfigError) as info:
        create_destination("ops", {"type": "teams"})
    message = str(info.value)
    assert "'ops'" in message and "'teams'" in message
    assert "alertmanager, email, pagerduty, slack, webhook" in message


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"type": "slack"}, ["'team'", "`url`", "required"]),
        ({"type": "slack", "url": "hooks.slack.com/x"}, ["`url`", "http"]),
        ({"type": "pagerduty"}, ["`routing_key`", "required"]),
        (
            {"type": "pagerduty", "routing_key": "k", "severity_map": {"error": "P2"}},
            ["severity_map"],
        ),
        (
            {"type": "webhook", "url": "https://x.example", "secret": "whsec_!!!"},
            ["`secret`", "base64"],
        ),
        ({"type": "webhook", "url": "https://x.example", "timeout": "soon"}, ["`timeout`"]),
        ({"type": "email", "host": "h", "sender": "a@b.c"}, ["`recipients`", "required"]),
        ({"type": "email", "host": "h", "sender": "a@b.c", "recipients": "x"}, ["`recipients`"]),
        ({"type": "email", "sender": "a@b.c", "recipients": "x@y.z"}, ["`host`"]),
        (
            {
                "type": "email",
                "host": "h",
                "sender": "a@b.c",
                "recipients": "x@y.z",
                "security": "ssl",
            },
            ["`security`"],
        ),
        (
            {"type": "email", "host": "h", "sender": "a@b.c", "recipients": "x@y.z", "user": "u"},
            ["`password`"],
        ),
        (
            {
                "type": "email",
                "host": "h",
                "sender": "a@b.c",
                "recipients": "x@y.z",
                "ca_file": "/nope.pem",
            },
            ["`ca_file`"],
        ),
        ({"type": "alertmanager"}, ["`url`"]),
    ],
)
def test_bad_configuration_is_one_clear_sentence(config, words):
    with pytest.raises(DestinationConfigError) as info:
        create_destination("team", config)
    message = str(info.value)
    assert f"({config['type']})" in message
    for word in words:
        assert word in message
    assert "!!!" not in message  # a (possibly secret) value is never repeated
