"""What a dbt invocation did, from run_results.json and sources.json: the run, each node's
materialization, test results and source freshness as check results; and the small value
readers every dbt artifact needs."""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, overload

from lakelens.model import CheckResult, Materialization, Run, RunStatus
from lakelens.units import format_duration

if TYPE_CHECKING:
    from lakelens.integrations.dbt import _Converted

SOURCE = "dbt"

FRESHNESS_CHECK = "source_freshness"

_ASSET_RESOURCES = ("model", "seed", "snapshot")

# Commands whose node results built relations; `dbt compile` or `docs generate` results did not.
_BUILDING = frozenset({"run", "build", "seed", "snapshot", "retry"})

_COMMANDS = {
    "generate": "docs generate",
    "freshness": "source freshness",
    "source-freshness": "source freshness",
}

_MATERIALIZATION_STATUS = {
    "success": RunStatus.SUCCESS,
    "error": RunStatus.FAILURE,
    "runtime error": RunStatus.FAILURE,
    "partial success": RunStatus.FAILURE,
    "skipped": RunStatus.SKIPPED,
}

_FAILED = frozenset({"error", "fail", "runtime error", "partial success"})

_PERIOD_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}

_THRESHOLD = re.compile(r"\s*(?:!=|<>|>=|<=|==|=|>|<)?\s*(-?\d+(?:\.\d+)?)\s*")

_ERROR_KIND = re.compile(r"\s*([A-Z][A-Za-z]*(?: [A-Z][A-Za-z]*)?) Error\b")

# Column sizes of the store (PostgreSQL enforces them).
_MAX_NAME = 512

_MAX_SHORT = 256

_MAX_RUN_ID = 128


def _sla(freshness: Any) -> tuple[float | None, float | None, float | None]:
    """(SLA, warn_after, error_after) in seconds; the SLA is warn_after, else error_after."""
    config = _dict(freshness)
    warn, error = _after(config.get("warn_after")), _after(config.get("error_after"))
    return (warn if warn is not None else error), warn, error


def _after(value: Any) -> float | None:
    spec = _dict(value)
    count, period = spec.get("count"), spec.get("period")
    if isinstance(count, bool) or not isinstance(count, (int, float)) or count <= 0:
        return None
    seconds = _PERIOD_SECONDS.get(str(period).lower())
    return float(count * seconds) if seconds else None


# -- run_results.json -----------------------------------------------------------------------


def _run(
    doc: dict[str, Any], manifest: dict[str, Any], names: dict[str, str], out: _Converted
) -> None:
    args = _dict(doc.get("args"))
    which = _text(args.get("which"))
    command = _COMMANDS.get(which or "", which)
    run = _invocation(doc, manifest, f"dbt {command}" if command else "dbt")
    run.tags.update(
        (key, value)
        for key, value in (
            ("dbt.command", _text(args.get("invocation_command"))),
            ("dbt.target", _text(args.get("target"))),
            ("dbt.select", " ".join(str(s) for s in _list(args.get("select")))),
        )
        if value
    )
    nodes, unit_tests = _dict(manifest.get("nodes")), _dict(manifest.get("unit_tests"))
    results = [r for r in _list(doc.get("results")) if isinstance(r, dict)]
    failed: list[str] = []
    rows: dict[str, int] = {}
    for result in results:
        uid = _text(result.get("unique_id")) or ""
        status = _text(result.get("status")) or ""
        kind = _dict(nodes.get(uid)).get("resource_type") or uid.partition(".")[0]
        if status in _FAILED:
            label = names.get(uid) or _text(_dict(nodes.get(uid)).get("name")) or uid
            failed.append(f"{label}: {_first_line(result.get('message')) or status}")
            if run.error_type is None and kind != "test":
                run.error_type = _error_type(result.get("message"))
        if kind in _ASSET_RESOURCES and uid in names and (which in _BUILDING or which is None):
            mat = _materialization(result, run, names[uid], status)
            out.batch.materializations.append(mat)
            if mat.rows is not None:
                rows[uid] = mat.rows
    # Tests after materializations: a test's total rows is its model's row count in this run.
    for result in results:
        uid = _text(result.get("unique_id")) or ""
        if uid.startswith("source.") and "max_loaded_at" in result:
            _observation(result, run, manifest, names, out)
        elif uid.partition(".")[0] in ("test", "unit_test"):
            test = _dict(nodes.get(uid)) or _dict(unit_tests.get(uid))
            check = _check(result, uid, test, run, names, rows)
            if check is not None:
                out.batch.checks.append(check)
    if failed:
        more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
        run.status = RunStatus.FAILURE
        run.error_type = run.error_type or "dbt.TestFailure"
        run.error_message = (
            f"{len(failed)} of {len(results)} dbt nodes failed: {'; '.join(failed[:3])}{more}"
        )
    out.batch.runs.append(run)


