"""dbt artifacts (`manifest.json`, `run_results.json`, `sources.json`) as lakelens events.

`import_artifacts("target")` reads what dbt wrote into its target directory and stores it in
one transaction. It needs only the JSON files, not dbt itself. Every id is derived from the
dbt invocation id and node unique id, so importing the same artifacts again changes nothing.

| dbt                                              | lakelens                                          |
|--------------------------------------------------|---------------------------------------------------|
| model / seed / snapshot                          | asset, kind "model" / "table" / "table"           |
| source `raw.orders`                              | asset `raw.orders`, kind "source"                 |
| exposure of type dashboard / any other type      | asset, kind "dashboard" / "external"              |
| `meta.owner`, `config.meta.owner`, group owner, exposure owner email (else name) | owner |
| `meta.layer`, a `layer:X` tag, else the first folder under models/ | layer           |
| tags (`team:x` becomes `team=x`, plain tags `tag=true`), materialization, relation | tags |
| source `freshness` warn_after (else error_after) | freshness SLA in seconds                          |
| `depends_on.nodes` of models, seeds, snapshots, exposures | lineage edges, source "dbt"              |
| documented columns (name, data_type)             | schema snapshot (stored when it changes)          |
| each compiled model's SQL (parsed by sqlglot, dbt_columns.py) | column mapping of its edges; `lakelens.column_lineage` tag |
| run_results.json invocation                      | run: id = invocation_id, job "dbt <command>"      |
| model / seed / snapshot result                   | materialization: status, execute-phase timing, rows_affected, error message |
| test / unit test result                          | check result on the tested node: severity, failures, message |
| sources.json result                              | run "dbt source freshness" and a `source_freshness` check on the source |

Name clashes: a node is named after its dbt name (versioned models `name.vN`). When two
nodes want the same name, the root project's node keeps it (models before seeds, snapshots,
sources, exposures) and the others become `package.name`, or their unique id when that is
taken too.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from lakelens.errors import LakelensError
from lakelens.events import Batch
from lakelens.integrations.dbt_logs import log_callback
from lakelens.model import (
    Asset,
    CheckResult,
    LineageEdge,
    Materialization,
    Run,
    RunStatus,
    SchemaSnapshot,
)
from lakelens.units import format_duration

if TYPE_CHECKING:
    from lakelens.store import Store

__all__ = [
    "FRESHNESS_CHECK",
    "SOURCE",
    "DbtArtifactsError",
    "ImportResult",
    "import_artifacts",
    "log_callback",
]

SOURCE = "dbt"
FRESHNESS_CHECK = "source_freshness"

# The oldest artifact schemas read: those of dbt 1.6 (manifest v10, run results v4, sources v3).
_MIN_VERSION = {"manifest": 10, "run-results": 4, "sources": 3, "catalog": 1}
_FILES = {
    "manifest": "manifest.json",
    "run-results": "run_results.json",
    "sources": "sources.json",
    "catalog": "catalog.json",
}
_SCHEMA_URL = re.compile(r"/dbt/([a-z-]+)/v(\d+)\.json$")

_ASSET_RESOURCES = ("model", "seed", "snapshot")
_KIND = {"model": "model", "seed": "table", "snapshot": "table"}
# Who keeps a contested name: models first, exposures last.
_PRIORITY = {"model": 0, "seed": 1, "snapshot": 2, "source": 3, "exposure": 4}
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
_MAX_LAYER = 128
_MAX_KIND = 32
_MAX_RUN_ID = 128


class DbtArtifactsError(LakelensError):
    """The directory holds no dbt artifacts lakelens can read."""


@dataclass(frozen=True)
class ImportResult:
    """What one import stored (counts of events offered; repeated ones are stored once)."""

    target: str
    dbt_version: str | None
    manifest_version: int
    assets: int
    edges: int
    schemas: int
    runs: int
    materializations: int
    checks: int
    failed_checks: int
    warned_checks: int
    freshness: int
    stale_sources: int
    run_ids: list[str] = field(default_factory=list)
    new_run_ids: list[str] = field(default_factory=list)
    # Edges given a column mapping, and models whose column lineage is unresolved (why).
    column_edges: int = 0
    unresolved_columns: dict[str, str] = field(default_factory=dict)

    @property
    def already_imported(self) -> bool:
        """True when every run in the artifacts was in the store before this import."""
        return bool(self.run_ids) and not self.new_run_ids

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "already_imported": self.already_imported}


def import_artifacts(
    target_dir: str | Path,
    *,
    store: Store | None = None,
    progress: Callable[[str], None] | None = None,
    column_lineage: bool = True,
) -> ImportResult:
    """Import a dbt target directory (manifest.json, plus run_results.json, sources.json and
    catalog.json when present) into `store` (default: the store configured by LAKELENS_* /
    lakelens.yaml). `column_lineage`: derive column lineage from the compiled SQL."""
    say = progress or (lambda message: None)
    artifacts = _read(Path(target_dir), say)
    owned = store is None
    if store is None:
        from lakelens.store import Store

        store = Store()
    try:
        say("Converting dbt artifacts")
        converted = _convert(artifacts)
        if column_lineage:
            from lakelens.integrations.dbt_columns import add_column_lineage

            converted.unresolved = add_column_lineage(
                converted.batch,
                artifacts.manifest,
                converted.names,
                catalog=artifacts.docs.get("catalog"),
                store=store,
                say=say,
            )
        batch = converted.batch
        run_ids = [run.run_id for run in batch.runs]
        known = _known_runs(store, run_ids)
        say(f"Writing {len(batch)} events to {store.location}")
        store.write(batch)
        if converted.loads:
            _record_loads(store, converted.loads)
    finally:
        if owned:
            store.close()
    tests = [c for c in batch.checks if "dbt.test_type" in c.attributes]
    freshness = [c for c in batch.checks if "dbt.test_type" not in c.attributes]
    return ImportResult(
        target=str(artifacts.target),
        dbt_version=_text(artifacts.manifest["metadata"].get("dbt_version")),
        manifest_version=artifacts.versions["manifest"],
        assets=len(batch.assets),
        edges=len(batch.edges),
        schemas=len(batch.schemas),
        runs=len(batch.runs),
        materializations=len(batch.materializations),
        checks=len(tests),
        failed_checks=sum(not c.passed and c.severity != "warning" for c in tests),
        warned_checks=sum(not c.passed and c.severity == "warning" for c in tests),
        freshness=len(freshness),
        stale_sources=sum(c.attributes.get("dbt.status") in ("warn", "error") for c in freshness),
        run_ids=run_ids,
        new_run_ids=[r for r in run_ids if r not in known],
        column_edges=sum(e.columns is not None for e in batch.edges),
        unresolved_columns=converted.unresolved,
    )


# -- reading --------------------------------------------------------------------------------


@dataclass
class _Artifacts:
    target: Path
    docs: dict[str, dict[str, Any]]  # by kind: manifest, run-results, sources (when written)
    versions: dict[str, int]

    @property
    def manifest(self) -> dict[str, Any]:
        return self.docs["manifest"]


def _read(path: Path, say: Callable[[str], None]) -> _Artifacts:
    if not path.exists():
        raise DbtArtifactsError(
            f"{path} does not exist: pass the target/ directory of a dbt project."
        )
    if path.is_file():
        path = path.parent
    if not (path / "manifest.json").is_file() and (path / "target" / "manifest.json").is_file():
        path = path / "target"
    if not (path / "manifest.json").is_file():
        raise DbtArtifactsError(
            f"No manifest.json in {path}: pass the target/ directory of a dbt project, "
            "after a dbt command (dbt build, run, test or parse) has written it."
        )
    artifacts = _Artifacts(path, {}, {})
    for kind, filename in _FILES.items():
        if (path / filename).is_file():
            say(f"Reading {filename}")
            artifacts.docs[kind], artifacts.versions[kind] = _load(path / filename, kind)
    return artifacts


def _load(file: Path, kind: str) -> tuple[dict[str, Any], int]:
    """The JSON of one artifact and its schema version, checked to be the artifact expected."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DbtArtifactsError(f"Cannot read {file}: {exc}.") from None
    except ValueError as exc:
        raise DbtArtifactsError(
            f"{file} is not valid JSON ({exc}); re-run dbt to write it again."
        ) from None
    metadata = _dict(data.get("metadata") if isinstance(data, dict) else None)
    url = metadata.get("dbt_schema_version")
    match = _SCHEMA_URL.search(url) if isinstance(url, str) else None
    if match is None or match.group(1) != kind:
        raise DbtArtifactsError(
            f"{file} is not a dbt {kind.replace('-', ' ')} artifact "
            f"(metadata.dbt_schema_version is {url!r}); pass a dbt target/ directory."
        )
    version = int(match.group(2))
    if version < _MIN_VERSION[kind]:
        raise DbtArtifactsError(
            f"{file} uses the dbt {kind.replace('-', ' ')} schema v{version} "
            f"(dbt {metadata.get('dbt_version', '?')}); lakelens reads v{_MIN_VERSION[kind]} "
            "and later (dbt 1.6+): upgrade dbt-core and run dbt again."
        )
    needed = (
        ("nodes", "sources") if kind in ("manifest", "catalog") else ("results", "invocation_id")
    )
    missing = [key for key in needed if key not in data and key not in metadata]
    if missing:
        raise DbtArtifactsError(f"{file} is not a complete dbt artifact: no {missing[0]}.")
    return data, version


