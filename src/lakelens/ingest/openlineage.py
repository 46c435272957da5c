"""OpenLineage events (the Marquez-compatible `POST /api/v1/lineage` body) as lakelens events.

| OpenLineage                                   | lakelens                                            |
|-----------------------------------------------|-----------------------------------------------------|
| eventType START / RUNNING / COMPLETE / FAIL / ABORT | run and materialization status started / started / success / failure / canceled |
| eventTime                                     | end time (COMPLETE, FAIL, ABORT); the earliest is the start |
| run.runId                                     | run id (the trace id is `trace_id_for(runId)`)      |
| job namespace + name                          | job `namespace/name`; just `name` in namespace "default" |
| output dataset                                | a materialization per output per run, id derived from runId + asset |
| dataset namespace + name                      | asset `namespace/name` (one slash at the join, `scheme://` kept) |
| inputs x outputs                              | lineage edges (source "openlineage"); `columnLineage` → edge columns |
| run facet errorMessage                        | error type / message / traceback of the run and its materializations |
| run facet parent                              | parent run id                                       |
| run facet nominalTime                         | partition (a date at midnight UTC, else ISO time); tags SCHEDULED_TAG / SCHEDULED_END_TAG |
| run facet processing_engine                   | tag ENGINE_TAG "name version", adapter version tag  |
| run facet jobDependencies                     | tags `openlineage.upstream_jobs` / `downstream_jobs` |
| ownership (dataset; job → its outputs)        | asset owner (first name), all owners in asset tags  |
| documentation, symlinks (dataset)             | asset description, asset tag `openlineage.symlinks` |
| outputStatistics, dataQualityMetrics          | rows and bytes of the output's materialization      |
| dataQualityAssertions (inputs or outputs)     | check results on that dataset, one per run + check  |
| run facet test (TestRunFacet)                 | check results on the run's output, else first input |
| schema (inputs or outputs)                    | schema snapshots (same hash as `lakelens.schema()`) |
| any other facet                               | kept as JSON: run tags `openlineage.*`, materialization attributes |

Events with eventType OTHER or none (the spec allows both for metadata-only events), and
static JobEvents (no `run`), contribute lineage, schemas and checks but no run state: they
never open a run that nothing would close. A DatasetEvent registers its dataset (schema,
owner, description).
A FAIL event also adds an ERROR log line (logger "openlineage") to the run.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from lakelens import _clean
from lakelens.errors import InvalidArgumentError
from lakelens.events import Batch, dumps
from lakelens.ingest import Ingested, Rejection
from lakelens.model import (
    Asset,
    CheckResult,
    LineageEdge,
    Materialization,
    Run,
    RunStatus,
    SchemaSnapshot,
)
from lakelens.sdk._runtime import trace_id_for
from lakelens.units import parse_severity

__all__ = [
    "ENGINE_TAG",
    "SCHEDULED_END_TAG",
    "SCHEDULED_TAG",
    "SOURCE",
    "dataset_name",
    "job_name",
    "schema_hash",
    "to_ingested",
]

SOURCE = "openlineage"
_STATUS = {
    "START": RunStatus.STARTED,
    "RUNNING": RunStatus.STARTED,
    "COMPLETE": RunStatus.SUCCESS,
    "FAIL": RunStatus.FAILURE,
    "ABORT": RunStatus.CANCELED,
}
_ENDS = frozenset({"COMPLETE", "FAIL", "ABORT"})
# Run tags read back by the run page, the runs API and `lakelens trace` / `why`.
SCHEDULED_TAG = "openlineage.nominal_start_time"
SCHEDULED_END_TAG = "openlineage.nominal_end_time"
ENGINE_TAG = "openlineage.engine"
_EVENT_TYPES = frozenset({*_STATUS, "OTHER"})
# Column sizes of the store (PostgreSQL enforces them; one oversized value would sink a batch).
_MAX_RUN_ID = 128
_MAX_NAME = 512
_MAX_CHECK_NAME = 256
_MAX_ERROR_TYPE = 256
_MAX_OWNER = 256
_MAX_COUNT = 2**63 - 1
_MAX_DEPTH = 64
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


class _Rejected(Exception):
    """Why one event cannot be stored; becomes a `Rejection`."""


def to_ingested(payload: object, *, now: float) -> Ingested:
    """Convert one OpenLineage event (a dict) or a list of them; bad events become rejections.

    `now` is the receiving time; OpenLineage events carry their own eventTime, so it only
    keeps the signature the same as the other converters'.
    """
    if isinstance(payload, dict):
        events: list[Any] = [payload]
    elif isinstance(payload, list):
        events = payload
    else:
        raise InvalidArgumentError(
            "An OpenLineage request body must be a RunEvent object or an array of them, "
            f"not {_kind(payload)}."
        )
    result = Ingested()
    seen = _Seen()
    for index, event in enumerate(events):
        try:
            parsed = _parse(event)
        except _Rejected as exc:
            result.rejected.append(Rejection(index, str(exc)))
            continue
        _emit(parsed, result.batch, seen)
        result.accepted += 1
    return result


# -- names and hashes shared with other importers -------------------------------------------


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


# -- parsing: everything that can reject an event happens here ------------------------------


@dataclass
class _Dataset:
    asset: str
    namespace: str
    name: str
    facets: dict[str, Any]


@dataclass
class _Event:
    kind: str  # "run", "job" (static JobEvent) or "dataset" (DatasetEvent)
    time: datetime
    event_type: str | None
    run_id: str | None = None
    job: str | None = None
    job_namespace: str = ""
    producer: str | None = None
    run_facets: dict[str, Any] = field(default_factory=dict)
    job_facets: dict[str, Any] = field(default_factory=dict)
    inputs: list[_Dataset] = field(default_factory=list)
    outputs: list[_Dataset] = field(default_factory=list)


def _parse(event: object) -> _Event:
    if not isinstance(event, dict):
        raise _Rejected(f"an event must be a JSON object, not {_kind(event)}")
    event = _sanitized(event)
    time = _event_time(event.get("eventTime"))
    producer = event.get("producer") if isinstance(event.get("producer"), str) else None
    event_type = event.get("eventType")
    if event_type is not None:
        if not isinstance(event_type, str) or event_type.upper() not in _EVENT_TYPES:
            raise _Rejected(
                f"unknown eventType {_short(event_type)}: "
                "use START, RUNNING, COMPLETE, FAIL, ABORT or OTHER"
            )
        event_type = event_type.upper()
    if "run" not in event and "job" not in event and event_type is None and "dataset" in event:
        dataset = _dataset(event.get("dataset"), "dataset", ("facets",))
        return _Event("dataset", time, None, producer=producer, outputs=[dataset])
    job = event.get("job")
    if not isinstance(job, dict):
        raise _Rejected(
            "job is missing" if job is None else f"job must be an object, not {_kind(job)}"
        )
    name = _required(job, "name", "job.name")
    namespace = _string(job, "namespace", "job.namespace") or ""
    joined = job_name(namespace, name)
    if len(joined) > _MAX_NAME:
        raise _Rejected(f"job namespace + name is longer than {_MAX_NAME} characters")
    parsed = _Event(
        "run",
        time,
        event_type,
        job=joined,
        job_namespace=namespace,
        producer=producer,
        job_facets=_facets(job, "facets", "job.facets"),
        inputs=_datasets(event, "inputs", ("facets", "inputFacets")),
        outputs=_datasets(event, "outputs", ("facets", "outputFacets")),
    )
    run = event.get("run")
    if run is None and event_type is None:
        parsed.kind = "job"  # a static JobEvent: lineage only
        return parsed
    if not isinstance(run, dict):
        raise _Rejected(
            "run is missing" if run is None else f"run must be an object, not {_kind(run)}"
        )
    parsed.run_id = _required(run, "runId", "run.runId")
    if len(parsed.run_id) > _MAX_RUN_ID:
        raise _Rejected(f"run.runId is longer than {_MAX_RUN_ID} characters")
    parsed.run_facets = _facets(run, "facets", "run.facets")
    return parsed


def _event_time(value: object) -> datetime:
    if value is None:
        raise _Rejected("eventTime is missing")
    if not isinstance(value, str):
        raise _Rejected(f"eventTime must be an ISO 8601 string, not {_kind(value)}")
    moment = _parse_time(value)
    if moment is None:
        raise _Rejected(f"eventTime {_short(value)} is not an ISO 8601 date and time")
    if moment.year < 1970:
        raise _Rejected(f"eventTime {_short(value)} is before 1970")
    return moment


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


def _string(obj: dict[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise _Rejected(f"{where} must be a string, not {_kind(value)}")
    return value


def _required(obj: dict[str, Any], key: str, where: str) -> str:
    value = _string(obj, key, where)
    if not value:
        raise _Rejected(f"{where} is missing")
    return value


def _facets(obj: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """The facets under `key` that are objects (deleted and null facets are skipped)."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Rejected(f"{where} must be an object, not {_kind(value)}")
    return {
        str(name): facet
        for name, facet in value.items()
        if isinstance(facet, dict) and facet.get("_deleted") is not True
    }