def _invocation(doc: dict[str, Any], manifest: dict[str, Any], job: str) -> Run:
    """The run of one dbt invocation (successful until a result says otherwise)."""
    from lakelens.sdk._runtime import trace_id_for

    metadata = doc["metadata"]
    run_id = _cut(metadata["invocation_id"], _MAX_RUN_ID)
    # dbt writes its artifacts as the invocation ends; dbt 1.8+ also records when it began.
    end = _time(metadata.get("generated_at"))
    start = _time(metadata.get("invocation_started_at"))
    elapsed = _number(doc.get("elapsed_time"))
    if start is None and end is not None and elapsed is not None:
        start = end - timedelta(seconds=elapsed)
    tags = {
        "dbt.version": _text(metadata.get("dbt_version")),
        "dbt.project": _text(manifest["metadata"].get("project_name")),
        "dbt.adapter": _text(manifest["metadata"].get("adapter_type")),
    }
    return Run(
        run_id=run_id,
        job=_cut(job, _MAX_NAME),
        status=RunStatus.SUCCESS,
        start_time=start,
        end_time=end,
        tags={k: v for k, v in tags.items() if v},
        correlation_id=run_id,
        trace_id=trace_id_for(run_id),
        # The lakelens run that started dbt, passed as DBT_ENV_CUSTOM_ENV_LAKELENS_RUN_ID.
        parent_run_id=_cut(_text(_dict(metadata.get("env")).get("LAKELENS_RUN_ID")), _MAX_RUN_ID),
    )


def _materialization(result: dict[str, Any], run: Run, asset: str, status: str) -> Materialization:
    start, end = _timing(result.get("timing"))
    response = _dict(result.get("adapter_response"))
    failed = status in _FAILED
    batches = _dict(result.get("batch_results"))  # microbatch models (dbt 1.9+)
    attributes: dict[str, Any] = {
        "dbt.unique_id": result.get("unique_id"),
        "dbt.status": status,
        "dbt.thread_id": result.get("thread_id"),
        "dbt.execution_time": _number(result.get("execution_time")),
        "dbt.message": None if failed else _text(result.get("message")),
        "dbt.adapter_response": response or None,
        "dbt.batches_successful": _size(batches.get("successful")),
        "dbt.batches_failed": _size(batches.get("failed")),
    }
    return Materialization(
        id=_id("materialization", run.run_id, str(result.get("unique_id"))),
        run_id=run.run_id,
        asset=asset,
        status=_MATERIALIZATION_STATUS.get(status, RunStatus.SKIPPED),
        # A skipped node has no timing: it belongs to the run's start.
        start_time=start or run.start_time,
        end_time=end,
        rows=_count(response.get("rows_affected")),
        error_type=_error_type(result.get("message")) if failed else None,
        error_message=_text(result.get("message")) if failed else None,
        attributes={k: v for k, v in attributes.items() if v is not None},
    )


