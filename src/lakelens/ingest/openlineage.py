"""OpenLineage events (the Marquez-compatible `POST /api/v1/lineage` body) as lakelens events.

| OpenLineage                                   | lakelens                                            |
|-----------------------------------------------|-----------------------------------------------------|
| eventType START / RUNNING / COMPLETE / FAIL / ABORT | run and materialization status started / started / success / failure / canceled |
| eventTime                                     | end time (COMPLETE, FAIL, ABORT); the earliest is the start |
| run.runId                                     | run id (the trace id is `trace_id_for(runId)`)      |
| job namespace + name                          | job `namespace/name`; just `name` in namespace "default" |
| output dataset                                | a materialization per output per run, id derived from runId + asset |
| dataset namespace + name                      | asset `namespace/name` (one slash at the join, `scheme://` kept) |
| inputs x outputs                              | lineage edges (source "openlineage"); `columnLineage` → edge columns and column details (openlineage_columns.py) |
| inputs of a run event                         | a read of each input by the job, once per run (asset usage, analysis/usage.py) |
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

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from lakelens import _clean
from lakelens.errors import InvalidArgumentError
from lakelens.events import Batch, dumps
from lakelens.ingest import Ingested, Rejection, native
from lakelens.ingest.openlineage_columns import column_edges
from lakelens.ingest.openlineage_facets import (
    _MAX_NAME,
    ENGINE_TAG,
    SCHEDULED_END_TAG,
    SCHEDULED_TAG,
    SOURCE,
    _add_tags,
    _checks,
    _error,
    _fit,
    _json_tag,
    _kept,
    _kind,
    _owners,
    _parse_time,
    _partition,
    _run_context_tags,
    _schema,
    _short,
    _symlinks,
    _tests,
    _unmapped,
    _uuid,
    _volume,
    dataset_name,
    job_name,
    schema_hash,
)
from lakelens.model import (
    Asset,
    AssetUsage,
    LineageEdge,
    Materialization,
    Run,
    RunStatus,
)
from lakelens.sdk._runtime import trace_id_for

__all__ = [
    "ENGINE_TAG",
    "SCHEDULED_END_TAG",
    "SCHEDULED_TAG",
    "SOURCE",
    "body_to_ingested",
    "dataset_name",
    "job_name",
    "loads",
    "schema_hash",
    "to_ingested",
]

_STATUS = {
    "START": RunStatus.STARTED,
    "RUNNING": RunStatus.STARTED,
    "COMPLETE": RunStatus.SUCCESS,
    "FAIL": RunStatus.FAILURE,
    "ABORT": RunStatus.CANCELED,
}
_ENDS = frozenset({"COMPLETE", "FAIL", "ABORT"})
_EVENT_TYPES = frozenset({*_STATUS, "OTHER"})
# Column sizes of the store (PostgreSQL enforces them; one oversized value would sink a batch).
_MAX_RUN_ID = 128
_MAX_OWNER = 256
_MAX_DEPTH = 64


# An integer literal of 19 digits or more may be beyond 64 bits, which orjson reads as a float
# where native.loads keeps it whole (and the event is refused for it).
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


class _Rejected(Exception):
    """Why one event cannot be stored; becomes a `Rejection`."""


def body_to_ingested(body: bytes, *, now: float) -> Ingested:
    """A request body (one RunEvent or an array of them) read and converted; see to_ingested."""
    payload, clean = _read(body)
    return to_ingested(payload, now=now, clean=clean)


def loads(body: bytes) -> Any:
    """The body as native.loads reads it, by orjson whenever that gives the same: a RunEvent
    in a fifth of the time. A body with a long digit run, or one orjson refuses (NaN, 1e999,
    a lone surrogate, a BOM, another encoding than UTF-8, malformed JSON), goes to
    native.loads, which also says what is wrong."""
    return _read(body)[0]


def _read(body: bytes) -> tuple[Any, bool]:
    """(the body as `loads` reads it, whether every event in it is already as `_sanitized`
    would make it).

    What orjson read from a body without a 19-digit run passes `_clean.data` unchanged
    unless it holds a NUL (only its escape can make one), text over the limit (none is
    longer than the body) or nesting past _MAX_DEPTH (at most a level per bracket): its
    numbers are in range, and orjson makes no lone surrogate.
    """
    if not _LONG_DIGITS.search(body):
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        else:
            clean = (
                len(body) <= _clean.MAX_TEXT_CHARS
                and b"\\u0000" not in body
                and body.count(b"{") + body.count(b"[") <= _MAX_DEPTH
            )
            return payload, clean
    return native.loads(body), False


def to_ingested(payload: object, *, now: float, clean: bool = False) -> Ingested:
    """Convert one OpenLineage event (a dict) or a list of them; bad events become rejections.

    `now` is the receiving time; OpenLineage events carry their own eventTime, so it only
    keeps the signature the same as the other converters'. `clean`: the events are known to
    be as `_clean.data` leaves them (see `_read`), so they are not copied through it.
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
            parsed = _parse(event, clean=clean)
        except _Rejected as exc:
            result.rejected.append(Rejection(index, str(exc)))
            continue
        _emit(parsed, result.batch, seen)
        result.accepted += 1
    return result


# -- names and hashes shared with other importers -------------------------------------------


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


def _parse(event: object, *, clean: bool = False) -> _Event:
    if not isinstance(event, dict):
        raise _Rejected(f"an event must be a JSON object, not {_kind(event)}")
    if not clean:
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
        columns = column_edges(output.facets.get("columnLineage"))
        for source in event.inputs:
            if source.asset != output.asset:  # a job reading what it rewrites is no lineage
                said = columns.get(source.asset)
                batch.edges.append(
                    LineageEdge(
                        upstream=source.asset,
                        downstream=output.asset,
                        source=SOURCE,
                        columns=(said.columns or None) if said else None,
                        column_details=said.details() if said else None,
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
        facets = _unmapped(output.facets)  # bounded by _fit
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
    written = {output.asset for output in event.outputs}
    for source in event.inputs:
        # Every event of a run may list its inputs: the store keeps one read per run and input.
        if source.asset not in written:
            batch.usage.append(
                AssetUsage(
                    asset=source.asset,
                    reader=event.job,
                    kind="read",
                    time=event.time,
                    run_id=event.run_id,
                    source=SOURCE,
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