def _datasets(event: dict[str, Any], key: str, facet_keys: tuple[str, ...]) -> list[_Dataset]:
    value = event.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Rejected(f"{key} must be an array, not {_kind(value)}")
    found: dict[str, _Dataset] = {}
    for position, item in enumerate(value):
        dataset = _dataset(item, f"{key}[{position}]", facet_keys)
        if dataset.asset in found:  # listed twice: one dataset, facets merged
            found[dataset.asset].facets.update(dataset.facets)
        else:
            found[dataset.asset] = dataset
    return list(found.values())


def _dataset(item: object, where: str, facet_keys: tuple[str, ...]) -> _Dataset:
    if not isinstance(item, dict):
        raise _Rejected(f"{where} must be an object, not {_kind(item)}")
    name = _required(item, "name", f"{where}.name")
    namespace = _string(item, "namespace", f"{where}.namespace") or ""
    asset = dataset_name(namespace, name)
    if len(asset) > _MAX_NAME:
        raise _Rejected(f"{where}: namespace + name is longer than {_MAX_NAME} characters")
    facets: dict[str, Any] = {}
    for key in facet_keys:
        facets.update(_facets(item, key, f"{where}.{key}"))
    return _Dataset(asset, namespace, name, facets)


def _sanitized(event: dict[str, Any]) -> dict[str, Any]:
    """The event through the boundary (lakelens/_clean.py): clean text, at most _MAX_DEPTH
    levels deep, numbers the store can hold; else the event alone is rejected."""
    try:
        return _clean.data(event, max_depth=_MAX_DEPTH, level=0)
    except _clean.Unfit as exc:
        raise _Rejected(str(exc)) from None


