"""dbt's own log lines, recorded in the lakelens run that invoked dbt."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from lakelens._clean import plain

__all__ = ["log_callback"]

_DBT_LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}
_TESTS = ("test", "unit_test")


def log_callback(event: Any) -> None:
    """A dbtRunner callback: dbt's own log lines join the lakelens run they happen in.

        from dbt.cli.main import dbtRunner
        from lakelens.integrations.dbt import log_callback

        with lakelens.run("orchestrated"):          # or inside a Dagster op's lakelens_run(context)
            dbtRunner(callbacks=[log_callback]).invoke(["build"])

    Lines below LAKELENS_LOG_LEVEL are skipped; outside any lakelens run nothing is recorded.
    """
    from lakelens.sdk._runtime import FRAME, RT

    info = getattr(event, "info", None)
    message = getattr(info, "msg", "") if info is not None else ""
    if not message:
        return
    level = _DBT_LEVELS.get(str(getattr(info, "level", "info")), 20)
    if level < RT.settings.log_level_number:
        return
    run, mat, span = FRAME.get()
    if run is None:
        run = RT.ambient_run()
    if run is None:
        return
    node = getattr(getattr(event, "data", None), "node_info", None)
    asset = (getattr(node, "node_name", "") or None) if node is not None else None
    attributes = {
        "dbt.event": getattr(info, "name", None),
        "dbt.invocation_id": getattr(info, "invocation_id", None),
    }
    if asset is not None and getattr(node, "resource_type", None) in _TESTS:
        # A test's lines belong to the model it tests; the test keeps its name in an attribute.
        attributes["dbt.test"] = asset
        attributes["dbt.unique_id"] = getattr(node, "unique_id", None) or None
        asset = _TESTED.model(str(getattr(node, "unique_id", "") or "")) or asset
    RT.writer.put_log(
        (
            RT.clock(),
            level,
            plain(str(message)),  # dbt colours its messages for terminals
            "dbt",
            run.run_id,
            asset or (mat.name if mat is not None else None),
            run.job,
            span.trace_id if span is not None else run.trace_id,
            span.span_id if span is not None else None,
            {k: v for k, v in attributes.items() if v is not None},
        )
    )


class _TestedModels:
    """Test unique id → the name of the model it tests, from the invocation's manifest.json.

    dbt writes target/manifest.json after parsing, before it runs a node, so the file read at
    a test's first line is the current invocation's. It is read again when it changes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: tuple[str, int] | None = None
        self._models: dict[str, str] = {}

    def model(self, unique_id: str) -> str | None:
        if not unique_id:
            return None
        path = _manifest_path()
        if path is not None:
            with self._lock:
                self._refresh(path)
                found = self._models.get(unique_id)
            if found is not None:
                return found
        if unique_id.startswith("unit_test."):  # unit_test.<package>.<model>.<test>
            parts = unique_id.split(".")
            return parts[2] if len(parts) >= 4 else None
        return None

    def _refresh(self, path: Path) -> None:
        try:
            stamp = (str(path), path.stat().st_mtime_ns)
        except OSError:
            return
        if stamp == self._seen:
            return
        self._seen = stamp
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self._models = {}
            return
        try:
            self._models = _tested_models(manifest)
        except (AttributeError, KeyError, TypeError):  # not a manifest lakelens can read
            self._models = {}


def _tested_models(manifest: dict[str, Any]) -> dict[str, str]:
    """Each test's tested node, as the asset name `lakelens import dbt` gives it."""
    from lakelens.integrations.dbt import _asset_names

    names = _asset_names(manifest)
    tests = {
        uid: node
        for key in ("nodes", "unit_tests")
        for uid, node in (manifest.get(key) or {}).items()
        if isinstance(node, dict) and uid.partition(".")[0] in _TESTS
    }
    found: dict[str, str] = {}
    for uid, node in tests.items():
        attached = node.get("attached_node")
        depends = (node.get("depends_on") or {}).get("nodes") or []
        target = attached if attached in names else next((d for d in depends if d in names), None)
        if target is not None:
            found[uid] = names[target]
    return found


def _manifest_path() -> Path | None:
    """target/manifest.json of the project dbt is running (from dbt's global flags)."""
    try:
        from dbt.flags import get_flags
    except ImportError:
        return None
    flags = get_flags()
    project = getattr(flags, "PROJECT_DIR", None) or os.getcwd()
    target = getattr(flags, "TARGET_PATH", None) or "target"
    return Path(project) / str(target) / "manifest.json"


_TESTED = _TestedModels()
