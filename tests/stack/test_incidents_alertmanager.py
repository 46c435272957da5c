"""A real Alertmanager keeps an acknowledged lakelens incident active past its ttl (lakelens
refreshes it before endsAt), and resolves it when lakelens does."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import lakelens
from lakelens.alerts.config import AlertingConfig, RuleSettings
from lakelens.alerts.destinations import create_destination
from lakelens.alerts.engine import AlertEngine
from lakelens.alerts.incidents import Policy
from lakelens.alerts.outbox import DeliveryWorker
from lakelens.alerts.triage import acknowledge
from lakelens.testing import recording

TTL = 4  # seconds: Alertmanager resolves an alert whose endsAt has passed


class Down(Exception):
    pass


def _active(am: str) -> list[dict[str, Any]]:
    try:
        alerts = httpx.get(f"{am}/api/v2/alerts", params={"active": "true"}, timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return []
    return [a for a in alerts if a["labels"].get("source") == "lakelens"]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_an_acknowledged_incident_stays_active_in_alertmanager_past_its_ttl(
    tmp_path: Path, require_tool: Any, daemons: Any
) -> None:
    binary = require_tool("prometheus-alertmanager", "apt-get install prometheus-alertmanager")
    (tmp_path / "am.yml").write_text("route:\n  receiver: none\nreceivers:\n  - name: none\n")
    am = daemons(
        "alertmanager",
        lambda port: [
            binary,
            f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        tmp_path / "alertmanager.log",
    ).url  # ready when it listens itself: not another test's Alertmanager on its port
    config = AlertingConfig(
        destinations={"am": {"type": "alertmanager", "url": am, "ttl": TTL}},
        rules=RuleSettings(),
        incident_policy=Policy(group_wait=0),
    )
    destinations = {"am": create_destination("am", config.destinations["am"])}
    with recording(tmp_path / "home") as store:
        try:
            with lakelens.run("load"), lakelens.asset("orders"):
                raise Down("warehouse unreachable")
        except Down:
            pass
        lakelens.flush()

        def cycle() -> None:
            AlertEngine(store, config).evaluate(now=time.time())
            DeliveryWorker(store, destinations).run_once()

        # The first delivery (or the read of it) can miss on a loaded machine: a timed-out post
        # is retried by the outbox, so cycle until Alertmanager has the alert.
        deadline = time.monotonic() + 30
        while not (found := _active(am)):
            assert time.monotonic() < deadline, "Alertmanager never got the incident"
            cycle()
            time.sleep(0.2)
        (alert,) = found
        incident_id = alert["labels"]["fingerprint"]
        acknowledge(store, incident_id, config=config, by="ana")
        # Three ttls with the evaluator running: the incident never leaves Alertmanager.
        end = time.monotonic() + 3 * TTL
        while time.monotonic() < end:
            cycle()
            assert [a["labels"]["fingerprint"] for a in _active(am)] == [incident_id]
            time.sleep(0.5)
        assert _active(am)[0]["annotations"].get("acknowledged") == "true"
        # lakelens resolves it: so does Alertmanager, at once.
        with lakelens.run("load"), lakelens.asset("orders"):
            lakelens.record(rows=1)
        lakelens.flush()
        cycle()
        assert _active(am) == []