# -- emitting: accepted events become rows --------------------------------------------------


@dataclass
class _Seen:
    """Tags and attributes already given to a run or materialization earlier in this request.

    The store replaces tags and attributes wholesale, so each later event carries the union.
    """

    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # START times, for outputs first listed by a later event of the same run in this request.
    starts: dict[str, datetime] = field(default_factory=dict)


def _emit(event: _Event, batch: Batch, seen: _Seen) -> None:
    for dataset in event.inputs + event.outputs:
        _schema(dataset, event, batch)
    batch.assets.extend(_assets(event))
    if event.kind == "dataset":
        return
    for output in event.outputs:
        columns = _column_lineage(output.facets.get("columnLineage"))
        for source in event.inputs:
            if source.asset != output.asset:  # a job reading what it rewrites is no lineage
                batch.edges.append(
                    LineageEdge(
                        upstream=source.asset,
                        downstream=output.asset,
                        source=SOURCE,
                        columns=columns.get(source.asset),
                        updated_at=event.time,
                    )
                )
    for dataset in event.inputs + event.outputs:
        _checks(dataset, event, batch)
    tests = _tests(event, batch)
    if event.kind != "run" or event.event_type not in _STATUS:
        return
    assert event.run_id is not None and event.job is not None
    status = _STATUS[event.event_type]
    start = event.time if event.event_type == "START" else None
    end = event.time if event.event_type in _ENDS else None
    if start is not None:
        seen.starts[event.run_id] = min(start, seen.starts.get(event.run_id, start))
    error_type, message, traceback, language = _error(event.run_facets.get("errorMessage"))
    partition = _partition(event.run_facets.get("nominalTime"))
    parent = event.run_facets.get("parent")
    parent_run = parent.get("run") if parent else None
    parent_run_id = parent_run.get("runId") if isinstance(parent_run, dict) else None
    if not isinstance(parent_run_id, str) or not 0 < len(parent_run_id) <= _MAX_RUN_ID:
        parent_run_id = None

    tags = seen.tags.setdefault(event.run_id, {})
    tags["openlineage.job_namespace"] = event.job_namespace
    tags.update(_run_context_tags(event.run_facets))
    if event.producer:
        tags["openlineage.producer"] = event.producer
    if language:
        tags["openlineage.error_language"] = language
    mapped = {"errorMessage", *tests}
    kept = {f"openlineage.run.{k}": v for k, v in event.run_facets.items() if k not in mapped}
    kept.update({f"openlineage.job.{k}": v for k, v in event.job_facets.items()})
    # Statistics of inputs describe data this run did not produce: kept, not mapped.
    input_facets = {d.asset: kept_facets for d in event.inputs if (kept_facets := _kept(d.facets))}
    if input_facets:
        kept["openlineage.inputs"] = {**_json_tag(tags.get("openlineage.inputs")), **input_facets}
    _add_tags(tags, kept)
    batch.runs.append(
        Run(
            run_id=event.run_id,
            job=event.job,
            status=status,
            # Clients do send COMPLETE- or FAIL-only runs: whichever event comes first opens
            # the run, and the store keeps the earliest time it was given as the start.
            start_time=event.time,
            end_time=end,
            partition=partition,
            tags=dict(tags),
            trace_id=trace_id_for(event.run_id),
            parent_run_id=parent_run_id,
            error_type=error_type,
            error_message=message,
            error_traceback=traceback,
        )
    )
    for output in event.outputs:
        rows, size = _volume(output.facets)
        mat_id = _uuid("materialization", event.run_id, output.asset)
        attributes = seen.attributes.setdefault(mat_id, {})
        attributes["openlineage.namespace"] = output.namespace
        attributes["openlineage.name"] = output.name
        facets = _kept(output.facets)
        if facets:
            merged = {**attributes.get("openlineage.facets", {}), **facets}
            attributes["openlineage.facets"], dropped = _fit(merged)
            if dropped:
                attributes["openlineage.dropped_facets"] = dropped
        batch.materializations.append(
            Materialization(
                id=mat_id,
                run_id=event.run_id,
                asset=output.asset,
                status=status,
                # None: the store gives it the start of its run.
                start_time=start or seen.starts.get(event.run_id),
                end_time=end,
                partition=partition,
                rows=rows,
                bytes=size,
                error_type=error_type,
                error_message=message,
                error_traceback=traceback,
                attributes=dict(attributes),
            )
        )
    if event.event_type == "FAIL":
        _fail_log(event, error_type, message, traceback, language, batch)