# -- conversion -----------------------------------------------------------------------------


@dataclass
class _Converted:
    batch: Batch = field(default_factory=Batch)
    # Source asset → its newest load (max_loaded_at) seen by dbt source freshness.
    loads: dict[str, float] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # unique_id → asset name
    unresolved: dict[str, str] = field(default_factory=dict)  # model → why no column lineage


def _convert(artifacts: _Artifacts) -> _Converted:
    manifest = artifacts.manifest
    out = _Converted()
    names = out.names = _asset_names(manifest)
    generated = _time(manifest["metadata"].get("generated_at"))
    _assets(manifest, names, generated, out.batch)
    if "run-results" in artifacts.docs:
        _run(artifacts.docs["run-results"], manifest, names, out)
    if "sources" in artifacts.docs:
        _freshness(artifacts.docs["sources"], manifest, names, out)
    invocation = manifest["metadata"].get("invocation_id")
    if any(run.run_id == invocation for run in out.batch.runs):
        for snapshot in out.batch.schemas:
            snapshot.run_id = invocation  # the manifest was written by an imported run
    return out


def _nodes(manifest: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any], str]]:
    """(unique_id, node, resource type) of everything that becomes an asset."""
    for uid, node in _dict(manifest.get("nodes")).items():
        if isinstance(node, dict) and node.get("resource_type") in _ASSET_RESOURCES:
            yield uid, node, node["resource_type"]
    for key, kind in (("sources", "source"), ("exposures", "exposure")):
        for uid, node in _dict(manifest.get(key)).items():
            if isinstance(node, dict):
                yield uid, node, kind


