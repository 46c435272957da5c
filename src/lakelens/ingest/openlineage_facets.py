"""What OpenLineage facets say, read into lakelens values: owners, errors, volumes, checks
and tests, schemas, and the facets kept as tags (bounded). Column lineage: openlineage_columns.py."""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from lakelens.errors import InvalidArgumentError
from lakelens.events import Batch
from lakelens.model import CheckResult, SchemaSnapshot
from lakelens.units import parse_severity

if TYPE_CHECKING:
    from lakelens.ingest.openlineage import _Dataset, _Event

SOURCE = "openlineage"

# Run tags read back by the run page, the runs API and `lakelens trace` / `why`.
SCHEDULED_TAG = "openlineage.nominal_start_time"

SCHEDULED_END_TAG = "openlineage.nominal_end_time"

ENGINE_TAG = "openlineage.engine"

_MAX_NAME = 512

_MAX_CHECK_NAME = 256

_MAX_ERROR_TYPE = 256

_MAX_COUNT = 2**63 - 1

# Kept facets: each at most this much JSON; all of a run's tags (or a materialization's kept
# facets) at most the budget, so the 64 KiB cap of events.dumps never truncates the rest.
_MAX_FACET_CHARS = 16 * 1024

_TAG_BUDGET = 48 * 1024

_ISO_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:[.,]([0-9]+))?)?\s*(?:[Zz]|([+-])([0-9]{2}):?([0-9]{2})?)?"
)

# "pkg.Type: message" or "SomeError: message" (optionally after a JVM thread prefix).
_ERROR_TYPE = re.compile(
    r'\s*(?:Exception in thread "[^"]*"\s+)?([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)(?::|\s*$)'
)

_ERROR_SUFFIXES = (
    "Error",
    "Exception",
    "Exit",
    "Interrupt",
    "Failure",
    "Fault",
    "Timeout",
    "Throwable",
)


def dataset_name(namespace: str, name: str) -> str:
    """The lakelens asset name of a dataset: `namespace/name`, with exactly one slash at the join.

    `postgres://db:5432` + `public.orders` → `postgres://db:5432/public.orders`;
    `s3://bucket` + `raw/x` → `s3://bucket/raw/x`; `file` + `/tmp/x` → `file/tmp/x`;
    a namespace ending in `://` keeps it (`file://` + `/tmp/x` → `file:///tmp/x`).
    """
    if not namespace:
        return name
    if namespace.endswith("://"):
        return namespace + name
    return namespace.rstrip("/") + "/" + name.lstrip("/")


def job_name(namespace: str, name: str) -> str:
    """The lakelens job of an OpenLineage job: `namespace/name`, or `name` in "default"."""
    if namespace in ("", "default"):
        return name
    return dataset_name(namespace, name)


def schema_hash(columns: list[tuple[str, str]]) -> str:
    """The hash `lakelens.schema()` gives the same columns (so drift detection compares them)."""
    return hashlib.sha256(json.dumps(sorted(columns)).encode()).hexdigest()[:32]


def _parse_time(text: str) -> datetime | None:
    """An aware UTC datetime for an ISO 8601 date-time (any fraction digits; no zone means UTC)."""
    match = _ISO_TIME.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    try:
        zone = timezone.utc
        if sign:
            offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
            zone = timezone(offset if sign == "+" else -offset)
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int((fraction or "")[:6].ljust(6, "0")),
            tzinfo=zone,
        )
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


def _owners(facet: Any) -> list[dict[str, str]]:
    """[{name, type}] of an ownership facet (job or dataset), in the order given."""
    owners = facet.get("owners") if isinstance(facet, dict) else None
    if not isinstance(owners, list):
        return []
    found = []
    for item in owners:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"].strip():
            owner = {"name": item["name"].strip()}
            if isinstance(item.get("type"), str) and item["type"]:
                owner["type"] = item["type"]
            found.append(owner)
    return found