def _fail_log(
    event: _Event,
    error_type: str | None,
    message: str | None,
    traceback: str | None,
    language: str | None,
    batch: Batch,
) -> None:
    assert event.run_id is not None
    if message:
        text = f"Job {event.job} failed: {message}"
    else:
        text = f"Job {event.job} failed (the FAIL event has no errorMessage facet)."
    details = {
        "error_type": error_type,
        "programming_language": language,
        "stack_trace": traceback,
        "outputs": [o.asset for o in event.outputs] or None,
    }
    batch.logs.append(
        (
            event.time.timestamp(),
            40,
            text,
            SOURCE,
            event.run_id,
            event.outputs[0].asset if len(event.outputs) == 1 else None,
            event.job,
            trace_id_for(event.run_id),
            None,
            dumps({k: v for k, v in details.items() if v is not None}),
        )
    )


def _assets(event: _Event) -> list[Asset]:
    """Registry rows for the datasets an event says something about: owner, description, aliases.

    A DatasetEvent always records its dataset. Other datasets get a row only when they carry
    an ownership, documentation or symlinks facet, or (outputs) when the job has owners: the
    job's owners own what it writes unless the dataset names its own.
    """
    job_owners = _owners(event.job_facets.get("ownership"))
    written = {d.asset for d in event.outputs}
    found = []
    for dataset in event.inputs + event.outputs:
        owners = _owners(dataset.facets.get("ownership"))
        if not owners and dataset.asset in written and event.kind != "dataset":
            owners = job_owners
        documentation = dataset.facets.get("documentation") or {}
        description = documentation.get("description")
        description = description if isinstance(description, str) and description else None
        symlinks = _symlinks(dataset.facets.get("symlinks"))
        if event.kind != "dataset" and not (owners or description or symlinks):
            continue
        tags = {}
        if owners:
            tags["openlineage.owners"] = json.dumps(owners, ensure_ascii=False)
        if symlinks:
            tags["openlineage.symlinks"] = json.dumps(symlinks, ensure_ascii=False)
        found.append(
            Asset(
                name=dataset.asset,
                # A name only read stays a source until something writes it (as the store's
                # placeholders do); a DatasetEvent's dataset is an asset.
                kind="asset" if dataset.asset in written else "source",
                owner=owners[0]["name"][:_MAX_OWNER] if owners else None,
                description=description,
                tags=tags,
                updated_at=event.time,
            )
        )
    return found


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