def _asset_names(manifest: dict[str, Any]) -> dict[str, str]:
    """unique_id → asset name, resolving clashes as the module docstring says."""
    root = manifest["metadata"].get("project_name")
    wanted: dict[str, list[tuple[str, str, str]]] = {}
    for uid, node, kind in _nodes(manifest):
        name = _text(node.get("name")) or uid.rpartition(".")[2]
        if kind == "source":
            name = f"{_text(node.get('source_name')) or '?'}.{name}"
        elif kind == "model" and node.get("version") is not None:
            name = f"{name}.v{node['version']}"
        package = _text(node.get("package_name")) or ""
        wanted.setdefault(name, []).append((uid, package, kind))
    names: dict[str, str] = {}
    taken = set(wanted)
    for name, claims in sorted(wanted.items()):
        claims.sort(key=lambda c: (c[1] != root, _PRIORITY[c[2]], c[0]))
        names[claims[0][0]] = name
        for uid, package, _kind in claims[1:]:
            alternative = f"{package}.{name}"
            if alternative in taken:
                alternative = uid
            taken.add(alternative)
            names[uid] = alternative
    return {uid: _cut(name, _MAX_NAME) for uid, name in names.items()}


def _assets(
    manifest: dict[str, Any], names: dict[str, str], generated: datetime | None, batch: Batch
) -> None:
    groups = _dict(manifest.get("groups"))
    for uid, node, kind in _nodes(manifest):
        name = names[uid]
        batch.assets.append(_asset(uid, node, kind, name, groups, generated))
        for dependency in _list(_dict(node.get("depends_on")).get("nodes")):
            if dependency in names and dependency != uid:
                batch.edges.append(
                    LineageEdge(names[dependency], name, source=SOURCE, updated_at=generated)
                )
        columns = [
            (_text(column.get("name")) or key, _text(column.get("data_type")) or "")
            for key, column in _dict(node.get("columns")).items()
            if isinstance(column, dict)
        ]
        if columns:
            batch.schemas.append(
                SchemaSnapshot(name, columns, time=generated, hash=_schema_hash(columns))
            )