def _check(
    result: dict[str, Any],
    uid: str,
    test: dict[str, Any],
    run: Run,
    names: dict[str, str],
    rows: dict[str, int],
) -> CheckResult | None:
    status = _text(result.get("status")) or ""
    if status not in ("pass", "fail", "warn", "error"):
        return None  # skipped: the test did not run
    deps = [d for d in _list(_dict(test.get("depends_on")).get("nodes")) if d in names]
    attached = _text(test.get("attached_node"))
    target = attached if attached in names else (deps[0] if deps else None)
    if target is None:
        return None
    config = _dict(test.get("config"))
    configured = (_text(config.get("severity")) or "error").lower()
    unit = uid.startswith("unit_test.")
    # A test configured `error` whose failures only reach warn_if ends as "warn": a warning.
    if status == "warn" or (status == "pass" and configured == "warn" and not unit):
        severity = "warning"
    else:
        severity = "error"
    failures = _count(result.get("failures"))
    total = rows.get(target) if failures is not None else None
    _, end = _timing(result.get("timing"))
    attributes = {
        "dbt.unique_id": uid,
        "dbt.status": status,
        "dbt.test_type": "unit"
        if unit
        else (_text(_dict(test.get("test_metadata")).get("name")) or "singular"),
        "dbt.column": _text(test.get("column_name")),
        "dbt.failures": failures,
        "dbt.severity": configured,
        "dbt.warn_if": _text(config.get("warn_if")),
        "dbt.error_if": _text(config.get("error_if")),
        "dbt.execution_time": _number(result.get("execution_time")),
    }
    return CheckResult(
        id=_id("check", run.run_id, uid),
        asset=names[target],
        name=_cut(_text(test.get("name")) or uid.split(".")[-1 if unit else -2], _MAX_SHORT),
        passed=status == "pass",
        severity=severity,
        time=end or run.end_time,
        run_id=run.run_id,
        value=float(failures) if failures is not None else None,
        threshold=_threshold(config.get("error_if" if severity == "error" else "warn_if")),
        valid_rows=max(total - failures, 0) if total is not None and failures is not None else None,
        total_rows=total,
        message=_text(result.get("message")),
        attributes={k: v for k, v in attributes.items() if v is not None},
    )


# -- sources.json ---------------------------------------------------------------------------


def _freshness(
    doc: dict[str, Any], manifest: dict[str, Any], names: dict[str, str], out: _Converted
) -> None:
    run = _invocation(doc, manifest, "dbt source freshness")
    broken = []
    for result in _list(doc.get("results")):
        if isinstance(result, dict) and isinstance(result.get("unique_id"), str):
            _observation(result, run, manifest, names, out)
            if result.get("status") == "runtime error":
                broken.append(result["unique_id"])
    # Stale sources fail their checks; only a freshness query that could not run fails the run.
    if broken:
        run.status = RunStatus.FAILURE
        run.error_type = "dbt.RuntimeError"
        run.error_message = f"The freshness query failed for {', '.join(broken)}."
    if all(r.run_id != run.run_id for r in out.batch.runs):
        out.batch.runs.append(run)


