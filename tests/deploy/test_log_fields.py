"""The shipped Alloy pipeline extracts exactly the fields lakelens' JSON log lines carry."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import lakelens
from lakelens.config import load_settings

ALLOY = Path(__file__).parents[2] / "deploy" / "alloy" / "config.alloy"


def _json_expressions() -> dict[str, str]:
    text = ALLOY.read_text(encoding="utf-8")
    block = re.search(r"stage\.json\s*\{\s*expressions\s*=\s*\{(?P<body>[^}]*)\}", text)
    assert block, "config.alloy has no stage.json expressions block"
    return dict(re.findall(r'(\w+)\s*=\s*"([^"]+)"', block.group("body")))


def test_every_extracted_field_is_in_a_real_line(tmp_path, capsys) -> None:
    lakelens.configure(settings=load_settings(home=str(tmp_path), log_format="json"))
    log = lakelens.get_logger("orders")
    with lakelens.run("nightly"), lakelens.asset("raw.orders"), lakelens.span("fetch"):
        log.warning("slow response", ms=900)
    lakelens.flush()
    lakelens.configure(settings=load_settings(home=str(tmp_path / "x"), log_format="none"))
    printed = capsys.readouterr().err.splitlines()
    line = json.loads(next(text for text in printed if "slow response" in text))
    expressions = _json_expressions()
    # Loki/Alloy need these, under the names the SDK writes.
    assert {"level", "event", "timestamp", "run_id", "asset"} <= set(expressions.values())
    missing = [source for source in expressions.values() if source not in line]
    assert missing == [], f"config.alloy reads fields lakelens does not write: {missing}"
    assert (
        line["level"] == "warning"
        and line["event"] == "slow response"
        and line["asset"] == "raw.orders"
    )
    # stage.timestamp parses RFC 3339 with fractional seconds and an offset.
    assert datetime.fromisoformat(line["timestamp"]).utcoffset() is not None


def test_labels_stay_bounded() -> None:
    text = ALLOY.read_text(encoding="utf-8")
    labels = re.search(r"stage\.labels\s*\{\s*values\s*=\s*\{(?P<body>[^}]*)\}", text)
    assert labels and set(re.findall(r"(\w+)\s*=", labels.group("body"))) == {
        "level",
        "asset",
        "job",
    }