def _asset(
    uid: str,
    node: dict[str, Any],
    kind: str,
    name: str,
    groups: dict[str, Any],
    generated: datetime | None,
) -> Asset:
    config = _dict(node.get("config"))
    meta = {**_dict(node.get("meta")), **_dict(config.get("meta"))}
    tags = _tags([*_list(node.get("tags")), *_list(config.get("tags"))])
    tags["dbt.unique_id"] = uid
    tags["dbt.resource_type"] = kind
    extra = {
        "dbt.package": node.get("package_name"),
        "dbt.materialized": config.get("materialized"),
        "dbt.relation": node.get("relation_name"),
        "dbt.url": node.get("url"),
        "dbt.maturity": node.get("maturity"),
    }
    tags.update({key: value for key, value in extra.items() if isinstance(value, str) and value})
    group = _text(node.get("group")) or _text(config.get("group"))
    owner = _owner(meta.get("owner"))
    if kind == "exposure":
        contact = _dict(node.get("owner"))
        owner = owner or _text(contact.get("email")) or _text(contact.get("name"))
        tags["dbt.exposure_type"] = _text(node.get("type")) or "unknown"
        asset_kind = "dashboard" if node.get("type") == "dashboard" else "external"
    else:
        asset_kind = _KIND.get(kind, kind)
    if owner is None and group is not None:
        found = [g for g in groups.values() if isinstance(g, dict) and g.get("name") == group]
        contact = _dict(found[0].get("owner")) if found else {}
        owner = _text(contact.get("email")) or _text(contact.get("name"))
    layer = _text(meta.get("layer")) or tags.get("layer")
    if layer is None and kind in _ASSET_RESOURCES:
        folders = re.split(r"[\\/]", _text(node.get("path")) or "")[:-1]
        layer = folders[0] if folders else None
    freshness = None
    if kind == "source":
        freshness = _sla(node.get("freshness") or config.get("freshness"))[0]
    return Asset(
        name=name,
        kind=_cut(asset_kind, _MAX_KIND),
        owner=_cut(owner, _MAX_SHORT),
        layer=_cut(layer, _MAX_LAYER),
        group=_cut(group, _MAX_SHORT),
        description=_text(node.get("description")),
        freshness_seconds=freshness,
        critical=meta.get("critical") is True,
        tags=tags,
        updated_at=generated,
    )


def _owner(value: Any) -> str | None:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value if v) or None
    return _text(value)


def _tags(values: list[Any]) -> dict[str, str]:
    """dbt tags as lakelens tags: `team:finance` → team=finance, `pii` → pii=true."""
    tags: dict[str, str] = {}
    for value in values:
        if not isinstance(value, str) or not value:
            continue
        key, sep, rest = value.partition(":")
        if not sep:
            key, sep, rest = value.partition("=")
        if sep and key and rest:
            tags[key] = rest
        else:
            tags[value] = "true"
    return tags


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


# -- the store ------------------------------------------------------------------------------


def _known_runs(store: Store, run_ids: list[str]) -> set[str]:
    if not run_ids:
        return set()
    import sqlalchemy as sa

    from lakelens.store import schema

    runs = schema.runs
    with store.connect() as conn:
        return set(
            conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id.in_(run_ids))).scalars()
        )


def _record_loads(store: Store, loads: dict[str, float]) -> None:
    """Move each source's last success to its newest load dbt saw (max_loaded_at), never back.

    Sources are not materialized by anything lakelens watches, so this is what gives them an
    age: lineage shows it against the SLA, and the freshness alert rule fires between dbt runs.
    """
    import sqlalchemy as sa

    from lakelens.store import schema

    assets = schema.assets
    statement = (
        sa.update(assets)
        .where(
            assets.c.name == sa.bindparam("asset"),
            sa.or_(
                assets.c.last_success_time.is_(None),
                assets.c.last_success_time < sa.bindparam("loaded"),
            ),
        )
        .values(last_success_time=sa.bindparam("loaded"))
    )
    with store.engine.begin() as conn:
        conn.execute(statement, [{"asset": a, "loaded": t} for a, t in sorted(loads.items())])


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