def _symlinks(facet: Any) -> list[str]:
    """The other names of a dataset (`namespace/name`) from its symlinks facet."""
    identifiers = facet.get("identifiers") if isinstance(facet, dict) else None
    if not isinstance(identifiers, list):
        return []
    names = []
    for item in identifiers:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]:
            namespace = item.get("namespace")
            names.append(
                dataset_name(namespace if isinstance(namespace, str) else "", item["name"])
            )
    return names


def _run_context_tags(facets: dict[str, Any]) -> dict[str, str]:
    """Short tags for what the run page shows: the scheduled (nominal) time, the engine, and
    the jobs this run waits for and triggers (jobDependencies)."""
    tags: dict[str, str] = {}
    nominal = facets.get("nominalTime") or {}
    for key, tag in (("nominalStartTime", SCHEDULED_TAG), ("nominalEndTime", SCHEDULED_END_TAG)):
        moment = _parse_time(nominal[key]) if isinstance(nominal.get(key), str) else None
        if moment is not None:
            tags[tag] = moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    engine = facets.get("processing_engine") or {}
    words = [engine.get(k) for k in ("name", "version")]
    text = " ".join(w.strip() for w in words if isinstance(w, str) and w.strip())
    if text:
        tags[ENGINE_TAG] = text[:_MAX_NAME]
    adapter = engine.get("openlineageAdapterVersion")
    if isinstance(adapter, str) and adapter.strip():
        tags["openlineage.adapter_version"] = adapter.strip()[:_MAX_NAME]
    dependencies = facets.get("jobDependencies") or {}
    for direction in ("upstream", "downstream"):
        jobs = []
        listed = dependencies.get(direction)
        for item in listed if isinstance(listed, list) else []:
            job = item.get("job") if isinstance(item, dict) else None
            if isinstance(job, dict) and isinstance(job.get("name"), str) and job["name"]:
                namespace = job.get("namespace")
                jobs.append(job_name(namespace if isinstance(namespace, str) else "", job["name"]))
        if jobs:
            text = json.dumps(jobs, ensure_ascii=False)
            if len(text) <= _MAX_FACET_CHARS:
                tags[f"openlineage.{direction}_jobs"] = text
    return tags


