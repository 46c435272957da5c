"""The rows the store's writes bind, built from model values: one dict or tuple per row, and
a batch's events folded per key as the upserts would fold them (`_merge`, `_asset_rows`,
`_check_rows`, `_edge_rows`, `_observed_rows`), with the column orders of the appended tables.
The statements they feed: statements.py; the transaction that writes them: writes.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from lakelens import _clean
from lakelens.events import Batch, dumps, usage_id
from lakelens.model import (
    Asset,
    AssetUsage,
    CheckResult,
    Materialization,
    Profile,
    Run,
    RunStatus,
    to_epoch,
)


def _merge(rows: Iterable[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Fold several events for one key into one row: later non-null values win, except that the
    earliest start wins and a terminal status sticks (as in the upsert)."""
    merged: dict[Any, dict[str, Any]] = {}
    for row in rows:
        current = merged.get(row[key])
        if current is None:
            merged[row[key]] = row
            continue
        for name, value in row.items():
            if value is None:
                continue
            if name == "start_time" and current.get(name) is not None:
                current[name] = min(current[name], value)
                continue
            if (
                name == "status"
                and current.get("status") in RunStatus.TERMINAL
                and value not in RunStatus.TERMINAL
            ):
                continue
            current[name] = value
    return list(merged.values())


def _run_row(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "job": run.job,
        "status": run.status,
        "start_time": to_epoch(run.start_time),
        "end_time": to_epoch(run.end_time),
        "partition": run.partition,
        "trigger": run.trigger,
        "tags": dumps(run.tags),
        "correlation_id": run.correlation_id,
        "trace_id": run.trace_id,
        "parent_run_id": run.parent_run_id,
        "error_type": run.error_type,
        "error_message": run.error_message,
        "error_traceback": run.error_traceback,
    }


def _materialization_row(mat: Materialization) -> dict[str, Any]:
    start, end = to_epoch(mat.start_time), to_epoch(mat.end_time)
    return {
        "id": mat.id,
        "run_id": mat.run_id,
        "asset": mat.asset,
        "status": mat.status,
        "start_time": start,
        "end_time": end,
        "duration": end - start if start is not None and end is not None else None,
        "partition": mat.partition,
        "rows": mat.rows,
        "bytes": mat.bytes,
        "inserts": mat.inserts,
        "updates": mat.updates,
        "cpu_seconds": mat.cpu_seconds,
        "peak_memory_bytes": mat.peak_memory_bytes,
        "error_type": mat.error_type,
        "error_message": mat.error_message,
        "error_traceback": mat.error_traceback,
        "attributes": dumps(mat.attributes),
    }


def _asset_row(asset: Asset) -> dict[str, Any]:
    return {
        "name": asset.name,
        "kind": asset.kind,
        "owner": asset.owner,
        "layer": asset.layer,
        "group_name": asset.group,
        "description": asset.description,
        "freshness_seconds": asset.freshness_seconds,
        "availability_target": asset.availability_target,
        "expected_rows": asset.expected_rows,
        "critical": asset.critical,
        "tags": _tags(asset.tags),
        "updated_at": to_epoch(asset.updated_at),
    }


def _tags(tags: dict[str, str]) -> str | None:
    # The upsert merges the stored tags as JSON (jsonb on PostgreSQL, which refuses \u0000):
    # importers' tags pass the text boundary the SDK's and OpenLineage's already passed.
    return dumps({_text(k): _text(v) for k, v in tags.items()})


def _text(value: Any) -> Any:
    return _clean.text(value) if type(value) is str else value


# Kinds a writer infers rather than states: the SDK's default, and OpenLineage's "read, so a
# source" / "written, so an asset". They never replace a stated kind (dbt's `model`, a
# declared `dashboard`), and `source` never replaces `asset` (once written, no mere source).
INFERRED_KINDS = ("asset", "source")


def kept_kind(stored: str, given: str) -> str:
    """The kind an asset row keeps when `given` arrives for it (the upsert's rule, in Python)."""
    if given in INFERRED_KINDS and stored not in INFERRED_KINDS:
        return stored
    return stored if (given, stored) == ("source", "asset") else given


def _asset_rows(assets: Sequence[Asset]) -> list[dict[str, Any]]:
    """One row per asset, folded as the upsert would: later values win, tags merge, and an
    inferred kind never replaces a stated one."""
    rows = _merge((_asset_row(a) for a in assets), "name")
    if len(rows) < len(assets):
        tags: dict[str, dict[str, str]] = {}
        kinds: dict[str, str] = {}
        for a in assets:
            tags.setdefault(a.name, {}).update(a.tags)
            kinds[a.name] = kept_kind(kinds[a.name], a.kind) if a.name in kinds else a.kind
        for row in rows:
            row["tags"] = _tags(tags[row["name"]])
            row["kind"] = kinds[row["name"]]
    return rows


def _check_row(check: CheckResult) -> tuple[Any, ...]:
    return (
        check.id,
        check.run_id,
        check.asset,
        check.name,
        check.passed,
        check.severity,
        to_epoch(check.time),
        check.value,
        check.threshold,
        check.valid_rows,
        check.total_rows,
        check.message,
        dumps(check.attributes),
    )


