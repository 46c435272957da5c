"""A token anywhere in a webhook URL's path never reaches a screen, a JSON answer or the store."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lakelens.alerts.destinations.base import mask_url
from lakelens.cli.main import app
from lakelens.store import Store, schema

runner = CliRunner()
TOKEN = "123456AAsecretTG"
SECRETS = ("secretTG", "123456", "bot1234")


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (f"https://api.telegram.org/bot{TOKEN}/sendMessage", "https://api.telegram.org/****/****"),
        (
            "https://hooks.slack.com/services/T0001/B0002/abcdefghijkl",
            "https://hooks.slack.com/services/****/****/****",
        ),
        (
            "https://discord.com/api/webhooks/1234567890/tok_en-SECRET",
            "https://discord.com/api/webhooks/****/****",
        ),
        ("https://events.pagerduty.com/v2/enqueue", "https://events.pagerduty.com/v2/enqueue"),
        ("http://am:9093/api/v2/alerts?token=abc", "http://am:9093/api/v2/alerts?****"),
        ("https://user:pw@example.com/MYSECRET", "https://example.com/****"),
    ],
)
def test_mask_url_shows_only_well_known_path_segments(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    return result


def test_a_telegram_style_token_is_shown_nowhere(tmp_path, monkeypatch, receiver) -> None:
    """Issue 13.8: `…/bot123456AAsecretTG/sendMessage` was shown as `…/bot123456AAsecretTG/****`."""
    url = receiver.url_for(f"/bot{TOKEN}/sendMessage")
    monkeypatch.setenv("LAKELENS_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("LAKELENS_ALERT_IN_PROCESS", "0")
    home = str(tmp_path)
    # The receiver fails and echoes the URL it was called on, as some services do.
    receiver.default = replace(receiver.default, status=500, body=f"no route {url}".encode())
    outputs = []
    for args in (("list",), ("list", "--json"), ("test", "-d", "webhook"), ("test", "--json")):
        result = invoke("alerts", *args, "--home", home)
        assert "Traceback" not in result.output, result.output
        outputs.append(result.output)
    assert receiver.requests  # the tests really were sent
    assert "/****/****" in outputs[0]
    assert json.loads(outputs[1])[0]["url"].endswith("/****/****")
    for args in (("history", "--json"), ("history",), ("firing", "--json"), ("status",)):
        outputs.append(invoke("alerts", *args, "--home", home).output)
    store = Store(f"sqlite:///{tmp_path / 'lakelens.db'}")
    n = schema.notifications
    with store.connect() as conn:
        errors = [e for e in conn.execute(sa.select(n.c.last_error)).scalars() if e]
    store.close()
    assert errors and all("500" in e for e in errors)
    for text in [*outputs, *errors]:
        for secret in SECRETS:
            assert secret not in text, text