def _column_lineage(facet: Any) -> dict[str, dict[str, list[str]]]:
    """{upstream asset: {output column: [its input columns]}} from a columnLineage facet."""
    fields = facet.get("fields") if isinstance(facet, dict) else None
    if not isinstance(fields, dict):
        return {}
    found: dict[str, dict[str, list[str]]] = {}
    for column, spec in fields.items():
        inputs = spec.get("inputFields") if isinstance(spec, dict) else None
        if not isinstance(inputs, list):
            continue
        for source in inputs:
            if not isinstance(source, dict):
                continue
            namespace, name, field_name = (
                source.get("namespace"),
                source.get("name"),
                source.get("field"),
            )
            if not (isinstance(name, str) and isinstance(field_name, str)):
                continue
            upstream = dataset_name(namespace if isinstance(namespace, str) else "", name)
            targets = found.setdefault(upstream, {}).setdefault(str(column), [])
            if field_name not in targets:
                targets.append(field_name)
    return found


# -- kept facets ----------------------------------------------------------------------------

_MAPPED_DATASET_FACETS = frozenset({"schema", "dataQualityAssertions"})


def _kept(facets: dict[str, Any]) -> dict[str, Any]:
    """Dataset facets stored verbatim (the ones turned into snapshots and checks are not)."""
    return {
        name: _bounded(facet)
        for name, facet in facets.items()
        if name not in _MAPPED_DATASET_FACETS
    }


def _bounded(facet: Any) -> Any:
    text = json.dumps(facet, separators=(",", ":"), ensure_ascii=False)
    if len(text) <= _MAX_FACET_CHARS:
        return facet
    return {"_truncated": True, "_chars": len(text)}


def _fit(facets: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The facets that fit in _TAG_BUDGET characters of JSON, and the names of those that did not."""
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    used = 0
    for name, facet in facets.items():
        value = _bounded(facet)
        size = len(name) + len(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
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
        text = json.dumps(_bounded(facet), separators=(",", ":"), ensure_ascii=False)
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