def _check_rows(checks: Sequence[CheckResult]) -> list[tuple[Any, ...]]:
    """One row per check id, the latest by time (PostgreSQL refuses to upsert a row twice in
    one statement)."""
    latest: dict[str, CheckResult] = {}
    for check in checks:
        earlier = latest.get(check.id)
        if earlier is None or (to_epoch(check.time) or 0) >= (to_epoch(earlier.time) or 0):
            latest[check.id] = check
    return [_check_row(c) for c in latest.values()]


_CHECK_COLUMNS = (
    "id",
    "run_id",
    "asset",
    "name",
    "passed",
    "severity",
    "time",
    "value",
    "threshold",
    "valid_rows",
    "total_rows",
    "message",
    "attributes",
)
_METRIC_COLUMNS = ("time", "name", "kind", "value", "labels", "run_id", "asset")
_PROFILE_COLUMNS = ("asset", "run_id", "time", "row_count", "sampled_rows", "source", "columns")
# One encoder for profiles: not events.dumps, whose size cap would cut a wide profile into a
# preview (the profiler bounds its own size: columns, top values and text are capped).
_encode_profile = json.JSONEncoder(
    default=str, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def profile_row(profile: Profile) -> tuple[Any, ...]:
    """The `profiles` row of a profile; its `columns` text is {"columns": {...}, "error": ...}."""
    document: dict[str, Any] = {"columns": profile.columns}
    if profile.error:
        document["error"] = profile.error
    return (
        profile.asset,
        profile.run_id,
        to_epoch(profile.time) if profile.time is not None else time.time(),
        profile.row_count,
        profile.sampled_rows,
        profile.source,
        _encode_profile(document),
    )


_OBSERVATION_COLUMNS = (
    "asset",
    "monitor",
    "time",
    "row_count",
    "row_count_estimated",
    "bytes",
    "modified_at",
    "modified_source",
)

_USAGE_COLUMNS = ("asset", "time", "kind", "reader", "run_id", "count", "source")


def _usage_rows(usage: Sequence[AssetUsage]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(rows of runs' uses with their fixed id, other rows), each run's use once."""
    now = time.time()
    once: dict[int, tuple[Any, ...]] = {}
    others: list[tuple[Any, ...]] = []
    for u in usage:
        when = now if u.time is None else to_epoch(u.time)
        row = (u.asset, when, u.kind, u.reader, u.run_id, u.count, u.source)
        if u.run_id is None:
            others.append(row)
        else:
            once.setdefault(usage_id(u.kind, u.asset, u.run_id), row)
    return [(key, *row) for key, row in once.items()], others


# The columns of a run known only from OTLP (statements._OBSERVED_RUNS_SQL).
_OBSERVED_KEYS = (
    "run_id",
    "job",
    "status",
    "start_time",
    "end_time",
    "tags",
    "trace_id",
    "error_message",
)


def _observed_rows(runs: Iterable[Run]) -> list[dict[str, Any]]:
    """One row per run id (as statements._OBSERVED_RUNS_SQL would fold them one by one)."""
    rows: dict[str, dict[str, Any]] = {}
    for run in runs:
        row = {k: v for k, v in _run_row(run).items() if k in _OBSERVED_KEYS}
        current = rows.get(run.run_id)
        if current is None:
            rows[run.run_id] = row
            continue
        for name, pick in (("start_time", min), ("end_time", max)):
            values = [v for v in (current[name], row[name]) if v is not None]
            current[name] = pick(values) if values else None
        if RunStatus.FAILURE in (current["status"], row["status"]):
            current["status"] = RunStatus.FAILURE
        elif row["status"] == RunStatus.SUCCESS:
            current["status"] = RunStatus.SUCCESS
        for name in ("trace_id", "error_message"):
            current[name] = current[name] or row[name]
    return list(rows.values())


def _placeholders(batch: Batch) -> list[dict[str, Any]]:
    """Registry rows for asset names this batch mentions but does not define."""
    defined = {a.name for a in batch.assets}
    kinds: dict[str, str] = {}
    for edge in batch.edges:
        kinds.setdefault(edge.upstream, "source")
        kinds[edge.downstream] = "asset"
    for mat in batch.materializations:
        kinds[mat.asset] = "asset"
    for check in batch.checks:
        kinds.setdefault(check.asset, "asset")
    for profile in batch.profiles:
        kinds.setdefault(profile.asset, "asset")
    for use in batch.usage:
        # A dashboard reporting its own views; anything else read is someone's source.
        own_views = use.kind == "view" and use.reader == use.asset
        kinds.setdefault(use.asset, "dashboard" if own_views else "source")
    return [{"name": name, "kind": kind} for name, kind in kinds.items() if name not in defined]


def _edge_rows(batch: Batch) -> list[dict[str, Any]]:
    """One row per edge; as in the upsert, a later edge without columns (nor their details)
    keeps the earlier ones."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for e in batch.edges:
        key = (e.upstream, e.downstream, e.source)
        row = {
            "upstream": e.upstream,
            "downstream": e.downstream,
            "source": e.source,
            "columns": dumps(e.columns),
            "column_details": dumps(e.column_details),
            "updated_at": to_epoch(e.updated_at),
        }
        earlier = rows.get(key)
        if earlier is not None and row["columns"] is None and row["column_details"] is None:
            row["columns"], row["column_details"] = earlier["columns"], earlier["column_details"]
        rows[key] = row
    return list(rows.values())