def _observation(
    result: dict[str, Any],
    run: Run,
    manifest: dict[str, Any],
    names: dict[str, str],
    out: _Converted,
) -> None:
    """One source freshness result: a `source_freshness` check and the source's last load."""
    uid = result["unique_id"]
    asset = names.get(uid) or _cut(".".join(uid.split(".")[2:]) or uid, _MAX_NAME)
    status = _text(result.get("status")) or "runtime error"
    source = _dict(_dict(manifest.get("sources")).get(uid))
    criteria = _dict(result.get("criteria")) or _dict(
        source.get("freshness") or _dict(source.get("config")).get("freshness")
    )
    sla, warn, error = _sla(criteria)
    # A passing source is checked at the severity of its SLA: warn_after's when it has one.
    as_error = status in ("error", "runtime error") or (status != "warn" and warn is None)
    age = _number(result.get("max_loaded_at_time_ago_in_s"))
    bounds = [
        f"{label} after {format_duration(seconds)}"
        for label, seconds in (("warn", warn), ("error", error))
        if seconds is not None
    ]
    if status == "runtime error":
        message = _text(result.get("error")) or _text(result.get("message"))
    elif age is not None:
        detail = f" ({', '.join(bounds)})" if bounds else ""
        message = f"{asset} was last loaded {format_duration(age)} ago{detail}."
    else:
        message = None
    attributes = {
        "dbt.unique_id": uid,
        "dbt.status": status,
        "dbt.max_loaded_at": _text(result.get("max_loaded_at")),
        "dbt.snapshotted_at": _text(result.get("snapshotted_at")),
        "dbt.warn_after_seconds": warn,
        "dbt.error_after_seconds": error,
        "dbt.filter": _text(criteria.get("filter")),
    }
    out.batch.checks.append(
        CheckResult(
            id=_id("freshness", run.run_id, uid),
            asset=asset,
            name=FRESHNESS_CHECK,
            passed=status == "pass",
            severity="error" if as_error else "warning",
            time=_time(result.get("snapshotted_at"))
            or _timing(result.get("timing"))[1]
            or run.end_time,
            run_id=run.run_id,
            value=age,
            threshold=sla,
            message=message,
            attributes={k: v for k, v in attributes.items() if v is not None},
        )
    )
    loaded = _time(result.get("max_loaded_at"))
    if loaded is not None and status != "runtime error":
        out.loads[asset] = max(loaded.timestamp(), out.loads.get(asset, 0.0))


# -- small helpers --------------------------------------------------------------------------


def _timing(value: Any) -> tuple[datetime | None, datetime | None]:
    """(start, end) of the execute phase, else of all phases together."""
    phases = [p for p in _list(value) if isinstance(p, dict)]
    for phase in phases:
        if phase.get("name") == "execute":
            start, end = _time(phase.get("started_at")), _time(phase.get("completed_at"))
            if start is not None:
                return start, end
    starts = [t for p in phases if (t := _time(p.get("started_at"))) is not None]
    ends = [t for p in phases if (t := _time(p.get("completed_at"))) is not None]
    return (min(starts) if starts else None), (max(ends) if ends else None)


def _time(value: Any) -> datetime | None:
    """An aware UTC datetime from dbt's ISO 8601 text (no zone means UTC)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.10's fromisoformat wants exactly 3 or 6 fraction digits.
    text = re.sub(r"\.(\d+)", lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _error_type(message: Any) -> str | None:
    """'Database Error in model x' → 'dbt.DatabaseError'."""
    match = _ERROR_KIND.match(message) if isinstance(message, str) else None
    if match is None:
        return "dbt.Error" if message else None
    return "dbt." + match.group(1).replace(" ", "") + "Error"


def _threshold(condition: Any) -> float | None:
    match = _THRESHOLD.fullmatch(condition) if isinstance(condition, str) else None
    return float(match.group(1)) if match else None


def _schema_hash(columns: list[tuple[str, str]]) -> str:
    """The hash `lakelens.schema()` gives the same columns (so drift detection compares them)."""
    return hashlib.sha256(json.dumps(sorted(columns)).encode()).hexdigest()[:32]


def _id(*parts: str) -> str:
    """A stable UUID-shaped id, so importing the same artifacts again upserts the same rows."""
    digest = hashlib.sha256("\x1f".join((SOURCE, *parts)).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, list) else None


def _first_line(value: Any) -> str | None:
    text = _text(value)
    return text.strip().splitlines()[0][:200] if text and text.strip() else None


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value >= 2**63:
        return None
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@overload
def _cut(value: str, size: int) -> str: ...
@overload
def _cut(value: str | None, size: int) -> str | None: ...
def _cut(value: str | None, size: int) -> str | None:
    if value is None or len(value) <= size:
        return value
    return value[: size - 1] + "…"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [value]
    return value if isinstance(value, list) else []