def _error(facet: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(type, message, traceback, language) from an errorMessage facet."""
    if not isinstance(facet, dict):
        return None, None, None, None
    message = facet.get("message") if isinstance(facet.get("message"), str) else None
    trace = facet.get("stackTrace") if isinstance(facet.get("stackTrace"), str) else None
    language = facet.get("programmingLanguage")
    language = language if isinstance(language, str) else None
    return _error_type(message, trace), message or None, trace or None, language


def _error_type(message: str | None, trace: str | None) -> str | None:
    """The exception class named by the message, or by a Python (last line) or JVM (first line) trace."""
    lines = [line for line in (trace or "").splitlines() if line.strip()]
    candidates = [(message or "").splitlines()[0] if message else ""]
    if lines:
        candidates += [lines[-1], lines[0]]
    for candidate in candidates:
        match = _ERROR_TYPE.match(candidate)
        if match is None:
            continue
        name = match.group(1)
        last = name.rpartition(".")[2]
        if last.endswith(_ERROR_SUFFIXES) or ("." in name and last[:1].isupper()):
            return name[:_MAX_ERROR_TYPE]
    return None


def _partition(facet: Any) -> str | None:
    """The run's nominal start time: a date when it is midnight UTC, else an ISO time."""
    if not isinstance(facet, dict) or not isinstance(facet.get("nominalStartTime"), str):
        return None
    moment = _parse_time(facet["nominalStartTime"])
    if moment is None:
        return None
    if moment.time() == datetime.min.time():
        return moment.date().isoformat()
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _volume(facets: dict[str, Any]) -> tuple[int | None, int | None]:
    """(rows, bytes) of an output: outputStatistics first, then dataQualityMetrics."""
    stats = facets.get("outputStatistics") or {}
    quality = facets.get("dataQualityMetrics") or {}
    rows = _count(stats.get("rowCount"))
    size = _count(stats.get("size"))
    if rows is None:
        rows = _count(quality.get("rowCount"))
    if size is None:
        size = _count(quality.get("bytes"))
    return rows, size


def _rows_seen(facets: dict[str, Any]) -> int | None:
    """The row count any statistics facet reports for a dataset."""
    for name in ("outputStatistics", "inputStatistics", "dataQualityMetrics"):
        facet = facets.get(name)
        if isinstance(facet, dict) and _count(facet.get("rowCount")) is not None:
            return _count(facet.get("rowCount"))
    return None


def _checks(dataset: _Dataset, event: _Event, batch: Batch) -> None:
    """Check results from a dataset's dataQualityAssertions facet."""
    facet = dataset.facets.get("dataQualityAssertions")
    assertions = facet.get("assertions") if isinstance(facet, dict) else None
    if not isinstance(assertions, list):
        return
    total = _rows_seen(dataset.facets)
    for item in assertions:
        if not isinstance(item, dict) or not isinstance(item.get("success"), bool):
            continue
        assertion, column = item.get("assertion"), item.get("column")
        if isinstance(assertion, str) and assertion and isinstance(column, str) and column:
            assertion = f"{assertion}({column})"
        extra = {
            k: v
            for k, v in item.items()
            if k not in ("success", "name", "severity", "description") and v not in (None, {}, [])
        }
        _check(dataset.asset, event, batch, item, item["success"], assertion, total, extra)


def _tests(event: _Event, batch: Batch) -> list[str]:
    """Check results from TestRunFacets (dbt-ol's singular tests); the names of the facets used.

    The facet names no dataset: its results go to the run's one output, else its first input.
    A test facet of a run with no datasets stays a tag.
    """
    datasets = event.outputs or event.inputs
    if not datasets:
        return []
    used = []
    for facet_name, facet in event.run_facets.items():
        tests = facet.get("tests")
        if facet_name != "test" and "/TestRunFacet.json" not in str(facet.get("_schemaURL")):
            continue
        if not isinstance(tests, list):
            continue
        used.append(facet_name)
        for item in tests:
            status = item.get("status") if isinstance(item, dict) else None
            if not isinstance(status, str) or status.lower() not in ("pass", "fail"):
                continue  # "skip": not executed, no result
            assert isinstance(item, dict)
            extra = {
                k: v
                for k, v in item.items()
                if k not in ("status", "name", "severity", "description")
                and v not in (None, {}, [])
            }
            if len(datasets) > 1:
                extra["datasets"] = [d.asset for d in datasets]
            passed = status.lower() == "pass"
            _check(datasets[0].asset, event, batch, item, passed, item.get("type"), None, extra)
    return used


def _check(
    asset: str,
    event: _Event,
    batch: Batch,
    item: dict[str, Any],
    passed: bool,
    kind: object,
    total: int | None,
    attributes: dict[str, Any],
) -> None:
    """One check result; named by `name`, else by its kind (`not_null(id)`)."""
    given = item.get("name")
    if isinstance(given, str) and given:
        name = given
    elif isinstance(kind, str) and kind:
        name = kind
    else:
        return
    if len(name) > _MAX_CHECK_NAME:
        name = name[: _MAX_CHECK_NAME - 1] + "…"
    try:
        severity = parse_severity(item.get("severity") or "warning")
    except InvalidArgumentError:
        severity = "warning"
    description = item.get("description")
    # One run's result for one check on one asset is one result: clients repeat assertions on
    # START, RUNNING and COMPLETE (dbt-ol sends each test on START and COMPLETE), and the
    # latest replaces the earlier ones. Results outside a run are told apart by their time.
    key = event.run_id if event.run_id is not None else "@" + event.time.isoformat()
    batch.checks.append(
        CheckResult(
            id=_uuid("check", key, asset, name),
            asset=asset,
            name=name,
            passed=passed,
            severity=severity,
            time=event.time,
            run_id=event.run_id,
            value=_number(item.get("actual")),
            threshold=_number(item.get("expected")),
            total_rows=total,
            message=description if isinstance(description, str) else None,
            attributes={"source": SOURCE, **attributes},
        )
    )


def _schema(dataset: _Dataset, event: _Event, batch: Batch) -> None:
    facet = dataset.facets.get("schema")
    if not isinstance(facet, dict) or not isinstance(facet.get("fields"), list):
        return
    columns: list[tuple[str, str]] = []
    _flatten_fields(facet["fields"], "", columns)
    if columns:
        batch.schemas.append(
            SchemaSnapshot(
                asset=dataset.asset,
                columns=columns,
                time=event.time,
                hash=schema_hash(columns),
                run_id=event.run_id,
            )
        )


def _flatten_fields(fields: list[Any], prefix: str, out: list[tuple[str, str]]) -> None:
    """Nested struct fields become `parent.child` columns (depth is bounded by _sanitized)."""
    for item in fields:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        name = prefix + item["name"]
        kind = item.get("type")
        out.append((name, kind if isinstance(kind, str) else ""))
        if isinstance(item.get("fields"), list):
            _flatten_fields(item["fields"], name + ".", out)


# -- kept facets ----------------------------------------------------------------------------

_MAPPED_DATASET_FACETS = frozenset({"schema", "dataQualityAssertions"})


def _unmapped(facets: dict[str, Any]) -> dict[str, Any]:
    """Dataset facets stored verbatim (the ones turned into snapshots and checks are not)."""
    return {name: facet for name, facet in facets.items() if name not in _MAPPED_DATASET_FACETS}


def _kept(facets: dict[str, Any]) -> dict[str, Any]:
    """The verbatim dataset facets, each bounded."""
    return {name: _bounded(facet)[0] for name, facet in _unmapped(facets).items()}


def _bounded(facet: Any) -> tuple[Any, str]:
    """The facet and its JSON, or a marker and its JSON when the facet's is too long: one
    encoding serves both the bound and the budget (a one-event request paid three)."""
    text = _json(facet)
    if len(text) <= _MAX_FACET_CHARS:
        return facet, text
    marker = {"_truncated": True, "_chars": len(text)}
    return marker, _json(marker)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _fit(facets: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The facets that fit in _TAG_BUDGET characters of JSON, bounded, and the names of those
    that did not."""
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    used = 0
    for name, facet in facets.items():
        value, text = _bounded(facet)
        size = len(name) + len(text)
        if used + size > _TAG_BUDGET:
            dropped.append(name)
            continue
        kept[name] = value
        used += size
    return kept, dropped


def _json_tag(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _add_tags(tags: dict[str, str], facets: dict[str, Any]) -> None:
    """Store each facet as a JSON tag while the run's tags stay within _TAG_BUDGET."""
    used = sum(len(k) + len(v) for k, v in tags.items())
    dropped = [n for n in tags.get("openlineage.dropped_facets", "").split(",") if n]
    for name, facet in facets.items():
        text = _bounded(facet)[1]
        previous = tags.pop(name, None)
        if previous is not None:
            used -= len(name) + len(previous)
        if used + len(name) + len(text) > _TAG_BUDGET:
            if name not in dropped:
                dropped.append(name)
            continue
        tags[name] = text
        used += len(name) + len(text)
    if dropped:
        tags["openlineage.dropped_facets"] = ",".join(dropped)


# -- small helpers --------------------------------------------------------------------------


def _count(value: object) -> int | None:
    """A non-negative integer that fits the store's BIGINT, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 0 <= value <= _MAX_COUNT:
        return value
    return None


def _number(value: object) -> float | None:
    """A finite float from a number or a numeric string (assertion expected/actual values)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _uuid(*parts: str) -> str:
    """A stable UUID-shaped id, so a retried or repeated event upserts the same row."""
    digest = hashlib.sha256("\x1f".join((SOURCE, *parts)).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), f"a {type(value).__name__}")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
